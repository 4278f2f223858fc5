import NF4KitCore

/// The float32 helpers of ggml's reference quantizers (ggml-quants.c), in the same operation order.
///
/// ggml-base is built for the baseline ISA (no fused multiply-add), so each product and sum is rounded to float32 on
/// its own; Swift does not contract `a * b + c` either, so expressions below are written as the C source groups them
/// (left to right) and give the same bits.
enum GGMLQuantMath {
    /// ggml's `GROUP_MAX_EPS`: a group whose largest magnitude is below this is all zero.
    static let groupMaxEpsilon: Float = 1e-15

    /// ggml's `nearest_int`: adds 1.5 * 2^23 and reads the low mantissa bits, which rounds half to even for
    /// |x| <= 4194303 and gives the same (meaningless but deterministic) integer as C outside that range or for NaN.
    @inline(__always)
    static func nearestInt(_ value: Float) -> Int {
        let shifted = value + 12_582_912
        let bits = Int32(bitPattern: shifted.bitPattern)
        return Int((bits & 0x007F_FFFF) &- 0x0040_0000)
    }

    /// C's float-to-integer conversion as x86-64 compiles it (`cvttss2si`): truncation toward zero, and the
    /// "integer indefinite" value `INT32_MIN` for NaN or out-of-range inputs instead of a trap.
    @inline(__always)
    static func truncatingConversion(_ value: Float) -> Int32 {
        guard value.isFinite, value > -2_147_483_904, value < 2_147_483_648 else { return Int32.min }
        return Int32(value)
    }

    /// The f16 bits of `value` (round to nearest even), as `GGML_FP32_TO_FP16`.
    @inline(__always)
    static func half(_ value: Float) -> UInt16 { FloatConversion.halfBits(from: value) }

    /// The f32 value of f16 bits, as `GGML_FP16_TO_FP32`.
    @inline(__always)
    static func float(_ bits: UInt16) -> Float { FloatConversion.float(fromHalfBits: bits) }

    /// Stores f16 bits little-endian at `offset`.
    @inline(__always)
    static func storeHalf(_ bits: UInt16, _ out: UnsafeMutableRawPointer, _ offset: Int) {
        out.storeBytes(of: bits.littleEndian, toByteOffset: offset, as: UInt16.self)
    }

    /// ggml's `make_qx_quants` without weights (`qw == NULL`) for `rmseType` 1 (weights x²), the one Q6_K uses.
    ///
    /// Writes codes `0..<2*nmax` into `codes` and returns the scale.
    static func makeQXQuants(
        count n: Int, nmax: Int, _ x: UnsafePointer<Float>, codes: UnsafeMutablePointer<Int8>
    ) -> Float {
        var maxValue: Float = 0
        var amax: Float = 0
        for i in 0..<n {
            let ax = abs(x[i])
            if ax > amax {
                amax = ax
                maxValue = x[i]
            }
        }
        if amax < groupMaxEpsilon {
            for i in 0..<n { codes[i] = 0 }
            return 0
        }
        var iscale = Float(-nmax) / maxValue
        var sumlx: Float = 0
        var suml2: Float = 0
        for i in 0..<n {
            let l = max(-nmax, min(nmax - 1, nearestInt(iscale * x[i])))
            codes[i] = Int8(truncatingIfNeeded: l + nmax)
            let w = x[i] * x[i]
            let fl = Float(l)
            let wx = w * x[i]
            sumlx += wx * fl
            let wl = w * fl
            suml2 += wl * fl
        }
        var scale: Float = suml2 != 0 ? sumlx / suml2 : 0
        var best = scale * sumlx
        for step in -9...9 where step != 0 {
            let shift: Float = 0.1 * Float(step)
            iscale = -(Float(nmax) + shift) / maxValue
            sumlx = 0
            suml2 = 0
            var i = 0
            while i < n {
                var l = nearestInt(iscale * x[i])
                l = l < -nmax ? -nmax : (l > nmax - 1 ? nmax - 1 : l)
                let w = x[i] * x[i]
                let fl = Float(l)
                let wx = w * x[i]
                sumlx += wx * fl
                let wl = w * fl
                suml2 += wl * fl
                i &+= 1
            }
            if suml2 > 0 && sumlx * sumlx > best * suml2 {
                for i in 0..<n {
                    let l = nearestInt(iscale * x[i])
                    codes[i] = Int8(truncatingIfNeeded: nmax + max(-nmax, min(nmax - 1, l)))
                }
                scale = sumlx / suml2
                best = scale * sumlx
            }
        }
        return scale
    }

