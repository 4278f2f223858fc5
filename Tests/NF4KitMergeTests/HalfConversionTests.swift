import NF4KitCore
import NF4KitMerge
import Testing

@Suite struct HalfConversionTests {
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
                if HalfConversion.halfBits(value) != Float16(value).bitPattern { mismatches += 1 }
            }
        }
        #expect(mismatches == 0)
    }

    @Test func `f32 to f16 rounding equals Float16's on a stride through all f32 bit patterns`() {
        var mismatches = 0
        var bits: UInt32 = 0
        while true {
            let value = Float(bitPattern: bits)
            if !value.isNaN && HalfConversion.halfBits(value) != Float16(value).bitPattern { mismatches += 1 }
            let (next, overflow) = bits.addingReportingOverflow(65_521)
            if overflow { break }
            bits = next
        }
        #expect(mismatches == 0)
        #expect(Float16(bitPattern: HalfConversion.halfBits(.nan)).isNaN)
        #expect(HalfConversion.halfBits(-.infinity) == 0xFC00)
        #expect(HalfConversion.halfBits(65_520) == 0x7C00)
        #expect(HalfConversion.halfBits(65_519.99) == 0x7BFF)
    }

    @Test func `f16 widening and narrowing round-trip whole buffers on several threads`() {
        let count = 600_000
        var source = [UInt16](repeating: 0, count: count)
        for i in 0..<count { source[i] = UInt16(truncatingIfNeeded: i &* 7919) & 0x7BFF }
        var floats = [Float](repeating: 0, count: count)
        var back = [UInt8](repeating: 0, count: count * 2)
        source.withUnsafeBytes { raw in
            floats.withUnsafeMutableBufferPointer { HalfConversion.widen(raw, from: .f16, into: $0, threadCount: 3) }
        }
        #expect(floats[12345] == Float(Float16(bitPattern: source[12345])))
        floats.withUnsafeBufferPointer { values in
            back.withUnsafeMutableBytes { HalfConversion.narrow(values, to: .f16, into: $0, threadCount: 3) }
        }
        #expect(back.withUnsafeBytes { Array($0.bindMemory(to: UInt16.self)) } == source)
    }
}
