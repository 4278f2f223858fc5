public import NF4KitCore
public import NF4KitFormats
public import NF4KitQuant

/// Requantizes a llama.cpp-layout GGUF to a llama.cpp file type, writing what `llama-quantize IN OUT TYPE` writes
/// (no importance matrix): the same tensor names, types (``LlamaQuantMix``), shapes, data bytes and tensor order,
/// and the input's metadata with `general.quantization_version` and `general.file_type` moved to the end.
public enum GGUFRequantize {
    /// `GGML_QNT_VERSION`, written as `general.quantization_version`.
    public static let quantizationVersion: UInt32 = 2

    /// Elements quantized per job inside one tensor (whole rows; llama-quantize's chunk is 32 × 512).
    static let chunkElementCount = 1 << 16

    /// What was written.
    public struct Summary: Sendable {
        /// The file type written.
        public var fileType: LlamaFileType
        /// Every tensor with its output type, in file order.
        public var tensors: [LlamaQuantMix.Assignment]
        /// The output file size in bytes.
        public var outputByteCount: Int64
        /// Tensors that were block-quantized already and were quantized again to another type (what llama-quantize
        /// does only with `--allow-requantize`: the error of both quantizations adds up).
        public var requantizedTensorCount = 0
    }

    /// The output metadata and tensor types for `file`, without touching tensor data.
    ///
    /// Metadata: every input key in order except `split.no`, `split.count` and `split.tensors.count`, then
    /// `general.quantization_version` (UINT32 2) and `general.file_type` (UINT32), as llama-quantize sets them.
    ///
    /// - Throws: ``CheckpointError`` `.malformedHeader` when `general.architecture` or the block / head counts are
    ///   missing or not integers.
    public static func plan(
        _ file: GGUFFile, fileType: LlamaFileType
    ) throws(CheckpointError) -> (metadata: [GGUFMetadataEntry], tensors: [LlamaQuantMix.Assignment]) {
        let model = try model(of: file)
        let sources = file.tensors.map {
            LlamaQuantMix.Tensor(name: $0.name, dimensions: $0.dimensions, type: $0.type)
        }
        let tensors = LlamaQuantMix.plan(fileType: fileType, model: model, tensors: sources)
        let metadata = requantizedMetadata(
            file.metadata.map { GGUFMetadataEntry(key: $0.key, value: $0.value) }, fileType: fileType)
        return (metadata, tensors)
    }

    /// `metadata` as llama-quantize rewrites it: every key in order except `split.no`, `split.count`,
    /// `split.tensors.count`, then `general.quantization_version` (UINT32 2) and `general.file_type` (UINT32).
    static func requantizedMetadata(
        _ metadata: [GGUFMetadataEntry], fileType: LlamaFileType
    ) -> [GGUFMetadataEntry] {
        let dropped: Set<String> = [
            "split.no", "split.count", "split.tensors.count", "general.quantization_version", "general.file_type",
        ]
        var result = metadata.filter { !dropped.contains($0.key) }
        result.append(GGUFMetadataEntry(key: "general.quantization_version", value: .uint32(quantizationVersion)))
        result.append(GGUFMetadataEntry(key: "general.file_type", value: .uint32(fileType.fileTypeID)))
        return result
    }

    /// Requantizes the GGUF at `input` to `fileType` and writes `output` (atomically: `.partial`, then renamed).
    ///
    /// Tensors whose type does not change are copied byte for byte. Others are decoded to f32 (F32, F16, BF16, or a
    /// block type nf4kit can dequantize) and encoded with ggml's reference quantizers, so a F16 input gives the
    /// bytes llama-quantize gives. Tensors are processed one at a time, each split into row chunks over `threads`
    /// threads; memory is about one output tensor plus `threads` × 64 Ki floats.
    ///
    /// - Parameters:
    ///   - input: A GGUF file in llama.cpp layout (as convert_hf_to_gguf.py writes it).
    ///   - output: The GGUF to write; never one of the inputs.
    ///   - fileType: The llama.cpp file type (``LlamaFileType/init(name:)`` parses `q4_k_m`).
    ///   - overwrite: Whether an existing `output` may be replaced.
    ///   - threads: Worker threads; `nil` uses one per processor.
    ///   - progress: Called after each tensor.
    /// - Returns: What was written.
    /// - Throws: ``CheckpointError``: `.malformedHeader` and friends from reading `input`, `.unsupportedDType` for a
    ///   tensor that must change type but cannot be decoded, `.outputExists` / `.io` from writing.
    @discardableResult
    public static func run(
        input: String, output: String, fileType: LlamaFileType, overwrite: Bool = false,
        threads: Int? = nil, progress: (@Sendable (ProgressEvent) -> Void)? = nil
    ) throws -> Summary {
        let threads = threads ?? FileAccess.processorCount
        let file = try GGUFFile.read(path: input)
        let (metadata, tensors) = try plan(file, fileType: fileType)
        let plans = tensors.map {
            GGUFTensorPlan(name: $0.tensor.name, type: $0.type, dimensions: $0.tensor.dimensions)
        }
        let layout = try GGUFLayout.plan(metadata: metadata, tensors: plans)
        let writer = try GGUFWriter(path: output, layout: layout, overwrite: overwrite, inputs: [input])
        let tracker = ProgressTracker(
            tensorsTotal: tensors.count, bytesTotal: layout.byteCounts.reduce(0, +), report: progress)
        var requantized = 0
        for (index, assignment) in tensors.enumerated() {
            guard let info = file.tensor(named: assignment.tensor.name) else {
                preconditionFailure("GGUFRequantize: planned tensor \(assignment.tensor.name) is not in the file")
            }
            let bytes = file.bytes(of: info)
            if assignment.type == info.type {
                try writer.write(tensorAt: index, bytes)
            } else {
                if info.type.isQuantized { requantized += 1 }
                let encoded = try convert(info, bytes, to: assignment.type, file: file.path, threads: threads)
                try writer.write(tensorAt: index, encoded)
            }
            tracker.finished(info.name, bytes: layout.byteCounts[index])
        }
        try writer.finish()
        var summary = Summary(fileType: fileType, tensors: tensors, outputByteCount: layout.fileSize)
        summary.requantizedTensorCount = requantized
        return summary
    }

    /// The hyperparameters the mix reads, from `general.architecture` and `<arch>.*` keys.
    static func model(of file: GGUFFile) throws(CheckpointError) -> LlamaQuantMix.Model {
        guard let architecture = file["general.architecture"]?.stringValue else {
            throw CheckpointError(
                .malformedHeader, "general.architecture is missing or not a string; llama-quantize needs it",
                file: file.path)
        }
        func integer(_ key: String) -> Int? { file["\(architecture).\(key)"]?.integerValue.map { Int($0) } }
        guard let layers = integer("block_count"), let heads = integer("attention.head_count") else {
            throw CheckpointError(
                .malformedHeader,
                "\(architecture).block_count or \(architecture).attention.head_count is missing or not an integer",
                file: file.path)
        }
        return LlamaQuantMix.Model(
            architecture: architecture, layerCount: layers, headCount: heads,
            kvHeadCount: integer("attention.head_count_kv") ?? heads, expertCount: integer("expert_count") ?? 0)
    }
}
