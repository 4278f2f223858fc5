import NF4KitCore
import NF4KitFormats
import NF4KitQuant
import NF4KitTestSupport
import Testing

@Suite struct GGMLCodecTests {
    private func quantize(_ values: [Float], _ format: GGMLType) -> [UInt8] {
        var out = [UInt8](repeating: 0xAA, count: values.count / 32 * format.typeSize)
        values.withUnsafeBufferPointer { source in
            out.withUnsafeMutableBytes { GGMLBlockCodec.quantize(source, as: format, into: $0) }
        }
        return out
    }

    private func dequantize(_ bytes: [UInt8], _ format: GGMLType) -> [Float] {
        var out = [Float](repeating: .nan, count: bytes.count / format.typeSize * 32)
        bytes.withUnsafeBytes { raw in
            out.withUnsafeMutableBufferPointer { GGMLBlockCodec.dequantize(raw, as: format, into: $0) }
        }
        return out
    }

    private func hex(_ text: String) -> [UInt8] {
        text.split(separator: " ").map { UInt8($0, radix: 16)! }
    }

    private static let ramp: [Float] = (0..<32).map { Float($0 - 16) }

    @Test func `Q8_0 of the ramp -16 to 15 is the spec worked vector`() {
        let expected = hex(
            "08 30 81 89 91 99 a1 a9 b1 b9 c0 c8 d0 d8 e0 e8 f0 f8 00 08 10 18 20 28 30 38 40 47 4f 57 5f 67 6f 77")
        #expect(quantize(Self.ramp, .q8_0) == expected)
    }

    @Test func `Q4_0 of the ramp -16 to 15 is the spec worked vector and dequantizes to even steps`() {
        let expected = hex("00 40 80 91 91 a2 a2 b3 b3 c4 c4 d5 d5 e6 e6 f7 f7 f8")
        let bytes = quantize(Self.ramp, .q4_0)
        #expect(bytes == expected)
        let values: [Float] = [
            -16, -14, -14, -12, -12, -10, -10, -8, -8, -6, -6, -4, -4, -2, -2, 0,
            0, 2, 2, 4, 4, 6, 6, 8, 8, 10, 10, 12, 12, 14, 14, 14,
        ]
        #expect(dequantize(bytes, .q4_0) == values)
    }

    @Test func `all-zero blocks encode as the spec says`() {
        let zeros = [Float](repeating: 0, count: 32)
        #expect(quantize(zeros, .q8_0) == [UInt8](repeating: 0, count: 34))
        #expect(quantize(zeros, .q4_0) == [0x00, 0x80] + [UInt8](repeating: 0x88, count: 16))
    }

    @Test func `Q4_0 scale takes the sign of the first largest element`() {
        var x = [Float](repeating: 0.5, count: 32)
        x[3] = 4
        x[10] = -4
        #expect(Array(quantize(x, .q4_0).prefix(2)) == [0x00, 0xB8])
        #expect(Array(quantize(x.map { -$0 }, .q4_0).prefix(2)) == [0x00, 0x38])
    }

    @Test func `Q4_1 dequantizes code times d plus m with the Q4_0 nibble order`() {
        // d = 1.0 (f16 3c00), m = -2.0 (f16 c000); byte k holds k (low) and 15 - k (high).
        let block: [UInt8] = [0x00, 0x3C, 0x00, 0xC0] + (0..<16).map { UInt8($0) | UInt8(15 - $0) << 4 }
        let expected: [Float] = (0..<16).map { Float($0 - 2) } + (0..<16).map { Float(13 - $0) }
        #expect(dequantize(block, .q4_1) == expected)
    }

    @Test func `Q8_0 rounds half away from zero`() {
        // amax 127 gives d = 1 and id = 1; 0.5 -> 1 and -2.5 -> -3.
        var x = [Float](repeating: 0, count: 32)
        x[0] = 127
        x[1] = 0.5
        x[2] = -2.5
        let bytes = quantize(x, .q8_0)
        #expect(Array(bytes.prefix(5)) == [0x00, 0x3C, 127, 1, 0xFD])
    }

    @Test func `golden Q8_0 and Q4_0 tensors equal our quantization of the source and dequantize bit for bit`() throws {
        let file = try GGUFFile.read(path: Fixture.path("gguf/sample.gguf"))
        let expected = try GGUFTestSafetensors.byName(Fixture.path("gguf/sample.expected.safetensors"))
        for (name, format) in [("t.q8_0", GGMLType.q8_0), ("t.q4_0", .q4_0)] {
            let info = try #require(file.tensor(named: name))
            #expect(info.type.id == format.id)
            let stored = file.bytes(of: info).array
            let source = try #require(expected[name + ".source_f32"]).floats
            let reference = try #require(expected[name + ".dequant_f32"]).floats
            #expect(source.count == info.elementCount)
            #expect(quantize(source, format) == stored, "\(name)")
            #expect(dequantize(stored, format).map(\.bitPattern) == reference.map(\.bitPattern), "\(name)")
        }
    }

    @Test func `non-finite input does not trap`() {
        var x = [Float](repeating: 1, count: 32)
        x[5] = .infinity
        x[6] = .nan
        #expect(quantize(x, .q8_0).count == 34)
        #expect(quantize(x, .q4_0).count == 18)
    }

    @Test func `block formats have the ggml ids and sizes`() {
        #expect(GGMLType.q8_0.id == 8 && GGMLType.q8_0.typeSize == 34)
        #expect(GGMLType.q4_0.id == 2 && GGMLType.q4_0.typeSize == 18)
        #expect(GGMLType.q4_1.id == 3 && GGMLType.q4_1.typeSize == 20)
        #expect(GGMLType.q8_0.rowByteCount(elementCount: 64) == 68)
        #expect(GGMLType.q4_0.rowByteCount(elementCount: 33) == nil)
        #expect(GGMLBlockCodec.canQuantize(.q8_0) && GGMLBlockCodec.canQuantize(.q4_0))
        #expect(GGMLBlockCodec.canDequantize(.q4_1))
    }
}
