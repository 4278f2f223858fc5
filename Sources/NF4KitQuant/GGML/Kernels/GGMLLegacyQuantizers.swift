/// ggml's reference quantizers for the 32-value legacy blocks Q4_1, Q5_0 and Q5_1 (`quantize_row_q4_1_ref`,
/// `quantize_row_q5_0_ref`, `quantize_row_q5_1_ref`; llama-quantize runs these without an importance matrix).
///
/// Layouts (ggml-common.h, little-endian):
/// - Q4_1, 20 bytes: f16 d, f16 m, qs[16] (element k low nibble, element k + 16 high nibble); `x = code * d + m`.
/// - Q5_0, 22 bytes: f16 d, qh (u32, bit k = fifth bit of element k), qs[16]; `x = (code - 16) * d`.
/// - Q5_1, 24 bytes: f16 d, f16 m, qh, qs[16]; `x = code * d + m`.
enum GGMLLegacyQuantizers {
    typealias M = GGMLQuantMath

    // Q4_1: d = (max - min) / 15, code = min(15, (int8)((x - min) * id + 0.5)).
    static func quantizeQ4_1(_ x: UnsafeBufferPointer<Float>, into out: UnsafeMutableRawBufferPointer) {
        guard let source = x.baseAddress, let destination = out.baseAddress else { return }
        for block in 0..<(x.count / 32) {
            let xb = source + block * 32
            let y = destination + block * 20
            let (minValue, maxValue) = range(xb)
            let d = (maxValue - minValue) / 15
            let id: Float = d != 0 ? 1 / d : 0
            M.storeHalf(M.half(d), y, 0)
            M.storeHalf(M.half(minValue), y, 2)
            let qs = y.assumingMemoryBound(to: UInt8.self) + 4
            for j in 0..<16 {
                let x0 = (xb[j] - minValue) * id
                let x1 = (xb[j + 16] - minValue) * id
                let low = min(15, Int(Int8(truncatingIfNeeded: M.truncatingConversion(x0 + 0.5))))
                let high = min(15, Int(Int8(truncatingIfNeeded: M.truncatingConversion(x1 + 0.5))))
                qs[j] = UInt8(truncatingIfNeeded: low) | (UInt8(truncatingIfNeeded: high) &<< 4)
            }
        }
    }

    // Q5_0: the first element of largest |x| gives max; d = max / -16, code = min(31, (int8)(x * id + 16.5)).
    static func quantizeQ5_0(_ x: UnsafeBufferPointer<Float>, into out: UnsafeMutableRawBufferPointer) {
        guard let source = x.baseAddress, let destination = out.baseAddress else { return }
        for block in 0..<(x.count / 32) {
            let xb = source + block * 32
            let y = destination + block * 22
            var amax: Float = 0
            var maxValue: Float = 0
            for j in 0..<32 where amax < abs(xb[j]) {
                amax = abs(xb[j])
                maxValue = xb[j]
            }
            let d = maxValue / -16
            let id: Float = d != 0 ? 1 / d : 0
            M.storeHalf(M.half(d), y, 0)
            let qs = y.assumingMemoryBound(to: UInt8.self) + 6
            var qh: UInt32 = 0
            for j in 0..<16 {
                let x0 = xb[j] * id
                let x1 = xb[j + 16] * id
                let c0 = UInt8(
                    truncatingIfNeeded: min(31, Int(Int8(truncatingIfNeeded: M.truncatingConversion(x0 + 16.5)))))
                let c1 = UInt8(
                    truncatingIfNeeded: min(31, Int(Int8(truncatingIfNeeded: M.truncatingConversion(x1 + 16.5)))))
                qs[j] = (c0 & 0x0F) | ((c1 & 0x0F) << 4)
                qh |= UInt32((c0 & 0x10) >> 4) << UInt32(j)
                qh |= UInt32((c1 & 0x10) >> 4) << UInt32(j + 16)
            }
            y.storeBytes(of: qh.littleEndian, toByteOffset: 2, as: UInt32.self)
        }
    }

    // Q5_1: d = (max - min) / 31, code = (uint8)((x - min) * id + 0.5).
    static func quantizeQ5_1(_ x: UnsafeBufferPointer<Float>, into out: UnsafeMutableRawBufferPointer) {
        guard let source = x.baseAddress, let destination = out.baseAddress else { return }
        for block in 0..<(x.count / 32) {
            let xb = source + block * 32
            let y = destination + block * 24
            let (minValue, maxValue) = range(xb)
            let d = (maxValue - minValue) / 31
            let id: Float = d != 0 ? 1 / d : 0
            M.storeHalf(M.half(d), y, 0)
            M.storeHalf(M.half(minValue), y, 2)
            let qs = y.assumingMemoryBound(to: UInt8.self) + 8
            var qh: UInt32 = 0
            for j in 0..<16 {
                let x0 = (xb[j] - minValue) * id
                let x1 = (xb[j + 16] - minValue) * id
                let c0 = UInt8(truncatingIfNeeded: M.truncatingConversion(x0 + 0.5))
                let c1 = UInt8(truncatingIfNeeded: M.truncatingConversion(x1 + 0.5))
                qs[j] = (c0 & 0x0F) | ((c1 & 0x0F) << 4)
                qh |= UInt32((c0 & 0x10) >> 4) << UInt32(j)
                qh |= UInt32((c1 & 0x10) >> 4) << UInt32(j + 16)
            }
            y.storeBytes(of: qh.littleEndian, toByteOffset: 4, as: UInt32.self)
        }
    }

    // min from FLT_MAX and max from -FLT_MAX, strict comparisons (NaNs are skipped).
    @inline(__always)
    private static func range(_ xb: UnsafePointer<Float>) -> (Float, Float) {
        var minValue = Float.greatestFiniteMagnitude
        var maxValue = -Float.greatestFiniteMagnitude
        for j in 0..<32 {
            let v = xb[j]
            if v < minValue { minValue = v }
            if v > maxValue { maxValue = v }
        }
        return (minValue, maxValue)
    }
}
