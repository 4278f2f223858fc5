import NF4KitCore
import NF4KitQuant

// CheckpointDiff's loops over whole tensors: both sides widened to f32 in one scratch buffer, and the byte-wise
// comparison of non-float tensors.
extension CheckpointDiff {
    /// The bit-equal count (NaN equals NaN) and the error statistics of two float-valued tensors of `count` values.
    static func compareValues(
        _ l: LogicalTensor, _ r: LogicalTensor, count: Int
    ) -> (equal: Int, statistics: ErrorStatistics) {
        let scratch = UnsafeMutableBufferPointer<Float>.allocate(capacity: 2 * max(count, 1))
        defer { scratch.deallocate() }
        let x = UnsafeMutableBufferPointer(rebasing: scratch[0..<count])
        let y = UnsafeMutableBufferPointer(rebasing: scratch[count..<(2 * count)])
        l.widen(into: x)
        r.widen(into: y)
        var equal = 0
        for i in 0..<count where x[i].bitPattern == y[i].bitPattern || (x[i].isNaN && y[i].isNaN) { equal += 1 }
        return (equal, ErrorStatistics.measure(reference: UnsafeBufferPointer(x), decoded: UnsafeBufferPointer(y)))
    }

    /// The number of equal `width`-byte units among the first `units` of `a` and `b`.
    static func equalUnitCount(_ a: TensorBytes, _ b: TensorBytes, units: Int, width: Int) -> Int {
        a.withUnsafeBytes { p in
            b.withUnsafeBytes { q in
                (0..<units).reduce(0) { n, i in
                    n + ((0..<width).allSatisfy { p[i * width + $0] == q[i * width + $0] } ? 1 : 0)
                }
            }
        }
    }
}

extension LogicalTensor {
    /// The values as f32. Precondition: ``isFloatValued`` and `destination.count` is the element count.
    func widen(into destination: UnsafeMutableBufferPointer<Float>) {
        switch source {
        case .plain(let t):
            t.bytes.withUnsafeBytes { FloatConversion.widen($0, from: t.dtype, into: destination) }
        case .quantized(let q):
            let blocks = (q.elementCount + q.blocksize - 1) / q.blocksize
            q.absmaxValues().withUnsafeBufferPointer { absmax in
                q.dequantizeBlocks(
                    0..<blocks, absmax: absmax, as: .f32, into: UnsafeMutableRawBufferPointer(destination))
            }
        }
    }
}
