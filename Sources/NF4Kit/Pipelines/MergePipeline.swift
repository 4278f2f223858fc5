public import NF4KitCore
import NF4KitFormats
public import NF4KitMerge
import NF4KitQuant

/// Options of ``MergePipeline/run(base:adapters:output:options:)``, one per `nf4kit merge` flag.
public struct MergeOptions: Sendable {
    /// The form of the output.
    public enum Target: String, Sendable, CaseIterable {
        /// Keep the base's form: plain stays plain in its dtypes, a 4-bit base is re-quantized like the base.
        case same
        /// Plain checkpoint, floating-point tensors in F16.
        case f16
        /// Plain checkpoint, floating-point tensors in BF16.
        case bf16
        /// Plain checkpoint, floating-point tensors in F32.
        case f32
        /// bitsandbytes NF4 for the linear weights.
        case nf4
        /// bitsandbytes FP4 for the linear weights.
        case fp4

        /// The plain dtype this target writes, or `nil` for `same`, `nf4`, `fp4`.
        public var plainDType: DType? {
            switch self {
            case .f16: .f16
            case .bf16: .bf16
            case .f32: .f32
            default: nil
            }
        }
    }

    /// The output form (`--to`).
    public var target: Target = .same
    /// One weight per adapter (`--weights`); `nil` means 1 each.
    public var weights: [Double]? = nil
    /// Block size for `--to nf4|fp4` (`--blocksize`); a 4-bit base keeps its own unless this is set.
    public var blocksize: Int? = nil
    /// Double quantization for `--to nf4|fp4` (`--no-double-quant` turns it off).
    public var doubleQuantization: Bool = true
    /// Write NaN/Inf merged values instead of failing (`--allow-nonfinite`).
    public var allowNonFinite: Bool = false
    /// Replace an existing output (`--force`); an input is never replaced.
    public var overwrite: Bool = false
    /// `--format`: the container, when the output name does not say it (see ``CheckpointOutput/Form/choose(for:format:)``).
    public var format: OutputFormat? = nil
    /// Threads for the rank-r updates.
    public var threadCount: Int = FileAccess.processorCount
    /// Checked before each tensor; once cancelled the merge stops with `CancellationError` and removes its
    /// unfinished output. The command-line tool trips ``CancellationToken/process`` on SIGINT.
    public var cancellation: CancellationToken = .process

    /// Default options: `--to same`, weights 1, no overwrite.
    public init() {}
}

/// What a merge did.
public struct MergeSummary: Sendable {
    /// The output file or folder.
    public var outputPath: String
    /// LoRA modules merged, over all adapters.
    public var modulesMerged: Int
    /// Output tensors whose values were computed (a delta or bias added).
    public var tensorsMerged: Int
    /// Output tensors taken from an adapter's full values without arithmetic.
    public var tensorsReplaced: Int
    /// Output tensors copied (or only converted) from the base.
    public var tensorsCopied: Int
    /// Things to tell the user (adapter made for another base, unused patterns, 4-bit rounding).
    public var warnings: [MergeWarning]
    /// Wall-clock time of the run.
    public var seconds: Double
}

