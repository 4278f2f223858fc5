public import NF4KitCore

/// 4-bit codes back to floats: `table[code] * absmax[block]` in float32, then rounded once to the output dtype.
///
/// Per block the 16 possible outputs are computed first, so each element is one nibble look-up.
enum DequantizeKernel {
    static func run(
        blocks: Range<Int>, packed: UnsafeRawBufferPointer, absmax: UnsafeBufferPointer<Float>, elementCount: Int,
        blocksize: Int, table: UnsafeBufferPointer<Float>, output: UnsafeMutableRawBufferPointer, dtype: DType
    ) {
        precondition(table.count == 16, "DequantizeKernel: code table must have 16 entries")
        let source = packed.baseAddress!
        let destination = output.baseAddress!
        for block in blocks {
            let start = block &* blocksize
            let count = min(blocksize, elementCount &- start)
            let scale = absmax[block]
            var values = SIMD16<Float>()
            for k in 0..<16 { values[k] = product(table[k], scale) }
            switch dtype {
            case .f32:
                store(values.bitPattern(), UInt32.self, source, start, count, destination)
            case .bf16:
                var bits = SIMD16<UInt16>()
                for k in 0..<16 { bits[k] = FloatConversion.bfloat16Bits(fromFloatBits: values[k].bitPattern) }
                store(bits, UInt16.self, source, start, count, destination)
            case .f16:
                var bits = SIMD16<UInt16>()
                for k in 0..<16 { bits[k] = FloatConversion.halfBits(from: values[k]) }
                store(bits, UInt16.self, source, start, count, destination)
            case .f64:
                var bits = [UInt64](repeating: 0, count: 16)  // rare output type; not a hot path
                for k in 0..<16 { bits[k] = Double(values[k]).bitPattern }
                for e in start..<(start &+ count) {
                    let byte = source.load(fromByteOffset: e >> 1, as: UInt8.self)
                    let code = e & 1 == 0 ? byte >> 4 : byte & 0x0F
                    destination.storeBytes(of: bits[Int(code)].littleEndian, toByteOffset: e &* 8, as: UInt64.self)
                }
            default:
                preconditionFailure("DequantizeKernel: \(dtype) is not a float output")
            }
        }
    }

    /// fl32(a * b) with x86's NaN results on every platform: 0 * inf gives the default NaN 0xFFC00000, a NaN
    /// absmax propagates quieted (spec 11, item 8).
    @inline(__always)
    static func product(_ value: Float, _ scale: Float) -> Float {
        let result = value * scale
        if !result.isNaN { return result }
        if scale.isNaN { return Float(bitPattern: scale.bitPattern | 0x0040_0000) }
        return Float(bitPattern: 0xFFC0_0000)
    }

    @inline(__always)
    private static func store<T: FixedWidthInteger & SIMDScalar>(
        _ bits: SIMD16<T>, _ type: T.Type, _ source: UnsafeRawPointer, _ start: Int, _ count: Int,
        _ destination: UnsafeMutableRawPointer
    ) {
        let width = MemoryLayout<T>.size
        var e = start
        let end = start &+ count
        while e &+ 1 < end {
            let byte = source.load(fromByteOffset: e >> 1, as: UInt8.self)
            destination.storeBytes(of: bits[Int(byte >> 4)].littleEndian, toByteOffset: e &* width, as: T.self)
            destination.storeBytes(of: bits[Int(byte & 0x0F)].littleEndian, toByteOffset: (e &+ 1) &* width, as: T.self)
            e &+= 2
        }
        if e < end {
            let byte = source.load(fromByteOffset: e >> 1, as: UInt8.self)
            destination.storeBytes(of: bits[Int(byte >> 4)].littleEndian, toByteOffset: e &* width, as: T.self)
        }
    }
}

extension SIMD16 where Scalar == Float {
    @inline(__always)
    fileprivate func bitPattern() -> SIMD16<UInt32> {
        var result = SIMD16<UInt32>()
        for k in 0..<16 { result[k] = self[k].bitPattern }
        return result
    }
}
