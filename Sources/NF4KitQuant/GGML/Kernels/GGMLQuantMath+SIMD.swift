/// ``GGMLQuantMath/makeQKX2Quants(count:nmax:_:weights:codes:scratch:rmin:rdelta:nstep:useMAD:)`` for the eight
/// groups of 32 of a Q4_K / Q5_K super-block at once, one group per SIMD lane.
///
/// Each lane runs exactly the scalar search on its own group: the same float operations in the same order (the
/// sums still add element 0, 1, 2, ... of the group), with ggml's branches turned into lane masks. So the result is
/// bit-identical to eight scalar calls (the golden-file tests check it), only the eight independent chains overlap.
extension GGMLQuantMath {
    typealias Lanes = SIMD8<Float>
    typealias IntLanes = SIMD8<Int32>

    /// `nearest_int` per lane.
    @inline(__always)
    static func nearestInt(_ value: Lanes) -> IntLanes {
        let shifted = value + Lanes(repeating: 12_582_912)
        let bits = unsafeBitCast(shifted, to: IntLanes.self)
        return (bits & IntLanes(repeating: 0x007F_FFFF)) &- IntLanes(repeating: 0x0040_0000)
    }

    /// Codes clamped to `0...nmax`.
    @inline(__always)
    static func clamped(_ l: IntLanes, _ nmax: IntLanes) -> IntLanes {
        var result = l
        result.replace(with: IntLanes.zero, where: result .< IntLanes.zero)
        result.replace(with: nmax, where: result .> nmax)
        return result
    }

    /// The fit of eight groups of 32 (no MAD): `x[i]` and `weights[i]` hold element `i` of every group; codes come
    /// back the same way.
    @inline(__always)
    static func makeQKX2Quants8(
        nmax: Int, _ x: UnsafePointer<Lanes>, weights: UnsafePointer<Lanes>, codes: UnsafeMutablePointer<IntLanes>,
        scratch: UnsafeMutablePointer<IntLanes>, rmin: Float, rdelta: Float, nstep: Int
    ) -> (scale: Lanes, negatedMin: Lanes) {
        let n = 32
        let top = IntLanes(repeating: Int32(nmax))
        var minValue = x[0]
        var maxValue = x[0]
        var sumW = weights[0]
        var sumX = sumW * x[0]
        var i = 1
        while i < n {
            let v = x[i]
            minValue.replace(with: v, where: v .< minValue)
            maxValue.replace(with: v, where: v .> maxValue)
            let w = weights[i]
            sumW += w
            sumX += w * v
            i &+= 1
        }
        minValue.replace(with: Lanes.zero, where: minValue .> Lanes.zero)
        let degenerate = maxValue .== minValue
        var iscale = Lanes(repeating: Float(nmax)) / (maxValue - minValue)
        var scale = 1 / iscale
        var bestError = Lanes.zero
        i = 0
        while i < n {
            let l = clamped(nearestInt(iscale * (x[i] - minValue)), top)
            codes[i] = l
            var diff = scale * Lanes(l) + minValue - x[i]
            diff = diff * diff
            bestError += weights[i] * diff
            i &+= 1
        }
        var step = 0
        while step <= nstep {
            let shifted = rmin + rdelta * Float(step) + Float(nmax)
            iscale = Lanes(repeating: shifted) / (maxValue - minValue)
            var sumL = Lanes.zero
            var sumL2 = Lanes.zero
            var sumXL = Lanes.zero
            i = 0
            while i < n {
                let l = clamped(nearestInt(iscale * (x[i] - minValue)), top)
                scratch[i] = l
                let fl = Lanes(l)
                let wl = weights[i] * fl
                sumL += wl
                sumL2 += wl * fl
                sumXL += wl * x[i]
                i &+= 1
            }
            let determinant = sumW * sumL2 - sumL * sumL
            let valid = determinant .> Lanes.zero
            if any(valid) {
                var thisScale = (sumW * sumXL - sumX * sumL) / determinant
                var thisMin = (sumL2 * sumX - sumL * sumXL) / determinant
                let pinned = thisMin .> Lanes.zero
                thisMin.replace(with: Lanes.zero, where: pinned)
                thisScale.replace(with: sumXL / sumL2, where: pinned)
                var error = Lanes.zero
                i = 0
                while i < n {
                    var diff = thisScale * Lanes(scratch[i]) + thisMin - x[i]
                    diff = diff * diff
                    error += weights[i] * diff
                    i &+= 1
                }
                let better = valid .& (error .< bestError) .& .!degenerate
                if any(better) {
                    i = 0
                    while i < n {
                        codes[i].replace(with: scratch[i], where: better)
                        i &+= 1
                    }
                    bestError.replace(with: error, where: better)
                    scale.replace(with: thisScale, where: better)
                    minValue.replace(with: thisMin, where: better)
                }
            }
            step &+= 1
        }
        if any(degenerate) {
            i = 0
            while i < n {
                codes[i].replace(with: IntLanes.zero, where: degenerate)
                i &+= 1
            }
            scale.replace(with: Lanes.zero, where: degenerate)
        }
        return (scale, -minValue)
    }
}
