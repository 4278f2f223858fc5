import NF4KitCore
import NF4KitTestSupport
import Testing

@Suite struct FloatConversionTests {
    @Test func `bf16 rounds to nearest even`() {
        // 1 + 2^-8 is exactly halfway between bf16 1.0 and 1.0078125: ties go to the even one (1.0).
        #expect(FloatConversion.bfloat16Bits(fromFloatBits: Float(1 + 1.0 / 256).bitPattern) == 0x3F80)
        // 1 + 3 * 2^-8 is halfway between 1.0078125 (odd) and 1.015625 (even): rounds up.
        #expect(FloatConversion.bfloat16Bits(fromFloatBits: Float(1 + 3.0 / 256).bitPattern) == 0x3F82)
        #expect(FloatConversion.bfloat16Bits(fromFloatBits: Float.infinity.bitPattern) == 0x7F80)
        let nan = FloatConversion.bfloat16Bits(fromFloatBits: Float.nan.bitPattern)
        #expect(FloatConversion.float(fromBFloat16Bits: nan).isNaN)
    }

    @Test func `f64 to bf16 does not double round`() {
        // 1 + 2^-8 + 2^-40 is just above the bf16 midpoint; via f32 RNE it would land on the midpoint and tie to 1.0.
        let value: Double = 1 + 1.0 / 256 + 1.0 / 1_099_511_627_776
        let bytes = withUnsafeBytes(of: value.bitPattern.littleEndian) {
            FloatConversion.convert($0, from: .f64, to: .bf16, count: 1)
        }
        #expect(bytes == [0x81, 0x3F])
    }

    @Test(arguments: [DType.f16, .bf16, .f32, .f64])
    func `round trip through f32 is exact for representable values`(dtype: DType) {
        let values: [Float] = [0, -0.0, 1, -2, 0.5, 2048, -384, 1.0 / 1024]
        var raw = [UInt8](repeating: 0, count: values.count * dtype.bitWidth / 8)
        _ = values.withUnsafeBufferPointer { src in
            raw.withUnsafeMutableBytes { FloatConversion.narrow(src, to: dtype, into: $0) }
        }
        var back = [Float](repeating: 7, count: values.count)
        raw.withUnsafeBytes { src in
            back.withUnsafeMutableBufferPointer { FloatConversion.widen(src, from: dtype, into: $0) }
        }
        #expect(back.map(\.bitPattern) == values.map(\.bitPattern))
    }
}
