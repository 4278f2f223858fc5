public import NF4KitFormats

extension ModelSource.Readers {
    /// Every container nf4kit reads: GGUF (plain and quantized tensors, NF4 companion groups) and PyTorch zip,
    /// legacy and sharded `.bin` checkpoints (restricted unpickler; tied weights de-duplicated as Hugging Face's
    /// safetensors conversion does, the dropped names recorded in metadata).
    public static let all = ModelSource.Readers(
        gguf: { try GGUFBridge.readCheckpoint(path: $0) },
        torch: { try TorchCheckpointReader.readDetailed(path: $0).deduplicated() },
        torchIndex: { try TorchCheckpointReader.readSharded(indexPath: $0).deduplicated() }
    )
}

extension ModelSource {
    /// Opens a file or folder in any container nf4kit reads (see ``ModelSource/Readers/all``).
    public static func openAny(_ path: String) throws -> ModelSource { try open(path, readers: .all) }
}
