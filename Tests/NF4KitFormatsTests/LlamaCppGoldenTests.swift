import Foundation
import NF4Kit
import NF4KitCore
import NF4KitFormats
import NF4KitTestSupport
import Testing

/// Our llama.cpp-layout GGUF export against what convert_hf_to_gguf.py and convert_lora_to_gguf.py wrote for the golden
/// llama-g model (Fixtures/files/llama-g, copied from shared/golden/gguf-llama/llama-g): tensor by tensor (name, type,
/// dimensions, data bytes) and key by key (type and value), the cosmetic general.name/size_label aside.
@Suite struct LlamaCppGoldenTests {
    static let cosmetic: Set<String> = ["general.name", "general.basename", "general.size_label"]

    /// Bytes of a tensor's data in a GGUF file.
    static func data(_ file: GGUFFile, _ info: GGUFTensorInfo) -> [UInt8] {
        file.region.withUnsafeBytes { raw in
            Array(raw[Int(info.fileOffset)..<(Int(info.fileOffset) + info.byteCount)])
        }
    }

    /// Compares two GGUF files the way the acceptance does; returns the differences.
    static func differences(ours: String, golden: String) throws -> [String] {
        let a = try GGUFFile.read(path: ours)
        let b = try GGUFFile.read(path: golden)
        var problems: [String] = []
        let oursByName = Dictionary(uniqueKeysWithValues: a.tensors.map { ($0.name, $0) })
        if a.tensors.count != b.tensors.count {
            problems.append("tensor count \(a.tensors.count) != \(b.tensors.count)")
        }
        for ref in b.tensors {
            guard let mine = oursByName[ref.name] else {
                problems.append("tensor \(ref.name) missing")
                continue
            }
            if mine.type != ref.type { problems.append("\(ref.name): type \(mine.type) != \(ref.type)") }
            if mine.dimensions != ref.dimensions {
                problems.append("\(ref.name): ne \(mine.dimensions) != \(ref.dimensions)")
            }
            if data(a, mine) != data(b, ref) { problems.append("\(ref.name): data bytes differ") }
        }
        let oursKeys = Dictionary(uniqueKeysWithValues: a.metadata.map { ($0.key, $0.value) })
        let refKeys = Set(b.metadata.map(\.key))
        for entry in b.metadata where !cosmetic.contains(entry.key) {
            guard let value = oursKeys[entry.key] else {
                problems.append("key \(entry.key) missing")
                continue
            }
            if value != entry.value { problems.append("key \(entry.key): \(value) != \(entry.value)") }
        }
        for entry in a.metadata where !refKeys.contains(entry.key) && !cosmetic.contains(entry.key) {
            problems.append("extra key \(entry.key)")
        }
        // Order of the non-cosmetic keys, as convert_hf_to_gguf.py writes them.
        let orderA = a.metadata.map(\.key).filter { !cosmetic.contains($0) }
        let orderB = b.metadata.map(\.key).filter { !cosmetic.contains($0) }
        if orderA != orderB { problems.append("key order differs") }
        return problems
    }

    @Test(arguments: [("F16", GGUFExport.OutType.f16), ("BF16", .bf16), ("Q8_0", .q8_0)])
    func `model export equals convert_hf_to_gguf.py`(golden: String, outType: GGUFExport.OutType) throws {
        let dir = TemporaryDirectory("llama-g-export")
        defer { dir.cleanup() }
        let out = dir.file("\(golden).gguf")
        let summary = try GGUFExport.convert(
            input: Fixture.path("llama-g/hf"), output: out, options: .init(outType: outType))
        #expect(summary.tensorCount == 21)
        let problems = try Self.differences(ours: out, golden: Fixture.path("llama-g/gguf/\(golden).gguf"))
        #expect(problems.isEmpty, "\(problems.prefix(5))")
        // scripts/verify-llama-cpp runs llama.cpp on these files: it sets NF4KIT_KEEP_GGUF to a folder to keep them in.
        if let keep = ProcessInfo.processInfo.environment["NF4KIT_KEEP_GGUF"], !keep.isEmpty {
            try FileManager.default.copyItem(atPath: out, toPath: keep + "/\(golden).gguf")
        }
    }

