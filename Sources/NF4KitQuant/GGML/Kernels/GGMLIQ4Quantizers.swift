/// ggml's IQ4_NL and IQ4_XS quantizers as llama-quantize runs them without an importance matrix:
/// `quantize_iq4_nl` / `quantize_iq4_xs`, i.e. `quantize_row_iq4_nl_impl` with `ntry = 7` and weights x²
/// (not `quantize_row_iq4_nl_ref`, which uses `ntry = -1`).
///
/// Layouts (ggml-common.h, little-endian; codes index ``GGMLQuantMath/iq4Levels``):
/// - IQ4_NL, 18 bytes per 32: f16 d, qs[16] (element k low nibble, element k + 16 high nibble); `x = d * level`.
/// - IQ4_XS, 136 bytes per 256: f16 d, u16 scales_h (2 high bits per group of 32), scales_l[4] (low nibbles),
///   qs[128] (16 bytes per group of 32, as IQ4_NL); group scale `d * (ls - 32)`.
enum GGMLIQ4Quantizers {
    typealias M = GGMLQuantMath
    private static let tries = 7

    static func quantize(_ x: UnsafeBufferPointer<Float>, superBlock: Int, into out: UnsafeMutableRawBufferPointer) {
        guard let source = x.baseAddress, let destination = out.baseAddress else { return }
        let typeSize = superBlock == 32 ? 18 : 136
        M.iq4Levels.map(Float.init).withUnsafeBufferPointer { levels in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 256) { codes in
                withUnsafeTemporaryAllocation(of: Float.self, capacity: 40) { floats in
                    for block in 0..<(x.count / superBlock) {
                        quantizeSuperBlock(
                            source + block * superBlock, size: superBlock, destination + block * typeSize,
                            codes.baseAddress!, floats.baseAddress!, levels.baseAddress!)
                    }
                }
            }
        }
    }

    private static func quantizeSuperBlock(
        _ x: UnsafePointer<Float>, size: Int, _ y: UnsafeMutableRawPointer, _ L: UnsafeMutablePointer<UInt8>,
        _ floats: UnsafeMutablePointer<Float>, _ levels: UnsafePointer<Float>
    ) {
        let weight = floats
        let scales = floats + 32
        let groups = size / 32
        let level0 = Float(M.iq4Levels[0])
        var maxScale: Float = 0
        var amaxScale: Float = 0
        for ib in 0..<groups {
            let xb = x + ib * 32
            let lb = L + ib * 32
            for j in 0..<32 { weight[j] = xb[j] * xb[j] }
            var amax: Float = 0
            var maxValue: Float = 0
            for j in 0..<32 {
                let ax = abs(xb[j])
                if ax > amax {
                    amax = ax
                    maxValue = xb[j]
                }
            }
            if amax < M.groupMaxEpsilon {
                scales[ib] = 0
                continue
            }
            var d = -maxValue / level0
            var id = 1 / d
            var sumqx: Float = 0
            var sumq2: Float = 0
            for j in 0..<32 {
                let al = id * xb[j]
                let l = M.nearestIQ4Level(al, levels)
                lb[j] = UInt8(l)
                let q = levels[l]
                let w = weight[j]
                let wq = w * q
                sumqx += wq * xb[j]
                sumq2 += wq * q
            }
            d = sumq2 > 0 ? sumqx / sumq2 : 0
            var best = d * sumqx
            for attempt in -tries...tries {
                id = Float(attempt + Int(M.iq4Levels[0])) / maxValue
                sumqx = 0
                sumq2 = 0
                var j = 0
                while j < 32 {
                    let al = id * xb[j]
                    let q = levels[M.nearestIQ4Level(al, levels)]
                    let w = weight[j]
                    let wq = w * q
                    sumqx += wq * xb[j]
                    sumq2 += wq * q
                    j &+= 1
                }
                if sumq2 > 0 && sumqx * sumqx > best * sumq2 {
                    d = sumqx / sumq2
                    best = d * sumqx
                }
            }
            scales[ib] = d
            let absD = abs(d)
            if absD > amaxScale {
                amaxScale = absD
                maxScale = d
            }
        }
        let bytes = y.assumingMemoryBound(to: UInt8.self)
        let q4: UnsafeMutablePointer<UInt8>
        if groups > 1 {
            q4 = bytes + 8
            var scalesHigh: UInt16 = 0
            let d = -maxScale / 32
            M.storeHalf(M.half(d), y, 0)
            let id: Float = d != 0 ? 1 / d : 0
            for ib in 0..<groups {
                var l = max(-32, min(31, M.nearestInt(id * scales[ib])))
                let dl = d * Float(l)
                let idl: Float = dl != 0 ? 1 / dl : 0
                let lb = L + ib * 32
                let xb = x + ib * 32
                for j in 0..<32 { lb[j] = UInt8(M.nearestIQ4Level(idl * xb[j], levels)) }
                l += 32
                let low = UInt8(l & 0xF)
                let high = UInt16(l >> 4)
                if ib % 2 == 0 { bytes[4 + ib / 2] = low } else { bytes[4 + ib / 2] |= low << 4 }
                scalesHigh |= high << UInt16(2 * (ib % 8))
            }
            y.storeBytes(of: scalesHigh.littleEndian, toByteOffset: 2, as: UInt16.self)
        } else {
            q4 = bytes + 2
            M.storeHalf(M.half(scales[0]), y, 0)
            let id: Float = scales[0] != 0 ? 1 / scales[0] : 0
            for j in 0..<size { L[j] = UInt8(M.nearestIQ4Level(id * x[j], levels)) }
        }
        for i in 0..<(size / 32) {
            for j in 0..<16 { q4[16 * i + j] = L[32 * i + j] | (L[32 * i + 16 + j] << 4) }
        }
    }
}
