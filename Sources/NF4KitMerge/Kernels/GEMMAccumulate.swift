/// The rank-r update kernel: `out += weight · (scale · left · right)` on row-major f32 buffers.
///
/// `left` is `[rows, rank]`, `right` is `[rank, columns]`, `out` is `[rows, columns]`. For each output row the
/// kernel accumulates `rank` rows of `right`, each multiplied by one element of `left`, eight columns at a time
/// in `SIMD8<Float>` registers. The rounding sequence is PEFT's on a CPU: the product is summed over `k` in
/// ascending order in f32, multiplied by `scale` (then by `weight` when it is not 1), and added to `out` in f32.
///
/// The multiply and the add are separate roundings. PyTorch's AVX2 kernel fuses them; a fused multiply-add is
/// not available to a baseline x86-64 Swift build without `unsafeFlags` (it becomes a `fmaf` library call per
/// element, 16x slower), so we keep the two roundings and accept rare last-bit differences in f32 (docs/merge.md
/// has the measured effect on the golden files: none reaches a 16-bit output in more than 0.003 % of values).
public enum GEMMAccumulate {
    /// Adds `weight · (scale · left[rows] · right)` to the rows `rowRange` of `out`.
    ///
    /// - Parameters:
    ///   - left: `[rows, rank]` row-major, where `rows` is at least `rowRange.upperBound`.
    ///   - right: `[rank, columns]` row-major.
    ///   - rank: The inner dimension r.
    ///   - columns: The row length of `right` and `out`.
    ///   - scale: The LoRA scaling `s`, applied to the product first.
    ///   - weight: The adapter weight, applied after `scale` (skipped when it is exactly 1).
    ///   - out: `[rows, columns]` row-major, updated in place.
    ///   - rowRange: The output rows to update (rows are independent, so ranges can run on different threads).
    /// - Complexity: O(rowRange.count · rank · columns).
    public static func addScaledProduct(
        left: UnsafeBufferPointer<Float>, right: UnsafeBufferPointer<Float>, rank: Int, columns: Int,
        scale: Float, weight: Float, into out: UnsafeMutableBufferPointer<Float>, rowRange: Range<Int>
    ) {
        precondition(rank > 0 && columns >= 0, "GEMMAccumulate: bad dimensions")
        precondition(left.count >= rowRange.upperBound * rank, "GEMMAccumulate: left too short")
        precondition(right.count >= rank * columns, "GEMMAccumulate: right too short")
        precondition(out.count >= rowRange.upperBound * columns, "GEMMAccumulate: out too short")
        guard columns > 0, let leftBase = left.baseAddress, let rightBase = right.baseAddress,
            let outBase = out.baseAddress
        else { return }
        let rightRaw = UnsafeRawPointer(rightBase)
        let applyWeight = weight != 1
        let vectorColumns = columns & ~7
        let rowStride = columns &* 4
        for row in rowRange {
            let coefficients = leftBase + row &* rank
            let outRow = UnsafeMutableRawPointer(outBase + row &* columns)
            var column = 0
            while column < vectorColumns {
                let offset = column &* 4
                var sum = SIMD8<Float>(repeating: 0)
                var source = rightRaw + offset
                for k in 0..<rank {
                    sum = sum + coefficients[k] * source.loadUnaligned(as: SIMD8<Float>.self)
                    source += rowStride
                }
                var delta = sum * scale
                if applyWeight { delta = delta * weight }
                let current = outRow.loadUnaligned(fromByteOffset: offset, as: SIMD8<Float>.self)
                outRow.storeBytes(of: current + delta, toByteOffset: offset, as: SIMD8<Float>.self)
                column &+= 8
            }
            while column < columns {
                var sum: Float = 0
                for k in 0..<rank { sum = sum + coefficients[k] * rightBase[k &* columns &+ column] }
                var delta = sum * scale
                if applyWeight { delta = delta * weight }
                outBase[row &* columns &+ column] = outBase[row &* columns &+ column] + delta
                column &+= 1
            }
        }
    }
}
