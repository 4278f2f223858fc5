import ArgumentParser
import FoundationEssentials
import NF4Kit

/// The conversions whose input or output is a llama.cpp GGUF and that do not go through ``QuantizePipeline`` alone:
/// a llama-quantize file type written from a folder (one pass, ``GGUFExport``) or from a GGUF (``GGUFRequantize``),
/// and a Llama GGUF written back as a Hugging Face folder (``GGUFImport``), plain or bitsandbytes 4-bit.
extension Convert {
    /// `--to` as given, or the default for this input and output: f32 for a GGUF written as a folder (what
    /// transformers' `from_pretrained(..., gguf_file=)` gives without `torch_dtype`), nf4 otherwise.
    var target: ConvertTarget {
        if let to { return to }
        return isGGUF(input) && !writesGGUF ? ConvertTarget(.f32) : ConvertTarget(.nf4)
    }

    private var writesGGUF: Bool {
        outputOptions.format == .gguf || outputOptions.output.lowercased().hasSuffix(".gguf")
    }

    private func isGGUF(_ path: String) -> Bool {
        path.lowercased().hasSuffix(".gguf") && !FileAccess.isDirectory(path)
    }

    /// Runs the conversion if it is one of this file's; `false` leaves it to ``QuantizePipeline``.
    func runGGUFRoute() async throws -> Bool {
        let target = self.target
        let fromGGUF = isGGUF(input)
        // q8_0 from a folder is convert_hf_to_gguf.py's own type: the llama.cpp (or --layout hf) export writes it.
        if let fileType = target.format.llamaFileType, fromGGUF || fileType != .q8_0 {
            guard writesGGUF else {
                FileAccess.writeStandardError(
                    "Error: --to \(target.format.rawValue) is a llama.cpp file type, written only to a .gguf output (or "
                        + "--format gguf); this output takes \(ConvertTarget.accepted.filter { $0.llamaFileType == nil }.map { "'\($0.rawValue)'" }.joined(separator: ", "))\n"
                )
                throw ExitCode(64)
            }
            try await reportingErrors {
                let start = FileAccess.monotonicSeconds
                let renderer = ProgressRenderer(
                    enabled: !outputOptions.quiet && !outputOptions.noProgress, label: "convert")
                if fromGGUF {
                    let summary = try GGUFRequantize.run(
                        input: input, output: outputOptions.output, fileType: fileType, overwrite: outputOptions.force,
                        threads: threads ?? FileAccess.processorCount, progress: renderer.callback)
                    if summary.requantizedTensorCount > 0 && !outputOptions.quiet {
                        FileAccess.writeStandardError(
                            "warning: \(summary.requantizedTensorCount) tensors were already quantized and were "
                                + "quantized again (llama-quantize asks for --allow-requantize): the errors add up; "
                                + "start from the F16/BF16 GGUF or the Hugging Face folder for the best \(fileType.name)\n"
                        )
                    }
                    report(
                        "\(summary.tensors.count) tensors as \(fileType.name)", bytes: Int(summary.outputByteCount),
                        start)
                } else {
                    var options = GGUFExport.Options(overwrite: outputOptions.force)
                    // convert_hf_to_gguf.py writes q8_0 itself (--outtype q8_0); the other types are llama-quantize's.
                    if fileType == .q8_0 { options.outType = .q8_0 } else { options.quantFileType = fileType }
                    if let threads { options.threads = threads } else { options.threads = FileAccess.processorCount }
                    let summary = try GGUFExport.convert(
                        input: input, output: outputOptions.output, options: options, progress: renderer.callback)
                    report(
                        "\(summary.tensorCount) tensors as \(fileType.name)", bytes: Int(summary.fileByteCount), start)
                }
            }
            return true
        }
        guard fromGGUF, !writesGGUF, !outputOptions.output.lowercased().hasSuffix(".safetensors") else { return false }
        let file = try await reportingErrors { try GGUFFile.read(path: input) }
        // A GGUF with Hugging Face names (--layout hf, fixture, NF4 companions) reads back through the pipeline.
        guard GGUFImport.isLlamaLayout(file) else { return false }
        try await reportingErrors {
            let start = FileAccess.monotonicSeconds
            var options = GGUFImport.Options(overwrite: outputOptions.force)
            if let maxShardSize { options.maxShardBytes = maxShardSize.byteCount }
            if let dtype = target.format.floatDType {
                options.dtype = dtype
                let summary = try GGUFImport.run(ggufPath: input, outputPath: outputOptions.output, options: options)
                report("\(summary.tensorCount) tensors as \(dtype)", bytes: summary.byteCount, start)
                return
            }
            // nf4/fp4: the f32 Hugging Face folder is written beside the output, converted, then removed, so the
            // result is by construction the dequantize-then-convert one. The scratch folder lives inside a temporary
            // output that is never finished: its deinit, or the interrupt handler, removes it with what it holds, and
            // it never replaces or deletes anything that was there before.
            let temporary = try OutputDirectory(
                path: trimmedOutput + "-import", overwrite: false, inputs: [input, outputOptions.output])
            let scratch = temporary.partialFile("f32")
            options.overwrite = false
            options.dtype = .f32
            _ = try GGUFImport.run(ggufPath: input, outputPath: scratch, options: options)
            let summary = try QuantizePipeline.run(
                input: scratch, output: outputOptions.output, options: quantizeOptions(target: target.target ?? .nf4))
            withExtendedLifetime(temporary) {}
            report(
                "\(summary.tensorsQuantized) tensors quantized, \(summary.tensorsKept) kept",
                bytes: Int(summary.bytesOut), start)
        }
        return true
    }

    private var trimmedOutput: String {
        var path = outputOptions.output
        while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
        return path
    }

    private func report(_ what: String, bytes: Int, _ start: Double) {
        guard !outputOptions.quiet else { return }
        FileAccess.writeStandardError(
            "\(what); \(Format.bytes(Int64(bytes))) out; \(Format.fixed(FileAccess.monotonicSeconds - start, 2)) s "
                + "-> \(outputOptions.output)\n")
    }
}
