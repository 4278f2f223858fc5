import NF4KitCore

/// Dequantizers for the ggml block types beyond Q8_0, Q4_0 and Q4_1 (``GGMLBlockCodec`` dispatches here), equal to
/// gguf-py's `quants.dequantize` bit for bit.
///
/// Every value is computed in f32 with the operations and the operation order of gguf-py's numpy code (which are
/// those of ggml's `dequantize_row_*`): a scale product first (`d * sc`), then one multiply (and one subtraction or
/// addition) per element; Swift does not fuse them. The block layouts are in ggml-common.h; each decoder below says
/// its own in one comment. Types gguf-py cannot dequantize (Q8_1, Q8_K, Q1_0) are not decoded here.
enum GGMLDequantizers {
    /// Whether ``dequantize(_:as:into:)`` decodes `type`.
    static func supports(_ type: GGMLType) -> Bool {
        switch type {
        case .q5_0, .q5_1, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .tq1_0, .tq2_0, .mxfp4, .nvfp4, .iq2_xxs, .iq2_xs,
            .iq2_s, .iq3_xxs, .iq3_s, .iq1_s, .iq1_m, .iq4_nl, .iq4_xs:
            true
        default: false
        }
    }

    /// Decodes whole blocks of `type`; sizes are checked by ``GGMLBlockCodec/dequantize(_:as:into:)``.
    static func dequantize(
        _ source: UnsafeRawBufferPointer, as type: GGMLType, into destination: UnsafeMutableBufferPointer<Float>
    ) {
        let blocks = destination.count / type.blockSize
        let decode: (UnsafeRawBufferPointer, UnsafeMutableBufferPointer<Float>) -> Void
        switch type {
        case .q5_0: decode = q50
        case .q5_1: decode = q51
        case .q2_K: decode = q2K
        case .q3_K: decode = q3K
        case .q4_K: decode = q4K
        case .q5_K: decode = q5K
        case .q6_K: decode = q6K
        case .tq1_0: decode = tq10
        case .tq2_0: decode = tq20
        case .mxfp4: decode = mxfp4
        case .nvfp4: decode = nvfp4
        case .iq2_xxs: decode = iq2XXS
        case .iq2_xs: decode = iq2XS
        case .iq2_s: decode = iq2S
        case .iq3_xxs: decode = iq3XXS
        case .iq3_s: decode = iq3S
        case .iq1_s: decode = iq1S
        case .iq1_m: decode = iq1M
        case .iq4_nl: decode = iq4NL
        case .iq4_xs: decode = iq4XS
        default: preconditionFailure("GGMLDequantizers: no dequantizer for \(type)")
        }
        for block in 0..<blocks {
            let input = UnsafeRawBufferPointer(
                rebasing: source[(block * type.typeSize)..<((block + 1) * type.typeSize)])
            let output = UnsafeMutableBufferPointer(
                rebasing: destination[(block * type.blockSize)..<((block + 1) * type.blockSize)])
            decode(input, output)
        }
    }

    // MARK: - Legacy 5-bit types (32 values)

    // Q5_0, 22 bytes: f16 d, u32 qh (bit j = high bit of element j), 16 bytes of low nibbles as Q4_0. x = d * (q - 16).
    private static func q50(_ b: UnsafeRawBufferPointer, _ y: UnsafeMutableBufferPointer<Float>) {
        let d = half(b, 0)
        let qh = u32(b, 2)
        for j in 0..<32 {
            let q = Int(nibble(b[6 + j % 16], j / 16)) | Int((qh >> UInt32(j)) & 1) << 4
            y[j] = d * Float(q - 16)
        }
    }

    // Q5_1, 24 bytes: f16 d, f16 m, u32 qh, 16 bytes of low nibbles. x = d * q + m.
    private static func q51(_ b: UnsafeRawBufferPointer, _ y: UnsafeMutableBufferPointer<Float>) {
        let d = half(b, 0)
        let m = half(b, 2)
        let qh = u32(b, 4)
        for j in 0..<32 {
            let q = Int(nibble(b[8 + j % 16], j / 16)) | Int((qh >> UInt32(j)) & 1) << 4
            y[j] = d * Float(q) + m
        }
    }

