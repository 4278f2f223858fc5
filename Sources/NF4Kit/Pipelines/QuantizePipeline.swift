public import NF4KitCore
import NF4KitFormats
public import NF4KitQuant

/// What `nf4kit convert` does: quantize a checkpoint to bitsandbytes NF4/FP4, or turn one into plain floats.
///
/// The output matches what transformers + bitsandbytes `save_pretrained` writes byte for byte (tensor bytes,
/// safetensors header, `config.json`), see `docs/nf4-layout.md`. Work is planned from shapes first (one absmax pass
/// per double-quantized weight gives its quant-state JSON length), then tensors are quantized on `threads` threads
/// and written at planned offsets, so memory stays at about `threads` tensors.
public enum QuantizePipeline {
    /// The target representation.
    public enum Target: String, Sendable, CaseIterable {
        /// bitsandbytes NormalFloat4.
        case nf4
        /// bitsandbytes FP4.
        case fp4
        /// Plain float16 (4-bit weights dequantized, other floats cast).
        case f16
        /// Plain bfloat16.
        case bf16
        /// Plain float32.
        case f32

        /// The quant type for `nf4`/`fp4`, `nil` for plain float targets.
        public var quantType: QuantType? { QuantType(rawValue: rawValue) }
        /// The dtype for float targets.
        public var dtype: DType? {
            switch self {
            case .f16: .f16
            case .bf16: .bf16
            case .f32: .f32
            case .nf4, .fp4: nil
            }
        }
    }

    /// Settings of one conversion.
    public struct Options: Sendable {
        /// What to produce (default NF4).
        public var target: Target = .nf4
        /// Elements per 4-bit block (transformers always uses 64).
        public var blocksize = 64
        /// Store absmax as 8-bit codes (`bnb_4bit_use_double_quant`).
        public var doubleQuantization = true
        /// Written as `bnb_4bit_compute_dtype` (does not change any stored byte).
        public var computeDType: DType = .bf16
        /// Which tensors are quantized.
        public var plan = BnbQuantizationPlan()
        /// Rounding rules (CPU reproduces the golden files).
        public var profile: QuantizationProfile = .cpu
        /// Largest shard: 5 GB, as huggingface_hub and the transformers 4.35-4.57 releases (transformers 5 uses 50 GB).
        /// A single `.safetensors` output may not hold more.
        public var maxShardBytes = 5_000_000_000
        /// `--format`: the container, when the output name does not say it (see ``CheckpointOutput/Form/choose(for:format:)``).
        public var format: OutputFormat? = nil
        /// Replace an existing output (never an input).
        public var overwrite = false
        /// Worker threads; the output bytes do not depend on it.
        public var threads = FileAccess.processorCount
        /// When fewer tensors are quantized than there are threads, tensors with at least this many elements are
        /// split into block ranges across `threads` (phase 1), so one big matrix still uses every core.
        public var splitThresholdElements = 1 << 22

        /// Default options: NF4, block 64, double quantization, bf16 compute dtype.
        public init() {}
    }

    /// What a conversion did.
    public struct Summary: Sendable {
        /// Input tensors written as 4-bit groups.
        public var tensorsQuantized = 0
        /// 4-bit groups written as plain floats.
        public var tensorsDequantized = 0
        /// Tensors copied or cast.
        public var tensorsKept = 0
        /// Elements of the quantized tensors.
        public var parametersQuantized = 0
        /// Bytes of input tensor data read.
        public var bytesIn = 0
        /// Bytes of output tensor data written (headers excluded).
        public var bytesOut = 0
        /// Wall-clock duration.
        public var seconds = 0.0
        /// Quantized tensors with NaN or infinite values, and how many (handled per the profile's rules).
        public var nonFinite: [(tensor: String, count: Int)] = []
        /// Where the output was written.
        public var outputPath = ""
        /// Things to tell the user: `--skip`/`--include` patterns that select no tensor.
        public var warnings: [String] = []

        /// Stored bits per quantized parameter (codes + statistics + tables + JSON), or `nil` if none.
        public var bitsPerQuantizedParameter: Double?
    }

