public import NF4KitCore
import NF4KitFormats
import NF4KitQuant

/// `convert MODEL -o x.gguf --layout hf --to q8_0`: any checkpoint in nf4kit's GGUF container with Hugging Face names
/// (`nf4kit.layout` = `hf`), its float tensors in a ggml block type with llama.cpp's per-tensor rule
/// (``GGUFBridge/exportType(for:requested:)``: 1-D tensors F32, rows that are not whole blocks F16).
///
/// For architectures without a llama.cpp layout in nf4kit; llama.cpp does not load the result.
public enum GGUFHFLayoutExport {
    /// Writes `input` to `output`.
    ///
    /// Each tensor is read once and encoded on one of `threads` workers (default: one per processor) (4-bit bitsandbytes weights are dequantized
    /// to their own dtype first), then written at its planned offset through ``CheckpointOutput``.
    /// - Throws: ``CheckpointError`` from reading, `.unsupportedDType` for a tensor GGUF cannot hold, `.outputExists`.
    public static func run(
        input: String, output: String, type: GGMLType, overwrite: Bool, threads: Int? = nil,
        progress: (@Sendable (ProgressEvent) -> Void)? = nil
    ) throws -> QuantizePipeline.Summary {
        let start = FileAccess.monotonicSeconds
        let source = try ModelSource.open(input)
        try CheckpointOutput.checkDestination(output, form: .gguf, overwrite: overwrite, inputs: source.inputPaths)
        let groups = try BnbQuantizedWeight.groups(in: source.checkpoint.tensors)
        let members = Set(groups.flatMap(\.memberNames))
        let groupByWeight = Dictionary(uniqueKeysWithValues: groups.map { ($0.weightName, $0) })
        var tensors: [Tensor] = []
        var plans: [GGUFTensorPlan] = []
        for tensor in source.checkpoint.tensors {
            var logical = tensor
            if let group = groupByWeight[tensor.name] {
                let q = group.tensor
                logical = Tensor(
                    descriptor: TensorDescriptor(
                        name: group.weightName, dtype: q.dtype, shape: q.shape, file: tensor.descriptor.file,
                        fileOffset: tensor.descriptor.fileOffset, byteCount: q.elementCount * q.dtype.bitWidth / 8),
                    bytes: tensor.bytes)
            } else if members.contains(tensor.name) {
                continue
            }
            guard let chosen = GGUFBridge.exportType(for: logical, requested: type) else {
                throw CheckpointError(
                    .unsupportedDType, "tensor '\(tensor.name)' is \(tensor.dtype), which GGUF cannot hold",
                    file: tensor.descriptor.file, tensor: tensor.name)
            }
            tensors.append(logical)
            plans.append(GGUFTensorPlan(name: logical.name, type: chosen, shape: logical.shape))
        }
        var metadata = CheckpointOutput.huggingFaceGGUFMetadata(config: source.config)
        if let fileType = GGUFBridge.llamaFileType(for: type) {
            metadata.append(GGUFMetadataEntry(key: "general.file_type", value: .uint32(fileType)))
            metadata.append(GGUFMetadataEntry(key: "general.quantization_version", value: .uint32(2)))
        }
        let destination = try CheckpointOutput(
            gguf: output, metadata: metadata, tensors: plans, overwrite: overwrite, inputs: source.inputPaths)
        let tracker = ProgressTracker(
            tensorsTotal: tensors.count, bytesTotal: tensors.reduce(0) { $0 + $1.bytes.count }, report: progress)
        let planned = plans, inputs = tensors
        try ParallelRunner.map(count: inputs.count, threads: threads ?? FileAccess.processorCount) { index in
            var tensor = inputs[index]
            if let group = groupByWeight[tensor.name] {
                tensor = Tensor(descriptor: tensor.descriptor, bytes: group.tensor.dequantized(as: group.tensor.dtype))
            }
            let (_, bytes) = try GGUFBridge.encode(tensor, as: planned[index].type)
            try destination.write(planned[index].name, bytes: bytes)
            inputs[index].bytes.releasePages()
            tracker.finished(tensor.name, bytes: inputs[index].bytes.count)
        }
        try destination.finish()
        var summary = QuantizePipeline.Summary()
        summary.tensorsKept = tensors.count
        summary.tensorsDequantized = groups.count
        summary.bytesIn = source.checkpoint.totalByteCount
        summary.bytesOut = destination.tensorByteCount
        summary.outputPath = output
        summary.seconds = FileAccess.monotonicSeconds - start
        return summary
    }
}
