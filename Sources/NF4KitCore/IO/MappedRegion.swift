import Synchronization

/// Read-only bytes that tensors point into: a memory-mapped file, a heap buffer we own, or bytes computed on
/// first use (a deferred region, see ``init(deferred:description:_:)``).
///
/// The bytes never change once they can be read, so it is safe to share between tasks.
// @unchecked Sendable because it holds a raw pointer to memory that is never written after it is filled; a
// deferred region's pointer is guarded by a mutex.
public final class MappedRegion: @unchecked Sendable {
    /// Start of the bytes; `nil` only when ``count`` is 0.
    package let base: UnsafeRawPointer?
    /// Number of bytes.
    public let count: Int
    /// The file this region maps, or a description of where owned bytes came from.
    public let path: String
    private let isMapped: Bool
    private let deferred: Deferred?
    /// A descriptor of the mapped file (a file mapping only), for ``copy(_:into:at:)``; -1 when there is none.
    private let fileDescriptor: Int32
    /// The SIGBUS guard slot of a file mapping (see `MappingGuard`).
    private var guardSlot: Int?

    /// Maps the whole file at `path` read-only, with sequential read-ahead advice.
    ///
    /// Symbolic links are followed; anything but a regular file (a folder, FIFO, socket or device) is refused
    /// without blocking.
    ///
    /// - Throws: ``CheckpointError`` with code `.io`, `.notFound` or `.refused`, naming the file.
    public init(mapping path: String) throws(CheckpointError) {
        deferred = nil
        let file = try InputFile(path: path)
        let size = file.byteCount
        let fd = file.fd
        self.path = path
        self.count = Int(size)
        if size == 0 {
            base = nil
            isMapped = false
            fileDescriptor = -1
            return
        }
        guard let pointer = Platform.mapReadOnly(fd, count: Int(size)) else {
            throw CheckpointError(.io, "cannot memory-map the file: \(Platform.errnoDescription)", file: path)
        }
        base = pointer
        isMapped = true
        // Kept (the same open file as the mapping, not the path again) so that copies can go kernel to kernel.
        fileDescriptor = Platform.duplicate(fd)
        guardSlot = MappingGuard.register(pointer, count: Int(size), path: path)
    }

    /// Takes ownership of a copy of `bytes` (used for data that had to be decompressed or made contiguous).
    package init(copying bytes: UnsafeRawBufferPointer, description: String) {
        deferred = nil
        path = description
        count = bytes.count
        isMapped = false
        fileDescriptor = -1
        if bytes.count == 0 {
            base = nil
            return
        }
        let storage = UnsafeMutableRawPointer.allocate(byteCount: bytes.count, alignment: 64)
        storage.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        base = UnsafeRawPointer(storage)
    }

    /// Allocates `count` bytes, lets `fill` write them, and keeps them.
    package init<E: Error>(
        filling count: Int, description: String, _ fill: (UnsafeMutableRawBufferPointer) throws(E) -> Void
    ) throws(E) {
        deferred = nil
        path = description
        self.count = count
        isMapped = false
        fileDescriptor = -1
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

    /// `count` bytes that `fill` computes when they are first read, and that ``releasePages(_:)`` frees again.
    ///
    /// For bytes derived from other bytes (a strided view copied to row-major order, a merged weight): a reader
    /// that only looks at headers never pays for them, and a pipeline that releases each tensor after writing it
    /// holds one copy at a time, however many views a file declares over one storage. `fill` must write all `count`
    /// bytes and give the same bytes every time. A `fill` that can throw (a merge that finds a non-finite value) is
    /// run through ``materialize()`` before the bytes are read, which throws its error and keeps nothing; reading
    /// the bytes when the fill throws is a programming error and traps.
    package init(
        deferred count: Int, description: String,
        _ fill: @escaping @Sendable (UnsafeMutableRawBufferPointer) throws -> Void
    ) {
        path = description
        self.count = count
        isMapped = false
        fileDescriptor = -1
        base = nil
        deferred = count == 0 ? nil : Deferred(count: count, fill: fill)
    }

    /// Computes a deferred region's bytes now if they are not there, so that the fill's error is thrown here; a
    /// no-op for any other region.
    package func materialize() throws { try deferred?.materialize() }

    /// Drops this process's resident pages of `range` (a file mapping only; owned bytes are left alone).
    ///
    /// The file's pages stay in the page cache, and touching the range again reads them back, so this changes
    /// resident memory, never the bytes. Streaming pipelines call it after a tensor is done, which keeps a
    /// convert's or merge's peak RSS at its working set instead of the size of the input.
    package func releasePages(_ range: Range<Int>) {
        if let deferred {
            deferred.release()
            return
        }
        guard isMapped, let base, !range.isEmpty else { return }
        Platform.releasePages(base, range: range.clamped(to: 0..<count))
    }

    /// Copies the bytes of `range` into the file `output` at `offset` inside the kernel (``Platform/copyFileRange``),
    /// for a file mapping; returns how many leading bytes of `range` were copied, which is fewer (0 for a region
    /// that is not a file mapping, or where the system cannot copy between these files) when the caller must write
    /// the rest itself.
    package func copy(_ range: Range<Int>, into output: Int32, at offset: Int64) -> Int {
        guard fileDescriptor >= 0 else { return 0 }
        var done = 0
        while done < range.count {
            let copied = Platform.copyFileRange(
                from: fileDescriptor, at: Int64(range.lowerBound + done), to: output, at: offset + Int64(done),
                count: range.count - done)
            if copied <= 0 { break }
            done += copied
        }
        return done
    }

    deinit {
        if fileDescriptor >= 0 { Platform.close(fileDescriptor) }
        guard let base else { return }
        if isMapped {
            if let guardSlot { MappingGuard.unregister(guardSlot) }
            Platform.unmap(base, count: count)
        } else {
            UnsafeMutableRawPointer(mutating: base).deallocate()
        }
    }

    /// All bytes of the region as a ``TensorBytes`` view.
    public var all: TensorBytes { TensorBytes(region: self, range: 0..<count) }

    /// Calls `body` with the region's bytes.
    /// - Warning: Do not let the pointer escape the closure.
    package func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        guard let deferred else { return try body(UnsafeRawBufferPointer(start: base, count: count)) }
        let pointer = deferred.acquire()
        defer { deferred.relinquish() }
        return try body(UnsafeRawBufferPointer(start: pointer, count: count))
    }

