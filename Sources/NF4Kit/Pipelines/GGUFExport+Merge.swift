import FoundationEssentials
import NF4KitCore
import NF4KitFormats
import NF4KitQuant

extension GGUFExport {
    /// Merges PEFT adapters into a base model folder and writes the result as a llama.cpp-layout GGUF, in one pass.
    ///
    /// The merge is a tensor source (``MergePipeline/tensorSource(base:adapters:options:)``) that the export reads
    /// as it reads a folder for ``convert(input:output:options:progress:)``: each merged tensor is computed when the
    /// export takes it, permuted, converted or quantized, written, and released, so no merged folder is written and
    /// memory holds a few tensors. The result equals PEFT's merge saved and then converted. A float base is merged in
    /// its own dtype; a bitsandbytes 4-bit base is dequantized and merged in f32 (the QLoRA user's last step), unless
    /// `mergeOptions.target` already asks for a float type.
    ///
    /// - Parameters:
    ///   - base: The base model folder (Llama family, with its tokenizer files).
    ///   - adapters: PEFT adapter folders.
    ///   - output: The `.gguf` file to write.
    ///   - mergeOptions: Merge options (its `overwrite` and `format` are ignored: `options` decides the output).
    ///   - options: Export options (output type, name, overwrite).
    /// - Throws: ``CheckpointError`` from the merge or the export; nothing is left at `output` on failure.
    public static func mergeAndExport(
        base: String, adapters: [String], output: String, mergeOptions: MergeOptions = MergeOptions(),
        options: Options = Options(), progress: (@Sendable (ProgressEvent) -> Void)? = nil
    ) throws -> Summary {
        let inputs = [base] + adapters
        try CheckpointOutput.checkDestination(output, form: .gguf, overwrite: options.overwrite, inputs: inputs)
        // What the export needs of the base (a Llama-family config.json and a tokenizer), checked before the
        // adapters are opened and planned, so that these errors come first.
        let source = try ModelSource.open(base)
        guard source.isFolder, let json = source.config else {
            throw CheckpointError(
                .unsupported,
                "llama.cpp's GGUF layout needs a Hugging Face folder with config.json and the tokenizer as the base; "
                    + "use --layout hf for a bare weight file", file: source.path)
        }
        _ = try LlamaVocabulary.metadata(
            folder: source.path, config: LlamaModelConfig(json: json, file: source.path + "/config.json"))
        var merge = mergeOptions
        if merge.target == .same || merge.target == .nf4 || merge.target == .fp4 {
            let fourBit = try !BnbQuantizedWeight.groups(in: source.checkpoint.tensors).isEmpty
            if fourBit || merge.target != .same { merge.target = .f32 }
        }
        merge.overwrite = false
        merge.format = nil
        let merged = try MergePipeline.tensorSource(base: base, adapters: adapters, options: merge)
        var exportOptions = options
        if exportOptions.name == nil { exportOptions.name = lastComponent(base) }
        var summary = try exportModel(source: merged.source, output: output, options: exportOptions, progress: progress)
        summary.warnings = merged.warnings.map { "\($0)" }
        return summary
    }
}
