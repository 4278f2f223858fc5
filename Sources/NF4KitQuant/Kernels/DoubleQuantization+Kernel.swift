// The loops of DoubleQuantization over raw buffers: the PyTorch mean, the 8-bit coding and its inverse.
extension DoubleQuantization {
    /// The float32 mean of `absmax` exactly as PyTorch's CPU `mean()` computes it (spec 4.1).
    ///
    /// The sum is PyTorch's cascade float32 sum over 8 lanes; with `threadCount` > 1 and at least 32 768 values
    /// it is split into chunks the way PyTorch splits work between intra-op threads. `threadCount` 1 reproduces
    /// the golden files; it does not change how many threads this function uses (always one).
    /// - Complexity: O(m).
    public static func offset(of absmax: UnsafeBufferPointer<Float>, threadCount: Int = 1) -> Float {
        let m = absmax.count
        if m == 0 { return .nan }
        let grain = 32_768
        var sum: Float
        if m >= grain && threadCount > 1 {
            let tasks = min(threadCount, (m + grain - 1) / grain)
            let chunk = (m + tasks - 1) / tasks
            sum = 0
            var start = 0
            while start < m {
                let end = min(start + chunk, m)
                sum += cascadeSum(UnsafeBufferPointer(rebasing: absmax[start..<end]))
                start = end
            }
        } else {
            sum = cascadeSum(absmax)
        }
        return sum / Float(m)
    }

    /// PyTorch's single-thread cascade sum of a contiguous float32 array (spec 4.1 steps 1-3).
    static func cascadeSum(_ a: UnsafeBufferPointer<Float>) -> Float {
        let m = a.count
        if m < 8 {
            let rows = m / 4
            var p = multiLevelSum(rows: rows) { r in
                SIMD4<Float>(a[4 * r], a[4 * r + 1], a[4 * r + 2], a[4 * r + 3])
            }
            for index in (4 * rows)..<m { p[0] += a[index] }
            var total = p[0]
            total += p[1]
            total += p[2]
            total += p[3]
            return 0 + total
        }
        let vectors = m / 8
        let rows = vectors / 4
        let raw = UnsafeRawBufferPointer(a)
        var acc = multiLevelSum(rows: rows) { r in
            raw.loadUnaligned(fromByteOffset: r * 128, as: SIMD32<Float>.self)
        }
        var acc0 = acc.lowHalf.lowHalf
        for v in (4 * rows)..<vectors {
            acc0 += raw.loadUnaligned(fromByteOffset: v * 32, as: SIMD8<Float>.self)
        }
        acc.lowHalf.lowHalf = acc0
        var lanes = acc.lowHalf.lowHalf
        lanes += acc.lowHalf.highHalf
        lanes += acc.highHalf.lowHalf
        lanes += acc.highHalf.highHalf
        var s: Float = 0
        for index in (8 * vectors)..<m { s += a[index] }
        for lane in 0..<8 { s += lanes[lane] }
        return 0 + s
    }

    /// PyTorch's `multi_row_sum`: rows accumulated in four levels so that rounding error grows slowly.
    @inline(__always)
    private static func multiLevelSum<V: SIMD>(rows: Int, _ row: (Int) -> V) -> V where V.Scalar == Float {
        let levels = 4
        let ceilLog2 = rows <= 2 ? 1 : (Int.bitWidth - (rows - 1).leadingZeroBitCount)
        let power = max(4, ceilLog2 / levels)
        let step = 1 << power
        let mask = step - 1
        var l0 = V(), l1 = V(), l2 = V(), l3 = V()
        var i = 0
        while i + step <= rows {
            for _ in 0..<step {
                l0 += row(i)
                i += 1
            }
            l1 += l0
            l0 = V()
            if i & (mask << power) != 0 { continue }
            l2 += l1
            l1 = V()
            if i & (mask << (2 * power)) != 0 { continue }
            l3 += l2
            l2 = V()
        }
        while i < rows {
            l0 += row(i)
            i += 1
        }
        l0 += l1
        l0 += l2
        l0 += l3
        return l0
    }

