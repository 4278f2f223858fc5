/// Conversions between the floating-point storage types F16, BF16, F32 and F64.
///
/// Every narrowing rounds to nearest, ties to even, in one step (F64 to BF16 goes through F32 with
/// round-to-odd, which cannot double-round). NaN stays NaN (quiet), infinities stay infinite.
/// Buffers are raw little-endian bytes and may be unaligned.
public enum FloatConversion {
    /// bf16 bits from f32 bits, round to nearest even; NaN becomes a quiet NaN with the same sign.
    @inline(__always)
    public static func bfloat16Bits(fromFloatBits bits: UInt32) -> UInt16 {
        if bits & 0x7FFF_FFFF > 0x7F80_0000 { return UInt16(truncatingIfNeeded: bits >> 16) | 0x0040 }
        let rounding = 0x7FFF &+ ((bits >> 16) & 1)
        return UInt16(truncatingIfNeeded: (bits &+ rounding) >> 16)
    }

    /// f32 from bf16 bits (exact).
    @inline(__always)
    public static func float(fromBFloat16Bits bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }

    /// f32 from f16 bits (exact).
    @inline(__always)
    public static func float(fromHalfBits bits: UInt16) -> Float { Float(Float16(bitPattern: bits)) }

    /// f16 bits from f32, round to nearest even.
    @inline(__always)
    public static func halfBits(from value: Float) -> UInt16 { Float16(value).bitPattern }

    /// f32 nearest to `value` by round-to-odd: exact values stay, inexact ones get the odd neighbour toward zero.
    /// Rounding that result to any format with at most 22 significant bits equals rounding `value` directly.
    @inline(__always)
    static func floatRoundedToOdd(_ value: Double) -> Float {
        let nearest = Float(value)
        if value.isNaN || Double(nearest) == value { return nearest }
        var truncated = nearest
        if abs(Double(nearest)) > abs(value) {
            truncated = Float(bitPattern: nearest.bitPattern - 1)  // one step toward zero (same sign)
        }
        return Float(bitPattern: truncated.bitPattern | 1)
    }

    /// Reads element `index` of a float buffer of `dtype` as f32 (f64 rounds to nearest even).
    @inline(__always)
    public static func loadFloat(_ raw: UnsafeRawBufferPointer, _ index: Int, _ dtype: DType) -> Float {
        switch dtype {
        case .f16: float(fromHalfBits: UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: index * 2, as: UInt16.self)))
        case .bf16:
            float(fromBFloat16Bits: UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: index * 2, as: UInt16.self)))
        case .f32: Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: index * 4, as: UInt32.self)))
        case .f64:
            Float(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self))))
        default: preconditionFailure("loadFloat: \(dtype) is not a float storage type")
        }
    }

    /// Widens (or, for F64, rounds) `source` of `dtype` into `destination`.
    ///
    /// Precondition: `destination.count` elements are present in `source`.
    public static func widen(_ source: UnsafeRawBufferPointer, from dtype: DType, into destination: UnsafeMutableBufferPointer<Float>) {
        let count = destination.count
        precondition(source.count >= count * dtype.bitWidth / 8, "widen: source too short")
        switch dtype {
        case .f32:
            if count > 0 { UnsafeMutableRawBufferPointer(destination).copyMemory(from: UnsafeRawBufferPointer(rebasing: source[0..<(count * 4)])) }
        case .f16:
            for i in 0..<count {
                destination[i] = float(fromHalfBits: UInt16(littleEndian: source.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)))
            }
        case .bf16:
            for i in 0..<count {
                destination[i] = float(fromBFloat16Bits: UInt16(littleEndian: source.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)))
            }
        case .f64:
            for i in 0..<count {
                destination[i] = Float(Double(bitPattern: UInt64(littleEndian: source.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self))))
            }
        default:
            preconditionFailure("widen: \(dtype) is not a float storage type")
        }
    }

    /// Narrows (or widens, for F64) f32 values into `destination` as `dtype`, rounding once.
    public static func narrow(_ source: UnsafeBufferPointer<Float>, to dtype: DType, into destination: UnsafeMutableRawBufferPointer) {
        let count = source.count
        precondition(destination.count >= count * dtype.bitWidth / 8, "narrow: destination too short")
        switch dtype {
        case .f32:
            if count > 0 { destination.copyMemory(from: UnsafeRawBufferPointer(source)) }
        case .f16:
            for i in 0..<count { destination.storeBytes(of: halfBits(from: source[i]).littleEndian, toByteOffset: i * 2, as: UInt16.self) }
        case .bf16:
            for i in 0..<count {
                destination.storeBytes(of: bfloat16Bits(fromFloatBits: source[i].bitPattern).littleEndian, toByteOffset: i * 2, as: UInt16.self)
            }
        case .f64:
            for i in 0..<count {
                destination.storeBytes(of: Double(source[i]).bitPattern.littleEndian, toByteOffset: i * 8, as: UInt64.self)
            }
        default:
            preconditionFailure("narrow: \(dtype) is not a float storage type")
        }
    }

    /// Converts `count` elements between any two of F16, BF16, F32, F64 with a single rounding.
    ///
    /// - Returns: The converted bytes. Precondition: both dtypes satisfy ``DType/isConvertibleFloat``.
    public static func convert(_ source: UnsafeRawBufferPointer, from: DType, to: DType, count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count * to.bitWidth / 8)
        out.withUnsafeMutableBytes { convert(source, from: from, to: to, count: count, into: $0) }
        return out
    }

    /// Converts `count` elements into `destination` (at least `count` elements of `to`), as
    /// ``convert(_:from:to:count:)`` does, without allocating.
    public static func convert(
        _ source: UnsafeRawBufferPointer, from: DType, to: DType, count: Int, into dst: UnsafeMutableRawBufferPointer
    ) {
        precondition(from.isConvertibleFloat && to.isConvertibleFloat, "convert: \(from) -> \(to) is not a float conversion")
        precondition(dst.count >= count * to.bitWidth / 8, "convert: destination too short")
        if from == to {
            if count > 0 { dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[0..<(count * from.bitWidth / 8)])) }
            return
        }
        for i in 0..<count {
            if from == .f64 {
                let value = Double(bitPattern: UInt64(littleEndian: source.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)))
                switch to {
                case .f16: dst.storeBytes(of: Float16(value).bitPattern.littleEndian, toByteOffset: i * 2, as: UInt16.self)
                case .bf16:
                    let bits = bfloat16Bits(fromFloatBits: floatRoundedToOdd(value).bitPattern)
                    dst.storeBytes(of: bits.littleEndian, toByteOffset: i * 2, as: UInt16.self)
                default: dst.storeBytes(of: Float(value).bitPattern.littleEndian, toByteOffset: i * 4, as: UInt32.self)
                }
            } else {
                let value = loadFloat(source, i, from)
                switch to {
                case .f16: dst.storeBytes(of: halfBits(from: value).littleEndian, toByteOffset: i * 2, as: UInt16.self)
                case .bf16: dst.storeBytes(of: bfloat16Bits(fromFloatBits: value.bitPattern).littleEndian, toByteOffset: i * 2, as: UInt16.self)
                case .f32: dst.storeBytes(of: value.bitPattern.littleEndian, toByteOffset: i * 4, as: UInt32.self)
                default: dst.storeBytes(of: Double(value).bitPattern.littleEndian, toByteOffset: i * 8, as: UInt64.self)
                }
            }
        }
    }
}
