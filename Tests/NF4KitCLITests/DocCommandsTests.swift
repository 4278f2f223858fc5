import Foundation
import NF4KitTestSupport
import Testing

/// Every command line shown in README.md and docs/*.md runs, and prints what the page shows (issue 16, item 10).
///
/// A command line is a line of a fenced block (no language, `sh`, `shell`, `bash`, `console` or `text`) that starts
/// with `$ nf4kit ` or `nf4kit `. Lines after a `$ ` command, up to the next `$ ` line or the end of the block, are its
/// printed output: each must appear in what the command prints (stdout + stderr), in order, with runs of spaces
/// collapsed and timings (`0.34 s`) masked; a line holding `...` only needs its text before `...`, a line that is just
/// `...` matches anything.
///
/// README.md runs as a session, in order, in an empty folder. Each other page runs in order in a fresh folder holding a
/// copy of what the README session made (`llama`, `llama-lora`, `llama-nf4`, `merged`) and a link `Fixtures` to the
/// repository's fixtures. New pages and commands are picked up by themselves; a command that needs inputs the
/// fixtures cannot give goes in ``skipped`` with the reason.
@Suite(.serialized) struct DocCommandsTests {
    /// Commands not run, by "page: command" (the command as printed, without `$ `), each with its reason.
    static let skipped: [String: String] = [
        // A synopsis: BASE, ADAPTER and the bracketed options are placeholders, not a command line.
        "docs/merge.md: nf4kit merge BASE ADAPTER [ADAPTER...] -o OUTPUT [--weights w1,w2] [--to same|f16|bf16|f32|nf4|fp4]":
            "synopsis with placeholders"
    ]

    struct Command: CustomStringConvertible {
        var page: String
        var line: Int
        var text: String
        var expected: [String]
        var description: String { "\(page):\(line): \(text)" }
    }

    static let shellLanguages: Set<String> = ["", "sh", "shell", "bash", "console", "text"]

