public import NF4KitCore
import NF4KitFormats
import NF4KitQuant

/// Writes GGUF files in llama.cpp's own layout: a Llama-family Hugging Face folder as convert_hf_to_gguf.py writes
/// it, and a PEFT LoRA adapter as convert_lora_to_gguf.py writes it (spec gguf-llama.md).
///
/// Tensors are streamed: each is read once, converted to f32 values (4-bit bitsandbytes weights dequantized first),
/// its rows permuted for attn_q/attn_k, then narrowed or quantized to the output type and written at its planned
/// offset. At most one tensor's values and its output bytes are held at a time.
public enum GGUFExport {
    /// The `--outtype` of the converters.
    public enum OutType: String, Sendable, CaseIterable {
        /// Every tensor F32.
        case f32
        /// 2-D tensors F16, 1-D F32.
        case f16
        /// 2-D tensors BF16, 1-D F32.
        case bf16
        /// 2-D tensors Q8_0 where the row length is a multiple of 32, else F16; 1-D F32.
        // swift-format-ignore: AlwaysUseLowerCamelCase
        case q8_0

        /// The `general.file_type` it writes.
        public var fileType: LlamaFileType {
            switch self {
            case .f32: .f32
            case .f16: .f16
            case .bf16: .bf16
            case .q8_0: .q8_0
            }
        }
    }

    /// What to write.
    public struct Options: Sendable {
        /// The output type; `nil` picks what the converters' `auto` picks: for a model the type of the first 2-D float
        /// tensor (bf16 stays bf16, anything else f16), for an adapter f32 (convert_lora_to_gguf.py's default).
        public var outType: OutType?
        /// The base model folder of an adapter (its `config.json` gives the architecture and head counts). `nil`: the
        /// adapter's `base_model_name_or_path`, if it names a local folder.
        public var base: String?
        /// `general.name` (cosmetic); `nil`: the input folder's name.
        public var name: String?
        /// Whether an existing output file may be replaced.
        public var overwrite: Bool = false
        /// Tensors converted at once (each holds one tensor's values and output bytes); default: up to 4 cores.
        public var threads: Int = min(4, FileAccess.processorCount)
        /// A llama-quantize file type (`Q4_K_M`, ...): the model is laid out as with ``OutType/f16`` and each tensor
        /// quantized in the same pass to the type ``LlamaQuantMix`` gives it (see GGUFExport+KQuant.swift); `nil`:
        /// `outType` alone decides.
        public var quantFileType: LlamaFileType?

        /// Creates options.
        public init(outType: OutType? = nil, base: String? = nil, name: String? = nil, overwrite: Bool = false) {
            self.outType = outType
            self.base = base
            self.name = name
            self.overwrite = overwrite
        }
    }

    /// What was written.
    public struct Summary: Sendable {
        /// The output file.
        public var outputPath: String
        /// The output type used.
        public var outType: OutType
        /// Tensors written.
        public var tensorCount: Int
        /// Bytes of the file.
        public var fileByteCount: Int64
        /// 4-bit weights dequantized on the way.
        public var tensorsDequantized: Int
        /// Wall-clock seconds.
        public var seconds: Double
        /// Things to tell the user (a merge's warnings, such as an adapter made for another base).
        public var warnings: [String] = []
    }

    /// Converts a Hugging Face folder (model or PEFT LoRA adapter) to a GGUF file in llama.cpp's layout.
    ///
    /// A model folder needs `config.json` (LlamaForCausalLM or MistralForCausalLM), its weights (F16, BF16, F32 or
    /// bitsandbytes 4-bit, which are dequantized first) and its tokenizer: a SentencePiece `tokenizer.model` or a
    /// byte-level BPE `tokenizer.json`. An adapter folder is
    /// written as a llama.cpp LoRA adapter (see ``exportAdapter(adapter:output:options:)``).
    ///
    /// - Throws: ``CheckpointError``: `.unsupported` for another architecture or tokenizer (the message names
    ///   `--layout hf`), `.shapeMismatch`/`.malformedHeader` when config.json contradicts the tensors, reader errors
    ///   with file and offset, `.outputExists`/`.io` from the output. Nothing is left at `output` on failure.
    public static func convert(
        input: String, output: String, options: Options = Options(),
        progress: (@Sendable (ProgressEvent) -> Void)? = nil
    ) throws -> Summary {
        let source = try ModelSource.open(input)
        try CheckpointOutput.checkDestination(
            output, form: .gguf, overwrite: options.overwrite, inputs: source.inputPaths)
        if source.isAdapter {
            if let fileType = options.quantFileType {
                // convert_lora_to_gguf.py writes f32, f16, bf16 or q8_0; llama-quantize's types are for models.
                throw CheckpointError(
                    .invalidArgument,
                    "a llama.cpp LoRA adapter holds f32, f16, bf16 or q8_0 tensors (convert_lora_to_gguf.py's "
                        + "--outtype); \(fileType.name) is a model file type of llama-quantize",
                    file: input)
            }
            return try exportAdapter(source: source, output: output, options: options)
        }
        return try exportModel(source: source, output: output, options: options, progress: progress)
    }

