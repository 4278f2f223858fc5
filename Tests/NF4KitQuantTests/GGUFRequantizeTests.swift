import NF4Kit
import NF4KitCore
import NF4KitFormats
import NF4KitQuant
import NF4KitTestSupport
import Testing

/// `GGUFRequantize` on the golden F16.gguf must give llama-quantize's golden `<TYPE>.gguf`: the same tensors in the
/// same order (names, types, shapes, bytes) and the same metadata keys, types, values and order (except the cosmetic
/// general.name / basename / size_label).
@Suite struct GGUFRequantizeTests {
    static let cosmetic: Set<String> = ["general.name", "general.basename", "general.size_label"]

    /// Every file type with its llama-quantize output: the golden set, plus Q3_K_S, Q3_K_L, Q5_K_S and Q8_0 from a
    /// llama-quantize build of the same sources (whose Q4_K_M output is byte-identical to the golden one).
    static let references: [(String, String)] =
        GGMLReferenceQuantizerTests.fileTypes.map { ($0, "\($0).gguf") } + [
            ("Q3_K_S", "Q3_K_S.gguf"), ("Q3_K_L", "Q3_K_L.gguf"), ("Q5_K_S", "Q5_K_S.gguf"),
            ("Q8_0", "Q8_0-llama-quantize.gguf"),
        ]

    @Test(arguments: references)
    func `requantizing F16.gguf gives llama-quantize's file`(fileTypeName: String, reference: String) throws {
        let scratch = TemporaryDirectory("nf4kit-requantize")
        defer { scratch.cleanup() }
        let output = scratch.file("\(fileTypeName).gguf")
        let fileType = try #require(LlamaFileType(name: fileTypeName.lowercased()))
        let summary = try GGUFRequantize.run(
            input: Fixture.path("llama-g/gguf/F16.gguf"), output: output, fileType: fileType, threads: 2)
        let ours = try GGUFFile.read(path: output)
        let golden = try GGUFFile.read(path: Fixture.path("llama-g/gguf/\(reference)"))
        #expect(summary.outputByteCount == golden.region.count)

        #expect(ours.tensors.map(\.name) == golden.tensors.map(\.name))
        for (mine, theirs) in zip(ours.tensors, golden.tensors) {
            #expect(mine.type == theirs.type, "\(fileTypeName): \(theirs.name)")
            #expect(mine.dimensions == theirs.dimensions, "\(fileTypeName): \(theirs.name)")
            #expect(mine.relativeOffset == theirs.relativeOffset, "\(fileTypeName): \(theirs.name)")
            let same = ours.bytes(of: mine).withUnsafeBytes { a in
                golden.bytes(of: theirs).withUnsafeBytes { b in a.elementsEqual(b) }
            }
            #expect(same, "\(fileTypeName): bytes of \(theirs.name)")
        }

        let mineKeys = ours.metadata.filter { !Self.cosmetic.contains($0.key) }
        let theirKeys = golden.metadata.filter { !Self.cosmetic.contains($0.key) }
        #expect(mineKeys.map(\.key) == theirKeys.map(\.key))
        for (mine, theirs) in zip(mineKeys, theirKeys) {
            #expect(mine.value == theirs.value, "\(fileTypeName): metadata \(theirs.key)")
        }
    }

    @Test func `gguf-py agrees that the Q4_K_M output equals llama-quantize's`() throws {
        let scratch = TemporaryDirectory("nf4kit-requantize")
        defer { scratch.cleanup() }
        let output = scratch.file("Q4_K_M.gguf")
        try GGUFRequantize.run(
            input: Fixture.path("llama-g/gguf/F16.gguf"), output: output,
            fileType: #require(LlamaFileType(name: "Q4_K_M")))
        let result = try PythonInterop.run(
            script: "Tests/Interop/gguf_compare.py", arguments: [output, Fixture.path("llama-g/gguf/Q4_K_M.gguf")])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.hasPrefix("OK"), "\(result.stdout)")
    }

    @Test func `file type names are llama-quantize's, in any case, with its general.file_type values`() {
        #expect(LlamaFileType(name: "q4_k_m")?.fileTypeID == 15)
        #expect(LlamaFileType(name: "Q4_K_M") == LlamaFileType(name: "q4_K_m"))
        #expect(LlamaFileType(name: "iq4_xs")?.fileTypeID == 30)
        #expect(LlamaFileType(name: "Q8_0")?.fileTypeID == 7)
        #expect(LlamaFileType(name: "q4_k") == nil)
        #expect(LlamaFileType.all.count == 16)
    }

    @Test func `a row length that is not a multiple of 256 falls back as llama-quantize does`() {
        let model = LlamaQuantMix.Model(architecture: "llama", layerCount: 1, headCount: 4, kvHeadCount: 4)
        func type(_ name: String, _ columns: Int, _ fileType: String) -> GGMLType? {
            let tensors = [
                LlamaQuantMix.Tensor(name: name, dimensions: [columns, 64], type: .f16),
                LlamaQuantMix.Tensor(name: "output.weight", dimensions: [256, 64], type: .f16),
            ]
            return LlamaQuantMix.plan(fileType: LlamaFileType(name: fileType)!, model: model, tensors: tensors)
                .first { $0.tensor.name == name }?.type
        }
        // tensor_type_fallback: Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, Q2_K/Q3_K -> Q4_0, IQ4_XS -> IQ4_NL,
        // and F16 when not even 32 divides the row.
        #expect(type("blk.0.attn_q.weight", 96, "Q4_K_M") == .q5_0)
        #expect(type("blk.0.attn_q.weight", 96, "Q5_K_S") == .q5_1)
        #expect(type("blk.0.attn_q.weight", 96, "Q6_K") == .q8_0)
        #expect(type("blk.0.attn_q.weight", 96, "Q3_K_S") == .q4_0)
        #expect(type("blk.0.attn_q.weight", 96, "IQ4_XS") == .iq4_nl)
        #expect(type("blk.0.attn_q.weight", 40, "Q4_K_M") == .f16)
        #expect(type("blk.0.attn_q.weight", 40, "Q4_0") == .f16)
        // norms and 1-D tensors are copied.
        #expect(type("blk.0.attn_norm.weight", 256, "Q4_K_M") == .f16)
    }
}
