public import NF4KitCore
import NF4KitFormats

/// Writes ``FixtureGenerator`` checkpoints as Hugging Face folders, `.safetensors` or `.gguf` files (the output name
/// decides), and optionally a matching PEFT adapter folder.
public enum FixturePipeline {
    /// What to generate.
    public struct Options: Sendable {
        public var preset: FixtureGenerator.Preset
        public var dtype: DType = .f16
        public var seed: UInt64 = 0
        /// Overrides the preset's layer count.
        public var layers: Int?
        /// Also write a rank-`loraRank` adapter when set.
        public var loraRank: Int?
        /// Where the adapter goes (default: the output path + `-lora`).
        public var adapterOutput: String?
        public var maxShardBytes: Int = 5_000_000_000
        /// `--format`: the container, when the output name does not say it.
        public var format: OutputFormat? = nil
        public var threads: Int = FileAccess.processorCount
        public var overwrite = false

        public init(preset: FixtureGenerator.Preset) { self.preset = preset }
    }

    /// What was written.
    public struct Summary: Sendable {
        public var modelPath: String
        public var adapterPath: String?
        public var tensorCount: Int
        public var parameterCount: Int
        public var byteCount: Int
        public var files: [String]
        public var seconds: Double
    }

    /// Generates the checkpoint at `output`.
    /// - Throws: ``CheckpointError`` (`.invalidArgument` for a bad layer count or rank, `.outputExists`, `.io`).
    public static func run(
        output: String, options: Options, progress: (@Sendable (ProgressEvent) -> Void)? = nil
    ) throws -> Summary {
        var architecture = options.preset.architecture
        if let layers = options.layers {
            guard layers >= 1 else {
                throw CheckpointError(.invalidArgument, "--layers must be at least 1, not \(layers)")
            }
            architecture.layers = layers
        }
        if let rank = options.loraRank, rank < 1 || rank > architecture.hidden {
            throw CheckpointError(
                .invalidArgument, "--lora-rank must be between 1 and \(architecture.hidden), not \(rank)")
        }
        let generator = FixtureGenerator(architecture: architecture, dtype: options.dtype, seed: options.seed)
        let tensors = generator.tensors
        let form = try CheckpointOutput.Form.choose(for: output, format: options.format)
        let writer = try CheckpointOutput(
            path: output, form: form, tensors: tensors, metadata: [("format", "pt")],
            maxShardBytes: options.maxShardBytes,
            ggufMetadata: CheckpointOutput.huggingFaceGGUFMetadata(
                config: (try? StrictJSON.parse(generator.configJSON, file: "config.json", what: "config"))?.objectValue),
            overwrite: options.overwrite, inputs: [])
        let tracker = ProgressTracker(tensorsTotal: tensors.count, bytesTotal: writer.tensorByteCount, report: progress)
        try ParallelRunner.map(count: tensors.count, threads: options.threads) { index in
            let tensor = tensors[index]
            let count = tensor.shape.elementCount
            let byteCount = count * tensor.dtype.bitWidth / 8
            try generator.write(tensor.name, elementCount: count, as: tensor.dtype, to: writer)
            tracker.finished(tensor.name, bytes: byteCount)
        }
        if writer.holdsSideFiles {
            try writer.writeSideFile("config.json", bytes: generator.configJSON)
            try writer.writeSideFile("generation_config.json", bytes: generationConfig)
        }
        try writer.finish()

        var adapterPath: String?
        if let rank = options.loraRank {
            let path = options.adapterOutput ?? OutputPlanning.trimmed(output) + "-lora"
            let adapterTensors = generator.adapterTensors(rank: rank)
            let adapterWriter = try CheckpointOutput(
                path: path, form: .folder, tensors: adapterTensors, metadata: [("format", "pt")], maxShardBytes: nil,
                prefix: "adapter_model", overwrite: options.overwrite, inputs: [writer.path])
            try ParallelRunner.map(count: adapterTensors.count, threads: options.threads) { index in
                let tensor = adapterTensors[index]
                try generator.writeAdapter(tensor.name, shape: tensor.shape, to: adapterWriter)
            }
            try adapterWriter.writeSideFile(
                "adapter_config.json", bytes: generator.adapterConfigJSON(rank: rank, baseModel: output))
            try adapterWriter.finish()
            adapterPath = path
        }
        return Summary(
            modelPath: writer.path, adapterPath: adapterPath, tensorCount: tensors.count,
            parameterCount: architecture.parameterCount, byteCount: writer.tensorByteCount, files: writer.fileNames,
            seconds: tracker.elapsedSeconds)
    }

    private static let generationConfig: [UInt8] = Array(
        """
        {
          "_from_model_config": true,
          "bos_token_id": 1,
          "eos_token_id": 2,
          "transformers_version": "5.23.0"
        }

        """.utf8)
}