    @Test func `default output type of an f16 folder is F16`() throws {
        let dir = TemporaryDirectory("llama-g-export")
        defer { dir.cleanup() }
        let out = dir.file("auto.gguf")
        let summary = try GGUFExport.convert(input: Fixture.path("llama-g/hf"), output: out)
        #expect(summary.outType == .f16)
        #expect(try Self.differences(ours: out, golden: Fixture.path("llama-g/gguf/F16.gguf")).isEmpty)
    }

    @Test func `LoRA adapter export equals convert_lora_to_gguf.py`() throws {
        let dir = TemporaryDirectory("llama-g-lora")
        defer { dir.cleanup() }
        let out = dir.file("lora-F16.gguf")
        let summary = try GGUFExport.convert(
            input: Fixture.path("llama-g/lora"), output: out,
            options: .init(outType: .f16, base: Fixture.path("llama-g/hf")))
        #expect(summary.tensorCount == 28)
        let problems = try Self.differences(ours: out, golden: Fixture.path("llama-g/gguf/lora-F16.gguf"))
        #expect(problems.isEmpty, "\(problems.prefix(5))")
    }

    @Test func `adapter base is found from base_model_name_or_path`() throws {
        // adapter_config.json says "llama-g/hf", which sits beside the adapter folder's parent.
        let dir = TemporaryDirectory("llama-g-lora")
        defer { dir.cleanup() }
        let out = dir.file("lora.gguf")
        _ = try GGUFExport.convert(input: Fixture.path("llama-g/lora"), output: out, options: .init(outType: .f16))
        #expect(try Self.differences(ours: out, golden: Fixture.path("llama-g/gguf/lora-F16.gguf")).isEmpty)
    }
}

/// A bitsandbytes 4-bit folder is dequantized first: its GGUF equals the GGUF of the same folder dequantized to its
/// float type (the bitsandbytes dequantization itself is checked against golden vectors in NF4KitMergeTests).
@Suite struct LlamaCppFourBitExportTests {
    /// golden llama-tiny/nf4-dq (transformers + bitsandbytes) with the llama-g SentencePiece tokenizer beside it.
    func fourBitFolder(_ dir: TemporaryDirectory) throws -> String {
        let folder = dir.file("nf4")
        try FileManager.default.copyItem(atPath: Fixture.path("llama-tiny/nf4-dq"), toPath: folder)
        for name in ["tokenizer.model", "tokenizer_config.json"] {
            try FileManager.default.copyItem(atPath: Fixture.path("llama-g/hf/\(name)"), toPath: folder + "/" + name)
        }
        return folder
    }

    @Test(arguments: [GGUFExport.OutType.f16, .q8_0])
    func `NF4 folder exports like its dequantized copy`(outType: GGUFExport.OutType) throws {
        let dir = TemporaryDirectory("llama-nf4-export")
        defer { dir.cleanup() }
        let nf4 = try fourBitFolder(dir)
        let fromNF4 = dir.file("from-nf4.gguf")
        let summary = try GGUFExport.convert(input: nf4, output: fromNF4, options: .init(outType: outType))
        #expect(summary.tensorsDequantized == 14)

        var options = QuantizePipeline.Options()
        options.target = .f16
        let dequantized = dir.file("f16")
        _ = try QuantizePipeline.run(input: nf4, output: dequantized, options: options)
        for name in ["tokenizer.model", "tokenizer_config.json"]
        where !FileManager.default.fileExists(atPath: dequantized + "/" + name) {
            try FileManager.default.copyItem(atPath: nf4 + "/" + name, toPath: dequantized + "/" + name)
        }
        let fromF16 = dir.file("from-f16.gguf")
        _ = try GGUFExport.convert(input: dequantized, output: fromF16, options: .init(outType: outType))
        let problems = try LlamaCppGoldenTests.differences(ours: fromNF4, golden: fromF16)
        #expect(problems.isEmpty, "\(problems.prefix(5))")
    }
}

