package import NF4KitCore

/// The vocabulary of a SentencePiece `tokenizer.model` (a protobuf `ModelProto`), read with a bounded wire decoder.
///
/// Only what llama.cpp's converter uses is kept: each piece's text, score and type (spec gguf-llama.md §4). The
/// decoder checks every varint and length against the bytes that remain, skips fields it does not know, and rejects
/// groups, truncation, non-UTF-8 text, empty or repeated pieces and unknown piece types, naming the byte offset.
package struct SentencePieceModel: Sendable, Hashable {
    /// `ModelProto.SentencePiece.Type`.
    package enum PieceType: Int32, Sendable, Hashable {
        /// A normal piece (also what an absent type means).
        case normal = 1
        /// The unknown-token piece.
        case unknown = 2
        /// A control symbol (`<s>`, `</s>`).
        case control = 3
        /// A user-defined symbol.
        case userDefined = 4
        /// An unused piece.
        case unused = 5
        /// A byte-fallback piece (`<0x41>`).
        case byte = 6
    }

    /// One vocabulary entry.
    package struct Piece: Sendable, Hashable {
        /// The piece text (with `▁` for spaces).
        package var text: String
        /// The score (log probability for unigram models, rank for BPE).
        package var score: Float
        /// The piece type.
        package var type: PieceType
    }

    /// The pieces in id order.
    package var pieces: [Piece]

    /// Largest `tokenizer.model` read: real ones are under 5 MB (Llama 2: 500 KB; Gemma: 4.2 MB).
    package static let maxFileByteCount = 64 << 20

    /// Reads and parses a `tokenizer.model` file.
    ///
    /// - Throws: ``CheckpointError`` `.malformedHeader` with the file and byte offset of the first bad byte,
    ///   `.limitExceeded` for a file over ``maxFileByteCount``, `.io`/`.notFound` when it cannot be read.
    package static func read(path: String) throws(CheckpointError) -> SentencePieceModel {
        let bytes = try FileAccess.readSmallFile(path, limit: maxFileByteCount)
        return try SentencePieceModel(parsing: bytes, file: path)
    }

    /// Parses the bytes of a `ModelProto`.
    ///
    /// - Parameter budget: what the pieces may cost (by default the budget of a file of `bytes.count` bytes).
    /// - Throws: ``CheckpointError`` `.malformedHeader` naming `file` and the byte offset, `.limitExceeded` once the
    ///   pieces would cost more than the budget.
    package init(
        parsing bytes: [UInt8], file: String? = nil, budget: AllocationBudget? = nil
    ) throws(CheckpointError) {
        var pieces: [Piece] = []
        var seen = Set<String>()
        var budget = budget ?? AllocationBudget(file: file, fileByteCount: bytes.count)
        let result: Result<Void, CheckpointError> = bytes.withUnsafeBytes { raw in
            do throws(CheckpointError) {
                var reader = ProtoReader(raw: raw, base: 0, end: raw.count, file: file)
                while !reader.atEnd {
                    let (field, wire, start) = try reader.key()
                    if field == 1 && wire == 2 {
                        let (pieceStart, pieceEnd) = try reader.lengthDelimited()
                        var inner = ProtoReader(raw: raw, base: pieceStart, end: pieceEnd, file: file)
                        let piece = try Self.piece(&inner, at: start)
                        // The piece (twice while the array grows), its text in it and in `seen`, the set's slot.
                        try budget.charge(
                            2 * MemoryLayout<Piece>.stride + 2 * MemoryLayout<String>.stride
                                + 2 * AllocationBudget.stringByteCount(utf8Count: piece.text.utf8.count),
                            for: "piece \(pieces.count) of the SentencePiece model", at: Int64(start))
                        guard seen.insert(piece.text).inserted else {
                            throw reader.failure(
                                "piece \(pieces.count) '\(piece.text)' is already defined (pieces must be unique)",
                                at: start)
                        }
                        pieces.append(piece)
                    } else if field == 1 {
                        throw reader.failure(
                            "field 1 (pieces) has wire type \(wire); expected 2 (a message)", at: start)
                    } else {
                        try reader.skip(wire: wire, at: start)
                    }
                }
                return .success(())
            } catch { return .failure(error) }
        }
        try result.get()
        guard !pieces.isEmpty else {
            throw CheckpointError(
                .malformedHeader, "the SentencePiece model holds no pieces (is this a tokenizer.model file?)",
                file: file, byteOffset: 0)
        }
        self.pieces = pieces
    }

    private static func piece(_ reader: inout ProtoReader, at messageOffset: Int) throws(CheckpointError) -> Piece {
        var text: String?
        var score: Float = 0
        var type = PieceType.normal
        while !reader.atEnd {
            let (field, wire, start) = try reader.key()
            switch (field, wire) {
            case (1, 2):
                let (s, e) = try reader.lengthDelimited()
                guard let decoded = reader.utf8(s, e) else {
                    throw reader.failure("a piece's text is not valid UTF-8", at: s)
                }
                text = decoded
            case (2, 5):
                score = Float(bitPattern: try reader.fixed32())
            case (3, 0):
                let value = try reader.varint()
                guard let known = Int32(exactly: value).flatMap(PieceType.init(rawValue:)) else {
                    throw reader.failure("piece type \(value) is not one of 1...6", at: start)
                }
                type = known
            case (1, _), (2, _), (3, _):
                throw reader.failure("piece field \(field) has the wrong wire type \(wire)", at: start)
            default:
                try reader.skip(wire: wire, at: start)
            }
        }
        guard let text, !text.isEmpty else {
            throw reader.failure("a piece has no text (SentencePiece requires a non-empty piece)", at: messageOffset)
        }
        return Piece(text: text, score: score, type: type)
    }
}

