import NF4KitCore
import NF4KitFormats
import NF4KitQuant

extension QuantizePipeline {
    /// `convert MODEL -o model.gguf --to nf4|fp4 --layout hf`: the bitsandbytes checkpoint in the NF4 companion
    /// convention of docs/gguf.md (section 5), which llama.cpp does not mistake for weights and nf4kit reads back
    /// losslessly.
    ///
    /// The quantization runs into a scratch folder inside a temporary output folder beside `output`
    /// (`NAME-quantize.nf4kit-<hex>.partial`, registered with the output layer, so a failure or an interrupt removes
    /// it); its tensors are then laid out by ``GGUFBridge/encodeCompanion(_:metadata:)`` and written through
    /// ``CheckpointOutput/init(gguf:metadata:tensors:overwrite:inputs:)``.
    /// - Throws: as ``run(input:output:options:progress:)``.
    static func runCompanionGGUF(
        input: String, output: String, options: Options, progress: (@Sendable (ProgressEvent) -> Void)?
    ) throws -> Summary {
        let source = try ModelSource.open(input)
        try CheckpointOutput.checkDestination(
            output, form: .gguf, overwrite: options.overwrite, inputs: source.inputPaths)
        let scratch = try OutputDirectory(path: output + "-quantize", overwrite: false, inputs: source.inputPaths)
        var folderOptions = options
        folderOptions.format = nil
        folderOptions.overwrite = false
        folderOptions.maxShardBytes = Int.max
        var summary = try run(
            input: input, output: scratch.partialFile("quantized/"), options: folderOptions, progress: progress)
        let quantized = try ModelSource.open(scratch.partialFile("quantized"))
        let encoded = try GGUFBridge.encodeCompanion(
            quantized.checkpoint.tensors, metadata: CheckpointOutput.huggingFaceGGUFMetadata(config: quantized.config))
        let destination = try CheckpointOutput(
            gguf: output, metadata: encoded.metadata, tensors: encoded.tensors.map(\.0), overwrite: options.overwrite,
            inputs: source.inputPaths)
        for (plan, bytes) in encoded.tensors { try destination.write(plan.name, bytes: bytes) }
        try destination.finish()
        summary.outputPath = output
        summary.bytesOut = destination.tensorByteCount
        withExtendedLifetime(scratch) {}
        return summary
    }
}
