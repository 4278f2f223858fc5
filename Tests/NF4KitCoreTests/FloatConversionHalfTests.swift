import NF4KitCore
import Testing

@Suite struct FloatConversionHalfTests {
    @Test func `f32 to f16 rounding equals Float16's on every f16 value, its neighbours and midpoints`() {
        var mismatches = 0
        for bits in 0..<65_536 {
            let half = Float16(bitPattern: UInt16(bits))
            guard !half.isNaN else { continue }
            let center = Float(half)
            // The f16 value itself, f32 neighbours, and the midpoints to the next f16 (ties) plus their neighbours.
            let next = Float(half.nextUp)
            let mid = (center + next) / 2
            for value in [center, center.nextUp, center.nextDown, mid, mid.nextUp, mid.nextDown] where !value.isNaN {
                if FloatConversion.halfBits(from: value) != Float16(value).bitPattern { mismatches += 1 }
            }
        }
        #expect(mismatches == 0)
    }

    @Test func `f32 to f16 rounding equals Float16's on a stride through all f32 bit patterns`() {
        var mismatches = 0
        var bits: UInt32 = 0
        while true {
            let value = Float(bitPattern: bits)
            if !value.isNaN && FloatConversion.halfBits(from: value) != Float16(value).bitPattern { mismatches += 1 }
            let (next, overflow) = bits.addingReportingOverflow(65_521)
            if overflow { break }
            bits = next
        }
        #expect(mismatches == 0)
        #expect(Float16(bitPattern: FloatConversion.halfBits(from: .nan)).isNaN)
        #expect(FloatConversion.halfBits(from: -.infinity) == 0xFC00)
        #expect(FloatConversion.halfBits(from: 65_520) == 0x7C00)
        #expect(FloatConversion.halfBits(from: 65_519.99) == 0x7BFF)
    }

    @Test func `f16 widening and narrowing round-trip whole buffers on several threads`() {
        let count = 600_000
        var source = [UInt16](repeating: 0, count: count)
        for i in 0..<count { source[i] = UInt16(truncatingIfNeeded: i &* 7919) & 0x7BFF }
        var floats = [Float](repeating: 0, count: count)
        var back = [UInt8](repeating: 0, count: count * 2)
        source.withUnsafeBytes { raw in
            floats.withUnsafeMutableBufferPointer { FloatConversion.widen(raw, from: .f16, into: $0, threadCount: 3) }
        }
        #expect(floats[12345] == Float(Float16(bitPattern: source[12345])))
        _ = floats.withUnsafeBufferPointer { values in
            back.withUnsafeMutableBytes { FloatConversion.narrow(values, to: .f16, into: $0, threadCount: 3) }
        }
        #expect(back.withUnsafeBytes { Array($0.bindMemory(to: UInt16.self)) } == source)
    }

    @Test(arguments: [DType.f16, .bf16, .f32])
    func `narrowing reports values that overflow the output dtype as non-finite`(dtype: DType) {
        // 1e30 is finite in f32 but above the f16 maximum; 3.4e38 rounds up to bf16 infinity.
        let overflow: Float = dtype == .f16 ? 1e30 : 3.4e38
        let expectFinite = dtype == .f32
        for values in [[Float](repeating: 1, count: 9) + [overflow], [0.5, -2]] {
            var out = [UInt8](repeating: 0, count: values.count * dtype.bitWidth / 8)
            let finite = values.withUnsafeBufferPointer { source in
                out.withUnsafeMutableBytes { FloatConversion.narrow(source, to: dtype, into: $0) }
            }
            #expect(finite == (values.count == 2 || expectFinite), "\(dtype) \(values)")
        }
        #expect(FloatConversion.bfloat16Bits(fromFloatBits: Float(3.4e38).bitPattern) == 0x7F80)
    }
}
