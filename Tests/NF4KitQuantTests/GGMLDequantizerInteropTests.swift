import Foundation
import NF4KitCore
import NF4KitQuant
import NF4KitTestSupport
import Testing

/// Our ggml dequantizers against gguf-py's `quants.dequantize`, bit for bit, for every type gguf-py decodes.
///
/// The blocks are real ones cut from llama.cpp-written files (Fixtures/files/ggml-blocks: the golden llama-g
/// k-quants, IQ4_NL, IQ4_XS and legacy types), blocks of gguf-py's own quantizers, and random bytes with sane f16
/// scales (Tests/Interop/ggml_dequant_check.py).
@Suite struct GGMLDequantizerInteropTests {
    /// Every type gguf-py 0.19's `quants.dequantize` handles besides the plain ones (F32, F16, BF16).
    static let gguFPyTypes: [GGMLType] = [
        .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .tq1_0, .tq2_0, .mxfp4, .nvfp4,
        .iq2_xxs, .iq2_xs, .iq2_s, .iq3_xxs, .iq3_s, .iq1_s, .iq1_m, .iq4_nl, .iq4_xs,
    ]

    @Test func `every type gguf-py dequantizes decodes to gguf-py's values bit for bit`() throws {
        let dir = TemporaryDirectory("nf4kit-ggml-dequant")
        defer { dir.cleanup() }
        let result = try PythonInterop.run(
            script: "Tests/Interop/ggml_dequant_check.py",
            arguments: ["make", Fixture.path("ggml-blocks"), dir.path])
        try #require(result.status == 0, "\(result.stdout)\(result.stderr)")
        let listed = try String(contentsOfFile: dir.file("types.txt"), encoding: .utf8)
            .split(separator: "\n").map(String.init)
        #expect(listed == Self.gguFPyTypes.map(\.name))
        for type in Self.gguFPyTypes {
            #expect(GGMLBlockCodec.canDequantize(type), "\(type)")
            let blocks = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir.file("\(type.name).blocks"))))
            let expected = try Data(contentsOf: URL(fileURLWithPath: dir.file("\(type.name).f32")))
                .withUnsafeBytes { Array($0.bindMemory(to: UInt32.self)) }
            try #require(blocks.count % type.typeSize == 0 && blocks.count > 0, "\(type)")
            #expect(expected.count == blocks.count / type.typeSize * type.blockSize, "\(type)")
            var values = [Float](repeating: .nan, count: blocks.count / type.typeSize * type.blockSize)
            blocks.withUnsafeBytes { raw in
                values.withUnsafeMutableBufferPointer { GGMLBlockCodec.dequantize(raw, as: type, into: $0) }
            }
            let ours = values.map(\.bitPattern)
            let firstDifference = zip(ours, expected).enumerated().first { $0.element.0 != $0.element.1 }
            #expect(
                firstDifference == nil,
                "\(type): value \(firstDifference?.offset ?? -1) (block \((firstDifference?.offset ?? 0) / type.blockSize)) is \(Float(bitPattern: firstDifference?.element.0 ?? 0)), gguf-py says \(Float(bitPattern: firstDifference?.element.1 ?? 0))"
            )
        }
    }

    @Test func `a real Q4_K block decodes to the value gguf-py gives`() throws {
        // First block of blk.0.attn_output.weight in the golden Q3_K_M.gguf (llama-quantize). The expected values
        // are gguf-py's (quants.dequantize), pinned so the check runs without Python too.
        let blocks = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Fixture.path("ggml-blocks/Q4_K.blocks"))))
        var values = [Float](repeating: .nan, count: 256)
        blocks[0..<144].withUnsafeBytes { raw in
            values.withUnsafeMutableBufferPointer { GGMLBlockCodec.dequantize(raw, as: .q4_K, into: $0) }
        }
        #expect(values[0].bitPattern == Self.q4KFirst.0 && values[255].bitPattern == Self.q4KFirst.1)
    }

    static let q4KFirst: (UInt32, UInt32) = (0xbc6f_fa00, 0xbcfb_8b00)  // -0.014647007, -0.030705929
}
