/// Read-only bytes that tensors point into: a memory-mapped file, or a heap buffer we own.
///
/// Immutable after `init`, so it is safe to share between tasks.
// @unchecked Sendable because it holds a raw pointer to memory that is never written after init.
public final class MappedRegion: @unchecked Sendable {
    /// Start of the bytes; `nil` only when ``count`` is 0.
    package let base: UnsafeRawPointer?
    /// Number of bytes.
    public let count: Int
    /// The file this region maps, or a description of where owned bytes came from.
    public let path: String
    private let isMapped: Bool

    /// Maps the whole file at `path` read-only, with sequential read-ahead advice.
    ///
    /// Symbolic links are followed; anything but a regular file (a folder, FIFO, socket or device) is refused
    /// without blocking.
    ///
    /// - Throws: ``CheckpointError`` with code `.io`, `.notFound` or `.refused`, naming the file.
    public init(mapping path: String) throws(CheckpointError) {
        let file = try InputFile(path: path)
        let size = file.byteCount
        let fd = file.fd
        self.path = path
        self.count = Int(size)
        if size == 0 {
            base = nil
            isMapped = false
            return
        }
        guard let pointer = Platform.mapReadOnly(fd, count: Int(size)) else {
            throw CheckpointError(.io, "cannot memory-map the file: \(Platform.errnoDescription)", file: path)
        }
        base = pointer
        isMapped = true
    }

    /// Takes ownership of a copy of `bytes` (used for data that had to be decompressed or made contiguous).
    public init(copying bytes: UnsafeRawBufferPointer, description: String) {
        path = description
        count = bytes.count
        isMapped = false
        if bytes.count == 0 {
            base = nil
            return
        }
        let storage = UnsafeMutableRawPointer.allocate(byteCount: bytes.count, alignment: 64)
        storage.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        base = UnsafeRawPointer(storage)
    }

    /// Allocates `count` bytes, lets `fill` write them, and keeps them.
    public init<E: Error>(
        filling count: Int, description: String, _ fill: (UnsafeMutableRawBufferPointer) throws(E) -> Void
    ) throws(E) {
        path = description
        self.count = count
        isMapped = false
        if count == 0 {
            base = nil
            return
        }
        let storage = UnsafeMutableRawPointer.allocate(byteCount: count, alignment: 64)
        do {
            try fill(UnsafeMutableRawBufferPointer(start: storage, count: count))
        } catch {
            storage.deallocate()
            throw error
        }
        base = UnsafeRawPointer(storage)
    }

    /// Drops this process's resident pages of `range` (a file mapping only; owned bytes are left alone).
    ///
    /// The file's pages stay in the page cache, and touching the range again reads them back, so this changes
    /// resident memory, never the bytes. Streaming pipelines call it after a tensor is done, which keeps a
    /// convert's or merge's peak RSS at its working set instead of the size of the input.
    public func releasePages(_ range: Range<Int>) {
        guard isMapped, let base, !range.isEmpty else { return }
        Platform.releasePages(base, range: range.clamped(to: 0..<count))
    }

    deinit {
        guard let base else { return }
        if isMapped {
            Platform.unmap(base, count: count)
        } else {
            UnsafeMutableRawPointer(mutating: base).deallocate()
        }
    }

    /// All bytes of the region as a ``TensorBytes`` view.
    public var all: TensorBytes { TensorBytes(region: self, range: 0..<count) }

    /// Calls `body` with the region's bytes.
    /// - Warning: Do not let the pointer escape the closure.
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeRawBufferPointer(start: base, count: count))
    }
}
