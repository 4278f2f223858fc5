public import NF4KitCore

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
        rule: CodeRule, profile: QuantizationProfile, packed: UnsafeMutableRawBufferPointer,
        absmax: UnsafeMutableBufferPointer<Float>
    ) {
        if blocks.isEmpty { return }
        let halfTable = HalfTable.shared.values
        withUnsafeTemporaryAllocation(of: Float.self, capacity: blocksize) { scratch in
            let buffer = scratch.baseAddress!
            for block in blocks {
                let start = block &* blocksize
                let count = min(blocksize, elementCount &- start)
                widen(input, dtype: dtype, from: start, count: count, into: buffer, halfTable: halfTable)
                let out = packed.baseAddress! + (start >> 1)
                if count == blocksize {
                    absmax[block] = fullBlock(buffer, count: count, rule: rule, profile: profile, out: out)
                } else {
                    absmax[block] = partialBlock(buffer, count: count, rule: rule, profile: profile, out: out)
                }
            }
        }
    }

    /// Converts `count` input values starting at element `start` to float32.
    @inline(__always)
    private static func widen(
        _ input: UnsafeRawBufferPointer, dtype: DType, from start: Int, count: Int, into buffer: UnsafeMutablePointer<Float>,
        halfTable: UnsafeMutablePointer<Float>
    ) {
        let base = input.baseAddress!
        switch dtype {
        case .f16:
            let source = base + start &* 2
            var i = 0
            while i &+ 8 <= count {
                let bits = source.loadUnaligned(fromByteOffset: i &* 2, as: SIMD8<UInt16>.self)
                for lane in 0..<8 { buffer[i &+ lane] = halfTable[Int(UInt16(littleEndian: bits[lane]))] }
                i &+= 8
            }
            while i < count {
                buffer[i] = halfTable[Int(UInt16(littleEndian: source.loadUnaligned(fromByteOffset: i &* 2, as: UInt16.self)))]
                i &+= 1
            }
        case .bf16:
            let source = base + start &* 2
            var i = 0
            while i &+ 8 <= count {
                let bits = source.loadUnaligned(fromByteOffset: i &* 2, as: SIMD8<UInt16>.self)
                let wide = SIMD8<UInt32>(truncatingIfNeeded: bits) &<< 16
                UnsafeMutableRawPointer(buffer + i).storeBytes(of: wide, as: SIMD8<UInt32>.self)
                i &+= 8
            }
            while i < count {
                let bits = UInt16(littleEndian: source.loadUnaligned(fromByteOffset: i &* 2, as: UInt16.self))
                buffer[i] = Float(bitPattern: UInt32(bits) << 16)
                i &+= 1
            }
        case .f32:
            UnsafeMutableRawPointer(buffer).copyMemory(from: base + start &* 4, byteCount: count &* 4)
        case .f64:
            let source = base + start &* 8
            for i in 0..<count {
                buffer[i] = Float(Double(bitPattern: UInt64(littleEndian: source.loadUnaligned(fromByteOffset: i &* 8, as: UInt64.self))))
            }
        default:
            preconditionFailure("QuantizeKernel: \(dtype) is not a float input")
        }
    }

    /// The largest magnitude of `count` values as float32 bits of |x|.
    ///
    /// As integers, non-negative float bits order like the floats and every NaN sorts above +infinity, so the
    /// integer maximum is NaN when any value is NaN (the CPU backend's `max`). With `ignoringNaN` NaNs count as 0
    /// (CUDA's `fmaxf`).
    @inline(__always)
    private static func magnitudeMax(_ buffer: UnsafeMutablePointer<Float>, count: Int, ignoringNaN: Bool) -> UInt32 {
        let raw = UnsafeRawPointer(buffer)
        let signMask = SIMD8<UInt32>(repeating: 0x7FFF_FFFF)
        let infinityBits = SIMD8<UInt32>(repeating: 0x7F80_0000)
        var acc = SIMD8<UInt32>()
        var i = 0
        while i &+ 8 <= count {
            var v = raw.loadUnaligned(fromByteOffset: i &* 4, as: SIMD8<UInt32>.self) & signMask
            if ignoringNaN { v.replace(with: 0, where: v .> infinityBits) }
            acc.replace(with: v, where: v .> acc)
            i &+= 8
        }
        var result = acc.max()
        while i < count {
            var v = buffer[i].bitPattern & 0x7FFF_FFFF
            if ignoringNaN && v > 0x7F80_0000 { v = 0 }
            result = max(result, v)
            i &+= 1
        }
        return result
    }

    /// A full block: s = x * (1/absmax) (spec 2.4); the CPU divisor is clamped to >= 1e-38, the stored absmax is not.
    @inline(__always)
    private static func fullBlock(
        _ buffer: UnsafeMutablePointer<Float>, count: Int, rule: CodeRule, profile: QuantizationProfile,
        out: UnsafeMutableRawPointer
    ) -> Float {
        let maxBits = magnitudeMax(buffer, count: count, ignoringNaN: profile == .cuda)
        let absmax = Float(bitPattern: maxBits)
        let divisor = profile == .cpu && absmax < clampFloor ? clampFloor : absmax
        let inverse = 1 / divisor
        if maxBits >= 0x7F80_0000 || !inverse.isFinite || rule.ranksMagnitude {
            // Non-finite absmax or scale (NaN/Inf input, CUDA zero block), or CUDA FP4's sign-magnitude rule.
            scalarCodes(buffer, count: count, rule: rule, out: out) { $0 * inverse }
        } else {
            vectorCodes(buffer, count: count, inverse: inverse, rule: rule, out: out)
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
        var absmax = Float(bitPattern: maxBits)
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

    /// Codes 8 values per step: 15 lane-wise `s > T[k]` compares summed (NaN ranks 0, the CUDA rule; CPU blocks
    /// that can produce NaN take the scalar path), then pairs packed into 4 bytes.
    /// Precondition: `count` is a multiple of 8.
    @inline(__always)
    private static func vectorCodes(
        _ buffer: UnsafeMutablePointer<Float>, count: Int, inverse: Float, rule: CodeRule, out: UnsafeMutableRawPointer
    ) {
        let raw = UnsafeRawPointer(buffer)
        let scale = SIMD8<Float>(repeating: inverse)
        let t = rule.thresholds
        let one = SIMD8<UInt32>(repeating: 1)
        let zero = SIMD8<UInt32>()
        var i = 0
        while i &+ 8 <= count {
            let s = raw.loadUnaligned(fromByteOffset: i &* 4, as: SIMD8<Float>.self) * scale
            var rank = SIMD8<UInt32>()
            rank &+= zero.replacing(with: one, where: s .> SIMD8(repeating: t[0]))
            rank &+= zero.replacing(with: one, where: s .> SIMD8(repeating: t[1]))
            rank &+= zero.replacing(with: one, where: s .> SIMD8(repeating: t[2]))
            rank &+= zero.replacing(with: one, where: s .> SIMD8(repeating: t[3]))
            rank &+= zero.replacing(with: one, where: s .> SIMD8(repeating: t[4]))
            rank &+= zero.replacing(with: one, where: s .> SIMD8(repeating: t[5]))
            rank &+= zero.replacing(with: one, where: s .> SIMD8(repeating: t[6]))
            rank &+= zero.replacing(with: one, where: s .> SIMD8(repeating: t[7]))
            rank &+= zero.replacing(with: one, where: s .> SIMD8(repeating: t[8]))
            rank &+= zero.replacing(with: one, where: s .> SIMD8(repeating: t[9]))
            rank &+= zero.replacing(with: one, where: s .> SIMD8(repeating: t[10]))
            rank &+= zero.replacing(with: one, where: s .> SIMD8(repeating: t[11]))
            rank &+= zero.replacing(with: one, where: s .> SIMD8(repeating: t[12]))
            rank &+= zero.replacing(with: one, where: s .> SIMD8(repeating: t[13]))
            rank &+= zero.replacing(with: one, where: s .> SIMD8(repeating: t[14]))
            if !rule.isIdentity {
                for lane in 0..<8 { rank[lane] = UInt32(rule.map[Int(rank[lane])]) }
            }
            let bytes = (rank.evenHalf &<< 4) | rank.oddHalf
            out.storeBytes(of: SIMD4<UInt8>(truncatingIfNeeded: bytes), toByteOffset: i >> 1, as: SIMD4<UInt8>.self)
            i &+= 8
        }
    }
}
