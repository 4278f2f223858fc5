import NF4KitCore
import NF4KitQuant
import Testing

/// The spec's worked examples A-C (verified there against bitsandbytes 0.50.2 on CPU).
@Suite struct WorkedExampleTests {
    /// bf16 little-endian bytes of values that are exact in bf16.
    static func bf16Bytes(_ values: [Float]) -> [UInt8] {
        values.flatMap { v -> [UInt8] in
            let bits = UInt16(v.bitPattern >> 16)
            precondition(Float(bitPattern: UInt32(bits) << 16) == v, "not exact in bf16")
            return [UInt8(bits & 0xFF), UInt8(bits >> 8)]
        }
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef")
        return String(bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] })
    }

    static func quantize(_ bytes: [UInt8], shape: Shape, doubleQuantization: Bool) throws -> QuantizedTensor {
        try bytes.withUnsafeBytes {
            try BlockQuantizer(quantType: .nf4, blocksize: 64).quantize(
                $0, dtype: .bf16, shape: shape, doubleQuantization: doubleQuantization)
        }
    }

    @Test func `example A: two blocks of a bf16 2x64 weight without double quantization`() throws {
        var values = (0..<64).map { Float($0 - 32) / 16 }
        values += [
            0.30078125, -0.050048828125, 0, 0.010009765625, -0.30078125, 0.1201171875, -0.2001953125, 0.06982421875,
        ]
        values += [Float](repeating: 0, count: 56)
        let q = try Self.quantize(Self.bf16Bytes(values), shape: [2, 64], doubleQuantization: false)
        #expect(q.absmaxValues() == [2.0, 0.30078125])
        #expect(
            Self.hex(q.packed.array)
                == "000001111111122222333344455566677788999aaabbbccccddddeeeeeeeffff"
                + "f5770c1a77777777777777777777777777777777777777777777777777777777")
        let restored = q.dequantized().elements(as: UInt16.self).map { Float(bitPattern: UInt32($0) << 16) }
        #expect(
            Array(restored[64..<72]) == [
                0.30078125, -0.0556640625, 0, 0, -0.30078125, 0.1328125, -0.208984375, 0.07421875,
            ])
        let tensors = try q.bnbTensors(weightName: "layer.weight")
        #expect(
            tensors.map(\.name) == [
                "layer.weight", "layer.weight.absmax", "layer.weight.quant_map",
                "layer.weight.quant_state.bitsandbytes__nf4",
            ])
        #expect(tensors.map(\.dtype) == [.u8, .f32, .f32, .u8])
        #expect(tensors.map(\.shape) == [[64, 1], [2], [16], [77]])
        #expect(
            String(decoding: tensors[3].bytes.array, as: UTF8.self)
                == #"{"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [2, 64]}"#)
    }

    @Test func `example B: double quantization of four one-value rows`() throws {
        var values: [Float] = []
        for a: Float in [1.0, 0.5, 0.25, 2.0] { values += [a] + [Float](repeating: 0, count: 63) }
        let q = try Self.quantize(Self.bf16Bytes(values), shape: [4, 64], doubleQuantization: true)
        guard case .double(let dq) = q.statistics else {
            Issue.record("expected double quantization")
            return
        }
        #expect(dq.offset == 0.9375)
        #expect(dq.codes.array == [176, 41, 25, 255])
        #expect(dq.nestedAbsmax.elements(as: UInt32.self).map(Float.init(bitPattern:)) == [1.0625])
        #expect(q.absmaxValues() == [1.0004199743270874, 0.49506837129592896, 0.25600582361221313, 2.0])
        let row: [UInt8] = [0xF7] + [UInt8](repeating: 0x77, count: 31)
        #expect(q.packed.array == row + row + row + row)
        let tensors = try q.bnbTensors(weightName: "weight")
        #expect(
            tensors.map(\.name) == [
                "weight", "weight.absmax", "weight.quant_map", "weight.nested_absmax", "weight.nested_quant_map",
                "weight.quant_state.bitsandbytes__nf4",
            ])
        #expect(tensors.map(\.dtype) == [.u8, .u8, .f32, .f32, .f32, .u8])
        #expect(tensors.map(\.shape) == [[128, 1], [4], [16], [1], [256], [154]])
        #expect(
            String(decoding: tensors[5].bytes.array, as: UTF8.self)
                == #"{"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [4, 64], "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": 0.9375}"#
        )
    }

    @Test func `example C: odd length and a partial block of linspace values`() throws {
        // bf16(torch.linspace(-1, 1, 63)): float32 linspace rounded to bf16; the coarse bf16 grid absorbs the
        // last-bit differences of how linspace is evaluated.
        let values = (0..<63).map { i -> Float in
            let f = Float(-1 + 2 * Double(i) / 62)
            let bits = FloatConversion.bfloat16Bits(fromFloatBits: f.bitPattern)
            return Float(bitPattern: UInt32(bits) << 16)
        }
        let q = try Self.quantize(Self.bf16Bytes(values), shape: [3, 21], doubleQuantization: false)
        #expect(q.absmaxValues() == [1.0])
        #expect(try q.bnbTensors(weightName: "w")[0].shape == [32, 1])
        #expect(Self.hex(q.packed.array) == "00000111111112222333344455566677788999aaabbbcccddddeeeeeeefffff7")
    }

    @Test func `code tables have the spec's bit patterns`() {
        #expect(NF4Codebook.nf4.map(\.bitPattern)[1] == 0xBF32_39B1)
        #expect(NF4Codebook.nf4.map(\.bitPattern)[14] == 0x3F39_13B3)
        #expect(
            NF4Codebook.fp4.map(\.bitPattern) == [
                0x0000_0000, 0x3BAA_AAAB, 0x3F2A_AAAB, 0x3F80_0000, 0x3EAA_AAAB, 0x3F00_0000, 0x3E2A_AAAB, 0x3E80_0000,
                0x0000_0000, 0xBBAA_AAAB, 0xBF2A_AAAB, 0xBF80_0000, 0xBEAA_AAAB, 0xBF00_0000, 0xBE2A_AAAB, 0xBE80_0000,
            ])
        let d = NF4Codebook.dynamic8Bit
        #expect(d.count == 256)
        #expect(d[0].bitPattern == 0xBF7E_3333 && d[127] == 0 && d[255] == 1 && d[128].bitPattern == 0x3513_A3B7)
        #expect((0..<127).allSatisfy { d[$0] == -d[254 - $0] })
        #expect((0..<255).allSatisfy { d[$0] < d[$0 + 1] })
    }
}
