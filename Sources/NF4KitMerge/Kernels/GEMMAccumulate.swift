internal import CNF4Kernels
import NF4KitCore

/// The rank-r update kernel: `out += weight · (scale · left · right)` on row-major f32 buffers.
///
/// `left` is `[rows, rank]`, `right` is `[rank, columns]`, `out` is `[rows, columns]`. For each output row the
/// kernel accumulates `rank` rows of `right`, each multiplied by one element of `left`, eight columns at a time
/// in SIMD registers. The rounding sequence is PEFT's on a CPU: the product is summed over `k` in ascending
/// order in f32 with one fused multiply-add per step (one rounding, as PyTorch's AVX2/AVX-512 matmul does, which
/// reproduces PEFT's merged files bit for bit), multiplied by `scale` (then by `weight` when it is not 1), and
/// added to `out` in f32.
///
/// A baseline x86-64 Swift build has no FMA instruction (`fmaf` is a library call per element) and the package
/// uses no `unsafeFlags`, so on a CPU with AVX2 + FMA the C target's `nf4k_lora_accumulate_fma` runs (as fast as
/// the separate multiply-add kernel it replaced, docs/performance.md); elsewhere a portable Swift kernel emulates
/// the fused step in f64.
package enum GEMMAccumulate {
    /// Whether this machine runs the AVX2 + FMA kernel (checked once); otherwise the portable kernel runs.
    package static let nativeFMAAvailable = nf4k_has_avx2_fma() == 1

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
    ///   - native: `false` runs the portable Swift kernel even where the AVX2 + FMA one is available (tests
    ///     compare the two; they agree bit for bit but for the rare case described on the portable kernel).
    /// - Complexity: O(rowRange.count · rank · columns).
    package static func addScaledProduct(
        left: UnsafeBufferPointer<Float>, right: UnsafeBufferPointer<Float>, rank: Int, columns: Int,
        scale: Float, weight: Float, into out: UnsafeMutableBufferPointer<Float>, rowRange: Range<Int>,
        native: Bool = true
    ) {
        precondition(rank > 0 && columns >= 0, "GEMMAccumulate: bad dimensions")
        precondition(left.count >= rowRange.upperBound * rank, "GEMMAccumulate: left too short")
        precondition(right.count >= rank * columns, "GEMMAccumulate: right too short")
        precondition(out.count >= rowRange.upperBound * columns, "GEMMAccumulate: out too short")
        guard columns > 0, let leftBase = left.baseAddress, let rightBase = right.baseAddress,
            let outBase = out.baseAddress
        else { return }
        if native && nativeFMAAvailable {
            nf4k_lora_accumulate_fma(
                leftBase, rightBase, rank, columns, scale, weight, weight != 1 ? 1 : 0, outBase, rowRange.lowerBound,
                rowRange.upperBound)
        } else {
            fused(leftBase, rightBase, rank, columns, scale, weight, outBase, rowRange)
        }
    }

    /// ``addScaledProduct(left:right:rank:columns:scale:weight:into:rowRange:native:)`` over rows `0..<rows`,
    /// split into row ranges on up to `threadCount` threads when the work is large enough (rows are independent,
    /// so the result does not depend on `threadCount`).
    package static func addScaledProduct(
        left: UnsafeBufferPointer<Float>, right: UnsafeBufferPointer<Float>, rank: Int, columns: Int,
        scale: Float, weight: Float, into out: UnsafeMutableBufferPointer<Float>, rows: Int, threadCount: Int
    ) {
        let buffers = KernelBuffers(left: left, right: right, out: out)
        let parts = min(max(threadCount, 1), max(1, rows * columns * rank / (1 << 20)))
        ParallelRunner.forEachPart(count: rows, parts: parts) { range in
            addScaledProduct(
                left: buffers.left, right: buffers.right, rank: rank, columns: columns, scale: scale, weight: weight,
                into: buffers.out, rowRange: range)
        }
    }

    /// Each step is `Float(Double(l) · Double(r) + Double(sum))`: the product is exact in f64, so the only
    /// roundings are the f64 sum and the f32 conversion. That equals a true f32 FMA except when the f64 sum lands
    /// exactly on an f32 rounding midpoint without being exactly there, which needs the exact sum to sit within
    /// 2^-53 relative of a midpoint (none seen on the golden files).
    private static func fused(
        _ leftBase: UnsafePointer<Float>, _ rightBase: UnsafePointer<Float>, _ rank: Int, _ columns: Int,
        _ scale: Float, _ weight: Float, _ outBase: UnsafeMutablePointer<Float>, _ rowRange: Range<Int>
    ) {
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
                    let product = SIMD8<Double>(source.loadUnaligned(as: SIMD8<Float>.self)) * Double(coefficients[k])
                    sum = SIMD8<Float>(product + SIMD8<Double>(sum))
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
                for k in 0..<rank {
                    sum = Float(Double(coefficients[k]) * Double(rightBase[k &* columns &+ column]) + Double(sum))
                }
                var delta = sum * scale
                if applyWeight { delta = delta * weight }
                outBase[row &* columns &+ column] = outBase[row &* columns &+ column] + delta
                column &+= 1
            }
        }
    }
}

/// The kernel's buffers, handed to worker threads.
// @unchecked Sendable: the buffers outlive the ParallelRunner call that uses them, `left`/`right` are only
// read, and each worker writes a disjoint row range of `out`.
private struct KernelBuffers: @unchecked Sendable {
    let left: UnsafeBufferPointer<Float>
    let right: UnsafeBufferPointer<Float>
    let out: UnsafeMutableBufferPointer<Float>
}
