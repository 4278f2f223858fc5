public import NF4KitCore

/// The container of a file, decided by its first bytes, never by its name.
public enum FormatDetection {
    /// What a file's magic says.
    public enum Kind: Sendable, Hashable {
        case safetensors
        case gguf
        /// A zip archive (PyTorch >= 1.6 `torch.save`).
        case torchZip
        /// A bare pickle stream (legacy `torch.save`, before PyTorch 1.6).
        case torchLegacy
    }

    /// Inspects the first bytes of `path`.
    /// - Throws: `.notFound`/`.io` if unreadable; `.malformedHeader` if no known container starts that way.
    public static func detect(path: String) throws(CheckpointError) -> Kind {
        let region = try MappedRegion(mapping: path)
        return try region.withUnsafeBytes { (raw) throws(CheckpointError) -> Kind in
            if raw.count >= 4 {
                let magic = Array(raw[0..<4])
                if magic == Array("GGUF".utf8) || magic == Array("FUGG".utf8) { return .gguf }
                if magic == [0x50, 0x4B, 0x03, 0x04] || magic == [0x50, 0x4B, 0x05, 0x06] { return .torchZip }
            }
            if raw.count >= 9 {
                let length = UInt64(littleEndian: raw.loadUnaligned(as: UInt64.self))
                if length <= SafetensorsReader.maxHeaderBytes, 8 + Int(length) <= raw.count {
                    var i = 8
                    while i < 8 + Int(length), [0x20, 0x09, 0x0A, 0x0D].contains(raw[i]) { i += 1 }
                    if i < raw.count, raw[i] == UInt8(ascii: "{") { return .safetensors }
                }
            }
            if raw.count >= 2, raw[0] == 0x80, raw[1] <= 5 { return .torchLegacy }
            // Fall back to safetensors so its reader reports exactly what is wrong with the header.
            if raw.count < 4 || !raw.prefix(8).contains(where: { $0 >= 0x80 }) { return .safetensors }
            throw CheckpointError(.malformedHeader, "not a safetensors, GGUF or PyTorch file (first bytes \(raw.prefix(4).map { String($0, radix: 16) }.joined(separator: " ")))", file: path, byteOffset: 0)
        }
    }
}
