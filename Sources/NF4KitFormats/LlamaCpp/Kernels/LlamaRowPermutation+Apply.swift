// The pointer-level row copy of LlamaRowPermutation (docs/architecture.md: unsafe code only in IO/ and Kernels/).

extension LlamaRowPermutation {
    /// Copies the rows of `source` into `destination` in GGUF order (`toGGUF`) or back in Hugging Face order.
    ///
    /// - Parameters:
    ///   - source: `rows * rowByteCount` bytes.
    ///   - destination: The same size; must not overlap `source`.
    ///   - rowByteCount: Bytes of one row.
    /// - Complexity: O(bytes).
    package func apply(
        _ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer, rowByteCount: Int,
        toGGUF: Bool = true
    ) {
        precondition(
            source.count == rows * rowByteCount && destination.count == source.count,
            "LlamaRowPermutation.apply: buffers do not hold \(rows) rows of \(rowByteCount) bytes")
        guard rowByteCount > 0, let from = source.baseAddress, let to = destination.baseAddress else { return }
        for row in 0..<rows {
            let input = toGGUF ? hfRow(ofGGUFRow: row) : ggufRow(ofHFRow: row)
            (to + row * rowByteCount).copyMemory(from: from + input * rowByteCount, byteCount: rowByteCount)
        }
    }
}
