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

    /// Whether the bytes start with a plausible safetensors header: a length within the file, then `{`.
    private static func looksLikeSafetensors(_ raw: UnsafeRawBufferPointer) -> Bool {
        guard raw.count >= 9 else { return false }
        let length = UInt64(littleEndian: raw.loadUnaligned(as: UInt64.self))
        guard length <= SafetensorsReader.maxHeaderBytes, 8 + Int(length) <= raw.count else { return false }
        var i = 8
        while i < 8 + Int(length), [0x20, 0x09, 0x0A, 0x0D].contains(raw[i]) { i += 1 }
        return i < raw.count && raw[i] == UInt8(ascii: "{")
    }

    /// Inspects the first bytes of `path`.
    /// - Throws: `.notFound`/`.io` if unreadable. Files with no GGUF or zip magic are reported as safetensors, so
    ///   that the safetensors reader's validation explains what is wrong with them.
    public static func detect(path: String) throws(CheckpointError) -> Kind {
        let region = try MappedRegion(mapping: path)
        return try region.withUnsafeBytes { (raw) throws(CheckpointError) -> Kind in
            if raw.count >= 4 {
                let magic = Array(raw[0..<4])
                if magic == Array("GGUF".utf8) || magic == Array("FUGG".utf8) { return .gguf }
                if magic == [0x50, 0x4B, 0x03, 0x04] || magic == [0x50, 0x4B, 0x05, 0x06] { return .torchZip }
            }
            if raw.count >= 2, raw[0] == 0x80, raw[1] <= 5, !looksLikeSafetensors(raw) { return .torchLegacy }
            // Anything else goes to the safetensors reader, whose validation says exactly what is wrong.
            return .safetensors
        }
    }
}