/// A protobuf wire-format reader over `raw[base..<end]` that never reads past `end`.
private struct ProtoReader {
    let raw: UnsafeRawBufferPointer
    var position: Int
    let end: Int
    let file: String?

    init(raw: UnsafeRawBufferPointer, base: Int, end: Int, file: String?) {
        self.raw = raw
        position = base
        self.end = end
        self.file = file
    }

    var atEnd: Bool { position >= end }

    func failure(_ message: String, at offset: Int) -> CheckpointError {
        CheckpointError(
            .malformedHeader, "not a valid SentencePiece model (protobuf): \(message)", file: file,
            byteOffset: Int64(offset))
    }

    mutating func varint() throws(CheckpointError) -> UInt64 {
        let start = position
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard position < end else { throw failure("a varint runs past the end of its message", at: start) }
            let byte = raw[position]
            position += 1
            guard shift < 64, shift < 63 || byte <= 1 else {
                throw failure("a varint is longer than 10 bytes", at: start)
            }
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
    }

    mutating func key() throws(CheckpointError) -> (field: UInt64, wire: UInt64, start: Int) {
        let start = position
        let key = try varint()
        let field = key >> 3
        guard field > 0 else { throw failure("field number 0", at: start) }
        return (field, key & 7, start)
    }

    mutating func fixed32() throws(CheckpointError) -> UInt32 {
        guard end - position >= 4 else { throw failure("a 4-byte value runs past the end", at: position) }
        let value = raw.loadUnaligned(fromByteOffset: position, as: UInt32.self)
        position += 4
        return UInt32(littleEndian: value)
    }

    mutating func lengthDelimited() throws(CheckpointError) -> (Int, Int) {
        let start = position
        let length = try varint()
        guard length <= UInt64(end - position) else {
            throw failure("a length of \(length) bytes runs past the end (\(end - position) left)", at: start)
        }
        let s = position
        position += Int(length)
        return (s, position)
    }

    mutating func skip(wire: UInt64, at start: Int) throws(CheckpointError) {
        switch wire {
        case 0: _ = try varint()
        case 1:
            guard end - position >= 8 else { throw failure("an 8-byte value runs past the end", at: position) }
            position += 8
        case 2: _ = try lengthDelimited()
        case 5: _ = try fixed32()
        default: throw failure("wire type \(wire) is not supported (groups or invalid)", at: start)
        }
    }

    func utf8(_ start: Int, _ end: Int) -> String? {
        String(validating: UnsafeRawBufferPointer(rebasing: raw[start..<end]), as: UTF8.self)
    }
}
