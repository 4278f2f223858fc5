import Dispatch
public import NF4KitCore
import Synchronization

/// Fast F16/BF16 <-> F32 conversion of whole tensors for the merge path, identical in value to ``FloatConversion``.
///
/// A baseline x86-64 build has no F16C, so `Float(Float16)` and `Float16(Float)` are library calls
/// (`__extendhfsf2`, `__truncsfhf2`); profiling a 336 M-parameter merge put 36 % of the time in them. Widening
/// uses a 65 536-entry table (256 KiB, built once); narrowing rounds to nearest even with integer operations
/// (the float-add trick for subnormals). Large tensors are split across threads by element ranges.
public enum HalfConversion {
    /// Every f16 bit pattern as f32 (exact).
    private static let halfTable: [Float] = (0..<65_536).map { Float(Float16(bitPattern: UInt16($0))) }

    /// f16 bits of `value`, round to nearest even; NaN goes through `Float16.init` so payloads match Core's.
    @inline(__always)
    public static func halfBits(_ value: Float) -> UInt16 {
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

    /// Reads `destination.count` values of `dtype` (F16, BF16, F32, F64) from `source` as f32.
    public static func widen(
        _ source: UnsafeRawBufferPointer, from dtype: DType, into destination: UnsafeMutableBufferPointer<Float>,
        threadCount: Int = 1
    ) {
        let count = destination.count
        precondition(source.count >= count * dtype.bitWidth / 8, "widen: source too short")
        guard dtype == .f16 else {
            FloatConversion.widen(source, from: dtype, into: destination)
            return
        }
        let job = ConversionJob(source: source, destination: UnsafeMutableRawBufferPointer(destination))
        chunks(count, threadCount) { range in
            halfTable.withUnsafeBufferPointer { table in
                let out = job.destination.assumingMemoryBound(to: Float.self)
                for i in range {
                    out[i] =
                        table[
                            Int(UInt16(littleEndian: job.source.loadUnaligned(fromByteOffset: i &* 2, as: UInt16.self)))
                        ]
                }
            }
        }
    }

    /// Writes `source` as `dtype` (F16, BF16, F32, F64) into `destination`, rounding once (nearest even).
    ///
    /// - Returns: Whether every value was finite (NaN and ±infinity in `source` are written as such either way),
    ///   so callers need no separate pass to check.
    @discardableResult
    public static func narrow(
        _ source: UnsafeBufferPointer<Float>, to dtype: DType, into destination: UnsafeMutableRawBufferPointer,
        threadCount: Int = 1
    ) -> Bool {
        let count = source.count
        precondition(destination.count >= count * dtype.bitWidth / 8, "narrow: destination too short")
        guard dtype == .f16 || dtype == .bf16 else {
            FloatConversion.narrow(source, to: dtype, into: destination)
            return source.allSatisfy(\.isFinite)
        }
        let job = ConversionJob(source: UnsafeRawBufferPointer(source), destination: destination)
        let half = dtype == .f16
        let allFinite = Atomic<Bool>(true)
        chunks(count, threadCount) { range in
            let finite = half ? narrowHalf(job, range) : narrowBFloat(job, range)
            if !finite { allFinite.store(false, ordering: .relaxed) }
        }
        return allFinite.load(ordering: .relaxed)
    }

    /// f16 rounding with ``halfBits(_:)``, one value at a time. (An 8-lane integer-SIMD version of the same rules
    /// measured 4x slower in a release build: the generic `SIMD8<UInt32>` masking and narrowing did not vectorize.)
    private static func narrowHalf(_ job: ConversionJob, _ range: Range<Int>) -> Bool {
        var finite = true
        for i in range {
            let bits = job.source.loadUnaligned(fromByteOffset: i &* 4, as: UInt32.self)
            if bits & 0x7F80_0000 == 0x7F80_0000 { finite = false }
            store(halfBits(Float(bitPattern: bits)), job, i)
        }
        return finite
    }

    private static func narrowBFloat(_ job: ConversionJob, _ range: Range<Int>) -> Bool {
        var finite = true
        for i in range {
            let bits = job.source.loadUnaligned(fromByteOffset: i &* 4, as: UInt32.self)
            if bits & 0x7F80_0000 == 0x7F80_0000 { finite = false }
            store(FloatConversion.bfloat16Bits(fromFloatBits: bits), job, i)
        }
        return finite
    }

    @inline(__always)
    private static func store(_ bits: UInt16, _ job: ConversionJob, _ index: Int) {
        job.destination.storeBytes(of: bits.littleEndian, toByteOffset: index &* 2, as: UInt16.self)
    }

    private static func chunks(_ count: Int, _ threadCount: Int, _ body: @Sendable (Range<Int>) -> Void) {
        let parts = min(max(threadCount, 1), max(1, count / (1 << 18)))
        guard parts > 1 else {
            body(0..<count)
            return
        }
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            body((count * part / parts)..<(count * (part + 1) / parts))
        }
    }
}

// @unchecked Sendable: workers read `source` and write disjoint ranges of `destination`, both alive for the call.
private struct ConversionJob: @unchecked Sendable {
    let source: UnsafeRawBufferPointer
    let destination: UnsafeMutableRawBufferPointer
}
