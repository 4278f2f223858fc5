import NF4KitCore
internal import CNF4Kernels

/// The first-level 4-bit block kernel: absmax per block, codes, nibble packing (spec sections 2 and 3).
///
/// Works on raw buffers over whole tensors; one call handles a range of blocks, so callers can split a tensor
/// across threads. Blocks start at even elements (block sizes are even), so each block owns whole bytes.
enum QuantizeKernel {
    /// Quantizes blocks `blocks` of `input` (`elementCount` values of `dtype`, little-endian).
    ///
    /// Writes `absmax[b]` and the packed bytes of each block in the range into the whole-tensor buffers.
    static func run(
        blocks: Range<Int>, input: UnsafeRawBufferPointer, dtype: DType, elementCount: Int, blocksize: Int,
        rule: CodeRule, profile: QuantizationProfile, native: Bool, packed: UnsafeMutableRawBufferPointer,
        absmax: UnsafeMutableBufferPointer<Float>
    ) {
        if blocks.isEmpty { return }
        // One stack scratch per call: blocksize floats for the widened block, then blocksize code bytes.
        withUnsafeTemporaryAllocation(of: Float.self, capacity: blocksize + blocksize / 4) { scratch in
            let buffer = scratch.baseAddress!
            let codes = UnsafeMutableRawPointer(buffer + blocksize).bindMemory(to: UInt8.self, capacity: blocksize)
            func swiftBlock(_ block: Int) {
                let start = block &* blocksize
                let count = min(blocksize, elementCount &- start)
                widen(input, dtype: dtype, from: start, count: count, into: buffer)
                let out = packed.baseAddress! + (start >> 1)
                if count == blocksize {
                    absmax[block] = fullBlock(
                        buffer, codes: codes, count: count, rule: rule, profile: profile, out: out)
                } else {
                    absmax[block] = partialBlock(buffer, count: count, rule: rule, profile: profile, out: out)
                }
            }
            // Full f16/bf16/f32 blocks go to the AVX2 + F16C kernel when the CPU has it (same bits, tested); it hands
            // back the blocks with non-finite values or scale, which take the Swift path like the partial last block.
            let fullEnd = min(blocks.upperBound, elementCount / blocksize)
            let kind: Int32? = dtype == .f16 ? 0 : dtype == .bf16 ? 1 : dtype == .f32 ? 2 : nil
            guard native, hasNativeKernel, let kind, !rule.ranksMagnitude, blocksize % 16 == 0,
                fullEnd > blocks.lowerBound
            else {
                for block in blocks { swiftBlock(block) }
                return
            }
            let first = blocks.lowerBound
            let count = fullEnd - first
            var fallback = [UInt8](repeating: 0, count: count)
            // SIMD16 stores its lanes contiguously: the rule's tables go to C as they are.
            withUnsafeBytes(of: rule.thresholds) { thresholds in
                withUnsafeBytes(of: rule.map) { map in
                    nf4k_quantize_blocks_avx2(
                        input.baseAddress! + first &* blocksize &* (dtype.bitWidth / 8), kind, count, blocksize,
                        thresholds.baseAddress!.assumingMemoryBound(to: Float.self),
                        map.baseAddress!.assumingMemoryBound(to: UInt8.self), rule.isIdentity ? 1 : 0,
                        profile == .cpu ? 1 : 0, clampFloor,
                        (packed.baseAddress! + (first &* blocksize) >> 1).assumingMemoryBound(to: UInt8.self),
                        absmax.baseAddress! + first, &fallback)
                }
            }
            for i in 0..<count where fallback[i] != 0 { swiftBlock(first &+ i) }
            for block in fullEnd..<blocks.upperBound { swiftBlock(block) }
        }
    }

    /// ``run`` over all `blocks` of a tensor, split into disjoint block ranges on up to `threads` threads (a few
    /// ranges per thread, so an uneven range does not hold the others up). The bytes do not depend on `threads`.
    static func runParallel(
        blocks: Int, threads: Int, input: UnsafeRawBufferPointer, dtype: DType, elementCount: Int, blocksize: Int,
        rule: CodeRule, profile: QuantizationProfile, native: Bool, packed: UnsafeMutableRawBufferPointer,
        absmax: UnsafeMutableBufferPointer<Float>
    ) {
        let parts = threads <= 1 ? 1 : min(threads * 4, max(1, blocks / 1024))
        let job = BlockJob(input: input, packed: packed, absmax: absmax)
        ParallelRunner.forEachPart(count: blocks, parts: parts) { range in
            run(
                blocks: range, input: job.input, dtype: dtype, elementCount: elementCount, blocksize: blocksize,
                rule: rule, profile: profile, native: native, packed: job.packed, absmax: job.absmax)
        }
    }

