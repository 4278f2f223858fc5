public import NF4KitCore
public import NF4KitFormats
import NF4KitQuant

/// A llama.cpp Llama GGUF back to a Hugging Face model folder, as transformers'
/// `from_pretrained(..., gguf_file=...)` then `save_pretrained` gives it (spec gguf-llama.md section 7).
///
/// Names go back to Hugging Face's (``LlamaGGUFImportNames``), attn_q/attn_k rows are un-permuted, every tensor is
/// dequantized with gguf-py's values (``GGUFBridge/dequantize(_:bytes:file:)``) and cast to the requested dtype
/// (round to nearest even); `config.json` comes from the `llama.*` keys and the tokenizer (`tokenizer.json`,
/// `tokenizer_config.json`, `chat_template.jinja`) from the `tokenizer.*` keys, as transformers writes them.
///
/// Tensors are decoded and written one at a time, so peak memory is about one dequantized tensor (plus its cast).
public enum GGUFImport {
    /// What to write.
    public struct Options: Sendable {
        /// Element type of the written tensors: `.f32` (transformers' default), `.f16` or `.bf16`.
        public var dtype: DType
        /// The `--max-shard-size` limit on tensor bytes per safetensors file.
        public var maxShardBytes: Int
        /// Replace an existing output folder.
        public var overwrite: Bool

        /// huggingface_hub's default shard limit (5 GB).
        public static let defaultMaxShardBytes = 5_000_000_000

        public init(dtype: DType = .f32, maxShardBytes: Int = defaultMaxShardBytes, overwrite: Bool = false) {
            self.dtype = dtype
            self.maxShardBytes = maxShardBytes
            self.overwrite = overwrite
        }
    }

    /// The hyperparameters of a Llama GGUF (`llama.*` keys).
    public struct Hyperparameters: Sendable, Hashable {
        public var blockCount: Int
        public var contextLength: Int
        public var embeddingLength: Int
        public var feedForwardLength: Int
        public var headCount: Int
        public var headCountKV: Int
        public var headDim: Int
        public var ropeTheta: Double
        public var rmsNormEps: Double
        public var vocabSize: Int
    }

    /// One tensor of the output: the GGUF tensor it comes from and its Hugging Face name and permutation.
    public struct Entry: Sendable {
        public var source: GGUFTensorInfo
        public var target: Target
    }

    /// What a GGUF tensor becomes in a Hugging Face Llama checkpoint: the one name table and permutation of
    /// ``LlamaTensorNames`` read backwards.
    public struct Target: Sendable, Hashable {
        /// The Hugging Face name (`model.layers.0.self_attn.q_proj.weight`).
        public var name: String
        /// The row permutation to undo: attn_q by `n_head`, attn_k by `n_kv_head`.
        package var permutation: LlamaTensorNames.Permutation

        /// The target of GGUF tensor `name`, or `nil` for a name outside llama.cpp's Llama layout.
        public init?(ggufName name: String) {
            guard let hf = LlamaTensorNames.hfName(ggufName: name) else { return nil }
            self.name = hf
            permutation = LlamaTensorNames.permutation(ggufName: name)
        }
    }

    /// What an import wrote.
    public struct Summary: Sendable {
        /// The folder.
        public var path: String
        /// Tensors written.
        public var tensorCount: Int
        /// Bytes of tensor data written.
        public var byteCount: Int
    }

