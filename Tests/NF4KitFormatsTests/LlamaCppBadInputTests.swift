import Foundation
import NF4Kit
import NF4KitCore
import NF4KitFormats
import NF4KitTestSupport
import Testing

/// Inputs the llama.cpp-layout export must refuse with a data error (exit 65) naming the file and the reason, leaving
/// no output behind.
@Suite struct LlamaCppBadInputTests {
    /// A copy of the golden hf/ folder with `config.json` edited by `edit`.
    func folder(_ dir: TemporaryDirectory, editConfig edit: (inout [String: Any]) -> Void) throws -> String {
        let folder = dir.file("model")
        try FileManager.default.copyItem(atPath: Fixture.path("llama-g/hf"), toPath: folder)
        let path = folder + "/config.json"
        var json =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        edit(&json)
        try FileManager.default.removeItem(atPath: path)
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: path))
        return folder
    }

    /// Runs the export and returns the error it must throw; checks that nothing was written.
    func refusal(_ input: String, _ dir: TemporaryDirectory, options: GGUFExport.Options = .init()) -> CheckpointError?
    {
        let out = dir.file("out.gguf")
        let error = #expect(throws: CheckpointError.self) {
            _ = try GGUFExport.convert(input: input, output: out, options: options)
        }
        #expect(!FileManager.default.fileExists(atPath: out))
        #expect(!FileManager.default.fileExists(atPath: out + ".partial"))
        #expect(error?.code.isDataError == true, "\(String(describing: error))")
        return error
    }

    @Test func `config hidden_size that contradicts the tensors`() throws {
        let dir = TemporaryDirectory("llama-bad")
        defer { dir.cleanup() }
        let input = try folder(dir) { $0["hidden_size"] = 512 }
        let error = refusal(input, dir)
        #expect(error?.code == .shapeMismatch)
        #expect(error?.file?.hasSuffix("config.json") == true)
        #expect(error?.message.contains("hidden_size 512") == true, "\(String(describing: error))")
    }

    @Test func `missing hidden_size`() throws {
        let dir = TemporaryDirectory("llama-bad")
        defer { dir.cleanup() }
        let input = try folder(dir) { $0["hidden_size"] = nil }
        let error = refusal(input, dir)
        #expect(error?.code == .malformedHeader)
        #expect(error?.file?.hasSuffix("config.json") == true)
        #expect(error?.message.contains("hidden_size") == true)
    }

    @Test func `head count that does not split the q rows into halves`() throws {
        // 256 heads of head_dim 1: q has 256 rows, one per head, which cannot be split into two rotary halves.
        let dir = TemporaryDirectory("llama-bad")
        defer { dir.cleanup() }
        let input = try folder(dir) {
            $0["num_attention_heads"] = 256
            $0["num_key_value_heads"] = 128
            $0["head_dim"] = 1
        }
        let error = refusal(input, dir)
        #expect(error?.code == .shapeMismatch)
        #expect(
            error?.tensor == "model.layers.0.self_attn.k_proj.weight"
                || error?.tensor?.hasSuffix("q_proj.weight") == true)
        #expect(error?.message.contains("heads") == true, "\(String(describing: error))")
    }

    @Test func `head count that does not divide hidden_size without head_dim`() throws {
        let dir = TemporaryDirectory("llama-bad")
        defer { dir.cleanup() }
        let input = try folder(dir) {
            $0["num_attention_heads"] = 3
            $0["num_key_value_heads"] = 3
            $0["head_dim"] = nil
        }
        let error = refusal(input, dir)
        #expect(error?.code == .malformedHeader)
        #expect(error?.message.contains("num_attention_heads 3") == true, "\(String(describing: error))")
    }

    @Test func `unsupported architecture names --layout hf`() throws {
        let dir = TemporaryDirectory("llama-bad")
        defer { dir.cleanup() }
        let input = try folder(dir) { $0["architectures"] = ["Qwen2ForCausalLM"] }
        let error = refusal(input, dir)
        #expect(error?.code == .unsupported)
        #expect(error?.message.contains("--layout hf") == true)
    }

    @Test func `tokenizer.model that is not a protobuf`() throws {
        let dir = TemporaryDirectory("llama-bad")
        defer { dir.cleanup() }
        let input = try folder(dir) { _ in }
        let path = input + "/tokenizer.model"
        try FileManager.default.removeItem(atPath: path)
        try Data("this is not a SentencePiece model\n".utf8).write(to: URL(fileURLWithPath: path))
        let error = refusal(input, dir)
        #expect(error?.code == .malformedHeader)
        #expect(error?.file == path)
        #expect(error?.byteOffset != nil)
        #expect(error?.message.contains("SentencePiece") == true, "\(String(describing: error))")
    }

    @Test func `adapter that targets layers the base lacks`() throws {
        // A base config with one layer: the golden adapter also adapts layer 1.
        let dir = TemporaryDirectory("llama-bad")
        defer { dir.cleanup() }
        let base = dir.file("base")
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        var json =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: Fixture.path("llama-g/hf/config.json")))) as! [String: Any]
        json["num_hidden_layers"] = 1
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: base + "/config.json"))
        let error = refusal(Fixture.path("llama-g/lora"), dir, options: .init(outType: .f16, base: base))
        #expect(error?.code == .refused)
        #expect(error?.message.contains("model.layers.1.") == true, "\(String(describing: error))")
        #expect(error?.file?.hasSuffix("llama-g/lora") == true)
    }

    @Test func `DoRA adapter is refused with advice to merge`() throws {
        let dir = TemporaryDirectory("llama-bad")
        defer { dir.cleanup() }
        let adapter = dir.file("dora")
        try FileManager.default.copyItem(atPath: Fixture.path("llama-g/lora"), toPath: adapter)
        let path = adapter + "/adapter_config.json"
        var json =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        json["use_dora"] = true
        try FileManager.default.removeItem(atPath: path)
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: path))
        let error = refusal(adapter, dir, options: .init(base: Fixture.path("llama-g/hf")))
        #expect(error?.code == .refused)
        #expect(error?.message.contains("merge") == true)
    }
}

