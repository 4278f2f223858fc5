/// How a scaled value s in [-1, 1] becomes a 4-bit code, for one (quant type, profile) pair.
///
/// Every rule is "rank = number of thresholds strictly below the value, code = map[rank]", which is both the
/// CPU backend's left-side bucketize and the CUDA decision trees (spec sections 2.5 and 2.8). CUDA FP4 ranks
/// the magnitude and adds the sign bit separately.
struct CodeRule: Sendable {
    /// Ascending thresholds; unused lanes hold +infinity so they never count.
    let thresholds: SIMD16<Float>
    /// Number of real thresholds (15 for sorted tables, 7 for CUDA FP4 magnitudes).
    let thresholdCount: Int
    /// Code by rank.
    let map: SIMD16<UInt8>
    /// Whether `map` is the identity (NF4), so ranks are codes.
    let isIdentity: Bool
    /// CUDA FP4: rank |s| and set bit 3 when s < 0.
    let ranksMagnitude: Bool
    /// The rank a NaN value gets (CPU bucketize puts NaN last; the CUDA trees send it to the first leaf).
    let nanRank: UInt8

    init(quantType: QuantType, profile: QuantizationProfile) {
        let infinity = Float.infinity
        switch (quantType, profile) {
        case (.nf4, _):
            // Spec 2.5: float32 midpoints of neighbouring NF4 values, identical to the CUDA literals.
            let bits: [UInt32] = [
                0xBF59_1CD8, 0xBF1C_5270, 0xBEEB_8480, 0xBEAD_EA76, 0xBE70_3CEC, 0xBE0D_38BC, 0xBD3A_7871,
                0x3D22_FAFF, 0x3DF6_4862, 0x3E50_67E0, 0x3E95_82D4, 0x3EC7_53F9, 0x3F00_6D04, 0x3F24_8DAF,
                0x3F5C_89DA,
            ]
            var t = SIMD16<Float>(repeating: infinity)
            for (k, b) in bits.enumerated() { t[k] = Float(bitPattern: b) }
            var m = SIMD16<UInt8>()
            for k in 0..<16 { m[k] = UInt8(k) }
            self.init(t, 15, m, true, false, profile == .cpu ? 15 : 0)
        case (.fp4, .cpu):
            // Spec 2.8: the table sorted in this code order, thresholds = float32 midpoints of neighbours.
            let order: [UInt8] = [11, 10, 13, 12, 15, 14, 9, 0, 8, 1, 6, 7, 4, 5, 2, 3]
            let table = NF4Codebook.fp4
            var t = SIMD16<Float>(repeating: infinity)
            for k in 0..<15 { t[k] = (table[Int(order[k])] + table[Int(order[k + 1])]) / 2 }
            var m = SIMD16<UInt8>()
            for k in 0..<16 { m[k] = order[k] }
            self.init(t, 15, m, false, false, 15)
        case (.fp4, .cuda):
            // Spec 2.8: the CUDA tree's literals on |s| (some are not exact midpoints), magnitude patterns by rank.
            let literals: [Float] = [0.00260417, 0.0859375, 0.20833333, 0.29166667, 0.4166667, 0.583333, 0.8333333]
            let patterns: [UInt8] = [0, 1, 6, 7, 4, 5, 2, 3]
            var t = SIMD16<Float>(repeating: infinity)
            for (k, v) in literals.enumerated() { t[k] = v }
            var m = SIMD16<UInt8>()
            for k in 0..<8 { m[k] = patterns[k] }
            self.init(t, 7, m, false, true, 0)
        }
    }

    private init(
        _ thresholds: SIMD16<Float>, _ count: Int, _ map: SIMD16<UInt8>, _ identity: Bool, _ magnitude: Bool,
        _ nanRank: UInt8
    ) {
        self.thresholds = thresholds
        self.thresholdCount = count
        self.map = map
        self.isIdentity = identity
        self.ranksMagnitude = magnitude
        self.nanRank = nanRank
    }

    /// The code of one scaled value (scalar path: partial blocks, non-finite blocks, the CUDA FP4 rule).
    @inline(__always)
    func code(_ s: Float) -> UInt8 {
        if s.isNaN { return map[Int(nanRank)] }
        let v = ranksMagnitude ? abs(s) : s
        var rank = 0
        for k in 0..<thresholdCount where thresholds[k] < v { rank += 1 }
        let code = map[rank]
        return ranksMagnitude && s < 0 ? code | 8 : code
    }
}
