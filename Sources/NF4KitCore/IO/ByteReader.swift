/// A cursor over untrusted bytes that never reads past the end and reports file offsets in its errors.
package struct ByteReader {
    package let bytes: UnsafeRawBufferPointer
    /// Offset of `bytes[0]` within the file, so errors name file offsets.
    package let baseOffset: Int64
    package let file: String
    /// Position relative to `bytes`.
    package var position: Int = 0

    package init(_ bytes: UnsafeRawBufferPointer, file: String, baseOffset: Int64 = 0) {
        self.bytes = bytes
        self.file = file
        self.baseOffset = baseOffset
    }

    package var remaining: Int { bytes.count - position }
    package var fileOffset: Int64 { baseOffset + Int64(position) }
    package var isAtEnd: Bool { position >= bytes.count }

    /// An error at the current position.
    package func error(_ code: CheckpointError.Code, _ message: String, tensor: String? = nil) -> CheckpointError {
        CheckpointError(code, message, file: file, byteOffset: fileOffset, tensor: tensor)
    }

    /// Throws `.truncated` unless `count` more bytes are available.
    package func require(_ count: Int, for what: String) throws(CheckpointError) {
        guard count >= 0, count <= remaining else {
            throw error(.truncated, "\(what) needs \(count) bytes but only \(remaining) remain")
        }
    }

    /// Reads a little-endian integer.
    package mutating func read<T: FixedWidthInteger>(_ type: T.Type, _ what: String) throws(CheckpointError) -> T {
        try require(MemoryLayout<T>.size, for: what)
        let value = T(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: T.self))
        position += MemoryLayout<T>.size
        return value
    }

    package mutating func readFloat(_ what: String) throws(CheckpointError) -> Float {
        Float(bitPattern: try read(UInt32.self, what))
    }

    package mutating func readDouble(_ what: String) throws(CheckpointError) -> Double {
        Double(bitPattern: try read(UInt64.self, what))
    }

    /// Returns the next `count` bytes and advances.
    package mutating func readBytes(_ count: Int, _ what: String) throws(CheckpointError) -> UnsafeRawBufferPointer {
        try require(count, for: what)
        let slice = UnsafeRawBufferPointer(rebasing: bytes[position..<(position + count)])
        position += count
        return slice
    }

    /// Moves to an absolute position within `bytes`.
    package mutating func seek(to newPosition: Int, _ what: String) throws(CheckpointError) {
        guard newPosition >= 0, newPosition <= bytes.count else {
            throw error(.truncated, "\(what) at \(newPosition) is past the end (\(bytes.count) bytes)")
        }
        position = newPosition
    }
}