    /// Whether this machine runs the AVX2 + F16C kernel (checked once).
    static let hasNativeKernel = nf4k_has_avx2_f16c() == 1

    /// The absmax each block would store, without coding (a pipeline's planning pass: the double-quantization
    /// offset, and so the quant-state JSON length, needs every absmax before any output is laid out).
    static func absmaxOnly(
        blocks: Range<Int>, input: UnsafeRawBufferPointer, dtype: DType, elementCount: Int, blocksize: Int,
        profile: QuantizationProfile, absmax: UnsafeMutableBufferPointer<Float>
    ) {
        if blocks.isEmpty { return }
        withUnsafeTemporaryAllocation(of: Float.self, capacity: blocksize) { scratch in
            let buffer = scratch.baseAddress!
            for block in blocks {
                let start = block &* blocksize
                let count = min(blocksize, elementCount &- start)
                var value: Float
                if let finite = finiteHalfMagnitudeMax(input, dtype: dtype, from: start, count: count) {
                    value = finite
                } else {
                    widen(input, dtype: dtype, from: start, count: count, into: buffer)
                    value = Float(
                        bitPattern: magnitudeMax(buffer, count: count, ignoringNaN: profile == .cuda) & 0x7FFF_FFFF)
                }
                if count < blocksize && profile == .cpu && value < clampFloor { value = clampFloor }
                absmax[block] = value
            }
        }
    }

    /// For 16-bit input, the largest |x| of `count` values from element `start`, taken on the raw halves (|x|
    /// orders like the bits without the sign) and widened exactly; `nil` for other dtypes or a non-finite winner,
    /// which the float path handles with the profile's NaN rule.
    @inline(__always)
    private static func finiteHalfMagnitudeMax(
        _ input: UnsafeRawBufferPointer, dtype: DType, from start: Int, count: Int
    ) -> Float? {
        guard dtype == .f16 || dtype == .bf16 else { return nil }
        let source = input.baseAddress! + start &* 2
        var top: UInt16 = 0
        for i in 0..<count {
            top = max(top, UInt16(littleEndian: source.loadUnaligned(fromByteOffset: i &* 2, as: UInt16.self)) & 0x7FFF)
        }
        guard top < (dtype == .f16 ? 0x7C00 : 0x7F80) else { return nil }
        return dtype == .f16 ? halfToFloat(top) : Float(bitPattern: UInt32(top) << 16)
    }

    /// Converts `count` input values starting at element `start` to float32.
    @inline(__always)
    private static func widen(
        _ input: UnsafeRawBufferPointer, dtype: DType, from start: Int, count: Int,
        into buffer: UnsafeMutablePointer<Float>
    ) {
        let base = input.baseAddress!
        switch dtype {
        case .f16:
            let source = base + start &* 2
            for i in 0..<count {
                let bits = UInt16(littleEndian: source.loadUnaligned(fromByteOffset: i &* 2, as: UInt16.self))
                buffer[i] = halfToFloat(bits)
            }
        case .bf16:
            let source = base + start &* 2
            for i in 0..<count {
                let bits = UInt16(littleEndian: source.loadUnaligned(fromByteOffset: i &* 2, as: UInt16.self))
                buffer[i] = Float(bitPattern: UInt32(bits) << 16)
            }
        case .f32:
            UnsafeMutableRawPointer(buffer).copyMemory(from: base + start &* 4, byteCount: count &* 4)
        case .f64:
            let source = base + start &* 8
            for i in 0..<count {
                buffer[i] = Float(
                    Double(
                        bitPattern: UInt64(littleEndian: source.loadUnaligned(fromByteOffset: i &* 8, as: UInt64.self)))
                )
            }
        default:
            preconditionFailure("QuantizeKernel: \(dtype) is not a float input")
        }
    }

