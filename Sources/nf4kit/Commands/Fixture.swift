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

    @Argument(help: "The preset: \(FixtureGenerator.Preset.allCases.map(\.rawValue).joined(separator: ", ")).")
    var preset: String

    @OptionGroup var output: OutputOptions

    @Option(help: "Element type of the weights: f16, bf16 or f32.")
    var dtype = "f16"

    @Option(help: "Seed of the generator.")
    var seed: UInt64 = 0

    @Option(help: "Number of decoder layers (overrides the preset; use it to cut llama-7b down).")
    var layers: Int?

    @Option(help: "Also write a PEFT LoRA adapter of this rank.")
    var loraRank: Int?

    @Option(help: "Where to write the adapter (default: OUTPUT-lora).")
    var adapterOutput: String?

    @Option(help: "Largest shard, e.g. 5GB, 500MB, 2GiB (default 5GB, as huggingface_hub).")
    var maxShardSize = "5GB"

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int?

    func validate() throws {
        guard FixtureGenerator.Preset(rawValue: preset) != nil else {
            throw ValidationError("Unknown preset '\(preset)'; choose one of \(FixtureGenerator.Preset.allCases.map(\.rawValue).joined(separator: ", ")).")
        }
        guard ["f16", "bf16", "f32"].contains(dtype) else { throw ValidationError("--dtype must be f16, bf16 or f32.") }
        guard ShardPlan.parseSize(maxShardSize) != nil else { throw ValidationError("--max-shard-size '\(maxShardSize)' is not a size like 5GB or 500MB.") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1.") }
        if let layers, layers < 1 { throw ValidationError("--layers must be at least 1.") }
        if let loraRank, loraRank < 1 { throw ValidationError("--lora-rank must be at least 1.") }
    }

    func run() async throws {
        var options = FixturePipeline.Options(preset: FixtureGenerator.Preset(rawValue: preset)!)
        options.dtype = ["f16": DType.f16, "bf16": .bf16, "f32": .f32][dtype]!
        options.seed = seed
        options.layers = layers
        options.loraRank = loraRank
        options.adapterOutput = adapterOutput
        options.maxShardBytes = ShardPlan.parseSize(maxShardSize)!
        options.overwrite = output.force
        options.format = output.format?.format
        if let threads { options.threads = threads }
        let renderer = ProgressRenderer(enabled: !output.quiet && !output.noProgress, label: "fixture")
        let summary = try await reportingErrors {
            try FixturePipeline.run(output: output.output, options: options, progress: renderer.callback)
        }
        guard !output.quiet else { return }
        var text = "wrote \(summary.modelPath): \(summary.tensorCount) tensors, \(summary.parameterCount) parameters, "
        text += "\(TextFormatting.bytes(summary.byteCount)) in \(summary.files.joined(separator: ", ")) (\(TextFormatting.fixed(summary.seconds, 2)) s)\n"
        if let adapter = summary.adapterPath { text += "wrote adapter \(adapter)\n" }
        FileAccess.writeStandardError(text)
    }
}
