import NF4Kit
import NF4KitCore
import NF4KitFormats
import NF4KitInspect
import NF4KitTestSupport
import Testing

/// `inspect` of GGUF files through the header-only readers: k-quants and unknown types, no decoding.
@Suite struct GGUFInspectTests {
    @Test func `the golden Q4_K_M lists bytes, weights and bits per weight by ggml type`() throws {
        let source = try ModelSource.open(Fixture.path("gguf-llama/gguf/Q4_K_M.gguf"), gguf: .stored)
        let report = try InspectionReport.inspect(source)
        let gguf = try #require(report.gguf)
        let byType = Dictionary(uniqueKeysWithValues: gguf.bytesByType.map { ($0.type, $0) })
        #expect(Set(byType.keys) == ["F32", "Q4_K", "Q6_K"])
        // llama-quantize's Q4_K_M mix (spec gguf-llama.md 5): output, blk.1.attn_v and blk.1.ffn_down are Q6_K.
        #expect(byType["Q6_K"]?.tensorCount == 3 && byType["Q6_K"]?.bitsPerWeight == 6.5625)
        #expect(byType["Q6_K"]?.elementCount == 256 * 1000 + 256 * 128 + 768 * 256)
        #expect(byType["Q6_K"]?.byteCount == (256 * 1000 + 256 * 128 + 768 * 256) / 256 * 210)
        #expect(byType["Q4_K"]?.tensorCount == 13 && byType["Q4_K"]?.bitsPerWeight == 4.5)
        #expect(byType["F32"]?.tensorCount == 5 && byType["F32"]?.bitsPerWeight == 32)
        // Every weight of the golden from-gguf/model.safetensors (transformers counts the same tensors).
        #expect(report.summary.parameterCount == 2_086_144)
    }

    @Test func `an unknown tensor type id is listed as unknown, not an error`() throws {
        let source = try ModelSource.open(Fixture.path("gguf/malformed/unknown_tensor_type.gguf"), gguf: .stored)
        let report = try InspectionReport.inspect(source)
        let unknown = try #require(report.gguf?.bytesByType.first { !$0.isKnown })
        #expect(unknown.type == "unknown(99)" && unknown.bitsPerWeight == nil && unknown.tensorCount == 1)
        #expect(report.gguf?.tensors.first { $0.name == "b" }?.ggmlType == "unknown(99)")
    }
}
