public import NF4KitFormats

extension ModelSource {
    /// Opens a weight file or a Hugging Face model/adapter folder in any container nf4kit reads: the one entry point.
    ///
    /// safetensors files and folders (single, sharded with an index, PEFT adapters), GGUF (plain tensors, ggml block
    /// types dequantized to F32 by NF4KitQuant's codecs, NF4 companion tensors back as bitsandbytes tensors; the
    /// parsed header is kept in ``ModelSource/gguf``), and PyTorch zip, legacy and sharded `.bin` checkpoints
    /// (restricted unpickler; tied weights de-duplicated as Hugging Face's safetensors conversion does). The
    /// container is decided by magic bytes, never by the name.
    ///
    /// - Throws: ``CheckpointError`` naming the file, byte offset and tensor for malformed input; `.notFound` when
    ///   nothing readable is there.
    public static func open(_ path: String) throws -> ModelSource {
        try open(path, ggmlBlocks: GGUFBridge.decodeBlocks)
    }
}