    /// Phase 2 of double quantization: centre, nested absmax per 256 values, 8-bit codes.
    ///
    /// - Parameters:
    ///   - absmax: the first-level absmax of every block of the tensor.
    ///   - offset: ``offset(of:threadCount:)`` of `absmax` (CUDA: the GPU mean, which we approximate the same way).
    ///   - codes: receives one code per absmax value (`absmax.count` bytes).
    ///   - nestedAbsmax: receives ``nestedBlockCount(blockCount:)`` float32 values.
    /// - Complexity: O(m).
    public static func quantize(
        absmax: UnsafeBufferPointer<Float>, offset: Float, profile: QuantizationProfile,
        codes: UnsafeMutableBufferPointer<UInt8>, nestedAbsmax: UnsafeMutableBufferPointer<Float>
    ) {
        let m = absmax.count
        precondition(
            codes.count >= m && nestedAbsmax.count >= nestedBlockCount(blockCount: m),
            "DoubleQuantization: output too small")
        let lut = DynamicLookup.shared
        var start = 0
        var group = 0
        while start < m {
            let end = min(start + nestedBlocksize, m)
            var peak: Float = 0
            for i in start..<end {
                let c = absmax[i] - offset
                let magnitude = abs(c)
                if magnitude > peak { peak = magnitude }  // NaN never compares greater: ignored, as on both backends
            }
            nestedAbsmax[group] = peak
            switch profile {
            case .cpu:
                if peak == 0 {
                    for i in start..<end { codes[i] = 0 }
                } else {
                    let inverse = 1 / peak
                    for i in start..<end { codes[i] = lut.cpuCode((absmax[i] - offset) * inverse) }
                }
            case .cuda:
                let inverse = 1 / peak
                for i in start..<end { codes[i] = lut.nearestCode((absmax[i] - offset) * inverse) }
            }
            start = end
            group += 1
        }
    }

    /// Reconstructs first-level absmax values: `D[q] * nested + offset`, two float32 roundings (spec 4.6).
    ///
    /// - Parameters:
    ///   - codes: one 8-bit code per block.
    ///   - nestedAbsmax: one float32 per `nestedBlocksize` codes.
    ///   - table: the 256-entry code table (normally ``NF4Codebook/dynamic8Bit``).
    ///   - absmax: receives `codes.count` values.
    public static func reconstruct(
        codes: UnsafeBufferPointer<UInt8>, nestedAbsmax: UnsafeBufferPointer<Float>, offset: Float,
        nestedBlocksize: Int = nestedBlocksize, table: UnsafeBufferPointer<Float>,
        into absmax: UnsafeMutableBufferPointer<Float>
    ) {
        precondition(table.count == 256 && absmax.count >= codes.count, "DoubleQuantization.reconstruct: bad sizes")
        precondition(
            nestedAbsmax.count * nestedBlocksize >= codes.count, "DoubleQuantization.reconstruct: nested too short")
        for i in 0..<codes.count {
            let scaled = table[Int(codes[i])] * nestedAbsmax[i / nestedBlocksize]
            absmax[i] = scaled + offset
        }
    }
}

/// The 8-bit code choice of both profiles, built once from ``NF4Codebook/dynamic8Bit``.
// @unchecked Sendable because both tables are written once in init and only read afterwards.
final class DynamicLookup: @unchecked Sendable {
    static let shared = DynamicLookup()

    /// fl32(0.5 * fl32(D[k] + D[k+1])), k = 0..254 (equal to fl32(fl32(D[k]+D[k+1]) * 0.5)).
    let midpoints: [Float]
    /// CPU 0.50's 65 536-entry table: LUT[i] = number of midpoints below -1 + 2i/65535.
    let table: UnsafeMutablePointer<UInt8>

    private init() {
        let d = NF4Codebook.dynamic8Bit
        var mids = [Float](repeating: 0, count: 255)
        for k in 0..<255 { mids[k] = 0.5 * (d[k] + d[k + 1]) }
        midpoints = mids
        table = UnsafeMutablePointer<UInt8>.allocate(capacity: 65_536)
        var rank = 0
        for i in 0..<65_536 {
            let v = -1 + Float(2 * i) / 65_535
            while rank < 255 && mids[rank] < v { rank += 1 }
            table[i] = UInt8(rank)
        }
    }

    /// CPU 0.50: clamp, map [-1, 1] onto the 65 536-point grid, look up (spec 4.4). NaN (unreachable from finite
    /// absmax) gives 0.
    @inline(__always)
    func cpuCode(_ t: Float) -> UInt8 {
        if t.isNaN { return 0 }
        let clamped = min(max(t, -1), 1)
        let u = (clamped + 1) * 0.5
        let position: Float = u * 65_535 + 0.5
        return table[Int(position)]
    }

    /// CUDA: nearest table entry; an exact midpoint goes to the even index; NaN gives 0 (spec 4.4).
    @inline(__always)
    func nearestCode(_ t: Float) -> UInt8 {
        if t.isNaN { return 0 }
        var low = 0
        var high = 255
        while low < high {  // first k with midpoints[k] >= t
            let mid = (low + high) / 2
            if midpoints[mid] < t { low = mid + 1 } else { high = mid }
        }
        if low < 255 && midpoints[low] == t && low & 1 == 1 { return UInt8(low + 1) }
        return UInt8(low)
    }
}