    /// The storage of a deferred region: filled on first read, freed by `release()` when no reader holds it.
    private final class Deferred: Sendable {
        struct State: ~Copyable {
            var pointer: UnsafeMutableRawPointer?
            /// Whether `pointer` is pages of our own (`Platform.mapAnonymous`) rather than a heap block.
            var ownPages = false
            var readers = 0
        }
        /// Storage of at least this many bytes is mapped pages of its own, given back to the system when released:
        /// malloc keeps a large block it has freed once its mmap threshold has grown to that size, so per-tensor
        /// storage from it stays resident (measured: a merge streamed into the GGUF export held 140 MB more).
        static let ownPagesByteCount = 1 << 20
        let count: Int
        let fill: @Sendable (UnsafeMutableRawBufferPointer) throws -> Void
        let state = Mutex(State())

        init(count: Int, fill: @escaping @Sendable (UnsafeMutableRawBufferPointer) throws -> Void) {
            self.count = count
            self.fill = fill
        }

        func materialize() throws {
            try state.withLock { (state) throws -> Void in
                if state.pointer == nil { (state.pointer, state.ownPages) = try computed() }
            }
        }

        func acquire() -> UnsafeRawPointer {
            state.withLock { state in
                if state.pointer == nil {
                    do {
                        (state.pointer, state.ownPages) = try computed()
                    } catch {
                        preconditionFailure("a deferred region's fill threw outside materialize(): \(error)")
                    }
                }
                state.readers += 1
                return UnsafeRawPointer(state.pointer!)
            }
        }

        func relinquish() { state.withLock { $0.readers -= 1 } }

        func release() {
            state.withLock { state in
                guard state.readers == 0, let pointer = state.pointer else { return }
                free(pointer, ownPages: state.ownPages)
                state.pointer = nil
            }
        }

        deinit {
            state.withLock { state in
                if let pointer = state.pointer { free(pointer, ownPages: state.ownPages) }
            }
        }

        /// Newly allocated storage filled by `fill`; nothing is kept when it throws.
        private func computed() throws -> (UnsafeMutableRawPointer, ownPages: Bool) {
            let pages = count >= Self.ownPagesByteCount ? Platform.mapAnonymous(count: count) : nil
            let storage = pages ?? UnsafeMutableRawPointer.allocate(byteCount: count, alignment: 64)
            do {
                try fill(UnsafeMutableRawBufferPointer(start: storage, count: count))
            } catch {
                free(storage, ownPages: pages != nil)
                throw error
            }
            return (storage, pages != nil)
        }

        private func free(_ pointer: UnsafeMutableRawPointer, ownPages: Bool) {
            if ownPages { Platform.unmap(pointer, count: count) } else { pointer.deallocate() }
        }
    }
}