    // MARK: - k-quants (256 values)

    // Q2_K, 84 bytes: 16 scale bytes (low nibble scale, high nibble min), 64 bytes of 2-bit codes, f16 d, f16 dmin.
    // Element e = 128h + 32s + l is bits 2s of qs[32h + l]; sub-block e / 16. x = (d * sc) * q - (dmin * m).
    private static func q2K(_ b: UnsafeRawBufferPointer, _ y: UnsafeMutableBufferPointer<Float>) {
        let d = half(b, 80)
        let dmin = half(b, 82)
        for g in 0..<16 {
            let dl = d * Float(b[g] & 0x0F)
            let ml = dmin * Float(b[g] >> 4)
            for i in 0..<16 {
                let e = g * 16 + i
                let q = (b[16 + (e / 128) * 32 + e % 32] >> UInt8(2 * ((e / 32) % 4))) & 3
                y[e] = dl * Float(q) - ml
            }
        }
    }

    // Q3_K, 110 bytes: 32 bytes hmask, 64 bytes of 2-bit codes, 12 bytes of 6-bit scales, f16 d. Element
    // e = 128h + 32s + l: low bits 2s of qs[32h + l], high bit e / 32 of hmask[l] (set = no offset, clear = -4).
    // x = (d * (scale - 32)) * q.
    private static func q3K(_ b: UnsafeRawBufferPointer, _ y: UnsafeMutableBufferPointer<Float>) {
        let d = half(b, 108)
        for g in 0..<16 {
            let low = (b[96 + g % 8] >> UInt8(4 * (g / 8))) & 0x0F
            let high = (b[104 + g % 4] >> UInt8(2 * (g / 4))) & 0x03
            let dl = d * Float(Int(low | high << 4) - 32)
            for i in 0..<16 {
                let e = g * 16 + i
                let l = e % 32
                let ql = Int((b[32 + (e / 128) * 32 + l] >> UInt8(2 * ((e / 32) % 4))) & 3)
                let qh = Int(((b[l] >> UInt8(e / 32)) & 1) ^ 1)
                y[e] = dl * Float(ql - (qh << 2))
            }
        }
    }

    /// The 6-bit scale and min of sub-block `j` (0..<8) of a Q4_K/Q5_K block whose 12 scale bytes start at `at`.
    @inline(__always)
    private static func scaleMin(_ b: UnsafeRawBufferPointer, _ at: Int, _ j: Int) -> (Float, Float) {
        if j < 4 {
            return (Float(b[at + j] & 0x3F), Float(b[at + j + 4] & 0x3F))
        }
        let sc = (b[at + j + 4] & 0x0F) | ((b[at + j - 4] >> 2) & 0x30)
        let m = (b[at + j + 4] >> 4) | ((b[at + j] >> 2) & 0x30)
        return (Float(sc), Float(m))
    }

    // Q4_K, 144 bytes: f16 d, f16 dmin, 12 bytes of 6-bit scales/mins, 128 bytes of nibbles. Sub-block g = 2c + s is
    // nibble s of qs[32c + l]. x = (d * sc) * q - (dmin * m).
    private static func q4K(_ b: UnsafeRawBufferPointer, _ y: UnsafeMutableBufferPointer<Float>) {
        let d = half(b, 0)
        let dmin = half(b, 2)
        for g in 0..<8 {
            let (sc, m) = scaleMin(b, 4, g)
            let dl = d * sc
            let ml = dmin * m
            for l in 0..<32 {
                let q = nibble(b[16 + (g / 2) * 32 + l], g % 2)
                y[g * 32 + l] = dl * Float(q) - ml
            }
        }
    }