    /// Writes the Hugging Face folder for the Llama GGUF at `ggufPath` to `outputPath`.
    ///
    /// - Throws: ``CheckpointError``: from parsing; `.unsupported` for an architecture other than `llama` or a
    ///   tokenizer other than SentencePiece (`tokenizer.ggml.model` = `llama`); `.malformedHeader` for a missing or
    ///   mistyped hyperparameter or a tensor name outside the Llama map; `.unsupportedDType`/`.truncated` for a
    ///   tensor that cannot be decoded (naming the file, byte offset and tensor); `.outputExists`/`.io` from writing.
    public static func run(
        ggufPath: String, outputPath: String, options: Options = Options()
    ) throws(CheckpointError)
        -> Summary
    {
        guard [.f32, .f16, .bf16].contains(options.dtype) else {
            throw CheckpointError(
                .invalidArgument, "a GGUF import writes f32, f16 or bf16 tensors, not \(options.dtype)")
        }
        let file = try GGUFFile.read(path: ggufPath)
        let hyper = try hyperparameters(of: file)
        let entries = try plan(file, hyper)
        let sideFiles =
            try [("config.json", configJSON(file, hyper, dtype: options.dtype))]
            + tokenizerFiles(file)
        return try writeFolder(
            file: file, hyper: hyper, entries: entries, sideFiles: sideFiles, to: outputPath, options: options)
    }

    /// The Hugging Face model of a Llama GGUF in memory, for pipelines that take a checkpoint (GGUF -> NF4 is this
    /// model quantized, exactly as if its folder had been written and converted).
    public struct Model: Sendable {
        /// Hugging Face names, in GGUF file order, every tensor of `dtype` (heap memory: the whole model decoded).
        public var checkpoint: Checkpoint
        /// `config.json`, `tokenizer.json`, `tokenizer_config.json`, `chat_template.jinja` as ``run(ggufPath:outputPath:options:)``
        /// writes them.
        public var sideFiles: [(name: String, bytes: [UInt8])]
    }

    /// Reads the Llama GGUF at `ggufPath` as its Hugging Face model, decoded to `dtype` (f32, f16 or bf16).
    ///
    /// - Throws: as ``run(ggufPath:outputPath:options:)``, except the output errors.
    /// - Complexity: O(elements); holds every decoded tensor (4 or 2 bytes per weight).
    public static func model(ggufPath: String, dtype: DType = .f32) throws(CheckpointError) -> Model {
        guard [.f32, .f16, .bf16].contains(dtype) else {
            throw CheckpointError(.invalidArgument, "a GGUF import produces f32, f16 or bf16 tensors, not \(dtype)")
        }
        let file = try GGUFFile.read(path: ggufPath)
        let hyper = try hyperparameters(of: file)
        let checkpoint = try checkpoint(of: file, hyper, dtype: dtype)
        let sideFiles = try [("config.json", configJSON(file, hyper, dtype: dtype))] + tokenizerFiles(file)
        return Model(checkpoint: checkpoint, sideFiles: sideFiles.map { (name: $0.0, bytes: $0.1) })
    }

    /// The tensors of a Llama GGUF with Hugging Face names, q/k rows un-permuted, decoded to `dtype`.
    private static func checkpoint(
        of file: GGUFFile, _ hyper: Hyperparameters, dtype: DType
    ) throws(CheckpointError) -> Checkpoint {
        var tensors: [Tensor] = []
        for entry in try plan(file, hyper) {
            tensors.append(try tensor(entry, in: file, hyper, dtype: dtype))
        }
        return Checkpoint(format: .gguf, files: [file.path], tensors: tensors, metadata: file.textMetadata)
    }

    // MARK: - Pieces

