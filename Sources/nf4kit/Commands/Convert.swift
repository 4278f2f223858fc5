import ArgumentParser
import NF4Kit

struct Convert: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Quantize a checkpoint to bitsandbytes NF4/FP4, or turn a 4-bit checkpoint back into plain floats.",
        discussion: """
            INPUT is a Hugging Face folder or a weight file. The output's name decides its form: NAME.safetensors \
            one file, NAME or NAME/ a Hugging Face folder (config.json gets quantization_config, the input folder's \
            other files are copied), NAME.gguf a GGUF file. A GGUF of a Llama-family folder (LlamaForCausalLM, \
            MistralForCausalLM) is written in llama.cpp's layout, as convert_hf_to_gguf.py writes it (--to \
            f16|bf16|f32|q8_0, default the input's float type; 4-bit weights are dequantized first); a PEFT LoRA \
            adapter folder becomes a llama.cpp LoRA adapter (--base names the base folder when the adapter's \
            base_model_name_or_path is not one). --layout hf keeps Hugging Face names in nf4kit's GGUF container, \
            for any architecture, with --to f16|bf16|f32|q8_0 (llama.cpp does not load it); --to nf4/fp4 -o NAME.gguf writes the bitsandbytes \
            tensors in nf4kit's companion convention (docs/gguf.md), read back losslessly. --to nf4/fp4 quantizes the 2-D \
            .weight tensors of Linear layers (not lm_head, embeddings or norms) exactly as transformers + \
            bitsandbytes 0.50.2 save them; --to f16/bf16/f32 dequantizes 4-bit weights and casts the rest. \
            An input that is already 4-bit is refused with --to nf4/fp4 (dequantize it first). \
            NaN/Inf values are coded as the chosen --profile does, with a warning naming the tensor.
            """ + "\n\n" + ExitCodes.helpText
    )

    @Argument(
        help: "The checkpoint to convert: a Hugging Face model folder, or a .safetensors, .gguf or PyTorch .bin file.")
    var input: String

    @OptionGroup var outputOptions: OutputOptions

    @Option(
        help: """
            Target, any case: \(NumberFormat.spellings(ConvertTarget.accepted)) (llama-quantize types: .gguf \
            output). Default nf4; for a .gguf output the input's float type; f32 for a .gguf input written as a \
            folder (transformers' gguf_file= default).
            """)
    var to: ConvertTarget?

    @Option(
        help: """
            GGUF layout: llama (llama.cpp's names, Q/K row order, hyperparameters and tokenizer; the default for \
            Llama-family folders and LoRA adapters) or hf (Hugging Face names, any architecture, not loadable by \
            llama.cpp).
            """)
    var layout: GGUFLayoutArgument?

    @Option(help: "The base model folder of a LoRA adapter written as llama.cpp LoRA GGUF (its config.json).")
    var base: String?

    @Option(help: "Elements per 4-bit block (transformers uses 64).")
    var blocksize = BlockSizeArgument(64)

    @Flag(name: .customLong("no-double-quant"), help: "Store the block absmax as float32 instead of 8-bit codes.")
    var noDoubleQuant = false

    @Option(
        name: .customLong("compute-dtype"),
        help: "bnb_4bit_compute_dtype written to config.json: \(NumberFormat.spellings(FloatTypeArgument.accepted)).")
    var computeDType = FloatTypeArgument(.bf16)

    @Option(
        help: "Rounding rules to reproduce: cpu (bitsandbytes on CPU, the default) or cuda (see docs/nf4-layout.md).")
    var profile = ProfileArgument(.cpu)

    @Option(
        name: .customLong("skip"),
        help:
            "Leave these modules unquantized: a module name as in llm_int8_skip_modules (down_proj, mlp, model.layers.0) or a glob ('*down_proj*') (repeatable)."
    )
    var skip: [String] = []

    @Option(
        name: .customLong("include"),
        help: "Quantize tensors of this module name or glob whatever their rank (repeatable).")
    var include: [String] = []

    @Option(
        name: .customLong("max-shard-size"),
        help: "Largest output shard, any case: 5GB, 30mb, 500MiB, 2GiB or bytes (default 5GB, as huggingface_hub).",
        transform: ByteSizeArgument.parse)
    var maxShardSize: ByteSizeArgument?

    @Option(help: "Worker threads (default: the number of processors).")
    var threads: Int?

    /// Whether the output is a GGUF file in llama.cpp's layout (``GGUFExport``) rather than a Hugging Face checkpoint.
    private func writesLlamaLayout() throws -> Bool {
        guard try outputOptions.isGGUF(layout: layout) else { return false }
        if to?.isQuantized == true {
            if layout == .llama {
                throw ValidationError(
                    "--to \(to!.format.rawValue) has no llama.cpp form; use --layout hf for bitsandbytes blocks in GGUF "
                        + "(docs/gguf.md), or --to f16|bf16|f32|q8_0.")
            }
            return false
        }
        return layout != .hf
    }

    /// The ``QuantizePipeline`` options these arguments give (the one place they are read).
    func quantizeOptions(target: QuantizePipeline.Target) -> QuantizePipeline.Options {
        var options = QuantizePipeline.Options()
        options.target = target
        options.blocksize = blocksize.value
        options.doubleQuantization = !noDoubleQuant
        options.computeDType = computeDType.dtype
        options.profile = profile.profile
        options.plan = BnbQuantizationPlan(include: include, skip: skip)
        if let maxShardSize { options.maxShardBytes = maxShardSize.byteCount }
        if let threads { options.threads = threads }
        options.overwrite = outputOptions.force
        return options
    }

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1.") }
        let quantized = to?.isQuantized ?? true
        let llama = try writesLlamaLayout()
        if (llama || !quantized) && (noDoubleQuant || !skip.isEmpty || !include.isEmpty || blocksize.value != 64) {
            throw ValidationError("--blocksize, --no-double-quant, --skip and --include apply to --to nf4 or fp4 only.")
        }
        if !llama, let to, to.target == nil, layout != .hf {
            let plain = ConvertTarget.accepted.filter { $0.llamaFileType == nil }.map { "'\($0.rawValue)'" }
            throw ValidationError(
                "--to \(to.format.rawValue) is a GGUF type: name a .gguf output; this output takes "
                    + plain.joined(separator: ", ") + ".")
        }
        if !llama && base != nil {
            throw ValidationError("--base applies to a LoRA adapter written as a llama.cpp GGUF (-o NAME.gguf).")
        }
    }

    func run() async throws {
        if try await runGGUFRoute() { return }
        if try writesLlamaLayout() {
            try await runLlamaLayout()
            return
        }
        if let to, to.target == nil, let type = GGMLType(name: to.format.rawValue.uppercased()) {
            // --layout hf --to q8_0: Hugging Face names, ggml blocks.
            try await reportingErrors {
                let renderer = ProgressRenderer(enabled: !outputOptions.quiet && !outputOptions.noProgress)
                let summary = try GGUFHFLayoutExport.run(
                    input: input, output: outputOptions.output, type: type, overwrite: outputOptions.force,
                    threads: threads ?? FileAccess.processorCount, progress: renderer.callback)
                guard !outputOptions.quiet else { return }
                FileAccess.writeStandardError(
                    "\(summary.tensorsKept) tensors written with Hugging Face names (\(to.format.rawValue)); "
                        + "\(Format.bytes(summary.bytesOut)) out; \(Format.fixed(summary.seconds, 2)) s -> \(summary.outputPath)\n"
                )
            }
            return
        }
        try await reportingErrors {
            var options = quantizeOptions(target: to?.target ?? .nf4)
            options.format = outputOptions.format?.format
            let renderer = ProgressRenderer(
                enabled: !outputOptions.quiet && !outputOptions.noProgress, label: "convert")
            let summary = try QuantizePipeline.run(
                input: input, output: outputOptions.output, options: options, progress: renderer.callback)
            guard !outputOptions.quiet else { return }
            for warning in summary.warnings { FileAccess.writeStandardError("warning: \(warning)\n") }
            for (tensor, count) in summary.nonFinite {
                FileAccess.writeStandardError(
                    "warning: tensor '\(tensor)' has \(count) NaN/Inf values, coded by the \(profile.profile.rawValue) profile's rules\n"
                )
            }
            var line: String
            if summary.tensorsDequantized > 0 {
                line = "\(summary.tensorsDequantized) tensors dequantized, \(summary.tensorsKept) kept"
            } else if let to, !to.isQuantized {
                line = "\(summary.tensorsKept) tensors written as \(to.format.rawValue)"
            } else {
                line = "\(summary.tensorsQuantized) tensors quantized, \(summary.tensorsKept) kept"
            }
            line += "; \(Format.bytes(summary.bytesIn)) in, \(Format.bytes(summary.bytesOut)) out"
            if let bits = summary.bitsPerQuantizedParameter {
                line += "; \(Format.fixed(bits, 3)) bits per quantized parameter"
            }
            line += "; \(Format.fixed(summary.seconds, 2)) s -> \(summary.outputPath)\n"
            FileAccess.writeStandardError(line)
        }
    }

    /// `convert MODEL -o model.gguf` for a Llama-family folder or a LoRA adapter: llama.cpp's layout.
    private func runLlamaLayout() async throws {
        try await reportingErrors {
            var options = GGUFExport.Options(outType: to?.ggufOutType, base: base, overwrite: outputOptions.force)
            if let threads { options.threads = threads }
            let renderer = ProgressRenderer(enabled: !outputOptions.quiet && !outputOptions.noProgress)
            let summary = try GGUFExport.convert(
                input: input, output: outputOptions.output, options: options, progress: renderer.callback)
            guard !outputOptions.quiet else { return }
            var line = "\(summary.tensorCount) tensors written in llama.cpp's layout (\(summary.outType.rawValue))"
            if summary.tensorsDequantized > 0 { line += ", \(summary.tensorsDequantized) 4-bit weights dequantized" }
            line += "; \(Format.bytes(Int(summary.fileByteCount))) out; \(Format.fixed(summary.seconds, 2)) s -> "
            line += "\(summary.outputPath)\n"
            FileAccess.writeStandardError(line)
        }
    }
}
