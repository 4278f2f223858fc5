import ArgumentParser
import NF4Kit

struct Fixture: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a deterministic synthetic Llama checkpoint for tests, CI and benchmarks.",
        discussion: """
            Presets: tiny (the golden llama-tiny shapes, about 4 MB in f16), llama-125m, llama-1b (TinyLlama-1.1B shapes) \
            and llama-7b (Llama-2-7B shapes). Weights are normal-like with standard deviation 0.02 (norms are 1), drawn from \
            a generator seeded by --seed and each tensor's name: the same seed gives the same bytes on any machine and with \
            any --threads. The output is a Hugging Face folder (config.json, generation_config.json, model.safetensors or \
            shards + index), or one file when its name ends in .safetensors or .gguf. --lora-rank also writes a PEFT LoRA adapter on every projection (alpha = 2 r, F32) to \
            --adapter-output (default: OUTPUT-lora).
            """ + "\n\n" + ExitCodes.helpText
    )

    @Argument(help: "The preset (any case).")
    var preset: PresetArgument

    @OptionGroup var output: OutputOptions

    @Option(help: "Element type of the weights, any case: \(NumberFormat.spellings(FloatTypeArgument.accepted)).")
    var dtype = FloatTypeArgument(.f16)

    @Option(help: "Seed of the generator.")
    var seed: UInt64 = 0

    @Option(help: "Number of decoder layers (overrides the preset; use it to cut llama-7b down).")
    var layers: Int?

    @Option(help: "Also write a PEFT LoRA adapter of this rank.")
    var loraRank: Int?

    @Option(help: "Where to write the adapter (default: OUTPUT-lora).")
    var adapterOutput: String?

    @Option(
        help: "Largest shard, any case: 5GB, 30mb, 500MiB, 2GiB or bytes (default 5GB, as huggingface_hub).",
        transform: ByteSizeArgument.parse)
    var maxShardSize: ByteSizeArgument?

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int?

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1.") }
        if let layers, layers < 1 { throw ValidationError("--layers must be at least 1.") }
        if let loraRank, loraRank < 1 { throw ValidationError("--lora-rank must be at least 1.") }
    }

    func run() async throws {
        var options = FixturePipeline.Options(preset: preset.preset)
        options.dtype = dtype.dtype
        options.seed = seed
        options.layers = layers
        options.loraRank = loraRank
        options.adapterOutput = adapterOutput
        if let maxShardSize { options.maxShardBytes = maxShardSize.byteCount }
        options.overwrite = output.force
        options.format = output.format?.format
        if let threads { options.threads = threads }
        let renderer = ProgressRenderer(enabled: !output.quiet && !output.noProgress, label: "fixture")
        let summary = try await reportingErrors {
            try FixturePipeline.run(output: output.output, options: options, progress: renderer.callback)
        }
        guard !output.quiet else { return }
        var text = "wrote \(summary.modelPath): \(summary.tensorCount) tensors, \(summary.parameterCount) parameters, "
        text +=
            "\(TextFormatting.bytes(summary.byteCount)) in \(summary.files.joined(separator: ", ")) (\(TextFormatting.fixed(summary.seconds, 2)) s)\n"
        if let adapter = summary.adapterPath { text += "wrote adapter \(adapter)\n" }
        FileAccess.writeStandardError(text)
    }
}

/// The fixture preset, any case (`tiny`, `Llama-1B`).
struct PresetArgument: ExpressibleByArgument, Sendable {
    let preset: FixtureGenerator.Preset

    init?(argument: String) {
        guard let preset = FixtureGenerator.Preset(rawValue: argument.lowercased()) else { return nil }
        self.preset = preset
    }
    static var allValueStrings: [String] { FixtureGenerator.Preset.allCases.map(\.rawValue) }
}
