import Foundation
import NF4KitTestSupport
import Testing

/// Every command's help documents the exit codes, and says which inputs it takes (issue 16, item 10).
@Suite struct HelpCLITests {
    @Test(arguments: ["convert", "merge", "inspect", "diff", "fixture"])
    func `help documents the exit codes`(command: String) throws {
        let result = try NF4KitCLI.run(["help", command])
        #expect(result.status == 0)
        let text = result.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        for code in ["0 success", "1 failure", "64 bad usage", "65 malformed", "74 I/O error", "130, 143, 129"] {
            #expect(text.contains(code), "nf4kit help \(command) does not document '\(code)'")
        }
    }

    @Test func `convert and merge help name the inputs they read`() throws {
        let convert = try NF4KitCLI.run(["help", "convert"]).stdout.split(whereSeparator: \.isWhitespace).joined(
            separator: " ")
        #expect(convert.contains("a .safetensors, .gguf or PyTorch .bin file"))
        let merge = try NF4KitCLI.run(["help", "merge"]).stdout.split(whereSeparator: \.isWhitespace).joined(
            separator: " ")
        #expect(merge.contains("adapter_model.bin"))
    }

    @Test func `help for a command that does not exist is a usage error`() throws {
        let result = try NF4KitCLI.run(["help", "nope"])
        #expect(result.status == 64)
        #expect(result.stderr.contains("'help nope': no such command"))
        #expect(result.stderr.contains("convert, merge, inspect, diff, fixture"))
        #expect(try NF4KitCLI.run(["help"]).status == 0)
    }
}