    /// The hyperparameters, checked: every count positive, heads dividing the embedding, rows splitting into heads.
    ///
    /// - Throws: ``CheckpointError`` `.unsupported` when `general.architecture` is not `llama`; `.malformedHeader`
    ///   naming the key and its record offset for a missing, mistyped or inconsistent value.
    public static func hyperparameters(of file: GGUFFile) throws(CheckpointError) -> Hyperparameters {
        let architecture = file["general.architecture"]?.stringValue
        guard architecture == "llama" else {
            throw CheckpointError(
                .unsupported,
                "GGUF import reads Llama files (general.architecture 'llama'); this one says "
                    + "\(architecture.map { "'\($0)'" } ?? "nothing")",
                file: file.path, byteOffset: recordOffset(file, "general.architecture"))
        }
        func count(_ key: String, default fallback: Int? = nil) throws(CheckpointError) -> Int {
            guard let value = file[key] else {
                if let fallback { return fallback }
                throw CheckpointError(.malformedHeader, "the Llama GGUF has no \(key)", file: file.path)
            }
            guard let number = value.integerValue, number > 0, number <= Int64(Int32.max) else {
                throw CheckpointError(
                    .malformedHeader, "\(key) must be a positive integer, found \(value)", file: file.path,
                    byteOffset: recordOffset(file, key))
            }
            return Int(number)
        }
        func real(_ key: String, default fallback: Double) throws(CheckpointError) -> Double {
            switch file[key] {
            case nil: return fallback
            case .float32(let v)?: return Double(v)
            case .float64(let v)?: return v
            case let other?:
                throw CheckpointError(
                    .malformedHeader, "\(key) must be FLOAT32, found \(other.type)", file: file.path,
                    byteOffset: recordOffset(file, key))
            }
        }
        let embedding = try count("llama.embedding_length")
        let heads = try count("llama.attention.head_count")
        let vocabulary = file["tokenizer.ggml.tokens"]?.arrayElements?.count
        var hyper = Hyperparameters(
            blockCount: try count("llama.block_count"), contextLength: try count("llama.context_length"),
            embeddingLength: embedding, feedForwardLength: try count("llama.feed_forward_length"),
            headCount: heads, headCountKV: try count("llama.attention.head_count_kv", default: heads),
            headDim: 0, ropeTheta: try real("llama.rope.freq_base", default: 10000),
            rmsNormEps: try real("llama.attention.layer_norm_rms_epsilon", default: 1e-5),
            vocabSize: try count("llama.vocab_size", default: vocabulary ?? 0))
        hyper.headDim = try count("llama.rope.dimension_count", default: embedding / heads)
        guard embedding % heads == 0, heads % hyper.headCountKV == 0, hyper.headDim % 2 == 0, hyper.vocabSize > 0
        else {
            throw CheckpointError(
                .malformedHeader,
                "inconsistent Llama hyperparameters: embedding \(embedding), \(heads) heads, \(hyper.headCountKV) KV "
                    + "heads, head dim \(hyper.headDim), vocabulary \(hyper.vocabSize)",
                file: file.path, byteOffset: recordOffset(file, "llama.attention.head_count"))
        }
        return hyper
    }

    /// Every tensor of the file with its Hugging Face name, in file order (`rope_freqs.weight`, no weight, left out).
    ///
    /// - Throws: ``CheckpointError`` `.malformedHeader` for a name outside the Llama map or a q/k tensor whose rows do
    ///   not split into its heads (naming the tensor and its record).
    public static func plan(_ file: GGUFFile, _ hyper: Hyperparameters) throws(CheckpointError) -> [Entry] {
        var entries: [Entry] = []
        for info in file.tensors {
            // Llama 3.1's rope factors are no weight; transformers' GGUF loader skips them too (and keeps no
            // rope_scaling for llama).
            if info.name == Llama3RopeScaling.tensorName { continue }
            guard let target = Target(ggufName: info.name) else {
                throw CheckpointError(
                    .malformedHeader, "tensor '\(info.name)' is not part of llama.cpp's Llama layout",
                    file: file.path, byteOffset: info.recordOffset, tensor: info.name)
            }
            if target.permutation != .none {
                let heads = target.permutation == .query ? hyper.headCount : hyper.headCountKV
                let rows = info.dimensions.count == 2 ? info.dimensions[1] : 0
                guard rows > 0, rows % (2 * heads) == 0 else {
                    throw CheckpointError(
                        .malformedHeader,
                        "tensor '\(info.name)' with ggml shape \(info.dimensions) cannot be split into \(heads) heads "
                            + "of rotary pairs",
                        file: file.path, byteOffset: info.recordOffset, tensor: info.name)
                }
            }
            entries.append(Entry(source: info, target: target))
        }
        return entries
    }