    /// Converts a Llama-family model folder; see ``convert(input:output:options:progress:)``.
    public static func exportModel(
        input: String, output: String, options: Options = Options(),
        progress: (@Sendable (ProgressEvent) -> Void)? = nil
    ) throws -> Summary {
        try exportModel(source: try ModelSource.open(input), output: output, options: options, progress: progress)
    }

    /// One tensor of the output: where its values come from and what it becomes.
    struct Item: Sendable {
        var ggufName: String
        var shape: [Int]
        var tensor: Tensor
        var quantized: QuantizedTensor?
        var permutation: LlamaRowPermutation?
        var scale: Float?
        var type: GGMLType
        /// Whether the values are rounded to f16 before quantizing (llama-quantize reads the F16 file).
        var roundsToHalf = false
    }

    static func exportModel(
        source: ModelSource, output: String, options: Options, progress: (@Sendable (ProgressEvent) -> Void)?
    ) throws -> Summary {
        let start = FileAccess.monotonicSeconds
        guard source.isFolder, let json = source.config else {
            throw CheckpointError(
                .unsupported,
                "llama.cpp's GGUF layout needs a Hugging Face folder with config.json and the tokenizer; use --layout hf "
                    + "for a bare weight file", file: source.path)
        }
        let configPath = source.path + "/config.json"
        let config = try LlamaModelConfig(json: json, file: configPath)
        let tensors = source.checkpoint.tensors
        let groups = try BnbQuantizedWeight.groups(in: tensors)
        let members = Set(groups.flatMap(\.memberNames))
        let groupByWeight = Dictionary(uniqueKeysWithValues: groups.map { ($0.weightName, $0) })

        var outType = options.quantFileType == nil ? options.outType : .f16
        var items: [Item] = []
        var seen = Set<String>()
        for tensor in tensors.sorted(by: { $0.name < $1.name }) {
            let name = tensor.name
            let group = groupByWeight[name]
            if group == nil && members.contains(name) { continue }
            if LlamaTensorNames.isDroppedBuffer(hfName: name) { continue }
            guard let ggufName = LlamaTensorNames.ggufName(hfName: name) else {
                throw CheckpointError(
                    .unsupported,
                    "tensor '\(name)' has no llama.cpp name for \(config.architecture); use --layout hf to keep Hugging "
                        + "Face names", file: source.path, tensor: name)
            }
            let shape = group?.tensor.shape.dimensions ?? tensor.shape.dimensions
            guard group != nil || tensor.dtype.isConvertibleFloat else {
                throw CheckpointError(
                    .unsupportedDType, "tensor '\(name)' is \(tensor.dtype); expected F16, BF16 or F32 weights",
                    file: source.path, tensor: name)
            }
            guard let expected = config.expectedShape(ggufName: ggufName), expected == shape else {
                let want = config.expectedShape(ggufName: ggufName).map { "\($0)" } ?? "no such tensor"
                throw CheckpointError(
                    .shapeMismatch,
                    "tensor '\(name)' has shape \(shape), but config.json implies \(want) (hidden_size "
                        + "\(config.embeddingLength), intermediate_size \(config.feedForwardLength), heads "
                        + "\(config.headCount)/\(config.headCountKV), head_dim \(config.headDimension), vocab_size "
                        + "\(config.vocabSize), \(config.blockCount) layers)", file: configPath, tensor: name)
            }
            if outType == nil, group == nil, shape.count >= 2 {
                outType = tensor.dtype == .bf16 ? .bf16 : tensor.dtype == .f16 ? .f16 : nil
            }
            var permutation: LlamaRowPermutation?
            if let heads = config.heads(for: LlamaTensorNames.permutation(ggufName: ggufName)) {
                permutation = try LlamaRowPermutation(rows: shape[0], heads: heads, tensor: name, file: configPath)
            }
            seen.insert(ggufName)
            items.append(
                Item(
                    ggufName: ggufName, shape: shape, tensor: tensor, quantized: group?.tensor,
                    permutation: permutation, scale: nil, type: .f32))
        }
        let required = LlamaTensorNames.requiredWeights(blocks: config.blockCount, tied: config.tieWordEmbeddings)
        if let missing = required.first(where: { !seen.contains($0) }) {
            throw CheckpointError(
                .malformedHeader,
                "the weights have no '\(LlamaTensorNames.hfName(ggufName: missing) ?? missing)', which config.json "
                    + "(\(config.blockCount) layers, tie_word_embeddings \(config.tieWordEmbeddings)) requires",
                file: source.path, tensor: LlamaTensorNames.hfName(ggufName: missing))
        }
        if let rope = config.llama3Rope {
            // convert_hf_to_gguf.py yields its generated tensors before the model's.
            items.insert(ropeFrequencies(rope, file: configPath), at: 0)
        }
        let chosen = outType ?? options.outType ?? .f16
        for index in items.indices {
            let item = items[index]
            let isVector = item.shape.count <= 1 || item.ggufName.hasSuffix("_norm.weight")
            items[index].type = isVector ? .f32 : chosen.fileType.matrixType(rowLength: item.shape.last!)
        }

        var parameterCount = 0
        for item in items { parameterCount += item.shape.reduce(1, *) }
        let name = options.name ?? lastComponent(source.path)
        var metadata = config.metadata(
            fileType: chosen.fileType, name: name, sizeLabel: sizeLabel(parameterCount: parameterCount))
        metadata += try LlamaVocabulary.metadata(folder: source.path, config: config)
        if let fileType = options.quantFileType {
            applyQuantMix(fileType, config: config, items: &items, metadata: &metadata)
        }
        let planned = items

        let tracker = ProgressTracker(
            tensorsTotal: items.count, bytesTotal: items.reduce(0) { $0 + $1.tensor.bytes.count }, report: progress)
        let layout = try writeFile(
            path: output, metadata: metadata,
            tensors: items.map { GGUFTensorPlan(name: $0.ggufName, type: $0.type, shape: Shape($0.shape)) },
            overwrite: options.overwrite, inputs: source.inputPaths, threads: options.threads
        ) { index, write in
            try produce(planned[index], write: write)
            tracker.finished(planned[index].ggufName, bytes: planned[index].tensor.bytes.count)
        }
        return Summary(
            outputPath: output, outType: chosen, tensorCount: items.count, fileByteCount: layout.fileSize,
            tensorsDequantized: items.filter { $0.quantized != nil }.count,
            seconds: FileAccess.monotonicSeconds - start)
    }

