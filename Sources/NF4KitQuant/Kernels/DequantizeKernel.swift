import NF4KitCore

/// 4-bit codes back to floats: `table[code] * absmax[block]` in float32, then rounded once to the output dtype.
///
/// Per block the 16 possible outputs are computed and converted first, so each element is one nibble look-up.
enum DequantizeKernel {
    static func run(
        blocks: Range<Int>, packed: UnsafeRawBufferPointer, absmax: UnsafeBufferPointer<Float>, elementCount: Int,
        blocksize: Int, table: UnsafeBufferPointer<Float>, output: UnsafeMutableRawBufferPointer, dtype: DType,
        outputStart: Int
    ) {
        precondition(table.count == 16, "DequantizeKernel: code table must have 16 entries")
        let source = packed.baseAddress!.assumingMemoryBound(to: UInt8.self)
        let destination = output.baseAddress!
        withUnsafeTemporaryAllocation(of: UInt64.self, capacity: 16) { scratch in
            let outputs = scratch.baseAddress!
            for block in blocks {
                let start = block &* blocksize
                let count = min(blocksize, elementCount &- start)
                let scale = absmax[block]
                for k in 0..<16 {
                    let value = product(table[k], scale)
                    switch dtype {
                    case .f32: outputs[k] = UInt64(value.bitPattern)
                    case .bf16: outputs[k] = UInt64(FloatConversion.bfloat16Bits(fromFloatBits: value.bitPattern))
                    case .f16: outputs[k] = UInt64(halfBits(value))
                    case .f64: outputs[k] = Double(value).bitPattern
                    default: preconditionFailure("DequantizeKernel: \(dtype) is not a float output")
                    }
                }
                switch dtype {
                case .f32: scatter(UInt32.self, outputs, source, start, count, destination, start &- outputStart)
                case .f64: scatter(UInt64.self, outputs, source, start, count, destination, start &- outputStart)
                default: scatter(UInt16.self, outputs, source, start, count, destination, start &- outputStart)
                }
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

    /// f16 bits of a float32, round to nearest even, in integer arithmetic.
    ///
    /// Same result as `Float16(value)` (checked against it in the tests), which is a software routine on baseline
    /// x86-64 and cost more than the rest of the dequantization. NaN keeps its sign and top payload bits, quieted.
    @inline(__always)
    static func halfBits(_ value: Float) -> UInt16 {
        let x = value.bitPattern
        let sign = UInt16(truncatingIfNeeded: (x >> 16) & 0x8000)
        let a = x & 0x7FFF_FFFF
        if a >= 0x7F80_0000 {
            return sign | (a > 0x7F80_0000 ? 0x7E00 | UInt16(truncatingIfNeeded: (a >> 13) & 0x3FF) : 0x7C00)
        }
        if a >= 0x477F_F000 { return sign | 0x7C00 }  // >= 65520 rounds to infinity
        if a >= 0x3880_0000 {  // normal f16 (>= 2^-14): rebias the exponent by 112, round off 13 bits
            let r = a &- 0x3800_0000
            return sign | UInt16(truncatingIfNeeded: (r &+ 0xFFF &+ ((r >> 13) & 1)) >> 13)
        }
        let exponent = a >> 23
        if exponent < 102 { return sign }  // below 2^-25: rounds to zero
        // Subnormal f16: the value in units of 2^-24 is mantissa * 2^(exponent - 126), rounded to nearest even.
        let mantissa = (a & 0x7F_FFFF) | 0x80_0000
        let shift = 126 &- exponent
        let halfway = UInt32(1) << (shift &- 1)
        let remainder = mantissa & ((UInt32(1) << shift) &- 1)
        var result = mantissa >> shift
        if remainder > halfway || (remainder == halfway && result & 1 == 1) { result &+= 1 }
        return sign | UInt16(truncatingIfNeeded: result)
    }

    /// Writes element e = outputs[nibble e] at `outputIndex + (e - start)` of `destination` for the block's elements (little-endian, `T`-sized).
    @inline(__always)
    private static func scatter<T: FixedWidthInteger>(
        _ type: T.Type, _ outputs: UnsafeMutablePointer<UInt64>, _ source: UnsafePointer<UInt8>, _ start: Int,
        _ count: Int,
        _ destination: UnsafeMutableRawPointer, _ outputIndex: Int
    ) {
        let width = MemoryLayout<T>.size
        let out = destination + outputIndex &* width
        let bytes = source + (start >> 1)
        for j in 0..<(count >> 1) {
            let byte = bytes[j]
            let high = T(truncatingIfNeeded: outputs[Int(byte >> 4)]).littleEndian
            let low = T(truncatingIfNeeded: outputs[Int(byte & 0x0F)]).littleEndian
            out.storeBytes(of: high, toByteOffset: (2 &* j) &* width, as: T.self)
            out.storeBytes(of: low, toByteOffset: (2 &* j &+ 1) &* width, as: T.self)
        }
        if count & 1 == 1 {
            let byte = bytes[count >> 1]
            out.storeBytes(
                of: T(truncatingIfNeeded: outputs[Int(byte >> 4)]).littleEndian, toByteOffset: (count &- 1) &* width,
                as: T.self)
        }
    }
}
