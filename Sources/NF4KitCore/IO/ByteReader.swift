/// A cursor over untrusted bytes that never reads past the end and reports file offsets in its errors.
public struct ByteReader {
    public let bytes: UnsafeRawBufferPointer
    /// Offset of `bytes[0]` within the file, so errors name file offsets.
    public let baseOffset: Int64
    public let file: String
    /// Position relative to `bytes`.
    public var position: Int = 0

    public init(_ bytes: UnsafeRawBufferPointer, file: String, baseOffset: Int64 = 0) {
        self.bytes = bytes
        self.file = file
        self.baseOffset = baseOffset
    }

    public var remaining: Int { bytes.count - position }
    public var fileOffset: Int64 { baseOffset + Int64(position) }
    public var isAtEnd: Bool { position >= bytes.count }

    /// An error at the current position.
    public func error(_ code: CheckpointError.Code, _ message: String, tensor: String? = nil) -> CheckpointError {
        CheckpointError(code, message, file: file, byteOffset: fileOffset, tensor: tensor)
    }

    /// Throws `.truncated` unless `count` more bytes are available.
    public func require(_ count: Int, for what: String) throws(CheckpointError) {
        guard count >= 0, count <= remaining else {
            throw error(.truncated, "\(what) needs \(count) bytes but only \(remaining) remain")
        }
    }

    /// Reads a little-endian integer.
    public mutating func read<T: FixedWidthInteger>(_ type: T.Type, _ what: String) throws(CheckpointError) -> T {
        try require(MemoryLayout<T>.size, for: what)
        let value = T(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: T.self))
        position += MemoryLayout<T>.size
        return value
    }

    public mutating func readFloat(_ what: String) throws(CheckpointError) -> Float {
        Float(bitPattern: try read(UInt32.self, what))
    }

    public mutating func readDouble(_ what: String) throws(CheckpointError) -> Double {
        Double(bitPattern: try read(UInt64.self, what))
    }

    /// Returns the next `count` bytes and advances.
    public mutating func readBytes(_ count: Int, _ what: String) throws(CheckpointError) -> UnsafeRawBufferPointer {
        try require(count, for: what)
        let slice = UnsafeRawBufferPointer(rebasing: bytes[position..<(position + count)])
        position += count
        return slice
    }

    /// Moves to an absolute position within `bytes`.
    public mutating func seek(to newPosition: Int, _ what: String) throws(CheckpointError) {
        guard newPosition >= 0, newPosition <= bytes.count else {
            throw error(.truncated, "\(what) at \(newPosition) is past the end (\(bytes.count) bytes)")
        }
        position = newPosition
    }
}
