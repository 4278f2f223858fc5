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
        if let topic = unknownHelpTopic(Array(CommandLine.arguments.dropFirst())) {
            let names = configuration.subcommands.map { $0._commandName }
            FileAccess.writeStandardError(
                "Error: 'help \(topic)': no such command (commands: \(names.joined(separator: ", ")))\n"
            )
            exit(withError: ExitCode(ExitCodes.usage))
        }
        await main(nil)
    }

    /// The topic of `nf4kit help TOPIC` when TOPIC names no command. swift-argument-parser prints the root help
    /// and exits 0 for it, which hides a typo from a script.
    static func unknownHelpTopic(_ arguments: [String]) -> String? {
        guard arguments.count >= 2, arguments[0] == "help", !arguments[1].hasPrefix("-") else { return nil }
        let names = configuration.subcommands.map { $0._commandName }
        return names.contains(arguments[1]) ? nil : arguments[1]
    }
}
