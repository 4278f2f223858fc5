import ArgumentParser

/// Options shared by the commands that write checkpoints.
struct OutputOptions: ParsableArguments {
    @Option(name: .shortAndLong, help: "The output file or folder.")
    var output: String

    @Flag(help: "Replace the output if it exists (never an input).")
    var force = false

    @Flag(name: .shortAndLong, help: "Print nothing but errors: no progress, no summary.")
    var quiet = false

    @Flag(help: "Print the summary but no progress lines.")
    var noProgress = false
}
