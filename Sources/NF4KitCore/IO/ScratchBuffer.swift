/// A heap buffer owned by one object and freed with it: scratch space a pipeline reuses from tensor to tensor.
///
/// It grows on demand (contents are undefined after growing) and never shrinks, so a pipeline's scratch memory is
/// its largest tensor's, allocated once. Pipelines reach the memory only through the closures, so no raw
/// allocation or `deallocate()` appears outside IO/ and Kernels/.
// @unchecked Sendable because the storage pointer changes only in `reserve`, which the owner calls between
// jobs; workers handed the buffer inside a job write disjoint ranges of it.
package final class ScratchBuffer: @unchecked Sendable {
    private var storage: UnsafeMutableRawBufferPointer
    private let alignment: Int

    /// An empty buffer whose storage will be aligned to `alignment` bytes.
    package init(alignment: Int = 64) {
        storage = UnsafeMutableRawBufferPointer(start: nil, count: 0)
        self.alignment = alignment
    }

    /// A buffer of `byteCount` bytes.
    package convenience init(byteCount: Int, alignment: Int = 64) {
        self.init(alignment: alignment)
        reserve(byteCount)
    }

    /// Bytes currently allocated.
    package var capacity: Int { storage.count }

    /// Makes room for at least `byteCount` bytes (earlier contents are lost when it grows).
    package func reserve(_ byteCount: Int) {
        guard storage.count < byteCount else { return }
        storage.deallocate()
        storage = UnsafeMutableRawBufferPointer.allocate(byteCount: byteCount, alignment: alignment)
    }

    /// Calls `body` with the first `byteCount` bytes, growing the buffer first if needed.
    /// - Warning: Do not let the pointer escape the closure.
    package func withBytes<R, E: Error>(
        _ byteCount: Int, _ body: (UnsafeMutableRawBufferPointer) throws(E) -> R
    ) throws(E) -> R {
        reserve(byteCount)
        return try body(UnsafeMutableRawBufferPointer(rebasing: storage[0..<byteCount]))
    }

    /// Calls `body` with the first `count` floats, growing the buffer first if needed.
    /// - Warning: Do not let the pointer escape the closure.
    package func withFloats<R, E: Error>(
        _ count: Int, _ body: (UnsafeMutableBufferPointer<Float>) throws(E) -> R
    ) throws(E) -> R {
        reserve(count * 4)
        let floats = storage.baseAddress.map { $0.bindMemory(to: Float.self, capacity: count) }
        return try body(UnsafeMutableBufferPointer(start: floats, count: count))
    }

    /// The first `byteCount` bytes, growing the buffer first if needed.
    /// - Warning: Valid until the next call that grows the buffer, and only while the buffer is alive; for an
    ///   owner that hands the same memory from tensor to tensor. Prefer ``withBytes(_:_:)``.
    package func unsafeBytes(_ byteCount: Int) -> UnsafeMutableRawBufferPointer {
        reserve(byteCount)
        return UnsafeMutableRawBufferPointer(rebasing: storage[0..<byteCount])
    }

    /// The first `count` floats, growing the buffer first if needed (same lifetime rules as ``unsafeBytes(_:)``).
    package func unsafeFloats(_ count: Int) -> UnsafeMutableBufferPointer<Float> {
        reserve(count * 4)
        let floats = storage.baseAddress.map { $0.bindMemory(to: Float.self, capacity: count) }
        return UnsafeMutableBufferPointer(start: floats, count: count)
    }

    deinit { storage.deallocate() }
}