/// `nf4kit merge`: PEFT LoRA/DoRA adapters merged into a base checkpoint, streamed tensor by tensor.
///
/// The base is read through ``ModelSource`` (a Hugging Face folder or one file, plain F16/BF16/F32 or
/// bitsandbytes 4-bit); adapters are PEFT folders. The output layout is planned from shapes first, then each
/// base tensor is copied, converted, replaced or merged and written at its planned offset, so peak memory is a
/// few tensors (the one being merged in f32, its output bytes, the adapter factors).
public enum MergePipeline {
    /// Merges `adapters` into `base` and writes `output`.
    ///
    /// - Parameters:
    ///   - base: The base model: a folder (`model.safetensors`, shards + index) or a single weight file.
    ///   - adapters: PEFT adapter folders (`adapter_config.json` + `adapter_model.safetensors`).
    ///   - output: The output folder (for a folder base) or file (for a file base).
    ///   - options: See ``MergeOptions``.
    ///   - progress: Called after each base tensor is written (from the calling thread).
    /// - Returns: Counts, warnings and time.
    /// - Throws: ``CheckpointError``: `.invalidArgument` for option mistakes, `.refused`/`.shapeMismatch`/
    ///   `.malformedHeader` for adapters that do not fit the base, `.unsupported` for features not implemented,
    ///   `.nonFinite` for a NaN/Inf merged value (unless allowed), `.io`/`.outputExists` for file problems.
    public static func run(
        base: String, adapters: [String], output: String, options: MergeOptions,
        progress: (@Sendable (ProgressEvent) -> Void)? = nil
    ) throws -> MergeSummary {
        let start = FileAccess.monotonicSeconds
        let setup = try MergeSetup(base: base, adapters: adapters, options: options)
        let (baseSource, adapterSources, baseModel) = (setup.baseSource, setup.adapterSources, setup.baseModel)
        let (target, plan, untie, warnings) = (setup.target, setup.plan, setup.untie, setup.warnings)

        // Plan the output tensors from shapes, in base order.
        var units: [OutputUnit] = []
        for entry in baseModel.entries {
            units.append(try OutputUnit(entry: entry, action: plan.actions[entry.name], form: target))
        }

        let inputs = baseSource.inputPaths + adapterSources.flatMap(\.inputPaths)
        let form = try CheckpointOutput.Form.choose(for: output, format: options.format)
        if form == .gguf, target.quantization != nil || (target.plainDType == nil && baseModel.quantization != nil) {
            throw CheckpointError(
                .invalidArgument,
                "a GGUF output with Hugging Face names holds plain tensors only; merge into .safetensors or a folder, "
                    + "or use --to f16/bf16/f32 for .gguf",
                file: output)
        }
        try CheckpointOutput.checkDestination(output, form: form, overwrite: options.overwrite, inputs: inputs)
        let metadata =
            baseSource.checkpoint.metadata.isEmpty
            ? [("format", "pt")] : baseSource.checkpoint.metadata.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        var counts = (merged: 0, replaced: 0, copied: 0)
        let tracker = ProgressTracker(
            tensorsTotal: units.count, bytesTotal: units.reduce(0) { $0 + $1.inputByteCount }, report: progress)
        func count(_ result: OutputUnit.Result, _ unit: OutputUnit) {
            tracker.finished(unit.entry.name, bytes: unit.inputByteCount)
            unit.releaseInputPages()
            switch result {
            case .merged: counts.merged += 1
            case .replaced: counts.replaced += 1
            case .copied: counts.copied += 1
            }
        }

        // Pass 1: units whose output sizes are only known after computing (freshly quantized weights) go to a
        // scratch file. Pass 2: plan the final layout, write every other unit, copy the scratch tensors in.
        // A sharded base keeps shards of about its own size (the tensor bytes of its largest shard).
        var shardBytes: [String: Int] = [:]
        for tensor in baseSource.checkpoint.tensors {
            shardBytes[tensor.descriptor.file, default: 0] += tensor.bytes.count
        }
        let sharded = baseSource.weightFileNames.contains("model.safetensors.index.json")
        let shardLimit = sharded ? max(1, shardBytes.values.max() ?? 1) : nil
        var destination: CheckpointOutput?
        do {
            let spillFile = try SpillSink(path: OutputPlanning.trimmed(output) + ".merge-scratch", inputs: inputs)
            let spill = TensorSink.spill(spillFile)
            let scratch = MergeScratch()
            for unit in units where unit.outputs == nil {
                try options.cancellation.check()
                count(try unit.produce(form: target, options: options, sink: spill, scratch: scratch), unit)
            }
            var planned: [(name: String, dtype: DType, shape: Shape)] = []
            var spilled = spillFile.records.makeIterator()
            var nextSpilled = spilled.next()
            for unit in units {
                if let outputs = unit.outputs {
                    planned += outputs.map { ($0.name, $0.dtype, $0.shape) }
                } else {
                    while let record = nextSpilled,
                        record.name == unit.entry.name || record.name.hasPrefix(unit.entry.name + ".")
                    {
                        planned.append((record.name, record.dtype, record.shape))
                        nextSpilled = spilled.next()
                    }
                }
            }
            let adjusted = baseSource.config.flatMap {
                adjustedConfig($0, form: target, base: baseModel, plan: plan, untie: untie)
            }
            let opened = try CheckpointOutput(
                path: output, form: form, tensors: planned, metadata: metadata, maxShardBytes: shardLimit,
                totalParameters: OutputPlanning.transformersParameterCount(planned),
                ggufMetadata: CheckpointOutput.huggingFaceGGUFMetadata(config: adjusted ?? baseSource.config),
                overwrite: options.overwrite, inputs: inputs)
            destination = opened
            let sink = TensorSink.planned(WriterSink(output: opened))
            for unit in units where unit.outputs != nil {
                try options.cancellation.check()
                count(try unit.produce(form: target, options: options, sink: sink, scratch: scratch), unit)
            }
            try scratch.finishWrites()
            if let region = try spillFile.mapped() {
                for record in spillFile.records {
                    try region.withUnsafeBytes { raw in
                        try sink.put(
                            name: record.name, dtype: record.dtype, shape: record.shape,
                            bytes: UnsafeRawBufferPointer(
                                rebasing: raw[record.offset..<(record.offset + record.byteCount)]))
                    }
                }
            }
        }
        let finished = destination!
        if finished.holdsSideFiles {
            let folder = baseSource.path + "/"
            for name in baseSource.sideFileNames where name != "config.json" {
                try finished.copySideFile(from: folder + name, as: name)
            }
            if let config = baseSource.config {
                if let adjusted = adjustedConfig(config, form: target, base: baseModel, plan: plan, untie: untie) {
                    try finished.writeSideFile(
                        "config.json", bytes: JSONWriter.pythonPretty.bytes(.object(adjusted)) + [0x0A])
                } else {
                    try finished.copySideFile(from: folder + "config.json", as: "config.json")
                }
            }
        }
        try finished.finish()
        return MergeSummary(
            outputPath: finished.path, modulesMerged: plan.moduleCount, tensorsMerged: counts.merged,
            tensorsReplaced: counts.replaced, tensorsCopied: counts.copied, warnings: warnings,
            seconds: FileAccess.monotonicSeconds - start)
    }

    /// The base's `config.json` with the changes the output needs (spec lora-merge.md §10 step 6), or `nil` when
    /// nothing changes (the file is then copied byte for byte).
    static func adjustedConfig(
        _ config: JSONObject, form: OutputForm, base: BaseModel, plan: MergePlan, untie: Bool
    ) -> JSONObject? {
        var result = config
        if untie { result["tie_word_embeddings"] = .bool(false) }
        if let dtype = form.plainDType, let name = dtype.torchName {
            var found = false
            for key in ["dtype", "torch_dtype"] where result[key] != nil {
                result[key] = .string(name)
                found = true
            }
            if !found { result["dtype"] = .string(name) }
        }
        if form.plainDType != nil { result["quantization_config"] = nil }
        if let quantization = form.quantization, base.quantization != quantization {
            result["quantization_config"] = .object(quantization.configJSON)
        }
        for action in plan.actions.values where action.name.hasSuffix("embed_tokens.weight") && action.shape.rank == 2 {
            if let vocab = result["vocab_size"]?.intValue, vocab != action.shape.dimensions[0] {
                result["vocab_size"] = .integer(action.shape.dimensions[0])
            }
        }
        return result == config ? nil : result
    }
}
