import Synchronization

/// Conversions between the floating-point storage types F16, BF16, F32 and F64: the one implementation every
/// module uses.
///
/// Every narrowing rounds to nearest, ties to even, in one step (F64 to BF16 goes through F32 with
/// round-to-odd, which cannot double-round). NaN stays NaN (quiet), infinities stay infinite.
/// Buffers are raw little-endian bytes and may be unaligned.
///
/// A baseline x86-64 build has no F16C, so `Float(Float16)` and `Float16(Float)` are library calls
/// (`__extendhfsf2`, `__truncsfhf2`); profiling a 336 M-parameter merge put 36 % of its time in them. Widening
/// f16 therefore reads a 65 536-entry table (256 KiB, built once) and narrowing rounds with integer operations
/// (the float-add trick for subnormals); both are tested against `Float16` on every f16 value.
package enum FloatConversion {
    /// bf16 bits from f32 bits, round to nearest even; NaN becomes a quiet NaN with the same sign.
    @inline(__always)
    package static func bfloat16Bits(fromFloatBits bits: UInt32) -> UInt16 {
        if bits & 0x7FFF_FFFF > 0x7F80_0000 { return UInt16(truncatingIfNeeded: bits >> 16) | 0x0040 }
        let rounding = 0x7FFF &+ ((bits >> 16) & 1)
        return UInt16(truncatingIfNeeded: (bits &+ rounding) >> 16)
    }

    /// f32 from bf16 bits (exact).
    @inline(__always)
    package static func float(fromBFloat16Bits bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }

    /// f32 from f16 bits (exact).
    @inline(__always)
    package static func float(fromHalfBits bits: UInt16) -> Float { halfTable[Int(bits)] }

    /// f16 bits from f32, round to nearest even; NaN goes through `Float16.init` so payloads match it.
    @inline(__always)
    package static func halfBits(from value: Float) -> UInt16 {
        var bits = value.bitPattern
        let sign = UInt16(truncatingIfNeeded: (bits & 0x8000_0000) >> 16)
        bits &= 0x7FFF_FFFF
        if bits >= 0x4780_0000 {  // |x| >= 65536: infinity, or NaN
            if bits > 0x7F80_0000 { return Float16(value).bitPattern }
            return sign | 0x7C00
        }
        if bits < 0x3880_0000 {  // |x| < 2^-14: f16 subnormal or zero; let an f32 add do the rounding
            let magic: UInt32 = 0x3F00_0000  // 0.5: aligns the f16 subnormal step with the f32 ulp
            let sum = Float(bitPattern: bits) + Float(bitPattern: magic)
            return sign | UInt16(truncatingIfNeeded: sum.bitPattern &- magic)
        }
        let odd = (bits >> 13) & 1
        bits = bits &+ 0xC800_0FFF &+ odd  // rebias exponent (-112 << 23) and add the rounding bias
        return sign | UInt16(truncatingIfNeeded: bits >> 13)
    }

    /// Whether `value` stays finite when rounded to `dtype` (F16, BF16, F32 or F64).
    package static func isFinite(_ value: Float, as dtype: DType) -> Bool {
        switch dtype {
        case .f16: halfBits(from: value) & 0x7C00 != 0x7C00
        case .bf16: bfloat16Bits(fromFloatBits: value.bitPattern) & 0x7F80 != 0x7F80
        default: value.isFinite
        }
    }

    /// Every f16 bit pattern as f32 (exact).
    private static let halfTable: [Float] = (0..<65_536).map { Float(Float16(bitPattern: UInt16($0))) }

    /// Elements below which a conversion stays on the calling thread.
    private static let elementsPerThread = 1 << 18

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
    package static func loadFloat(_ raw: UnsafeRawBufferPointer, _ index: Int, _ dtype: DType) -> Float {
        switch dtype {
        case .f16:
            float(fromHalfBits: UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: index * 2, as: UInt16.self)))
        case .bf16:
            float(fromBFloat16Bits: UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: index * 2, as: UInt16.self)))
        case .f32:
            Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: index * 4, as: UInt32.self)))
        case .f64:
            Float(
                Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self))))
        default: preconditionFailure("loadFloat: \(dtype) is not a float storage type")
        }
    }

    /// Widens (or, for F64, rounds) `source` of `dtype` into `destination`.
    ///
    /// Precondition: `destination.count` elements are present in `source`.
    /// - Parameter threadCount: Threads for a large buffer (element ranges; same values for any count).
    package static func widen(
        _ source: UnsafeRawBufferPointer, from dtype: DType, into destination: UnsafeMutableBufferPointer<Float>,
        threadCount: Int = 1
    ) {
        let count = destination.count
        precondition(source.count >= count * dtype.bitWidth / 8, "widen: source too short")
        let job = ConversionJob(source: source, destination: UnsafeMutableRawBufferPointer(destination))
        ParallelRunner.forEachPart(count: count, parts: parts(count, threadCount)) { range in
            widen(job, dtype, range)
        }
    }

    private static func widen(_ job: ConversionJob, _ dtype: DType, _ range: Range<Int>) {
        let source = job.source
        let out = job.destination.assumingMemoryBound(to: Float.self)
        switch dtype {
        case .f32:
            guard !range.isEmpty else { return }
            UnsafeMutableRawBufferPointer(rebasing: job.destination[(range.lowerBound * 4)..<(range.upperBound * 4)])
                .copyMemory(
                    from: UnsafeRawBufferPointer(rebasing: source[(range.lowerBound * 4)..<(range.upperBound * 4)]))
        case .f16:
            halfTable.withUnsafeBufferPointer { table in
                for i in range {
                    out[i] =
                        table[Int(UInt16(littleEndian: source.loadUnaligned(fromByteOffset: i &* 2, as: UInt16.self)))]
                }
            }
        case .bf16:
            for i in range {
                out[i] = float(
                    fromBFloat16Bits: UInt16(
                        littleEndian: source.loadUnaligned(fromByteOffset: i &* 2, as: UInt16.self)))
            }
        case .f64:
            for i in range {
                out[i] = Float(
                    Double(
                        bitPattern: UInt64(littleEndian: source.loadUnaligned(fromByteOffset: i &* 8, as: UInt64.self)))
                )
            }
        default:
            preconditionFailure("widen: \(dtype) is not a float storage type")
        }
    }

    /// Narrows (or widens, for F64) f32 values into `destination` as `dtype`, rounding once.
    ///
    /// - Parameter threadCount: Threads for a large buffer (element ranges; same bytes for any count).
    /// - Returns: Whether every value *written* is finite: a finite f32 that overflows f16 or bf16 counts as
    ///   infinite, so callers need no separate pass to refuse an output that cannot hold the values (NaN and
    ///   ±infinity are written either way).
    @discardableResult
    package static func narrow(
        _ source: UnsafeBufferPointer<Float>, to dtype: DType, into destination: UnsafeMutableRawBufferPointer,
        threadCount: Int = 1
    ) -> Bool {
        let count = source.count
        precondition(destination.count >= count * dtype.bitWidth / 8, "narrow: destination too short")
        precondition(dtype.isConvertibleFloat, "narrow: \(dtype) is not a float storage type")
        let job = ConversionJob(source: UnsafeRawBufferPointer(source), destination: destination)
        let allFinite = Atomic<Bool>(true)
        ParallelRunner.forEachPart(count: count, parts: parts(count, threadCount)) { range in
            if !narrow(job, dtype, range) { allFinite.store(false, ordering: .relaxed) }
        }
        return allFinite.load(ordering: .relaxed)
    }

    /// Narrows one range; returns whether every written value is finite.
    private static func narrow(_ job: ConversionJob, _ dtype: DType, _ range: Range<Int>) -> Bool {
        let source = job.source
        let destination = job.destination
        var finite = true
        switch dtype {
        case .f16:
            // One value at a time: an 8-lane integer-SIMD version of the same rules measured 4x slower in a
            // release build (the generic `SIMD8<UInt32>` masking and narrowing did not vectorize).
            for i in range {
                let half = halfBits(
                    from: Float(bitPattern: source.loadUnaligned(fromByteOffset: i &* 4, as: UInt32.self)))
                if half & 0x7C00 == 0x7C00 { finite = false }
                destination.storeBytes(of: half.littleEndian, toByteOffset: i &* 2, as: UInt16.self)
            }
        case .bf16:
            for i in range {
                let bits = bfloat16Bits(fromFloatBits: source.loadUnaligned(fromByteOffset: i &* 4, as: UInt32.self))
                if bits & 0x7F80 == 0x7F80 { finite = false }
                destination.storeBytes(of: bits.littleEndian, toByteOffset: i &* 2, as: UInt16.self)
            }
        case .f32:
            for i in range {
                let bits = source.loadUnaligned(fromByteOffset: i &* 4, as: UInt32.self)
                if bits & 0x7F80_0000 == 0x7F80_0000 { finite = false }
                destination.storeBytes(of: bits.littleEndian, toByteOffset: i &* 4, as: UInt32.self)
            }
        default:
            for i in range {
                let value = Float(bitPattern: source.loadUnaligned(fromByteOffset: i &* 4, as: UInt32.self))
                if !value.isFinite { finite = false }
                destination.storeBytes(of: Double(value).bitPattern.littleEndian, toByteOffset: i &* 8, as: UInt64.self)
            }
        }
        return finite
    }

    private static func parts(_ count: Int, _ threadCount: Int) -> Int {
        min(max(threadCount, 1), max(1, count / elementsPerThread))
    }

    /// Converts `count` elements between any two of F16, BF16, F32, F64 with a single rounding.
    ///
    /// - Returns: The converted bytes. Precondition: both dtypes satisfy ``DType/isConvertibleFloat``.
    package static func convert(_ source: UnsafeRawBufferPointer, from: DType, to: DType, count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count * to.bitWidth / 8)
        out.withUnsafeMutableBytes { convert(source, from: from, to: to, count: count, into: $0) }
        return out
    }

    /// Converts `count` elements into `destination` (at least `count` elements of `to`), as
    /// ``convert(_:from:to:count:)`` does, without allocating.
    package static func convert(
        _ source: UnsafeRawBufferPointer, from: DType, to: DType, count: Int, into dst: UnsafeMutableRawBufferPointer
    ) {
        precondition(
            from.isConvertibleFloat && to.isConvertibleFloat, "convert: \(from) -> \(to) is not a float conversion")
        precondition(dst.count >= count * to.bitWidth / 8, "convert: destination too short")
        if from == to {
            if count > 0 {
                dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[0..<(count * from.bitWidth / 8)]))
            }
            return
        }
        for i in 0..<count {
            if from == .f64 {
                let value = Double(
                    bitPattern: UInt64(littleEndian: source.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)))
                switch to {
                case .f16:
                    dst.storeBytes(of: Float16(value).bitPattern.littleEndian, toByteOffset: i * 2, as: UInt16.self)
                case .bf16:
                    let bits = bfloat16Bits(fromFloatBits: floatRoundedToOdd(value).bitPattern)
                    dst.storeBytes(of: bits.littleEndian, toByteOffset: i * 2, as: UInt16.self)
                default: dst.storeBytes(of: Float(value).bitPattern.littleEndian, toByteOffset: i * 4, as: UInt32.self)
                }
            } else {
                let value = loadFloat(source, i, from)
                switch to {
                case .f16: dst.storeBytes(of: halfBits(from: value).littleEndian, toByteOffset: i * 2, as: UInt16.self)
                case .bf16:
                    dst.storeBytes(
                        of: bfloat16Bits(fromFloatBits: value.bitPattern).littleEndian, toByteOffset: i * 2,
                        as: UInt16.self)
                case .f32: dst.storeBytes(of: value.bitPattern.littleEndian, toByteOffset: i * 4, as: UInt32.self)
                default: dst.storeBytes(of: Double(value).bitPattern.littleEndian, toByteOffset: i * 8, as: UInt64.self)
                }
            }
        }
    }
}

// @unchecked Sendable: workers read `source` and write disjoint ranges of `destination`, both alive for the call.
private struct ConversionJob: @unchecked Sendable {
    let source: UnsafeRawBufferPointer
    let destination: UnsafeMutableRawBufferPointer
}