    /// ggml's `make_q3_quants` with `do_rmse` true (Q3_K): codes `0..<2*nmax`, returns the scale.
    static func makeQ3Quants(
        count n: Int, nmax: Int, _ x: UnsafePointer<Float>, codes: UnsafeMutablePointer<Int8>
    )
        -> Float
    {
        var maxValue: Float = 0
        var amax: Float = 0
        for i in 0..<n {
            let ax = abs(x[i])
            if ax > amax {
                amax = ax
                maxValue = x[i]
            }
        }
        if amax < groupMaxEpsilon {
            for i in 0..<n { codes[i] = 0 }
            return 0
        }
        let iscale = Float(-nmax) / maxValue
        var sumlx: Float = 0
        var suml2: Float = 0
        for i in 0..<n {
            let l = max(-nmax, min(nmax - 1, nearestInt(iscale * x[i])))
            codes[i] = Int8(truncatingIfNeeded: l)
            let w = x[i] * x[i]
            let fl = Float(l)
            let wx = w * x[i]
            sumlx += wx * fl
            let wl = w * fl
            suml2 += wl * fl
        }
        for _ in 0..<5 {
            var changed = 0
            for i in 0..<n {
                let w = x[i] * x[i]
                let current = Float(codes[i])
                let wx = w * x[i]
                var slx = sumlx - wx * current
                if slx > 0 {
                    let wl = w * current
                    var sl2 = suml2 - wl * current
                    let ratio = x[i] * sl2
                    let newL = max(-nmax, min(nmax - 1, nearestInt(ratio / slx)))
                    if newL != Int(codes[i]) {
                        let fl = Float(newL)
                        slx += wx * fl
                        let wn = w * fl
                        sl2 += wn * fl
                        let lhs = slx * slx * suml2
                        let rhs = sumlx * sumlx * sl2
                        if sl2 > 0 && lhs > rhs {
                            codes[i] = Int8(truncatingIfNeeded: newL)
                            sumlx = slx
                            suml2 = sl2
                            changed += 1
                        }
                    }
                }
            }
            if changed == 0 { break }
        }
        for i in 0..<n { codes[i] = codes[i] &+ Int8(truncatingIfNeeded: nmax) }
        return suml2 > 0 ? sumlx / suml2 : 0
    }

    /// ggml's `make_qkx2_quants`: an asymmetric (scale, min) fit of `n` values to codes `0...nmax`, searching
    /// `nstep + 1` candidate scales; returns the scale and `-min` (ggml's `the_min`).
    ///
    /// The loops are `while` loops with explicit clamps: in a debug build (the tests) a `for in 0..<n` and the
    /// generic `min`/`max` are calls per element, which made the golden-file tests several times slower.
    @inline(__always)
    static func makeQKX2Quants(
        count n: Int, nmax: Int, _ x: UnsafePointer<Float>, weights: UnsafePointer<Float>,
        codes: UnsafeMutablePointer<UInt8>, scratch: UnsafeMutablePointer<UInt8>,
        rmin: Float, rdelta: Float, nstep: Int, useMAD: Bool
    ) -> (scale: Float, negatedMin: Float) {
        var minValue = x[0]
        var maxValue = x[0]
        var sumW = weights[0]
        var sumX = sumW * x[0]
        var i = 1
        while i < n {
            let v = x[i]
            if v < minValue { minValue = v }
            if v > maxValue { maxValue = v }
            let w = weights[i]
            sumW += w
            sumX += w * v
            i &+= 1
        }
        if minValue > 0 { minValue = 0 }
        if maxValue == minValue {
            i = 0
            while i < n {
                codes[i] = 0
                i &+= 1
            }
            return (0, -minValue)
        }
        var iscale = Float(nmax) / (maxValue - minValue)
        var scale = 1 / iscale
        var bestError: Float = 0
        i = 0
        while i < n {
            var l = nearestInt(iscale * (x[i] - minValue))
            l = l < 0 ? 0 : (l > nmax ? nmax : l)
            codes[i] = UInt8(truncatingIfNeeded: l)
            var diff = scale * Float(l) + minValue - x[i]
            diff = useMAD ? diff.magnitude : diff * diff
            bestError += weights[i] * diff
            i &+= 1
        }
        if nstep < 1 { return (scale, -minValue) }
        var step = 0
        while step <= nstep {
            let shifted = rmin + rdelta * Float(step) + Float(nmax)
            // `minValue` moves when a candidate wins, and later candidates use the moved one (as ggml does).
            iscale = shifted / (maxValue - minValue)
            var sumL: Float = 0
            var sumL2: Float = 0
            var sumXL: Float = 0
            i = 0
            while i < n {
                var l = nearestInt(iscale * (x[i] - minValue))
                l = l < 0 ? 0 : (l > nmax ? nmax : l)
                scratch[i] = UInt8(truncatingIfNeeded: l)
                let w = weights[i]
                let fl = Float(l)
                let wl = w * fl
                sumL += wl
                sumL2 += wl * fl
                sumXL += wl * x[i]
                i &+= 1
            }
            let determinant = sumW * sumL2 - sumL * sumL
            if determinant > 0 {
                var thisScale = (sumW * sumXL - sumX * sumL) / determinant
                var thisMin = (sumL2 * sumX - sumL * sumXL) / determinant
                if thisMin > 0 {
                    thisMin = 0
                    thisScale = sumXL / sumL2
                }
                var error: Float = 0
                i = 0
                while i < n {
                    var diff = thisScale * Float(scratch[i]) + thisMin - x[i]
                    diff = useMAD ? diff.magnitude : diff * diff
                    error += weights[i] * diff
                    i &+= 1
                }
                if error < bestError {
                    i = 0
                    while i < n {
                        codes[i] = scratch[i]
                        i &+= 1
                    }
                    bestError = error
                    scale = thisScale
                    minValue = thisMin
                }
            }
            step &+= 1
        }
        return (scale, -minValue)
    }

    /// ggml's `kvalues_iq4nl`: the 16 IQ4_NL / IQ4_XS levels.
    static let iq4Levels: [Int8] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]

    /// ggml's `best_index_int8` over ``iq4Levels``: the nearest level, ties to the upper one.
    @inline(__always)
    static func nearestIQ4Level(_ x: Float, _ levels: UnsafePointer<Float>) -> Int {
        if x <= levels[0] { return 0 }
        if x >= levels[15] { return 15 }
        var low = 0
        var high = 15
        while high - low > 1 {
            let middle = (low + high) / 2
            if x < levels[middle] { high = middle } else { low = middle }
        }
        return x - levels[high - 1] < levels[high] - x ? high - 1 : high
    }
}
