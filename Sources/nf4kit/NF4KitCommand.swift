import ArgumentParser
import NF4Kit

@main
struct NF4KitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nf4kit",
        abstract: "Quantize, merge and inspect QLoRA model checkpoints (safetensors, GGUF, PyTorch .bin).",
        discussion: ExitCodes.helpText,
        version: "0.1.0",
        subcommands: [Convert.self, Merge.self, Inspect.self, Diff.self, Fixture.self]
    )

    /// Installs the interrupt cleanup, then parses and runs the command.
    static func main() async {
        InterruptCleanup.install()
        await main(nil)
    }
}
