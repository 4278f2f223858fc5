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
        if a.tensors.count != b.tensors.count { problems.append("tensor count \(a.tensors.count) != \(b.tensors.count)") }
        for ref in b.tensors {
            guard let mine = oursByName[ref.name] else {
                problems.append("tensor \(ref.name) missing")
                continue
            }
            if mine.type != ref.type { problems.append("\(ref.name): type \(mine.type) != \(ref.type)") }
            if mine.dimensions != ref.dimensions { problems.append("\(ref.name): ne \(mine.dimensions) != \(ref.dimensions)") }
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