    /// Converts `input` (a weight file or a Hugging Face folder) into `output`, whose name decides its form
    /// (``CheckpointOutput/Form/choose(for:format:)``: a `.safetensors` file, a `.gguf` file, or a folder).
    ///
    /// - Throws: ``CheckpointError``: `.refused` for an input that is already 4-bit when quantizing or whose tensor
    ///   names collide with the companions of a quantized weight, `.invalidArgument` for a non-float tensor forced by
    ///   an include pattern; reader and writer errors with file and offset.
    public static func run(
        input: String, output: String, options: Options, progress: (@Sendable (ProgressEvent) -> Void)? = nil
    ) throws -> Summary {
        if options.target.quantType != nil,
            try CheckpointOutput.Form.choose(for: output, format: options.format) == .gguf
        {
            return try runCompanionGGUF(input: input, output: output, options: options, progress: progress)
        }
        let start = FileAccess.monotonicSeconds
        let source = try ModelSource.open(input)
        let tensors = source.checkpoint.tensors
        let groups = try BnbQuantizedWeight.groups(in: tensors)
        var jobs: [Job] = []
        var quantizedNames = Set<String>()
        var summary = Summary()
        let form = try CheckpointOutput.Form.choose(for: output, format: options.format)
        if form == .gguf, options.target.quantType != nil {
            throw CheckpointError(
                .invalidArgument,
                "a GGUF output with Hugging Face names holds plain tensors only; write --to \(options.target.rawValue) "
                    + "as .safetensors or a folder, or use --to f16/bf16/f32 for .gguf",
                file: output)
        }
        try refuseQuantizingAdapter(source, target: options.target)
        let adapter = convertsAdapter(source, form: form)
        if options.target.quantType != nil {
            let unmatched = options.plan.unmatchedPatterns(in: tensors)
            summary.warnings =
                unmatched.skip.map { "--skip '\($0)' selects no tensor of the input" }
                + unmatched.include.map { "--include '\($0)' selects no tensor of the input" }
        }
        try CheckpointOutput.checkDestination(
            output, form: form, overwrite: options.overwrite, inputs: source.inputPaths)

        if let quantType = options.target.quantType {
            if let first = groups.first {
                throw CheckpointError(
                    .refused,
                    "the input is already quantized with bitsandbytes (\(groups.count) 4-bit weights, first '\(first.weightName)'); convert it to f16/bf16/f32 first",
                    file: source.path, tensor: first.weightName)
            }
            let quantizer = try BlockQuantizer(
                quantType: quantType, blocksize: options.blocksize, profile: options.profile)
            let selected = try options.plan.selectedNames(in: tensors)
            quantizedNames = Set(selected)
            // Planning pass: quant states (their JSON length depends on the double-quantization offset).
            let byName = source.checkpoint.tensorsByName
            let states = try ParallelRunner.map(count: selected.count, threads: options.threads) { i in
                let tensor = byName[selected[i]]!
                let state: BnbQuantState
                do throws(CheckpointError) {
                    state = try quantizer.plannedQuantState(tensor, doubleQuantization: options.doubleQuantization)
                } catch {
                    throw error.inFile(tensor.bytes.region.path)  // the message names the tensor, this the file
                }
                tensor.bytes.releasePages()  // read again by the work pass; not held resident meanwhile
                return state
            }
            let planned = Dictionary(uniqueKeysWithValues: zip(selected, states))
            for tensor in tensors {
                if let state = planned[tensor.name] {
                    jobs.append(.quantize(tensor, state, quantizer))
                } else {
                    jobs.append(.copy(tensor))
                }
            }
        } else {
            let target = options.target.dtype!
            let members = Set(groups.flatMap(\.memberNames))
            let groupByWeight = Dictionary(uniqueKeysWithValues: groups.map { ($0.weightName, $0) })
            for tensor in tensors {
                if let group = groupByWeight[tensor.name] {
                    jobs.append(.dequantize(tensor, group.tensor, target))
                } else if members.contains(tensor.name) {
                    continue
                } else if tensor.dtype.isConvertibleFloat && tensor.dtype != target {
                    jobs.append(.cast(tensor, target))
                } else {
                    jobs.append(.copy(tensor))
                }
            }
        }

        // Output layout: state-dict order for sharding, the writer sorts within each file.
        let outputs = jobs.flatMap(\.outputs)
        var outputByName: [String: Output] = [:]
        for o in outputs {
            if let first = outputByName[o.name] {
                // e.g. an input with both `W` and `W.absmax`: quantizing `W` writes a `W.absmax` of its own.
                let input = source.checkpoint.tensor(named: o.owner == o.name ? o.owner : first.owner)
                throw CheckpointError(
                    .refused,
                    "the output would hold two tensors named '\(o.name)' (from input tensors '\(first.owner)' and "
                        + "'\(o.owner)'): the input has a tensor named like a companion of a weight it quantizes",
                    file: input?.descriptor.file ?? source.path, byteOffset: input?.descriptor.fileOffset,
                    tensor: o.name)
            }
            outputByName[o.name] = o
        }
        let config =
            adapter
            ? nil
            : source.config.map { config in
                var edited = config
                editConfig(&edited, options: options, tensors: tensors)
                return edited
            }
        let planned = outputs.map { (name: $0.name, dtype: $0.dtype, shape: $0.shape) }
        let destination = try CheckpointOutput(
            path: output, form: form, tensors: planned, metadata: [("format", "pt")],
            maxShardBytes: adapter ? nil : options.maxShardBytes,
            totalParameters: OutputPlanning.transformersParameterCount(planned),
            prefix: adapter ? adapterFilePrefix : "model",
            ggufMetadata: CheckpointOutput.huggingFaceGGUFMetadata(config: config), overwrite: options.overwrite,
            inputs: source.inputPaths)

        let tracker = ProgressTracker(
            tensorsTotal: jobs.count, bytesTotal: jobs.reduce(0) { $0 + $1.inputBytes }, report: progress)
        let finalJobs = jobs
        // Splitting a tensor's blocks across threads only pays when there are fewer tensors to quantize than
        // threads; nested inside the per-tensor workers it oversubscribed the cores and ran slower (measured).
        let quantizeJobs = jobs.filter { if case .quantize = $0 { true } else { false } }.count
        let splitThreads = quantizeJobs < options.threads ? options.threads : 1
        let nonFiniteCounts = try ParallelRunner.map(count: jobs.count, threads: options.threads) { i in
            let job = finalJobs[i]
            let nonFiniteCount = try job.write(
                to: destination, profile: options.profile, doubleQuantization: options.doubleQuantization,
                splitThreads: splitThreads, splitThreshold: options.splitThresholdElements)
            job.releaseInputPages()
            tracker.finished(job.name, bytes: job.inputBytes)
            return nonFiniteCount
        }
        if destination.holdsSideFiles {
            if let config {
                try destination.writeSideFile(
                    "config.json", bytes: JSONWriter.pythonPretty.bytes(.object(config)) + [0x0A])
            }
            // An adapter's files are carried as they are (adapter_config.json, README.md, a config.json of its own).
            for name in source.sideFileNames
            where adapter ? !adapterWeightFileNames.contains(name) : name != "config.json" {
                try destination.copySideFile(from: source.path + "/" + name, as: name)
            }
        }
        try destination.finish()

        for job in jobs {
            summary.bytesIn += job.inputBytes
            switch job {
            case .quantize(let tensor, _, _):
                summary.tensorsQuantized += 1
                summary.parametersQuantized += tensor.shape.elementCount
            case .dequantize: summary.tensorsDequantized += 1
            case .cast, .copy: summary.tensorsKept += 1
            }
        }
        summary.bytesOut = outputs.reduce(0) { $0 + $1.byteCount }
        let quantizedBytes = outputs.filter { quantizedNames.contains($0.owner) }.reduce(0) { $0 + $1.byteCount }
        if summary.parametersQuantized > 0 {
            summary.bitsPerQuantizedParameter = Double(quantizedBytes * 8) / Double(summary.parametersQuantized)
        }
        summary.nonFinite = zip(jobs, nonFiniteCounts).filter { $0.1 > 0 }.map { (tensor: $0.0.name, count: $0.1) }
        summary.seconds = FileAccess.monotonicSeconds - start
        summary.outputPath = destination.path
        return summary
    }