/// The SentencePiece decoder on the golden tokenizer.model and on crafted damage.
@Suite struct SentencePieceModelTests {
    @Test func `golden tokenizer.model pieces`() throws {
        let model = try SentencePieceModel.read(path: Fixture.path("llama-g/hf/tokenizer.model"))
        // convert_hf_to_gguf.py wrote these from it (golden F16.gguf: tokens[0...3], token_type 2, 3, 3, 6).
        #expect(model.pieces.prefix(4).map(\.text) == ["<unk>", "<s>", "</s>", "<0x00>"])
        #expect(model.pieces.prefix(4).map(\.type) == [.unknown, .control, .control, .byte])
    }

    @Test(
        arguments: [
            ([0x0A, 0x05, 0x0A, 0x01], "runs past the end"),  // piece message longer than the file
            ([0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], "varint"),
            ([0x0B, 0x00], "wire type 3"),  // a group
            ([0x0A, 0x03, 0x0A, 0x01, 0xFF], "UTF-8"),
            ([0x0A, 0x05, 0x0A, 0x01, 0x41, 0x18, 0x09], "piece type 9"),
            ([0x0A, 0x02, 0x10, 0x01], "wrong wire type"),
            ([0x12, 0x00], "no pieces"),
            ([0x0A, 0x03, 0x0A, 0x01, 0x41, 0x0A, 0x03, 0x0A, 0x01, 0x41], "already defined"),
        ] as [([UInt8], String)])
    func `crafted damage is refused`(bytes: [UInt8], reason: String) {
        let error = #expect(throws: CheckpointError.self) {
            _ = try SentencePieceModel(parsing: bytes, file: "t.model")
        }
        #expect(error?.code == .malformedHeader)
        #expect(error?.byteOffset != nil)
        #expect(error?.message.contains(reason) == true, "\(String(describing: error?.message))")
    }
}

/// Names and the row permutation, checked against the golden F16.gguf written by convert_hf_to_gguf.py.
@Suite struct LlamaLayoutTests {
    @Test func `names map both ways`() {
        #expect(
            LlamaTensorNames.ggufName(hfName: "model.layers.12.self_attn.o_proj.weight") == "blk.12.attn_output.weight")
        #expect(
            LlamaTensorNames.hfName(ggufName: "blk.12.attn_output.weight") == "model.layers.12.self_attn.o_proj.weight")
        #expect(LlamaTensorNames.ggufName(hfName: "lm_head.weight") == "output.weight")
        #expect(LlamaTensorNames.hfName(ggufName: "token_embd.weight") == "model.embed_tokens.weight")
        #expect(LlamaTensorNames.ggufName(hfName: "model.layers.01.mlp.up_proj.weight") == nil)
        #expect(LlamaTensorNames.ggufName(hfName: "model.layers.0.mlp.fc.weight") == nil)
    }

    @Test func `golden attn_q and attn_k are the HF rows permuted, and the inverse restores them`() throws {
        let gguf = try GGUFFile.read(path: Fixture.path("llama-g/gguf/F16.gguf"))
        let hf = try SafetensorsReader.read(path: Fixture.path("llama-g/hf/model.safetensors"))
        for (ggufName, heads) in [("blk.1.attn_q.weight", 8), ("blk.1.attn_k.weight", 4)] {
            let info = try #require(gguf.tensors.first { $0.name == ggufName })
            let golden = LlamaCppGoldenTests.data(gguf, info)
            let source = try #require(hf.tensor(named: LlamaTensorNames.hfName(ggufName: ggufName)!))
            let rows = source.shape.dimensions[0]
            let permutation = try LlamaRowPermutation(rows: rows, heads: heads)
            let original = source.bytes.array
            var permuted = [UInt8](repeating: 0, count: original.count)
            var restored = [UInt8](repeating: 0, count: original.count)
            original.withUnsafeBytes { src in
                permuted.withUnsafeMutableBytes {
                    permutation.apply(src, into: $0, rowByteCount: original.count / rows)
                }
            }
            permuted.withUnsafeBytes { src in
                restored.withUnsafeMutableBytes {
                    permutation.apply(src, into: $0, rowByteCount: original.count / rows, toGGUF: false)
                }
            }
            #expect(permuted == golden)
            #expect(restored == original)
        }
    }
}