    /// f32 from f16 bits, exactly, in branch-free arithmetic that LLVM vectorizes (baseline x86-64 has no F16C).
    ///
    /// The magnitude bits shifted into a float32 are the value × 2^-112 (also for f16 subnormals, which land on
    /// float32 subnormals), so one multiply by 2^112 rescales exactly; exponent 31 (inf/NaN) gets the float32
    /// exponent OR-ed in, keeping the payload (NaNs quieted). Checked against `Float(Float16)` for all 65 536 patterns.
    @inline(__always)
    static func halfToFloat(_ h: UInt16) -> Float {
        let magnitude = UInt32(h & 0x7FFF) << 13
        let scaled = Float(bitPattern: magnitude) * Float(bitPattern: 0x7780_0000)  // 2^112
        let isSpecial = (UInt32(h & 0x7C00) &+ 0x0400) >> 15  // 1 when the exponent is 31
        let hasPayload = (UInt32(h & 0x03FF) &+ 0x03FF) >> 10  // 1 when the mantissa is not zero
        let quiet = (isSpecial & hasPayload) << 22  // NaNs come out quiet, as the hardware conversion makes them
        let sign = UInt32(h & 0x8000) << 16
        return Float(bitPattern: scaled.bitPattern | (isSpecial &* 0x7F80_0000) | quiet | sign)
    }

    /// The largest magnitude of `count` values as float32 bits of |x|.
    ///
    /// As integers, non-negative float bits order like the floats and every NaN sorts above +infinity, so the
    /// integer maximum is NaN when any value is NaN (the CPU backend's `max`). With `ignoringNaN` NaNs count as 0
    /// (CUDA's `fmaxf`) and bit 31 of the result is set when the block held a NaN.
    @inline(__always)
    private static func magnitudeMax(_ buffer: UnsafeMutablePointer<Float>, count: Int, ignoringNaN: Bool) -> UInt32 {
        // Plain loops over the bits: LLVM vectorizes these reductions; Swift's SIMD mask operations did not.
        let bits = UnsafeRawPointer(buffer).assumingMemoryBound(to: UInt32.self)
        var result: UInt32 = 0
        if ignoringNaN {
            var nan: UInt32 = 0
            for i in 0..<count {
                let v = bits[i] & 0x7FFF_FFFF
                let isNaN = (0x7F80_0000 &- v) >> 31  // 1 when v > 0x7F800000
                nan |= isNaN
                result = max(result, v & (isNaN &- 1))
            }
            // Reported as an impossible magnitude so the caller takes the scalar path, which codes NaN per rule.
            if nan != 0 { return result | 0x8000_0000 }
        } else {
            for i in 0..<count { result = max(result, bits[i] & 0x7FFF_FFFF) }
        }
        return result
    }

    /// A full block: s = x * (1/absmax) (spec 2.4); the CPU divisor is clamped to >= 1e-38, the stored absmax is not.
    @inline(__always)
    private static func fullBlock(
        _ buffer: UnsafeMutablePointer<Float>, codes: UnsafeMutablePointer<UInt8>, count: Int, rule: CodeRule,
        profile: QuantizationProfile,
        out: UnsafeMutableRawPointer
    ) -> Float {
        let maxBits = magnitudeMax(buffer, count: count, ignoringNaN: profile == .cuda)
        let absmax = Float(bitPattern: maxBits & 0x7FFF_FFFF)
        let divisor = profile == .cpu && absmax < clampFloor ? clampFloor : absmax
        let inverse = 1 / divisor
        if maxBits >= 0x7F80_0000 || !inverse.isFinite || rule.ranksMagnitude {
            // Non-finite absmax or scale (NaN/Inf input, CUDA zero block), or CUDA FP4's sign-magnitude rule.
            scalarCodes(buffer, count: count, rule: rule, out: out) { $0 * inverse }
        } else {
            vectorCodes(buffer, codes: codes, count: count, inverse: inverse, rule: rule, out: out)
        }
        return absmax
    }

    /// The partial last block. CPU: stored absmax = max(absmax, 1e-38) and s = x / absmax; CUDA: as full blocks.
    /// An odd count gets a pad nibble, the code of 0 * (1/absmax) (CUDA) or 0 (CPU).
    private static func partialBlock(
        _ buffer: UnsafeMutablePointer<Float>, count: Int, rule: CodeRule, profile: QuantizationProfile,
        out: UnsafeMutableRawPointer
    ) -> Float {
        let maxBits = magnitudeMax(buffer, count: count, ignoringNaN: profile == .cuda)
        var absmax = Float(bitPattern: maxBits & 0x7FFF_FFFF)
        if profile == .cpu {
            if absmax < clampFloor { absmax = clampFloor }
            let divisor = absmax
            scalarCodes(buffer, count: count, rule: rule, out: out) { $0 / divisor }
            if count & 1 == 1 { padLastNibble(out, count: count, code: rule.code(0)) }
        } else {
            let inverse = 1 / absmax
            scalarCodes(buffer, count: count, rule: rule, out: out) { $0 * inverse }
            if count & 1 == 1 { padLastNibble(out, count: count, code: rule.code(0 * inverse)) }
        }
        return absmax
    }

