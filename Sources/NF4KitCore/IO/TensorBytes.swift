/// A view of a byte range inside a ``MappedRegion``; copying it is cheap and keeps the region alive.
public struct TensorBytes: Sendable {
    public let region: MappedRegion
    /// The range within the region.
    public let range: Range<Int>

    /// Creates a view. Precondition: `range` lies inside the region (readers check this before calling).
    package init(region: MappedRegion, range: Range<Int>) {
        precondition(range.lowerBound >= 0 && range.upperBound <= region.count, "TensorBytes range outside region")
        self.region = region
        self.range = range
    }

    /// A heap copy of `bytes` as a view.
    public init(copying bytes: UnsafeRawBufferPointer, description: String = "memory") {
        let region = MappedRegion(copying: bytes, description: description)
        self.init(region: region, range: 0..<region.count)
    }

    /// A heap copy of an array's bytes.
    public init<T: BitwiseCopyable>(copyingElementsOf array: [T], description: String = "memory") {
        self = array.withUnsafeBytes { TensorBytes(copying: $0, description: description) }
    }

    public var count: Int { range.count }

    /// Calls `body` with the bytes. They are little-endian and may be unaligned.
    /// - Warning: Do not let the pointer escape the closure.
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try region.withUnsafeBytes { (all) throws(E) -> R in
            guard let base = all.baseAddress else { return try body(UnsafeRawBufferPointer(start: nil, count: 0)) }
            return try body(UnsafeRawBufferPointer(start: base + range.lowerBound, count: range.count))
        }
    }

    /// Computes the bytes now when they are computed on first read (a deferred ``MappedRegion``), so that an error
    /// of that computation is thrown here rather than trapping the read; a no-op for mapped or owned bytes.
    package func materialize() throws { try region.materialize() }

    /// Drops the resident pages under this view when it is part of a file mapping (see
    /// ``MappedRegion/releasePages(_:)``); the bytes stay readable.
    package func releasePages() { region.releasePages(range) }

    /// A sub-view; `subrange` is relative to this view.
    public func slice(_ subrange: Range<Int>) -> TensorBytes {
        precondition(subrange.lowerBound >= 0 && subrange.upperBound <= count, "TensorBytes slice out of range")
        return TensorBytes(
            region: region, range: (range.lowerBound + subrange.lowerBound)..<(range.lowerBound + subrange.upperBound))
    }

    /// The bytes as an array (for small tensors: JSON blobs, tables).
    public var array: [UInt8] { withUnsafeBytes { Array($0) } }

    /// Elements read as little-endian `T` values (for small tensors).
    public func elements<T: FixedWidthInteger>(as type: T.Type) -> [T] {
        withUnsafeBytes { raw in
            (0..<(raw.count / MemoryLayout<T>.size)).map {
                T(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self))
            }
        }
    }
}