    /// Writes `quantization_config` (all 13 keys transformers 5.23 writes, spec section 7) or removes it.
    static func editConfig(_ config: inout JSONObject, options: Options, tensors: [Tensor]) {
        guard let quantType = options.target.quantType else {
            config["quantization_config"] = nil
            if let dtype = options.target.dtype?.torchName {
                if config["dtype"] != nil { config["dtype"] = .string(dtype) }
                if config["torch_dtype"] != nil { config["torch_dtype"] = .string(dtype) }
            }
            return
        }
        let settings = BnbQuantizationConfig(
            quantType: quantType, doubleQuantization: options.doubleQuantization, computeDType: options.computeDType,
            skipModules: options.plan.skipModules(in: tensors))
        config["quantization_config"] = .object(settings.jsonObject)
    }

    /// One planned output tensor.
    struct Output {
        let name: String
        let dtype: DType
        let shape: Shape
        let byteCount: Int
        /// The input tensor it comes from.
        let owner: String
    }

    /// The work for one input tensor.
    enum Job: Sendable {
        case quantize(Tensor, BnbQuantState, BlockQuantizer)
        case dequantize(Tensor, QuantizedTensor, DType)
        case cast(Tensor, DType)
        case copy(Tensor)

        var name: String {
            switch self {
            case .quantize(let t, _, _), .dequantize(let t, _, _), .cast(let t, _), .copy(let t): t.name
            }
        }

