import ArgumentParser
import NF4Kit

struct Convert: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Quantize a checkpoint to bitsandbytes NF4/FP4, or turn a 4-bit checkpoint back into plain floats.",
        discussion: """
            INPUT is a Hugging Face folder or a weight file. The output's name decides its form: NAME.safetensors \
            one file, NAME.gguf a GGUF file (f16/bf16/f32 only), NAME or NAME/ a Hugging Face folder (config.json \
            gets quantization_config, the input folder's other files are copied). --to nf4/fp4 quantizes the 2-D \
            .weight tensors of Linear layers (not lm_head, embeddings or norms) exactly as transformers + \
            bitsandbytes 0.50.2 save them; --to f16/bf16/f32 dequantizes 4-bit weights and casts the rest. \
            An input that is already 4-bit is refused with --to nf4/fp4 (dequantize it first). \
            NaN/Inf values are coded as the chosen --profile does, with a warning naming the tensor.
            """ + "\n\n" + ExitCodes.helpText
    )

    @Argument(help: "The checkpoint to convert: a Hugging Face model folder, or a .safetensors, .gguf or PyTorch .bin file.")
    var input: String

    @OptionGroup var outputOptions: OutputOptions

    @Option(
        help: ArgumentHelp(
            "Target, any case: \(NumberFormat.spellings(ConvertTarget.accepted)) (llama-quantize types: .gguf output).",
            discussion: "Default nf4; f32 for a .gguf input written as a folder (transformers' gguf_file= default)."))
    var to: ConvertTarget?

    @Option(help: "Elements per 4-bit block (transformers uses 64).")
    var blocksize = BlockSizeArgument(64)

    @Flag(name: .customLong("no-double-quant"), help: "Store the block absmax as float32 instead of 8-bit codes.")
    var noDoubleQuant = false

    @Option(
        name: .customLong("compute-dtype"),
        help: "bnb_4bit_compute_dtype written to config.json: \(NumberFormat.spellings(FloatTypeArgument.accepted)).")
    var computeDType = FloatTypeArgument(.bf16)

    @Option(help: "Rounding rules to reproduce: cpu (bitsandbytes on CPU, the default) or cuda (see docs/nf4-layout.md).")
    var profile = ProfileArgument(.cpu)

    @Option(name: .customLong("skip"), help: "Leave tensors or modules matching this glob unquantized (repeatable).")
    var skip: [String] = []

    @Option(name: .customLong("include"), help: "Quantize tensors matching this glob whatever their rank (repeatable).")
    var include: [String] = []

    @Option(
        name: .customLong("max-shard-size"),
        help: "Largest output shard, any case: 5GB, 30mb, 500MiB, 2GiB or bytes (default 5GB, as huggingface_hub).",
        transform: ByteSizeArgument.parse)
    var maxShardSize: ByteSizeArgument?

    @Option(help: "Worker threads (default: the number of processors).")
    var threads: Int?

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1.") }
        let to = target
        if !to.isQuantized && (noDoubleQuant || !skip.isEmpty || !include.isEmpty || blocksize.value != 64) {
            throw ValidationError("--blocksize, --no-double-quant, --skip and --include apply to --to nf4 or fp4 only.")
        }
    }

    func run() async throws {
        if try await runGGUFRoute() { return }
        let to = target
        try await reportingErrors {
            var options = QuantizePipeline.Options()
            options.target = to.target ?? .nf4
            options.blocksize = blocksize.value
            options.doubleQuantization = !noDoubleQuant
            options.computeDType = computeDType.dtype
            options.profile = profile.profile
            options.plan = BnbQuantizationPlan(include: include, skip: skip)
            if let maxShardSize { options.maxShardBytes = maxShardSize.byteCount }
            if let threads { options.threads = threads }
            options.overwrite = outputOptions.force
        options.format = outputOptions.format?.format
            let renderer = ProgressRenderer(enabled: !outputOptions.quiet && !outputOptions.noProgress, label: "convert")
            let summary = try QuantizePipeline.run(
                input: input, output: outputOptions.output, options: options, progress: renderer.callback)
            guard !outputOptions.quiet else { return }
            for (tensor, count) in summary.nonFinite {
                FileAccess.writeStandardError("warning: tensor '\(tensor)' has \(count) NaN/Inf values, coded by the \(profile.profile.rawValue) profile's rules\n")
            }
            var line = "\(summary.tensorsQuantized) tensors quantized"
            if summary.tensorsDequantized > 0 { line = "\(summary.tensorsDequantized) tensors dequantized" }
            line += ", \(summary.tensorsKept) kept; \(Format.bytes(summary.bytesIn)) in, \(Format.bytes(summary.bytesOut)) out"
            if let bits = summary.bitsPerQuantizedParameter { line += "; \(Format.fixed(bits, 3)) bits per quantized parameter" }
            line += "; \(Format.fixed(summary.seconds, 2)) s -> \(summary.outputPath)\n"
            FileAccess.writeStandardError(line)
        }
    }
}
