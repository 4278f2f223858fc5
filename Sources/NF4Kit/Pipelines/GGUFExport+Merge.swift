import FoundationEssentials
import NF4KitCore
import NF4KitFormats
import NF4KitQuant

extension GGUFExport {
    /// Merges PEFT adapters into a base model folder and writes the result as a llama.cpp-layout GGUF.
    ///
    /// The merge runs through ``MergePipeline`` into a temporary folder beside `output` (removed afterwards), which is
    /// then exported with ``convert(input:output:options:progress:)``: the result equals PEFT's merge saved and then
    /// converted. A float base is merged in its own dtype; a bitsandbytes 4-bit base is dequantized and merged in f32
    /// (the QLoRA user's last step), unless `mergeOptions.target` already asks for a float type.
    ///
    /// - Parameters:
    ///   - base: The base model folder (Llama family, with its tokenizer files).
    ///   - adapters: PEFT adapter folders.
    ///   - output: The `.gguf` file to write.
    ///   - mergeOptions: Merge options; its `overwrite` applies to the temporary folder only.
    ///   - options: Export options (output type, name, overwrite).
    /// - Throws: ``CheckpointError`` from the merge or the export; nothing is left at `output` on failure.
    public static func mergeAndExport(
        base: String, adapters: [String], output: String, mergeOptions: MergeOptions = MergeOptions(),
        options: Options = Options(), progress: (@Sendable (ProgressEvent) -> Void)? = nil
    ) throws -> Summary {
        if FileAccess.exists(output) && !options.overwrite {
            throw CheckpointError(.outputExists, "the output exists; pass --force to replace it", file: output)
        }
        var merge = mergeOptions
        if merge.target == .same || merge.target == .nf4 || merge.target == .fp4 {
            let source = try ModelSource.open(base)
            let fourBit = try !BnbQuantizedWeight.groups(in: source.checkpoint.tensors).isEmpty
            if fourBit || merge.target != .same { merge.target = .f32 }
        }
        let scratch = output + ".nf4kit-merge"
        removeTree(scratch)
        defer { removeTree(scratch) }
        merge.overwrite = true
        _ = try MergePipeline.run(base: base, adapters: adapters, output: scratch, options: merge)
        var exportOptions = options
        if exportOptions.name == nil { exportOptions.name = lastComponent(base) }
        var summary = try exportModel(input: scratch, output: output, options: exportOptions, progress: progress)
        summary.outputPath = output
        return summary
    }

    private static func removeTree(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }
}