    /// bitsandbytes' CPU clamp for the divisor (float32 0x006CE3EE, a subnormal).
    static let clampFloor = Float(bitPattern: 0x006C_E3EE)

    @inline(__always)
    private static func padLastNibble(_ out: UnsafeMutableRawPointer, count: Int, code: UInt8) {
        let index = count >> 1
        let byte = out.load(fromByteOffset: index, as: UInt8.self)
        out.storeBytes(of: (byte & 0xF0) | code, toByteOffset: index, as: UInt8.self)
    }

    /// Codes one value at a time. For an odd count the last byte gets its high nibble (low nibble 0 until padded).
    @inline(__always)
    private static func scalarCodes(
        _ buffer: UnsafeMutablePointer<Float>, count: Int, rule: CodeRule, out: UnsafeMutableRawPointer,
        scale: (Float) -> Float
    ) {
        var i = 0
        while i &+ 1 < count {
            let high = rule.code(scale(buffer[i]))
            let low = rule.code(scale(buffer[i &+ 1]))
            out.storeBytes(of: high << 4 | low, toByteOffset: i >> 1, as: UInt8.self)
            i &+= 2
        }
        if i < count {
            out.storeBytes(of: rule.code(scale(buffer[i])) << 4, toByteOffset: i >> 1, as: UInt8.self)
        }
    }

    /// Codes a full block: rank = number of thresholds below s, counted without branches, then packed in pairs.
    ///
    /// Precondition: no scaled value is NaN (blocks that can produce one take the scalar path).
    /// Written as plain loops over the block because LLVM vectorizes them; Swift's `SIMD` mask operations
    /// (`replacing(with:where:)`) and `s > t ? 1 : 0` both compiled to per-lane branches and ran 5-30x slower.
    @inline(__always)
    private static func vectorCodes(
        _ buffer: UnsafeMutablePointer<Float>, codes: UnsafeMutablePointer<UInt8>, count: Int, inverse: Float,
        rule: CodeRule, out: UnsafeMutableRawPointer
    ) {
        let t = rule.thresholds
        let (t0, t1, t2, t3, t4, t5, t6, t7) = (t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7])
        let (t8, t9, t10, t11, t12, t13, t14) = (t[8], t[9], t[10], t[11], t[12], t[13], t[14])
        for i in 0..<count {
            let s = buffer[i] * inverse
            // (T - s) is negative exactly when s > T (distinct floats never subtract to zero), so its sign bit is
            // the compare result as an integer: no branches or masks, which LLVM vectorizes.
            var r = (t0 - s).bitPattern >> 31
            r &+= (t1 - s).bitPattern >> 31
            r &+= (t2 - s).bitPattern >> 31
            r &+= (t3 - s).bitPattern >> 31
            r &+= (t4 - s).bitPattern >> 31
            r &+= (t5 - s).bitPattern >> 31
            r &+= (t6 - s).bitPattern >> 31
            r &+= (t7 - s).bitPattern >> 31
            r &+= (t8 - s).bitPattern >> 31
            r &+= (t9 - s).bitPattern >> 31
            r &+= (t10 - s).bitPattern >> 31
            r &+= (t11 - s).bitPattern >> 31
            r &+= (t12 - s).bitPattern >> 31
            r &+= (t13 - s).bitPattern >> 31
            r &+= (t14 - s).bitPattern >> 31
            codes[i] = UInt8(truncatingIfNeeded: r)
        }
        if !rule.isIdentity {
            let map = rule.map
            for i in 0..<count { codes[i] = map[Int(codes[i] & 15)] }
        }
        for j in 0..<(count >> 1) {
            out.storeBytes(of: codes[2 &* j] << 4 | codes[2 &* j &+ 1], toByteOffset: j, as: UInt8.self)
        }
    }
}

// @unchecked Sendable because workers read `input` and write disjoint block ranges of `packed` and `absmax`,
// which all outlive the runParallel call.
private struct BlockJob: @unchecked Sendable {
    let input: UnsafeRawBufferPointer
    let packed: UnsafeMutableRawBufferPointer
    let absmax: UnsafeMutableBufferPointer<Float>
}