        var inputBytes: Int {
            switch self {
            case .quantize(let t, _, _), .cast(let t, _), .copy(let t): t.bytes.count
            case .dequantize(_, let q, _): q.packed.count
            }
        }

        var outputs: [Output] {
            switch self {
            case .quantize(let t, let state, _):
                return state.storedTensors.map {
                    Output(
                        name: t.name + $0.suffix, dtype: $0.dtype, shape: $0.shape, byteCount: $0.byteCount,
                        owner: t.name)
                }
            case .dequantize(let t, let q, let dtype):
                return [
                    Output(
                        name: t.name, dtype: dtype, shape: q.shape, byteCount: q.elementCount * dtype.bitWidth / 8,
                        owner: t.name)
                ]
            case .cast(let t, let dtype):
                return [
                    Output(
                        name: t.name, dtype: dtype, shape: t.shape,
                        byteCount: t.shape.elementCount * dtype.bitWidth / 8, owner: t.name)
                ]
            case .copy(let t):
                return [Output(name: t.name, dtype: t.dtype, shape: t.shape, byteCount: t.bytes.count, owner: t.name)]
            }
        }

        /// Elements per piece of a dequantize or cast job: 1 Mi (2-4 MB of output), small enough to stay in cache.
        static let streamElements = 1 << 20

        /// Lets go of the input's resident pages once the job is written (the input stays mapped and readable).
        func releaseInputPages() {
            switch self {
            case .quantize(let t, _, _), .cast(let t, _), .copy(let t): t.bytes.releasePages()
            case .dequantize(_, let q, _): q.packed.releasePages()
            }
        }

        /// Computes the job's output tensors and writes each with the writer planned for its name. Dequantize and
        /// cast go to the file in pieces of ``streamElements`` through one reused buffer, never a tensor-sized copy.
        /// - Returns: For a quantized tensor, the number of NaN/Inf inputs; otherwise 0.
        func write(
            to output: CheckpointOutput, profile: QuantizationProfile, doubleQuantization: Bool,
            splitThreads: Int, splitThreshold: Int
        ) throws(CheckpointError) -> Int {
            switch self {
            case .quantize(let t, let state, let quantizer):
                let q: QuantizedTensor
                let split = splitThreads > 1 && t.shape.elementCount >= splitThreshold
                q = try quantizer.quantize(t, doubleQuantization: doubleQuantization, threads: split ? splitThreads : 1)
                let produced = try q.bnbTensors(weightName: t.name)
                guard produced.last?.bytes.array == state.jsonBytes else {
                    // The planning pass and the quantizer share one kernel; a difference is a bug, not bad input.
                    throw CheckpointError(
                        .internalInconsistency,
                        "internal error: planned and computed quant state of '\(t.name)' differ",
                        tensor: t.name)
                }
                for member in produced { try output.write(member.name, bytes: member.bytes) }
                // CPU rules make a block's absmax NaN or inf exactly when it holds a NaN or inf, so the full count is
                // needed only then; the CUDA rules ignore NaN in the absmax, so count always.
                if profile == .cuda || q.absmaxValues().contains(where: { !$0.isFinite }) {
                    return countNonFinite(t.bytes, dtype: t.dtype)
                }
                return 0
            case .dequantize(let t, let q, let dtype):
                try writeDequantized(q, as: dtype, name: t.name, to: output)
                return 0
            case .cast(let t, let dtype):
                try writeCast(t, as: dtype, to: output)
                return 0
            case .copy(let t):
                try output.write(t.name, bytes: t.bytes)
                return 0
            }
        }
    }
}
