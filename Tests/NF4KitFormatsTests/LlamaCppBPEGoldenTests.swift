import Foundation
import NF4Kit
import NF4KitCore
import NF4KitFormats
import NF4KitTestSupport
import Testing

/// The BPE (`gpt2`) tokenizer of the llama.cpp layout against what convert_hf_to_gguf.py wrote for a tiny Llama
/// carrying the real Llama 3.2 `tokenizer.json` (Fixtures/files/llama3-bpe): tensor by tensor and key by key.
@Suite struct LlamaCppBPEGoldenTests {
    @Test func `export of the Llama 3 tokenizer equals convert_hf_to_gguf.py, merges in the pair form too`() throws {
        let dir = TemporaryDirectory("llama3-bpe")
        defer { dir.cleanup() }
        let folder = try LlamaBPEFixture.folder(in: dir)
        let reference = try LlamaBPEFixture.reference(in: dir)
        // Default type: the folder's bf16, as the converter's "auto" would; the reference was written with bf16.
        let out = dir.file("ours.gguf")
        let summary = try GGUFExport.convert(input: folder, output: out)
        #expect(summary.tensorCount == 11)
        let problems = try LlamaCppGoldenTests.differences(ours: out, golden: reference)
        #expect(problems.isEmpty, "\(problems.prefix(5))")

        // tokenizers >= 0.20 saves merges as ["a", "b"] pairs: the same tokenizer in that form gives the same file.
        let path = folder + "/tokenizer.json"
        let tokenizer = try ModelSource.readJSONObject(path)
        let pairs = JSONValue.object(
            JSONObject(
                tokenizer.members.map { member in
                    guard member.key == "model", let model = member.value.objectValue else { return member }
                    return (
                        member.key,
                        .object(
                            JSONObject(
                                model.members.map { inner in
                                    guard inner.key == "merges", let list = inner.value.arrayValue else { return inner }
                                    return (
                                        inner.key,
                                        .array(
                                            list.map { merge in
                                                let parts = (merge.stringValue ?? "").split(separator: " ")
                                                return .array(parts.map { .string(String($0)) })
                                            })
                                    )
                                }))
                    )
                }))
        try FileManager.default.removeItem(atPath: path)
        try Data(JSONWriter.compact.bytes(pairs)).write(to: URL(fileURLWithPath: path))
        let pairOut = dir.file("pairs.gguf")
        _ = try GGUFExport.convert(input: folder, output: pairOut)
        let pairProblems = try LlamaCppGoldenTests.differences(ours: pairOut, golden: reference)
        #expect(pairProblems.isEmpty, "\(pairProblems.prefix(5))")
    }

    @Test func `gguf-py's pair-form merge rule: a space inside a part is written as U+0120`() throws {
        let merges = try BPEVocabulary.merges(
            .array([.array([.string("a b"), .string("c")]), .array([.string("\u{120}x"), .string("y ")])]),
            file: "tokenizer.json")
        #expect(merges == [.string("a\u{120}b c"), .string("\u{120}x y\u{120}")])
        #expect(throws: CheckpointError.self) {
            try BPEVocabulary.merges(.array([.string("a b"), .array([.string("a"), .string("b")])]), file: "t.json")
        }
    }

    @Test func `the real Llama 3 pre_tokenizer is named llama-bpe; a changed regex or a normalizer is refused`() throws
    {
        let dir = TemporaryDirectory("llama3-bpe")
        defer { dir.cleanup() }
        let path = try LlamaBPEFixture.folder(in: dir) + "/tokenizer.json"
        let tokenizer = try ModelSource.readJSONObject(path)
        #expect(try BPEPreTokenizer.name(of: tokenizer, file: path) == "llama-bpe")

        let pre = try #require(tokenizer["pre_tokenizer"])
        guard case .array(let steps)? = pre["pretokenizers"], case .object(let split) = steps[0] else {
            Issue.record("unexpected pre_tokenizer \(pre)")
            return
        }
        let regex = try #require(split["pattern"]?["Regex"]?.stringValue)
        let changedSplit = JSONObject(
            split.members.map {
                $0.key == "pattern"
                    ? (
                        $0.key,
                        .object(JSONObject([("Regex", .string(regex.replacingOccurrences(of: "{1,3}", with: "+")))]))
                    )
                    : $0
            })
        let changed = JSONObject([
            ("normalizer", .null),
            (
                "pre_tokenizer",
                .object(
                    JSONObject([
                        ("type", .string("Sequence")), ("pretokenizers", .array([.object(changedSplit), steps[1]])),
                    ]))
            ),
        ])
        #expect(BPEPreTokenizer.steps(changed["pre_tokenizer"]) != BPEPreTokenizer.steps(pre))
        let error = try #require(throws: CheckpointError.self) { try BPEPreTokenizer.name(of: changed, file: path) }
        #expect(error.code == .unsupported)
        #expect("\(error)".contains("tokenizer.json") && "\(error)".contains("--layout hf"), "\(error)")

        let normalized = JSONObject([
            ("normalizer", .object(JSONObject([("type", .string("NFC"))]))), ("pre_tokenizer", pre),
        ])
        #expect(throws: CheckpointError.self) { try BPEPreTokenizer.name(of: normalized, file: path) }
    }

    @Test func `a token id at or past config.json's vocab_size is refused, as the converter asserts`() throws {
        let dir = TemporaryDirectory("llama3-bpe")
        defer { dir.cleanup() }
        let folder = try LlamaBPEFixture.folder(in: dir)
        let configPath = folder + "/config.json"
        var small = try LlamaModelConfig(json: ModelSource.readJSONObject(configPath), file: configPath)
        small.vocabSize = 128256  // the tokenizer's <|image|> has id 128256
        let error = try #require(throws: CheckpointError.self) {
            try BPEVocabulary.metadata(folder: folder + "/", config: small)
        }
        #expect(error.code == .malformedHeader)
        #expect("\(error)".contains("<|image|>") && "\(error)".contains("128256"), "\(error)")
    }
}