/// llama.cpp scales a LoRA by alpha / r; PEFT's rsLoRA scales by alpha / sqrt(r). The export folds the ratio into
/// lora_b so that llama.cpp computes PEFT's delta.
@Suite struct LlamaCppLoRAScalingTests {
    func floats(_ path: String, _ name: String) throws -> [Float] {
        let file = try GGUFFile.read(path: path)
        let info = try #require(file.tensors.first { $0.name == name })
        #expect(info.type == .f32)
        let bytes = LlamaCppGoldenTests.data(file, info)
        return bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    @Test func `rsLoRA scaling is folded into lora_b`() throws {
        let dir = TemporaryDirectory("llama-rslora")
        defer { dir.cleanup() }
        let adapter = dir.file("rslora")
        try FileManager.default.copyItem(atPath: Fixture.path("llama-g/lora"), toPath: adapter)
        let path = adapter + "/adapter_config.json"
        var json =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        json["use_rslora"] = true
        try FileManager.default.removeItem(atPath: path)
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: path))
        let base = Fixture.path("llama-g/hf")
        let plain = dir.file("plain.gguf")
        let folded = dir.file("folded.gguf")
        _ = try GGUFExport.convert(
            input: Fixture.path("llama-g/lora"), output: plain, options: .init(outType: .f32, base: base))
        _ = try GGUFExport.convert(input: adapter, output: folded, options: .init(outType: .f32, base: base))
        // r = 8, alpha = 16: PEFT uses 16 / sqrt(8), llama.cpp 16 / 8, so lora_b must grow by sqrt(8).
        let factor = Float((16 / 8.0.squareRoot()) / 2)
        for name in ["blk.0.attn_q.weight.lora_b", "blk.1.ffn_down.weight.lora_b"] {
            let b = try floats(plain, name)
            let scaled = try floats(folded, name)
            #expect(b.count == scaled.count && !b.isEmpty)
            #expect(zip(b, scaled).allSatisfy { abs($1 - $0 * factor) <= 1e-6 * max(abs($0), 1e-3) })
        }
        #expect(try floats(plain, "blk.0.attn_q.weight.lora_a") == floats(folded, "blk.0.attn_q.weight.lora_a"))
    }
}

/// `merge BASE ADAPTER -o merged.gguf` equals PEFT's merge (golden llama-g/merged, its weights) converted to GGUF.
@Suite struct LlamaCppMergeExportTests {
    @Test(arguments: [GGUFExport.OutType.f16, .q8_0])
    func `merge and export equals converting PEFT's merge`(outType: GGUFExport.OutType) throws {
        let dir = TemporaryDirectory("llama-merge-export")
        defer { dir.cleanup() }
        // PEFT's merged weights with the tokenizer files PEFT saved beside them.
        let peft = Fixture.path("llama-g/merged")
        let expected = dir.file("expected.gguf")
        _ = try GGUFExport.convert(input: peft, output: expected, options: .init(outType: outType))
        let ours = dir.file("ours.gguf")
        let merge = MergeOptions()  // the default arithmetic is PyTorch's fused multiply-add, bit-identical to PEFT
        _ = try GGUFExport.mergeAndExport(
            base: Fixture.path("llama-g/hf"), adapters: [Fixture.path("llama-g/lora")], output: ours,
            mergeOptions: merge, options: .init(outType: outType))
        let problems = try LlamaCppGoldenTests.differences(ours: ours, golden: expected)
        #expect(problems.isEmpty, "\(problems.prefix(5))")
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() == ["expected.gguf", "ours.gguf"])
    }
}