    /// The F32 `rope_freqs.weight` of Llama 3.1's rope scaling, computed from config.json.
    static func ropeFrequencies(_ rope: Llama3RopeScaling, file: String) -> Item {
        let factors = rope.factors()
        let bytes = TensorBytes(copyingElementsOf: factors, description: Llama3RopeScaling.tensorName)
        let descriptor = TensorDescriptor(
            name: Llama3RopeScaling.tensorName, dtype: .f32, shape: Shape([factors.count]), file: file, fileOffset: 0,
            byteCount: bytes.count)
        return Item(
            ggufName: Llama3RopeScaling.tensorName, shape: [factors.count],
            tensor: Tensor(descriptor: descriptor, bytes: bytes), quantized: nil, permutation: nil, scale: nil,
            type: .f32)
    }

    static func lastComponent(_ path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        return String(trimmed.split(separator: "/").last ?? trimmed)
    }

    /// gguf-py's `size_label` for a dense model: the parameter count with a K/M/B/T suffix and at least two digits.
    static func sizeLabel(parameterCount: Int) -> String {
        let n = Double(parameterCount)
        let (scaled, suffix): (Double, String) =
            n > 1e12 ? (n * 1e-12, "T") : n > 1e9 ? (n * 1e-9, "B") : n > 1e6 ? (n * 1e-6, "M") : (n * 1e-3, "K")
        let integerDigits = String(Int(scaled.rounded())).drop { $0 == "0" }.count
        let decimals = max(2 - integerDigits, 0)
        var factor = 1.0
        for _ in 0..<decimals { factor *= 10 }
        let rounded = Int((scaled * factor).rounded())
        let whole = rounded / Int(factor)
        let fraction = rounded % Int(factor)
        guard decimals > 0 else { return "\(whole)\(suffix)" }
        let digits = String(fraction)
        return "\(whole).\(String(repeating: "0", count: decimals - digits.count))\(digits)\(suffix)"
    }
}
