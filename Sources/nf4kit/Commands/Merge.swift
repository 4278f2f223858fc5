import ArgumentParser
import NF4Kit

struct Merge: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Merge PEFT LoRA or DoRA adapters into a base checkpoint.",
        discussion: """
            BASE is a Hugging Face folder or a weight file, plain (F16/BF16/F32) or bitsandbytes 4-bit. Each ADAPTER is \
            a PEFT folder (adapter_config.json + adapter_model.safetensors or adapter_model.bin). Several adapters are merged as the \
            weighted sum of their deltas. Deltas are computed in f32 and rounded once to the output dtype, as PEFT's \
            merge_and_unload does. A .gguf output of a Llama-family base is written in llama.cpp's layout (--to \
            f16|bf16|f32|q8_0, default the merged float type), equal to PEFT's merge saved and then converted by \
            convert_hf_to_gguf.py; a 4-bit base is dequantized and merged in f32 first. --layout hf keeps Hugging \
            Face names instead. A summary goes to stderr; nothing is printed to stdout.
            """ + "\n\n" + ExitCodes.helpText
    )

    @Argument(help: "The base model: a Hugging Face folder or a weight file.")
    var base: String

    @Argument(help: "One or more PEFT adapter folders (adapter_config.json + adapter_model.safetensors or .bin).")
    var adapters: [String] = []

    @OptionGroup var outputOptions: OutputOptions

    @Option(help: "Comma-separated weights, one per adapter (default 1 each).")
    var weights: String?

    @Option(
        help:
            "The output form, any case: same (keep the base's form), \(NumberFormat.spellings(MergeTargetArgument.accepted))."
    )
    var to = MergeTargetArgument(nil)

    @Option(
        help: """
            GGUF layout: llama (llama.cpp's, the default for a .gguf output) or hf (Hugging Face names, not loadable \
            by llama.cpp).
            """)
    var layout: GGUFLayoutArgument?

    @Option(help: "Block size for --to nf4|fp4 (a 4-bit base keeps its own by default).")
    var blocksize: BlockSizeArgument?

    @Flag(help: "Quantize without double quantization (--to nf4|fp4).")
    var noDoubleQuant = false

    @Flag(help: "Write NaN or infinite merged values instead of failing.")
    var allowNonfinite = false

    @Flag(
        help: ArgumentHelp(
            "Accepted for scripts written for 0.1: the fused (PEFT-exact) arithmetic is now the default.",
            visibility: .hidden))
    var fusedArithmetic = false

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int?

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1.") }
        guard !adapters.isEmpty else { throw ValidationError("Give at least one adapter after the base.") }
        if let parsed = try parsedWeights(), parsed.count != adapters.count {
            throw ValidationError("--weights has \(parsed.count) values but \(adapters.count) adapters were given.")
        }
        let llama = try writesLlamaLayout()
        if !llama && to.target == nil {
            throw ValidationError(
                "--to \(to.format!.rawValue) is written in llama.cpp's GGUF layout only: name a .gguf output (without "
                    + "--layout hf); this output takes 'same', "
                    + MergeTargetArgument.accepted.filter { $0.llamaFileType == nil }.map { "'\($0.rawValue)'" }
                    .joined(separator: ", ") + ".")
        }
        let plain = llama || to.target?.plainDType != nil
        if plain && blocksize != nil {
            throw ValidationError("--blocksize only applies to a 4-bit output (--to nf4|fp4|same).")
        }
        if plain && noDoubleQuant {
            throw ValidationError("--no-double-quant only applies to a 4-bit output (--to nf4|fp4|same).")
        }
    }

    /// Whether the output is a GGUF file in llama.cpp's layout (``GGUFExport/mergeAndExport``).
    private func writesLlamaLayout() throws -> Bool {
        guard try outputOptions.isGGUF(layout: layout) else { return false }
        if to.format == .nf4 || to.format == .fp4 {
            if layout == .llama {
                throw ValidationError("--to \(to.format!.rawValue) has no llama.cpp form; use --to f16|bf16|f32|q8_0.")
            }
            if layout == nil {
                throw ValidationError(
                    "--to \(to.format!.rawValue): merge writes a 4-bit result to .safetensors or a folder; a .gguf "
                        + "output takes f16, bf16, f32, q8_0 or a llama-quantize type such as q4_k_m.")
            }
            return false
        }
        return layout != .hf
    }

    private func parsedWeights() throws -> [Double]? {
        guard let weights else { return nil }
        var values: [Double] = []
        for item in weights.split(separator: ",", omittingEmptySubsequences: false) {
            let text = String(item.filter { $0 != " " })
            guard let value = Double(text), value.isFinite else {
                throw ValidationError("--weights: '\(text)' is not a finite number.")
            }
            values.append(value)
        }
        return values
    }

    func run() async throws {
        if try await runLlamaFileTypeRoute() { return }
        var options = MergeOptions()
        if let threads { options.threadCount = threads }
        options.target = to.target ?? .same
        options.weights = try parsedWeights()
        options.blocksize = blocksize?.value
        options.doubleQuantization = !noDoubleQuant
        options.allowNonFinite = allowNonfinite
        options.overwrite = outputOptions.force
        options.format = outputOptions.format?.format
        let quiet = outputOptions.quiet
        let renderer = ProgressRenderer(enabled: !quiet && !outputOptions.noProgress, label: "merge")
        if try writesLlamaLayout() {
            var export = GGUFExport.Options(outType: to.format?.ggufOutType, overwrite: outputOptions.force)
            if let threads { export.threads = threads }
            if to.format != nil { options.target = .same }
            let summary = try await reportingErrors {
                try GGUFExport.mergeAndExport(
                    base: base, adapters: adapters, output: outputOptions.output, mergeOptions: options,
                    options: export, progress: renderer.callback)
            }
            guard !quiet else { return }
            for warning in summary.warnings { FileAccess.writeStandardError("Warning: \(warning)\n") }
            let seconds = (summary.seconds * 100).rounded() / 100
            FileAccess.writeStandardError(
                "Merged \(adapters.count) adapter(s) and wrote \(summary.tensorCount) tensors in llama.cpp's layout "
                    + "(\(summary.outType.rawValue)) to \(summary.outputPath), \(seconds) s.\n")
            return
        }
        let summary = try await reportingErrors {
            try MergePipeline.run(
                base: base, adapters: adapters, output: outputOptions.output, options: options,
                progress: renderer.callback)
        }
        guard !quiet else { return }
        for warning in summary.warnings { FileAccess.writeStandardError("Warning: \(warning)\n") }
        do {
            let seconds = (summary.seconds * 100).rounded() / 100
            FileAccess.writeStandardError(
                "Merged \(summary.modulesMerged) modules from \(adapters.count) adapter(s) into \(summary.outputPath): "
                    + "\(summary.tensorsMerged) tensors merged, \(summary.tensorsReplaced) replaced, "
                    + "\(summary.tensorsCopied) copied, \(seconds) s.\n")
        }
    }
}
