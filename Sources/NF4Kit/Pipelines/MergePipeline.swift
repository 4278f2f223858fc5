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
        let (target, plan, warnings) = (setup.target, setup.plan, setup.warnings)

        // Plan the output tensors from shapes, in base order.
        let units = try setup.outputUnits()

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

        // Write, then summarize.
        let writer = MergeOutputWriter(setup: setup, output: output, form: form, options: options, inputs: inputs)
        let (path, counts) = try writer.write(units, progress: progress)
        return MergeSummary(
            outputPath: path, modulesMerged: plan.moduleCount, tensorsMerged: counts.merged,
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