    // Q5_K, 176 bytes: f16 d, f16 dmin, 12 scale bytes, 32 bytes qh (bit g of qh[l] = high bit of sub-block g),
    // 128 bytes of nibbles as Q4_K. x = (d * sc) * q - (dmin * m).
    private static func q5K(_ b: UnsafeRawBufferPointer, _ y: UnsafeMutableBufferPointer<Float>) {
        let d = half(b, 0)
        let dmin = half(b, 2)
        for g in 0..<8 {
            let (sc, m) = scaleMin(b, 4, g)
            let dl = d * sc
            let ml = dmin * m
            for l in 0..<32 {
                let q = nibble(b[48 + (g / 2) * 32 + l], g % 2) | ((b[16 + l] >> UInt8(g)) & 1) << 4
                y[g * 32 + l] = dl * Float(q) - ml
            }
        }
    }

    // Q6_K, 210 bytes: 128 bytes ql, 64 bytes qh, 16 int8 scales, f16 d. Element e = 128h + 64s + m: low nibble s of
    // ql[64h + m]; element e = 128h + 32t + l: high bits 2t of qh[32h + l]. x = (d * scale[e / 16]) * (q - 32).
    private static func q6K(_ b: UnsafeRawBufferPointer, _ y: UnsafeMutableBufferPointer<Float>) {
        let d = half(b, 208)
        for g in 0..<16 {
            let dl = d * Float(Int8(bitPattern: b[192 + g]))
            for i in 0..<16 {
                let e = g * 16 + i
                let h = e / 128
                let r = e % 128
                let ql = nibble(b[h * 64 + r % 64], r / 64)
                let qh = (b[128 + h * 32 + r % 32] >> UInt8(2 * (r / 32))) & 3
                y[e] = dl * Float(Int(ql | qh << 4) - 32)
            }
        }
    }

    // MARK: - Ternary types (256 values)

    private static let powersOfThree: [UInt8] = [1, 3, 9, 27, 81]

    // TQ1_0, 54 bytes: 48 bytes of 5 base-3 digits each (fixed-point: digit k is (byte * 3^k mod 256) * 3 >> 8),
    // 4 bytes of 4 digits, f16 d. Elements: 32k + l from qs[l] (k < 5), 160 + 16k + l from qs[32 + l],
    // 240 + 4k + l from qh[l]. x = d * (digit - 1).
    private static func tq10(_ b: UnsafeRawBufferPointer, _ y: UnsafeMutableBufferPointer<Float>) {
        let d = half(b, 52)
        func digit(_ byte: UInt8, _ k: Int) -> Float {
            let scaled = byte &* powersOfThree[k]
            return Float(Int((UInt16(scaled) &* 3) >> 8) - 1)
        }
        for k in 0..<5 {
            for l in 0..<32 { y[32 * k + l] = d * digit(b[l], k) }
            for l in 0..<16 { y[160 + 16 * k + l] = d * digit(b[32 + l], k) }
        }
        for k in 0..<4 {
            for l in 0..<4 { y[240 + 4 * k + l] = d * digit(b[48 + l], k) }
        }
    }

    // TQ2_0, 66 bytes: 64 bytes of 2-bit codes (element 128h + 32s + l is bits 2s of qs[32h + l]), f16 d.
    // x = d * (q - 1).
    private static func tq20(_ b: UnsafeRawBufferPointer, _ y: UnsafeMutableBufferPointer<Float>) {
        let d = half(b, 64)
        for e in 0..<256 {
            let q = (b[(e / 128) * 32 + e % 32] >> UInt8(2 * ((e / 32) % 4))) & 3
            y[e] = d * Float(Int(q) - 1)
        }
    }

    // MARK: - Microscaling FP4

