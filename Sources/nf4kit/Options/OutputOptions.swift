import ArgumentParser
import NF4Kit

/// `--format` values; the same names as ``OutputFormat``.
enum OutputFormatArgument: String, ExpressibleByArgument, CaseIterable {
    case safetensors, gguf
    var format: OutputFormat { OutputFormat(rawValue: rawValue)! }
}

/// Options shared by the commands that write checkpoints.
struct OutputOptions: ParsableArguments {
    @Option(
        name: .shortAndLong,
        help: """
            The output; its name decides the form: NAME.safetensors one file, NAME.gguf a GGUF file, \
            NAME or NAME/ a Hugging Face folder.
            """)
    var output: String

    @Option(help: "safetensors or gguf, for an output name that does not say it (a name never holds the other).")
    var format: OutputFormatArgument?

    @Flag(
        help: "Replace an existing output file, or a folder nf4kit could have written (never an input, link or device)."
    )
    var force = false

    @Flag(name: .shortAndLong, help: "Print nothing but errors: no progress, no summary.")
    var quiet = false

    @Flag(help: "Print the summary but no progress lines.")
    var noProgress = false
}

extension OutputOptions {
    /// Whether the output is a GGUF file (by its name or `--format`); `--layout` given for any other output is a usage
    /// error.
    func isGGUF(layout: GGUFLayoutArgument?) throws -> Bool {
        let form = try? CheckpointOutput.Form.choose(for: output, format: format?.format)
        guard form == .gguf else {
            if layout != nil {
                throw ValidationError("--layout applies to a GGUF output (-o NAME.gguf or --format gguf).")
            }
            return false
        }
        return true
    }
}
