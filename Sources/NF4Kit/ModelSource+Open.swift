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

    /// How ``open(_:gguf:)`` presents the tensors of a GGUF file.
    public enum GGUFReading: Sendable {
        /// Values: ggml block types dequantized to F32, GGUF names and row order (``open(_:)``).
        case values
        /// As stored, decoding nothing: a block-type tensor (known or not) is dtype `U8` with its logical shape and
        /// stored byte count (``GGUFBridge/storedTensor(_:bytes:file:)``). What `inspect` needs.
        case stored
        /// A llama.cpp-layout Llama GGUF as its Hugging Face model: names back, attn_q/attn_k rows un-permuted
        /// (``GGUFImport/readCheckpoint(path:)``); other GGUFs read as ``values``.
        case huggingFace
    }

    /// Opens `path` as ``open(_:)`` does, reading a GGUF file as `reading` says; other containers are unaffected.
    public static func open(_ path: String, gguf reading: GGUFReading) throws -> ModelSource {
        switch reading {
        case .values:
            return try open(path)
        case .stored:
            return try open(path, ggmlBlocks: GGUFBridge.storedTensor)
        case .huggingFace:
            var source = try open(path)
            if source.kind == .gguf, let file = source.gguf {
                source.checkpoint = try GGUFImport.readCheckpoint(path: file.path)
            }
            return source
        }
    }
}