    /// The command lines of one page, in order.
    static func commands(in page: String) throws -> [Command] {
        let lines = try String(contentsOfFile: RepositoryPaths.root + "/" + page, encoding: .utf8)
            .split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var result: [Command] = []
        var inBlock = false, runnable = false, collecting = false
        for (index, line) in lines.enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("```") {
                collecting = false
                if inBlock {
                    inBlock = false
                } else {
                    inBlock = true
                    runnable = shellLanguages.contains(
                        String(trimmed.dropFirst(3)).trimmingCharacters(in: .whitespaces))
                }
                continue
            }
            guard inBlock && runnable else { continue }
            if trimmed.hasPrefix("$ nf4kit ") || trimmed.hasPrefix("nf4kit ") {
                let text = trimmed.hasPrefix("$ ") ? String(trimmed.dropFirst(2)) : trimmed
                result.append(Command(page: page, line: index + 1, text: text, expected: []))
                collecting = trimmed.hasPrefix("$ ")
            } else if trimmed.hasPrefix("$ ") {
                result.append(Command(page: page, line: index + 1, text: String(trimmed.dropFirst(2)), expected: []))
                collecting = false
            } else if collecting, !trimmed.isEmpty {
                result[result.count - 1].expected.append(line)
            }
        }
        // Only nf4kit commands run; other `$ ` lines (cd, ls) just end the previous command's output.
        return result.filter { $0.text.hasPrefix("nf4kit ") }
    }

    /// README.md and every docs/*.md.
    static func pages() throws -> [String] {
        let docs = try FileManager.default.contentsOfDirectory(atPath: RepositoryPaths.root + "/docs")
            .filter { $0.hasSuffix(".md") }.sorted().map { "docs/" + $0 }
        return ["README.md"] + docs
    }

    /// Runs `command` with bash (pipefail) in `folder`, `nf4kit` on the PATH; returns status and stdout + stderr.
    static func run(_ command: String, in folder: String) throws -> (status: Int32, output: String) {
        let binary = try NF4KitCLI.executable()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-o", "pipefail", "-c", command]
        process.currentDirectoryURL = URL(fileURLWithPath: folder)
        var environment = ProcessInfo.processInfo.environment
        environment["PATH"] =
            URL(fileURLWithPath: binary).deletingLastPathComponent().path + ":"
            + (environment["PATH"] ?? "/usr/bin:/bin")
        process.environment = environment
        let outputFile = folder + "/../doc-command-output-\(UInt64.random(in: 0...UInt64.max))"
        _ = FileManager.default.createFile(atPath: outputFile, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: outputFile) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: outputFile))
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        try handle.close()
        return (process.terminationStatus, try String(contentsOfFile: outputFile, encoding: .utf8))
    }

    /// Collapses spaces and masks timings such as `0.34 s` and `(0.34 s)`.
    static func normalized(_ line: String) -> String {
        let collapsed = line.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
        return collapsed.replacingOccurrences(
            of: #"[0-9]+(\.[0-9]+)? s\b"#, with: "<time> s", options: .regularExpression)
    }

    /// The first expected line that is not printed (in order), or `nil`.
    static func missingLine(_ expected: [String], in output: String) -> String? {
        let printed = output.split(separator: "\n").map { normalized(String($0)) }
        var position = 0
        for line in expected {
            let text = normalized(line.components(separatedBy: "...").first ?? "")
            if text.isEmpty { continue }
            let truncated = line.contains("...")
            // Drop a trailing comment's spacing difference: compare trimmed forms.
            guard
                let found = printed[position...].firstIndex(where: {
                    truncated ? $0.hasPrefix(text) || $0.contains(text) : $0 == text
                })
            else {
                return line
            }
            position = found + 1
        }
        return nil
    }

    /// Runs `commands` in order in `folder`; records a failure naming the page and line of each that fails.
    static func runAll(_ commands: [Command], in folder: String) throws {
        for command in commands {
            if let reason = skipped["\(command.page): \(command.text)"] {
                _ = reason
                continue
            }
            let result = try run(command.text, in: folder)
            #expect(result.status == 0, "\(command) exited \(result.status): \(result.output.suffix(800))")
            guard result.status == 0 else { continue }
            if let missing = missingLine(command.expected, in: result.output) {
                Issue.record(
                    "\(command): printed output differs from the page; not printed: '\(missing)'\n--- printed:\n\(result.output.prefix(3000))"
                )
            }
        }
    }

    static func link(fixtures folder: String) throws {
        try FileManager.default.createSymbolicLink(
            atPath: folder + "/Fixtures", withDestinationPath: RepositoryPaths.root + "/Fixtures")
    }

    @Test func `every documented command runs on the fixtures and prints what the page shows`() throws {
        let root = TemporaryDirectory("nf4kit-doc-commands")
        defer { root.cleanup() }
        let session = root.file("README")
        try FileManager.default.createDirectory(atPath: session, withIntermediateDirectories: true)
        let readme = try Self.commands(in: "README.md")
        #expect(readme.count >= 5, "the README session lost its commands: \(readme)")
        try Self.runAll(readme, in: session)
        let made = try FileManager.default.contentsOfDirectory(atPath: session).sorted()
        #expect(made == ["llama", "llama-lora", "llama-nf4", "merged"], "the README session made \(made)")
        try Self.link(fixtures: session)

        for page in try Self.pages() where page != "README.md" {
            let commands = try Self.commands(in: page)
            guard !commands.isEmpty else { continue }
            let folder = root.file(page.replacingOccurrences(of: "/", with: "_"))
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            for item in made {
                try FileManager.default.copyItem(atPath: session + "/" + item, toPath: folder + "/" + item)
            }
            try Self.link(fixtures: folder)
            try Self.runAll(commands, in: folder)
        }
    }

    @Test func `the extractor finds commands, their printed output and the skipped synopsis`() throws {
        let readme = try Self.commands(in: "README.md")
        #expect(readme.first?.text.hasPrefix("nf4kit fixture tiny -o llama") == true)
        #expect(readme.first?.expected.first?.hasPrefix("wrote llama:") == true)
        let all = try Self.pages().flatMap { try Self.commands(in: $0) }
        for key in Self.skipped.keys {
            #expect(all.contains { "\($0.page): \($0.text)" == key }, "skipped entry no longer on its page: \(key)")
        }
        #expect(Self.missingLine(["a  b 1.5 s", "..."], in: "x\na b 0.2 s\n") == nil)
        #expect(Self.missingLine(["a b"], in: "a c\n") == "a b")
    }
}