    /// The tensor's values in Hugging Face row order, as f32: dequantized (or widened) exactly as gguf-py does, q/k
    /// rows un-permuted.
    ///
    /// - Throws: ``CheckpointError`` from ``GGUFBridge/dequantize(_:bytes:file:)``, `.unsupportedDType` for an
    ///   integer tensor.
    public static func values(
        of entry: Entry, in file: GGUFFile, _ hyper: Hyperparameters
    ) throws(CheckpointError) -> [Float] {
        let info = entry.source
        let bytes = file.bytes(of: info)
        var values: [Float]
        if let dtype = info.type.dtype {
            guard dtype.isConvertibleFloat else {
                throw CheckpointError(
                    .unsupportedDType, "tensor '\(info.name)' holds \(dtype) integers, not weights", file: file.path,
                    byteOffset: info.typeFieldOffset, tensor: info.name)
            }
            values = widened(bytes, from: dtype, count: info.elementCount)
        } else {
            let tensor = try GGUFBridge.dequantize(info, bytes: bytes, file: file.path)
            values = floats(of: tensor.bytes)
        }
        guard entry.target.permutation != .none else { return values }
        let heads = entry.target.permutation == .query ? hyper.headCount : hyper.headCountKV
        let rows = info.dimensions[1]
        let permutation = try LlamaRowPermutation(rows: rows, heads: heads, tensor: info.name, file: file.path)
        return unpermuted(values, by: permutation, rows: rows)
    }

    /// The tensor of `entry` under its Hugging Face name and PyTorch shape, as `dtype` (f32, or f16/bf16 rounded to
    /// nearest even from gguf-py's f32 values), in heap memory.
    public static func tensor(
        _ entry: Entry, in file: GGUFFile, _ hyper: Hyperparameters, dtype: DType
    ) throws(CheckpointError) -> Tensor {
        let values = try values(of: entry, in: file, hyper)
        let bytes = encoded(values, as: dtype, description: entry.target.name)
        return Tensor(
            descriptor: TensorDescriptor(
                name: entry.target.name, dtype: dtype, shape: entry.source.shape, file: file.path,
                fileOffset: entry.source.fileOffset, byteCount: bytes.count),
            bytes: bytes)
    }

    /// `config.json` as transformers writes it for a Llama read from a GGUF (sorted keys, indent 2), without
    /// `transformers_version` (nf4kit is not transformers).
    public static func configJSON(_ file: GGUFFile, _ hyper: Hyperparameters, dtype: DType) -> [UInt8] {
        func tokenID(_ key: String) -> JSONValue {
            file["tokenizer.ggml.\(key)"]?.integerValue.map { .integer($0) } ?? .null
        }
        let tied = file.tensor(named: "output.weight") == nil
        var members: [(key: String, value: JSONValue)] = [
            ("architectures", .array([.string("LlamaForCausalLM")])),
            ("attention_bias", .bool(false)),
            ("attention_dropout", .double(0)),
            ("bos_token_id", tokenID("bos_token_id")),
            ("dtype", .string(dtype.torchName ?? "float32")),
            ("eos_token_id", tokenID("eos_token_id")),
            ("head_dim", .integer(hyper.headDim)),
            ("hidden_act", .string("silu")),
            ("hidden_size", .integer(hyper.embeddingLength)),
            ("initializer_range", .double(0.02)),
            ("intermediate_size", .integer(hyper.feedForwardLength)),
            ("max_position_embeddings", .integer(hyper.contextLength)),
            ("mlp_bias", .bool(false)),
            ("model_type", .string("llama")),
            ("num_attention_heads", .integer(hyper.headCount)),
            ("num_hidden_layers", .integer(hyper.blockCount)),
            ("num_key_value_heads", .integer(hyper.headCountKV)),
            ("pad_token_id", tokenID("padding_token_id")),
            ("pretraining_tp", .integer(1)),
            ("rms_norm_eps", .double(hyper.rmsNormEps)),
            (
                "rope_parameters",
                .object(JSONObject([("rope_theta", .double(hyper.ropeTheta)), ("rope_type", .string("default"))]))
            ),
            ("tie_word_embeddings", .bool(tied)),
            ("use_cache", .bool(true)),
            ("vocab_size", .integer(hyper.vocabSize)),
        ]
        if let name = file["general.name"]?.stringValue { members.append(("_model_name_or_path", .string(name))) }
        return JSONWriter.pythonPretty.bytes(.object(JSONObject(members))) + Array("\n".utf8)
    }

