import Foundation
import NF4KitTestSupport
import Testing

/// `nf4kit convert` of a Llama folder whose tokenizer is a byte-level BPE `tokenizer.json` (the real Llama 3.2 one in
/// Fixtures/files/llama3-bpe): llama.cpp's `gpt2` vocabulary, or exit 65 for a pre-tokenizer nf4kit cannot name.
@Suite struct BPETokenizerCLITests {
    @Test func `convert -o x.gguf writes what convert_hf_to_gguf.py wrote (gguf_compare.py)`() throws {
        let dir = TemporaryDirectory("cli-llama3-bpe")
        defer { dir.cleanup() }
        let folder = try LlamaBPEFixture.folder(in: dir)
        let reference = try LlamaBPEFixture.reference(in: dir)
        let out = dir.file("ours.gguf")
        let result = try NF4KitCLI.run(["convert", folder, "-o", out, "--to", "bf16", "--quiet"])
        #expect(result.status == 0, "\(result.stderr)")
        let compare = try PythonInterop.run(script: "Tests/Interop/gguf_compare.py", arguments: [out, reference])
        #expect(compare.status == 0, "\(compare.stdout)\(compare.stderr)")
        #expect(compare.stdout.hasPrefix("OK: 11/11 tensors identical"), "\(compare.stdout)")
    }

    @Test func `merge -o x.gguf of a BPE base writes convert_hf_to_gguf.py's metadata (gguf_compare.py --keys-only)`()
        throws
    {
        let dir = TemporaryDirectory("cli-llama3-bpe")
        defer { dir.cleanup() }
        let folder = try LlamaBPEFixture.folder(in: dir)
        let reference = try LlamaBPEFixture.reference(in: dir)
        let out = dir.file("merged.gguf")
        let result = try NF4KitCLI.run(
            ["merge", folder, Fixture.path("llama3-bpe/lora"), "-o", out, "--to", "bf16", "--quiet"])
        #expect(result.status == 0, "\(result.stderr)")
        // Merging changes attn_q/attn_v only; every key (tokenizer included) is the base's.
        let compare = try PythonInterop.run(
            script: "Tests/Interop/gguf_compare.py", arguments: [out, reference, "--keys-only"])
        #expect(compare.status == 0, "\(compare.stdout)\(compare.stderr)")
        #expect(compare.stdout.hasPrefix("OK:"), "\(compare.stdout)")
    }

    /// Replaces `old` by `new` once in the folder's tokenizer.json.
    func edit(_ folder: String, _ old: String, _ new: String) throws {
        let path = folder + "/tokenizer.json"
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let range = try #require(text.range(of: old))
        try text.replacingCharacters(in: range, with: new).write(toFile: path, atomically: false, encoding: .utf8)
    }

    func expectRefused(_ folder: String, _ dir: TemporaryDirectory, mentioning reasons: [String]) throws {
        let result = try NF4KitCLI.run(["convert", folder, "-o", dir.file("out.gguf")])
        #expect(result.status == 65, "\(result.stderr)")
        for reason in reasons {
            #expect(result.stderr.contains(reason), "\(result.stderr)")
        }
        let left = Set(try FileManager.default.contentsOfDirectory(atPath: dir.path))
        #expect(left == ["llama3"], "left behind: \(left)")
    }

    @Test func `a pre-tokenizer regex nf4kit does not know exits 65 naming tokenizer.json and --layout hf`() throws {
        let dir = TemporaryDirectory("cli-llama3-bpe")
        defer { dir.cleanup() }
        let folder = try LlamaBPEFixture.folder(in: dir)
        try edit(folder, #"\\p{N}{1,3}"#, #"\\p{N}+"#)
        try expectRefused(
            folder, dir, mentioning: ["llama3/tokenizer.json", "pre-tokenizer", "--layout hf", "llama-bpe"])
    }

    @Test func `a SentencePiece-style BPE tokenizer.json (byte_fallback) exits 65`() throws {
        let dir = TemporaryDirectory("cli-llama3-bpe")
        defer { dir.cleanup() }
        let folder = try LlamaBPEFixture.folder(in: dir)
        try edit(folder, #""byte_fallback": false"#, #""byte_fallback": true"#)
        try expectRefused(folder, dir, mentioning: ["llama3/tokenizer.json", "byte_fallback", "--layout hf"])
    }
}
