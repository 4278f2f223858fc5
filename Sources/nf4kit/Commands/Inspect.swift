import ArgumentParser
import NF4Kit

struct Inspect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the tensors and memory breakdown of a checkpoint."
    )

    @Argument(help: "The checkpoint to inspect: a file or a Hugging Face model folder.")
    var path: String

    func run() async throws {
        try await reportingErrors {
            throw CheckpointError(.unsupported, "inspect is not implemented yet", file: path)
        }
    }
}
