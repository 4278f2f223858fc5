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