/// Tokenizer keys beyond the golden folder: padding to vocab_size, added_tokens.json, chat_template.jinja.
@Suite struct LlamaVocabularyTests {
    func folder(_ dir: TemporaryDirectory, _ files: [String: String]) throws -> String {
        let folder = dir.file("tok")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            atPath: Fixture.path("llama-g/hf/tokenizer.model"), toPath: folder + "/tokenizer.model")
        for (name, text) in files { try Data(text.utf8).write(to: URL(fileURLWithPath: folder + "/" + name)) }
        return folder
    }

    func config(vocabSize: Int) throws -> LlamaModelConfig {
        var json =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: Fixture.path("llama-g/hf/config.json")))) as! [String: Any]
        json["vocab_size"] = vocabSize
        let bytes = [UInt8](try JSONSerialization.data(withJSONObject: json))
        guard case .object(let object) = try StrictJSON.parse(bytes) else {
            throw CheckpointError(.malformedHeader, "")
        }
        return try LlamaModelConfig(json: object)
    }

    func value(_ entries: [GGUFMetadataEntry], _ key: String) -> GGUFValue? { entries.first { $0.key == key }?.value }

    @Test func `vocabulary is padded to vocab_size and added_tokens.json overrides ids`() throws {
        let dir = TemporaryDirectory("llama-vocab")
        defer { dir.cleanup() }
        let input = try folder(dir, ["added_tokens.json": #"{"<extra>": 1001}"#])
        let entries = try LlamaVocabulary.metadata(folder: input, config: config(vocabSize: 1003))
        let tokens = try #require(value(entries, "tokenizer.ggml.tokens")?.arrayElements)
        let scores = try #require(value(entries, "tokenizer.ggml.scores")?.arrayElements)
        let types = try #require(value(entries, "tokenizer.ggml.token_type")?.arrayElements)
        // convert_hf_to_gguf.py: "[PAD{id}]" with score -10000 and type UNUSED (5); added tokens score -1000, type 4.
        #expect(tokens.count == 1003)
        #expect(tokens[1000] == .string("[PAD1000]") && scores[1000] == .float32(-10000) && types[1000] == .int32(5))
        #expect(tokens[1001] == .string("<extra>") && scores[1001] == .float32(-1000) && types[1001] == .int32(4))
        #expect(tokens[1002] == .string("[PAD1002]"))
        // No tokenizer_config.json: no add_bos/add_eos flags; ids from config.json.
        #expect(value(entries, "tokenizer.ggml.add_bos_token") == nil)
        #expect(value(entries, "tokenizer.ggml.bos_token_id") == .uint32(1))
    }

    @Test func `chat template comes from chat_template.jinja when tokenizer_config.json has none`() throws {
        let dir = TemporaryDirectory("llama-vocab")
        defer { dir.cleanup() }
        let template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
        let input = try folder(
            dir,
            [
                "tokenizer_config.json": #"{"add_bos_token": false, "eos_token": "</s>"}"#,
                "chat_template.jinja": template,
            ])
        let entries = try LlamaVocabulary.metadata(folder: input, config: config(vocabSize: 1000))
        #expect(value(entries, "tokenizer.chat_template") == .string(template))
        #expect(value(entries, "tokenizer.ggml.add_bos_token") == .bool(false))
    }

    @Test func `a folder with only a tokenizer.json that is not byte-level BPE is refused naming --layout hf`() throws {
        let dir = TemporaryDirectory("llama-vocab")
        defer { dir.cleanup() }
        let input = dir.file("bpe")
        try FileManager.default.createDirectory(atPath: input, withIntermediateDirectories: true)
        try Data(#"{"model": {"type": "Unigram", "vocab": []}}"#.utf8)
            .write(to: URL(fileURLWithPath: input + "/tokenizer.json"))
        let error = #expect(throws: CheckpointError.self) {
            _ = try LlamaVocabulary.metadata(folder: input, config: config(vocabSize: 1000))
        }
        #expect(error?.code == .unsupported)
        #expect(error?.message.contains("--layout hf") == true)

        try Data("{}".utf8).write(to: URL(fileURLWithPath: input + "/tokenizer.json"))
        let empty = #expect(throws: CheckpointError.self) {
            _ = try LlamaVocabulary.metadata(folder: input, config: config(vocabSize: 1000))
        }
        #expect(empty?.code == .malformedHeader)
        #expect(empty?.file?.hasSuffix("bpe/tokenizer.json") == true)
    }
}