    // E2M1 values doubled (the scales below are halved to match).
    private static let fp4Values: [Float] = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12]

    // MXFP4, 17 bytes for 32 values: e8m0 exponent e, 16 bytes of nibbles (element 16s + l is nibble s of qs[l]).
    // d = 2^(e - 128) (ggml_e8m0_to_fp32_half); x = d * value.
    private static func mxfp4(_ b: UnsafeRawBufferPointer, _ y: UnsafeMutableBufferPointer<Float>) {
        let e = UInt32(b[0])
        let d = Float(bitPattern: e < 2 ? 0x0020_0000 << e : (e - 1) << 23)
        for j in 0..<32 {
            y[j] = d * fp4Values[Int(nibble(b[1 + j % 16], j / 16))]
        }
    }

    // NVFP4, 36 bytes for 64 values: 4 unsigned E4M3 scales (one per 16 values, halved), 32 bytes of nibbles: value
    // 16k + j is the low nibble of qs[8k + j] for j < 8, the high nibble of qs[8k + j - 8] after. x = d * value.
    private static func nvfp4(_ b: UnsafeRawBufferPointer, _ y: UnsafeMutableBufferPointer<Float>) {
        for k in 0..<4 {
            let d = ue4m3Half(b[k])
            for j in 0..<16 {
                y[16 * k + j] = d * fp4Values[Int(nibble(b[4 + 8 * k + j % 8], j / 8))]
            }
        }
    }

    // Unsigned E4M3 (bias 7, no sign; 0 and 0x7F decode to 0), times 0.5, in gguf-py's f32 steps.
    private static func ue4m3Half(_ x: UInt8) -> Float {
        if x == 0 || x == 0x7F { return 0 }
        let exponent = Int((x >> 3) & 0x0F)
        let mantissa = Float(x & 7)
        let raw: Float =
            exponent == 0
            ? mantissa * Float(sign: .plus, exponent: -9, significand: 1)
            : (1 + mantissa / 8) * Float(sign: .plus, exponent: exponent - 7, significand: 1)
        return raw * 0.5
    }

    // MARK: - IQ4 (non-linear 4-bit)

    private static let iq4Values: [Float] = [
        -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
    ]

    // IQ4_NL, 18 bytes for 32 values: f16 d, 16 bytes of nibbles as Q4_0. x = d * value.
    private static func iq4NL(_ b: UnsafeRawBufferPointer, _ y: UnsafeMutableBufferPointer<Float>) {
        let d = half(b, 0)
        for j in 0..<32 {
            y[j] = d * iq4Values[Int(nibble(b[2 + j % 16], j / 16))]
        }
    }

    // IQ4_XS, 136 bytes: f16 d, u16 scales_h (2 bits per sub-block), 4 bytes scales_l (a nibble per sub-block),
    // 128 bytes of nibbles (sub-block k: value 16s + l is nibble s of qs[16k + l]). x = (d * (scale - 32)) * value.
    private static func iq4XS(_ b: UnsafeRawBufferPointer, _ y: UnsafeMutableBufferPointer<Float>) {
        let d = half(b, 0)
        let high = u16(b, 2)
        for k in 0..<8 {
            let low = nibble(b[4 + k / 2], k % 2)
            let scale = Int(low | UInt8((high >> UInt16(2 * k)) & 3) << 4) - 32
            let dl = d * Float(scale)
            for j in 0..<32 {
                y[32 * k + j] = dl * iq4Values[Int(nibble(b[8 + 16 * k + j % 16], j / 16))]
            }
        }
    }

    // MARK: - IQ2 / IQ3 (lattice codebooks)

    /// Sign byte `index` (0..<128) of ggml's `ksigns_iq2xs`: the 7 bits plus an 8th that makes the count even.
    @inline(__always)
    private static func evenSigns(_ index: UInt32) -> UInt8 {
        let bits = UInt8(index & 0x7F)
        return bits.nonzeroBitCount % 2 == 1 ? bits | 0x80 : bits
    }

    @inline(__always)
    private static func sign(_ bits: UInt8, _ j: Int) -> Float { (bits >> UInt8(j)) & 1 == 0 ? 1 : -1 }

    @inline(__always)
    private static func gridValue(_ point: UInt64, _ j: Int) -> Float {
        Float(UInt8(truncatingIfNeeded: point >> (8 * UInt64(j))))
    }

    @inline(__always)
    private static func gridValue(_ point: UInt32, _ j: Int) -> Float {
        Float(UInt8(truncatingIfNeeded: point >> (8 * UInt32(j))))
    }

    // IQ2_XXS, 66 bytes: f16 d, then 8 groups of 32 values, each two u32: the first holds 4 grid indices (a byte each,
    // 8 values per point), the second 4 x 7 sign bits and a 4-bit scale at the top. x = (d * (0.5 + s) * 0.25) * g * sign.
    private static func iq2XXS(_ b: UnsafeRawBufferPointer, _ y: UnsafeMutableBufferPointer<Float>) {
        let d = half(b, 0)
        for group in 0..<8 {
            let aux = u32(b, 2 + 8 * group + 4)
            let db = d * (0.5 + Float(aux >> 28)) * 0.25
            for k in 0..<4 {
                let point = GGMLGridTables.iq2xxs[Int(b[2 + 8 * group + k])]
                let signs = evenSigns(aux >> UInt32(7 * k))
                for j in 0..<8 {
                    y[32 * group + 8 * k + j] = db * gridValue(point, j) * sign(signs, j)
                }
            }
        }
    }

    // IQ2_XS, 74 bytes: f16 d, 32 u16 (9-bit grid index, 7 sign bits), 8 bytes of 4-bit scales (one per 16 values).
    // x = (d * (0.5 + s) * 0.25) * g * sign.
    private static func iq2XS(_ b: UnsafeRawBufferPointer, _ y: UnsafeMutableBufferPointer<Float>) {
        let d = half(b, 0)
        for k in 0..<16 {
            let db = d * (0.5 + Float(nibble(b[66 + k / 2], k % 2))) * 0.25
            for p in 0..<2 {
                let code = u16(b, 2 + 2 * (2 * k + p))
                let point = GGMLGridTables.iq2xs[Int(code & 511)]
                let signs = evenSigns(UInt32(code >> 9))
                for j in 0..<8 {
                    y[16 * k + 8 * p + j] = db * gridValue(point, j) * sign(signs, j)
                }
            }
        }
    }

    // IQ2_S, 82 bytes: f16 d, 32 bytes of grid index low bits, 32 bytes of signs (one bit per value), 8 bytes qh
    // (2 high index bits per point), 8 bytes of 4-bit scales (one per 16 values). x = (d * (0.5 + s) * 0.25) * g * sign.
    private static func iq2S(_ b: UnsafeRawBufferPointer, _ y: UnsafeMutableBufferPointer<Float>) {
        let d = half(b, 0)
        for k in 0..<16 {
            let db = d * (0.5 + Float(nibble(b[74 + k / 2], k % 2))) * 0.25
            for p in 0..<2 {
                let m = 2 * k + p
                let index = Int(b[2 + m]) | Int((b[66 + m / 4] >> UInt8(2 * (m % 4))) & 3) << 8
                let point = GGMLGridTables.iq2s[index]
                let signs = b[34 + m]
                for j in 0..<8 {
                    y[8 * m + j] = db * gridValue(point, j) * sign(signs, j)
                }
            }
        }
    }

    // IQ3_XXS, 98 bytes: f16 d, 64 grid indices (4 values per point), 8 u32 (4 x 7 sign bits, 4-bit scale at the top)
    // for 8 groups of 32 values. x = (d * (0.5 + s) * 0.5) * g * sign.
    private static func iq3XXS(_ b: UnsafeRawBufferPointer, _ y: UnsafeMutableBufferPointer<Float>) {
        let d = half(b, 0)
        for group in 0..<8 {
            let aux = u32(b, 66 + 4 * group)
            let db = d * (0.5 + Float(aux >> 28)) * 0.5
            for k in 0..<4 {
                let signs = evenSigns(aux >> UInt32(7 * k))
                for half in 0..<2 {
                    let point = GGMLGridTables.iq3xxs[Int(b[2 + 8 * group + 2 * k + half])]
                    for j in 0..<4 {
                        y[32 * group + 8 * k + 4 * half + j] = db * gridValue(point, j) * sign(signs, 4 * half + j)
                    }
                }
            }
        }
    }

    // IQ3_S, 110 bytes: f16 d, 64 bytes of grid index low bits, 8 bytes qh (one high index bit per point), 32 bytes of
    // signs (a bit per value), 4 bytes of 4-bit scales (one per 32 values). x = (d * (1 + 2s)) * g * sign.
    private static func iq3S(_ b: UnsafeRawBufferPointer, _ y: UnsafeMutableBufferPointer<Float>) {
        let d = half(b, 0)
        for k in 0..<8 {
            let db = d * Float(1 + 2 * nibble(b[106 + k / 2], k % 2))
            for p in 0..<8 {
                let m = 8 * k + p
                let index = Int(b[2 + m]) | Int((b[66 + m / 8] >> UInt8(m % 8)) & 1) << 8
                let point = GGMLGridTables.iq3s[index]
                for j in 0..<4 {
                    let e = 4 * m + j
                    y[e] = db * gridValue(point, j) * sign(b[74 + e / 8], e % 8)
                }
            }
        }
    }

    // MARK: - IQ1 (ternary lattice with a shift)

    private static let iq1Delta: Float = 0.125

    @inline(__always)
    private static func iq1Value(_ point: UInt64, _ j: Int) -> Float {
        Float(Int8(bitPattern: UInt8(truncatingIfNeeded: point >> (8 * UInt64(j)))))
    }

    // IQ1_S, 50 bytes: f16 d, 32 bytes of grid index low bits, 8 u16 qh (per 32 values: 4 x 3 high index bits, a 3-bit
    // scale at bits 12-14, the delta sign at bit 15). x = (d * (2s + 1)) * (g + delta).
    private static func iq1S(_ b: UnsafeRawBufferPointer, _ y: UnsafeMutableBufferPointer<Float>) {
        let d = half(b, 0)
        for k in 0..<8 {
            let qh = u16(b, 34 + 2 * k)
            let dl = d * Float(2 * ((qh >> 12) & 7) + 1)
            let delta = qh & 0x8000 == 0 ? iq1Delta : -iq1Delta
            for s in 0..<4 {
                let m = 4 * k + s
                let index = Int(b[2 + m]) | Int((qh >> UInt16(3 * s)) & 7) << 8
                let point = GGMLGridTables.iq1s[index]
                for j in 0..<8 {
                    y[8 * m + j] = dl * (iq1Value(point, j) + delta)
                }
            }
        }
    }

    // IQ1_M, 56 bytes: 32 bytes of grid index low bits, 16 bytes qh (a nibble per point: 3 high index bits and the
    // delta sign), 4 u16 holding 3-bit scales (one per 16 values) and, in their top nibbles, the f16 d.
    // x = (d * (2s + 1)) * (g + delta).
    private static func iq1M(_ b: UnsafeRawBufferPointer, _ y: UnsafeMutableBufferPointer<Float>) {
        let dBits =
            (u16(b, 48) & 0xF000) >> 12 | (u16(b, 50) & 0xF000) >> 8 | (u16(b, 52) & 0xF000) >> 4 | u16(b, 54) & 0xF000
        let d = FloatConversion.float(fromHalfBits: dBits)
        for k in 0..<16 {
            let scales = u16(b, 48 + 2 * (k / 4))
            let dl = d * Float(2 * ((scales >> UInt16(3 * (k % 4))) & 7) + 1)
            for p in 0..<2 {
                let m = 2 * k + p
                let qh = b[32 + m / 2] >> UInt8(4 * (m % 2))
                let point = GGMLGridTables.iq1s[Int(b[m]) | Int(qh & 7) << 8]
                let delta = qh & 0x08 == 0 ? iq1Delta : -iq1Delta
                for j in 0..<8 {
                    y[8 * m + j] = dl * (iq1Value(point, j) + delta)
                }
            }
        }
    }

    // MARK: - Little-endian field readers

    @inline(__always)
    private static func half(_ b: UnsafeRawBufferPointer, _ offset: Int) -> Float {
        FloatConversion.float(fromHalfBits: u16(b, offset))
    }

    @inline(__always)
    private static func u16(_ b: UnsafeRawBufferPointer, _ offset: Int) -> UInt16 {
        UInt16(littleEndian: b.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    @inline(__always)
    private static func u32(_ b: UnsafeRawBufferPointer, _ offset: Int) -> UInt32 {
        UInt32(littleEndian: b.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    /// Nibble `which` (0 = low, 1 = high) of `byte`.
    @inline(__always)
    private static func nibble(_ byte: UInt8, _ which: Int) -> UInt8 { which == 0 ? byte & 0x0F : byte >> 4 }
}
