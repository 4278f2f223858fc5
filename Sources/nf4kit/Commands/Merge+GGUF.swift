import ArgumentParser
import NF4Kit

/// `merge ... -o m.gguf --to q4_k_m`: the merge written as a llama.cpp GGUF of a llama-quantize file type
/// (``GGUFExport/mergeAndExport(base:adapters:output:mergeOptions:options:progress:)``).
extension Merge {
    /// Runs the merge if `--to` names a llama-quantize file type; `false` otherwise.
    func runLlamaFileTypeRoute() async throws -> Bool {
        guard let fileType = to.format?.llamaFileType else { return false }
        let output = outputOptions.output
        guard outputOptions.format == .gguf || output.lowercased().hasSuffix(".gguf") else {
            FileAccess.writeStandardError(
                "Error: --to \(fileType.name.lowercased()) is a llama.cpp file type, written only to a .gguf output (or "
                    + "--format gguf); this output takes 'same', \(MergeTargetArgument.accepted.filter { $0.llamaFileType == nil }.map { "'\($0.rawValue)'" }.joined(separator: ", "))\n"
            )
            throw ExitCode(64)
        }
        var mergeOptions = MergeOptions()
        if let threads { mergeOptions.threadCount = threads }
        mergeOptions.weights = try parsedWeightsForGGUF()
        mergeOptions.allowNonFinite = allowNonfinite
        var options = GGUFExport.Options(overwrite: outputOptions.force)
        if fileType == .q8_0 { options.outType = .q8_0 } else { options.quantFileType = fileType }
        options.threads = threads ?? FileAccess.processorCount
        let renderer = ProgressRenderer(
            enabled: !outputOptions.quiet && !outputOptions.noProgress, label: "merge")
        let summary = try await reportingErrors {
            try GGUFExport.mergeAndExport(
                base: base, adapters: adapters, output: output, mergeOptions: mergeOptions, options: options,
                progress: renderer.callback)
        }
        if !outputOptions.quiet {
            for warning in summary.warnings { FileAccess.writeStandardError("Warning: \(warning)\n") }
            FileAccess.writeStandardError(
                "Merged \(adapters.count) adapter(s) into \(summary.outputPath) as \(fileType.name): "
                    + "\(summary.tensorCount) tensors, \(Format.fixed(summary.seconds, 2)) s.\n")
        }
        return true
    }

    private func parsedWeightsForGGUF() throws -> [Double]? {
        guard let weights else { return nil }
        return weights.split(separator: ",", omittingEmptySubsequences: false).compactMap {
            Double(String($0.filter { $0 != " " }))
        }
    }
}
