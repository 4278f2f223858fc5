internal import CNF4Kernels

/// ggml's reference k-quant quantizers (`quantize_row_q{2,3,4,5,6}_K_ref`, what llama-quantize runs without an
/// importance matrix), over whole 256-value super-blocks.
///
/// Layouts (ggml-common.h, little-endian):
/// - Q2_K, 84 bytes: scales[16] (low nibble scale, high nibble min), qs[64] (2-bit codes), f16 d, f16 dmin.
/// - Q3_K, 110 bytes: hmask[32] (high bits), qs[64] (low 2 bits), scales[12] (6-bit signed scales), f16 d.
/// - Q4_K, 144 bytes: f16 d, f16 dmin, scales[12] (6-bit scales and mins), qs[128] (4-bit codes).
/// - Q5_K, 176 bytes: f16 d, f16 dmin, scales[12], qh[32] (fifth bits), qs[128].
/// - Q6_K, 210 bytes: ql[128] (low 4 bits), qh[64] (high 2 bits), int8 scales[16], f16 d.
enum GGMLKQuantizers {
    typealias M = GGMLQuantMath

    /// Quantizes whole super-blocks of `type` (Q2_K ... Q6_K).
    ///
    /// With `native` (and a CPU with AVX2 + F16C), Q4_K, Q5_K and Q6_K run the C kernel of CNF4Kernels (the same
    /// operations in the same order, the groups of a super-block as vector lanes); super-blocks it leaves
    /// (non-finite or huge values) and every other type run the Swift code below, the reference it is tested against.
    static func quantize(
        _ x: UnsafeBufferPointer<Float>, q: Int, into out: UnsafeMutableRawBufferPointer, native: Bool = true
    ) {
        guard let source = x.baseAddress, let destination = out.baseAddress else { return }
        let blocks = x.count / 256
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 256) { codes in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 80) { floats in
                let codes = codes.baseAddress!
                let floats = floats.baseAddress!
                func swiftBlock(_ block: Int) {
                    let xb = source + block * 256
                    switch q {
                    case 2: q2K(xb, destination + block * 84, codes, floats)
                    case 3: q3K(xb, destination + block * 110, codes, floats)
                    case 4: q45K(xb, destination + block * 144, codes, floats, bits: 4)
                    case 5: q45K(xb, destination + block * 176, codes, floats, bits: 5)
                    default: q6K(xb, destination + block * 210, codes, floats)
                    }
                }
                guard native, q >= 4, QuantizeKernel.hasNativeKernel else {
                    for block in 0..<blocks { swiftBlock(block) }
                    return
                }
                let blockSize = q == 4 ? 144 : (q == 5 ? 176 : 210)
                let out = destination.assumingMemoryBound(to: UInt8.self)
                withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 64) { fallback in
                    let fallback = fallback.baseAddress!
                    var start = 0
                    while start < blocks {
                        let count = min(64, blocks - start)
                        if q == 6 {
                            nf4k_quantize_q6k_avx2(source + start * 256, count, out + start * blockSize, fallback)
                        } else {
                            nf4k_quantize_q45k_avx2(
                                source + start * 256, count, Int32(q), out + start * blockSize, fallback)
                        }
                        for k in 0..<count where fallback[k] != 0 { swiftBlock(start + k) }
                        start += count
                    }
                }
            }
        }
    }

    // quantize_row_q2_K_ref: 16 groups of 16, make_qkx2_quants(16, 3, |x| weights, -0.5, 0.1, 15, MAD).
    private static func q2K(
        _ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, _ codes: UnsafeMutablePointer<UInt8>,
        _ floats: UnsafeMutablePointer<Float>
    ) {
        let weights = floats
        let mins = floats + 16
        let scales = floats + 32
        let aux = codes + 0  // Laux needs 16 bytes; the codes of the group being fitted follow in L
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 16) { laux in
            let laux = laux.baseAddress!
            var maxScale: Float = 0
            var maxMin: Float = 0
            for j in 0..<16 {
                for l in 0..<16 { weights[l] = abs(x[16 * j + l]) }
                let fit = M.makeQKX2Quants(
                    count: 16, nmax: 3, x + 16 * j, weights: weights, codes: aux + 16 * j, scratch: laux,
                    rmin: -0.5, rdelta: 0.1, nstep: 15, useMAD: true)
                scales[j] = fit.scale
                mins[j] = fit.negatedMin
                if fit.scale > maxScale { maxScale = fit.scale }
                if fit.negatedMin > maxMin { maxMin = fit.negatedMin }
            }
            let sc = y.assumingMemoryBound(to: UInt8.self)
            let q4scale: Float = 15
            var dBits: UInt16 = 0
            var dminBits: UInt16 = 0
            if maxScale > 0 {
                let iscale = q4scale / maxScale
                for j in 0..<16 { sc[j] = UInt8(truncatingIfNeeded: M.nearestInt(iscale * scales[j])) }
                dBits = M.half(maxScale / q4scale)
            } else {
                for j in 0..<16 { sc[j] = 0 }
                dBits = M.half(0)
            }
            if maxMin > 0 {
                let iscale = q4scale / maxMin
                for j in 0..<16 {
                    let l = M.nearestInt(iscale * mins[j])
                    sc[j] |= UInt8(truncatingIfNeeded: l << 4)
                }
                dminBits = M.half(maxMin / q4scale)
            } else {
                dminBits = M.half(0)
            }
            M.storeHalf(dBits, y, 80)
            M.storeHalf(dminBits, y, 82)
            let dAll = M.float(dBits)
            let dminAll = M.float(dminBits)
            for j in 0..<16 {
                let d = dAll * Float(sc[j] & 0xF)
                if d == 0 { continue }
                let dm = dminAll * Float(sc[j] >> 4)
                for ii in 0..<16 {
                    let l = M.nearestInt((x[16 * j + ii] + dm) / d)
                    aux[16 * j + ii] = UInt8(truncatingIfNeeded: max(0, min(3, l)))
                }
            }
            let qs = y.assumingMemoryBound(to: UInt8.self) + 16
            for j in stride(from: 0, to: 256, by: 128) {
                for l in 0..<32 {
                    qs[j / 4 + l] =
                        aux[j + l] | (aux[j + l + 32] << 2) | (aux[j + l + 64] << 4) | (aux[j + l + 96] << 6)
                }
            }
        }
    }

    // quantize_row_q3_K_ref: 16 groups of 16, make_q3_quants(16, 4, rmse), 6-bit signed scales.
    private static func q3K(
        _ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, _ codes: UnsafeMutablePointer<UInt8>,
        _ floats: UnsafeMutablePointer<Float>
    ) {
        let L = UnsafeMutableRawPointer(codes).assumingMemoryBound(to: Int8.self)
        let scales = floats
        var maxScale: Float = 0
        var amax: Float = 0
        for j in 0..<16 {
            scales[j] = M.makeQ3Quants(count: 16, nmax: 4, x + 16 * j, codes: L + 16 * j)
            let scale = abs(scales[j])
            if scale > amax {
                amax = scale
                maxScale = scales[j]
            }
        }
        let bytes = y.assumingMemoryBound(to: UInt8.self)
        let hmask = bytes
        let qs = bytes + 32
        let sc = bytes + 96
        for k in 0..<12 { sc[k] = 0 }
        let dBits: UInt16
        if maxScale != 0 {
            let iscale = -32 / maxScale
            for j in 0..<16 {
                let rounded = Int(Int8(truncatingIfNeeded: M.nearestInt(iscale * scales[j])))
                let l = max(-32, min(31, rounded)) + 32
                if j < 8 {
                    sc[j] = UInt8(l & 0xF)
                } else {
                    sc[j - 8] |= UInt8((l & 0xF) << 4)
                }
                let high = l >> 4
                sc[j % 4 + 8] |= UInt8(truncatingIfNeeded: high << (2 * (j / 4)))
            }
            dBits = M.half(1 / iscale)
        } else {
            dBits = M.half(0)
        }
        M.storeHalf(dBits, y, 108)
        let dAll = M.float(dBits)
        for j in 0..<16 {
            let low = j < 8 ? Int(sc[j] & 0xF) : Int(sc[j - 8] >> 4)
            let scale = (low | (Int((sc[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32
            let d = dAll * Float(scale)
            if d == 0 { continue }
            for ii in 0..<16 {
                let l = M.nearestInt(x[16 * j + ii] / d)
                L[16 * j + ii] = Int8(max(-4, min(3, l)) + 4)
            }
        }
        for k in 0..<32 { hmask[k] = 0 }
        var m = 0
        var hm: UInt8 = 1
        for j in 0..<256 {
            if L[j] > 3 {
                hmask[m] |= hm
                L[j] -= 4
            }
            m += 1
            if m == 32 {
                m = 0
                hm = hm &<< 1
            }
        }
        for j in stride(from: 0, to: 256, by: 128) {
            for l in 0..<32 {
                let a = UInt8(bitPattern: L[j + l])
                let b = UInt8(bitPattern: L[j + l + 32])
                let c = UInt8(bitPattern: L[j + l + 64])
                let e = UInt8(bitPattern: L[j + l + 96])
                qs[j / 4 + l] = a | (b &<< 2) | (c &<< 4) | (e &<< 6)
            }
        }
    }

    // quantize_row_q4_K_ref / q5_K_ref: 8 groups of 32, weights av_x + |x|, make_qkx2_quants(32, 15 or 31,
    // -1 / -0.5, 0.1, 20 / 15 steps), 6-bit scales and mins packed as get_scale_min_k4 reads them.
    private static func q45K(
        _ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, _ L: UnsafeMutablePointer<UInt8>,
        _ floats: UnsafeMutablePointer<Float>, bits: Int
    ) {
        let nmax = bits == 4 ? 15 : 31
        let rmin: Float = bits == 4 ? -1 : -0.5
        let nstep = bits == 4 ? 20 : 15
        let mins = floats + 32
        let scales = floats + 40
        withUnsafeTemporaryAllocation(of: GGMLQuantMath.Lanes.self, capacity: 64) { lanes in
            withUnsafeTemporaryAllocation(of: GGMLQuantMath.IntLanes.self, capacity: 64) { codeLanes in
                let xT = lanes.baseAddress!
                let wT = xT + 32
                let lT = codeLanes.baseAddress!
                let auxT = lT + 32
                // Element i of group g goes to lane g of row i; the weights are av_x + |x| per group.
                for j in 0..<8 {
                    let xg = x + 32 * j
                    var sumX2: Float = 0
                    for l in 0..<32 { sumX2 += xg[l] * xg[l] }
                    let avX = (sumX2 / 32).squareRoot()
                    for l in 0..<32 {
                        xT[l][j] = xg[l]
                        wT[l][j] = avX + abs(xg[l])
                    }
                }
                let fit = M.makeQKX2Quants8(
                    nmax: nmax, xT, weights: wT, codes: lT, scratch: auxT, rmin: rmin, rdelta: 0.1, nstep: nstep)
                for j in 0..<8 {
                    scales[j] = fit.scale[j]
                    mins[j] = fit.negatedMin[j]
                    for l in 0..<32 { L[32 * j + l] = UInt8(truncatingIfNeeded: lT[l][j]) }
                }
            }
        }
        do {
            var maxScale: Float = 0
            var maxMin: Float = 0
            for j in 0..<8 {
                if scales[j] > maxScale { maxScale = scales[j] }
                if mins[j] > maxMin { maxMin = mins[j] }
            }
            let bytes = y.assumingMemoryBound(to: UInt8.self)
            let sc = bytes + 4
            let invScale: Float = maxScale > 0 ? 63 / maxScale : 0
            let invMin: Float = maxMin > 0 ? 63 / maxMin : 0
            for j in 0..<8 {
                let ls = min(63, UInt8(truncatingIfNeeded: M.nearestInt(invScale * scales[j])))
                let lm = min(63, UInt8(truncatingIfNeeded: M.nearestInt(invMin * mins[j])))
                if j < 4 {
                    sc[j] = ls
                    sc[j + 4] = lm
                } else {
                    sc[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4)
                    sc[j - 4] |= (ls >> 4) << 6
                    sc[j] |= (lm >> 4) << 6
                }
            }
            let dBits = M.half(maxScale / 63)
            let dminBits = M.half(maxMin / 63)
            M.storeHalf(dBits, y, 0)
            M.storeHalf(dminBits, y, 2)
            let dAll = M.float(dBits)
            let dminAll = M.float(dminBits)
            for j in 0..<8 {
                let (s, m) = scaleMin(j, sc)
                let d = dAll * Float(s)
                if d == 0 { continue }
                let dm = dminAll * Float(m)
                for ii in 0..<32 {
                    let l = M.nearestInt((x[32 * j + ii] + dm) / d)
                    L[32 * j + ii] = UInt8(max(0, min(nmax, l)))
                }
            }
            if bits == 4 {
                var q = bytes + 16
                for j in stride(from: 0, to: 256, by: 64) {
                    for l in 0..<32 { q[l] = L[j + l] | (L[j + l + 32] << 4) }
                    q += 32
                }
            } else {
                let qh = bytes + 16
                var ql = bytes + 48
                for k in 0..<32 { qh[k] = 0 }
                var m1: UInt8 = 1
                var m2: UInt8 = 2
                for n in stride(from: 0, to: 256, by: 64) {
                    for j in 0..<32 {
                        var l1 = L[n + j]
                        if l1 > 15 {
                            l1 -= 16
                            qh[j] |= m1
                        }
                        var l2 = L[n + j + 32]
                        if l2 > 15 {
                            l2 -= 16
                            qh[j] |= m2
                        }
                        ql[j] = l1 | (l2 << 4)
                    }
                    m1 = m1 &<< 2
                    m2 = m2 &<< 2
                    ql += 32
                }
            }
        }
    }

    // get_scale_min_k4.
    @inline(__always)
    private static func scaleMin(_ j: Int, _ q: UnsafeMutablePointer<UInt8>) -> (UInt8, UInt8) {
        if j < 4 { return (q[j] & 63, q[j + 4] & 63) }
        return ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }

    // quantize_row_q6_K_ref: 16 groups of 16, make_qx_quants(16, 32, rmse_type 1), int8 scales.
    private static func q6K(
        _ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, _ codes: UnsafeMutablePointer<UInt8>,
        _ floats: UnsafeMutablePointer<Float>
    ) {
        let L = UnsafeMutableRawPointer(codes).assumingMemoryBound(to: Int8.self)
        let scales = floats
        var maxScale: Float = 0
        var maxAbsScale: Float = 0
        for ib in 0..<16 {
            let scale = M.makeQXQuants(count: 16, nmax: 32, x + 16 * ib, codes: L + 16 * ib)
            scales[ib] = scale
            let absScale = abs(scale)
            if absScale > maxAbsScale {
                maxAbsScale = absScale
                maxScale = scale
            }
        }
        let bytes = y.assumingMemoryBound(to: UInt8.self)
        if maxAbsScale < M.groupMaxEpsilon {
            for k in 0..<210 { bytes[k] = 0 }
            return
        }
        let iscale = -128 / maxScale
        let dBits = M.half(1 / iscale)
        M.storeHalf(dBits, y, 208)
        let sc = bytes + 192
        for ib in 0..<16 {
            sc[ib] = UInt8(truncatingIfNeeded: min(127, M.nearestInt(iscale * scales[ib])))
        }
        let dAll = M.float(dBits)
        for j in 0..<16 {
            let d = dAll * Float(Int8(bitPattern: sc[j]))
            if d == 0 { continue }
            for ii in 0..<16 {
                let l = M.nearestInt(x[16 * j + ii] / d)
                L[16 * j + ii] = Int8(max(-32, min(31, l)) + 32)
            }
        }
        var ql = bytes
        var qh = bytes + 128
        for j in stride(from: 0, to: 256, by: 128) {
            for l in 0..<32 {
                let a = UInt8(bitPattern: L[j + l])
                let b = UInt8(bitPattern: L[j + l + 32])
                let c = UInt8(bitPattern: L[j + l + 64])
                let e = UInt8(bitPattern: L[j + l + 96])
                ql[l] = (a & 0xF) | ((c & 0xF) << 4)
                ql[l + 32] = (b & 0xF) | ((e & 0xF) << 4)
                qh[l] = (a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6)
            }
            ql += 64
            qh += 32
        }
    }
}