    /// The tokenizer files transformers writes for a GGUF's SentencePiece (`llama`) vocabulary: `tokenizer.json`,
    /// `tokenizer_config.json` and, when the file has a chat template, `chat_template.jinja`.
    ///
    /// - Throws: ``CheckpointError`` `.unsupported` for another tokenizer model; `.malformedHeader` for missing or
    ///   mistyped token arrays.
    public static func tokenizerFiles(_ file: GGUFFile) throws(CheckpointError) -> [(String, [UInt8])] {
        let vocabulary = try GGUFSentencePieceVocabulary(file)
        var files: [(String, [UInt8])] = [
            ("tokenizer.json", vocabulary.tokenizerJSON()),
            ("tokenizer_config.json", vocabulary.tokenizerConfigJSON()),
        ]
        if let template = file["tokenizer.chat_template"]?.stringValue {
            files.append(("chat_template.jinja", Array(template.utf8)))
        }
        return files
    }

    static func recordOffset(_ file: GGUFFile, _ key: String) -> Int64? {
        file.metadata.first { $0.key == key }?.recordOffset
    }

    // MARK: - Output

    /// Streams the tensors into a safetensors folder (planned from the shapes first) and adds the side files. The one
    /// place that touches the output layer.
    private static func writeFolder(
        file: GGUFFile, hyper: Hyperparameters, entries: [Entry], sideFiles: [(String, [UInt8])], to path: String,
        options: Options
    ) throws(CheckpointError) -> Summary {
        let plan = try SafetensorsFolderWriter.Plan(
            tensors: entries.map { ($0.target.name, options.dtype, $0.source.shape) }, metadata: [("format", "pt")],
            maxShardBytes: options.maxShardBytes)
        let writer = try SafetensorsFolderWriter(
            path: path, plan: plan, overwrite: options.overwrite, inputs: [file.path])
        for entry in entries {
            try writer.write(entry.target.name, bytes: tensor(entry, in: file, hyper, dtype: options.dtype).bytes)
            file.bytes(of: entry.source).releasePages()
        }
        for (name, bytes) in sideFiles { try writer.writeSideFile(name, bytes: bytes) }
        try writer.finish()
        return Summary(path: path, tensorCount: entries.count, byteCount: plan.totalByteCount)
    }
}

extension GGUFImport {
    /// Reads any GGUF as a ``Checkpoint`` in Hugging Face terms where it can: a llama.cpp Llama file as its Hugging
    /// Face model in f32 (``model(ggufPath:dtype:)``: names back, q/k rows un-permuted), any other file as
    /// ``GGUFBridge/readCheckpoint(path:)`` reads it (GGUF names).
    ///
    /// For `diff` against a Hugging Face folder and `convert --to nf4` from a GGUF, which then see the tensors a
    /// Hugging Face model has.
    /// - Throws: ``CheckpointError`` from parsing and decoding.
    public static func readCheckpoint(path: String) throws(CheckpointError) -> Checkpoint {
        let file = try GGUFFile.read(path: path)
        guard isLlamaLayout(file) else { return try GGUFBridge.checkpoint(from: file) }
        // The tensors only: a diff or a quantization needs no tokenizer (a BPE one is not imported yet).
        return try checkpoint(of: file, try hyperparameters(of: file), dtype: .f32)
    }

    /// Whether `file` is a Llama GGUF in llama.cpp's layout (what the import reads back), not a GGUF with Hugging
    /// Face names (`--layout hf`, `fixture`, the NF4 companion convention) or another architecture.
    public static func isLlamaLayout(_ file: GGUFFile) -> Bool {
        file["general.architecture"]?.stringValue == "llama"
            && file.tensors.allSatisfy({ Target(ggufName: $0.name) != nil || $0.name == Llama3RopeScaling.tensorName })
    }
}
