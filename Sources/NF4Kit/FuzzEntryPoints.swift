/// One entry point per reader of untrusted bytes, for the libFuzzer targets in `Fuzz/`.
///
/// Each takes the bytes of a whole input, reads them the way the CLI would, and swallows the reader's
/// ``CheckpointError`` (rejecting input is the expected outcome); a trap, hang, leak or runaway allocation is
/// what the fuzzer looks for. Available as SPI only: `@_spi(Fuzzing) import NF4Kit`.
@_spi(Fuzzing) public enum FuzzEntryPoints {
    /// A safetensors file: header validation, then every tensor's bytes are touched.
    public static func safetensors(_ bytes: UnsafeRawBufferPointer) {
        let region = MappedRegion(copying: bytes, description: "fuzz.safetensors")
        guard let checkpoint = try? SafetensorsReader.read(region: region, path: "fuzz.safetensors") else { return }
        touch(checkpoint)
    }

    /// A GGUF file: header, metadata and tensor infos, then the checkpoint view of its tensors.
    public static func gguf(_ bytes: UnsafeRawBufferPointer) {
        let region = MappedRegion(copying: bytes, description: "fuzz.gguf")
        guard let file = try? GGUFFile(region: region, path: "fuzz.gguf") else { return }
        if let checkpoint = try? file.checkpoint(skippingBlockTypes: true) { touch(checkpoint) }
    }

    /// A PyTorch `.bin` (zip container, or the legacy pickle stream): the whole reader, unpickler included.
    public static func torch(_ bytes: UnsafeRawBufferPointer) {
        let region = MappedRegion(copying: bytes, description: "fuzz.bin")
        var limits = TorchReadLimits.default
        limits.maxInflatedBytes = 64 << 20
        guard let result = try? TorchCheckpointReader.readDetailed(region: region, path: "fuzz.bin", limits: limits)
        else { return }
        touch(result.checkpoint)
    }

    /// A `data.pkl` stream on its own.
    public static func unpickle(_ bytes: UnsafeRawBufferPointer) {
        var unpickler = Unpickler(bytes, file: "data.pkl", fileOffset: 0, limits: .default)
        _ = try? unpickler.run()
    }

    /// An `adapter_config.json`, then its rank/alpha patterns against a few module names.
    public static func adapterConfig(_ bytes: UnsafeRawBufferPointer) {
        guard case .object(let json)? = try? StrictJSON.parse(Array(bytes), file: "adapter_config.json"),
            let config = try? AdapterConfig(json: json, file: "adapter_config.json")
        else { return }
        for module in ["model.layers.0.self_attn.q_proj", "lm_head", "model.embed_tokens\n", ""] {
            _ = config.patternRank(forModule: module)
            _ = config.scaling(forModule: module, rank: 8)
        }
    }

    /// The quant-state JSON blob bitsandbytes stores beside a 4-bit weight.
    public static func quantState(_ bytes: UnsafeRawBufferPointer) {
        _ = try? BnbQuantState(parsing: Array(bytes), tensor: "w.quant_state.bitsandbytes__nf4")
    }

    /// A GGUF file read the way convert and merge read it: block types (Q4_0 ... Q8_0, the k-quants, IQ types) are
    /// dequantized to F32 through ``GGUFBridge``, NF4 companions become bitsandbytes tensors.
    public static func ggufBlocks(_ bytes: UnsafeRawBufferPointer) {
        let region = MappedRegion(copying: bytes, description: "fuzz.gguf")
        guard let file = try? GGUFFile(region: region, path: "fuzz.gguf"),
            let checkpoint = try? GGUFBridge.checkpoint(from: file)
        else { return }
        touch(checkpoint)
    }

    /// A SentencePiece `tokenizer.model` (protobuf), as the llama.cpp layout reads it.
    public static func sentencePiece(_ bytes: UnsafeRawBufferPointer) {
        _ = try? SentencePieceModel(parsing: Array(bytes), file: "tokenizer.model")
    }

    /// A `config.json` of a Llama model, as the llama.cpp layout reads it (``LlamaModelConfig``).
    public static func llamaConfig(_ bytes: UnsafeRawBufferPointer) {
        guard case .object(let json)? = try? StrictJSON.parse(Array(bytes), file: "config.json") else { return }
        _ = try? LlamaModelConfig(json: json, file: "config.json")
    }

    private static func touch(_ checkpoint: Checkpoint) {
        var sum: UInt8 = 0
        for tensor in checkpoint.tensors {
            _ = tensor.shape.checkedElementCount
            tensor.bytes.withUnsafeBytes { raw in
                if let first = raw.first, let last = raw.last { sum &+= first &+ last }
            }
        }
        _ = sum
    }
}
