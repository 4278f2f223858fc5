import Foundation
import NF4KitTestSupport
import Testing

/// Runs the built `nf4kit` executable and captures its exit code, stdout and stderr separately.
enum NF4KitCLI {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// The executable next to the test bundle (`.build/<config>/nf4kit`), or in the repository's `.build/debug`.
    static func executable() throws -> String {
        let bundle = Bundle.main.bundleURL
        let candidates = [
            bundle.deletingLastPathComponent().appendingPathComponent("nf4kit").path,
            bundle.appendingPathComponent("nf4kit").path,
            RepositoryPaths.root + "/.build/debug/nf4kit",
        ]
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            Issue.record("nf4kit executable not found (looked in \(candidates)); run `swift build` first")
            throw CocoaError(.fileNoSuchFile)
        }
        return found
    }

    /// Runs `nf4kit ARGUMENTS`; `environment` entries are added to (or replace) this process's environment, and
    /// `directory` is the working folder (default: this process's).
    static func run(
        _ arguments: [String], environment: [String: String] = [:], directory workingDirectory: String? = nil
    ) throws -> Result {
        let directory = TemporaryDirectory("nf4kit-cli")
        defer { directory.cleanup() }
        let outPath = directory.file("stdout"), errPath = directory.file("stderr")
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try executable())
        process.arguments = arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        if let workingDirectory { process.currentDirectoryURL = URL(fileURLWithPath: workingDirectory) }
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        try process.run()
        process.waitUntilExit()
        return Result(
            status: process.terminationStatus,
            stdout: String(decoding: try Data(contentsOf: URL(fileURLWithPath: outPath)), as: UTF8.self),
            stderr: String(decoding: try Data(contentsOf: URL(fileURLWithPath: errPath)), as: UTF8.self))
    }
}
