/// A strict JSON parser for untrusted headers and configs.
///
/// Rejects duplicate keys at any level, nesting of ``maxDepth`` or more arrays/objects, invalid UTF-8, lone
/// surrogates, and anything but JSON whitespace (space, tab, CR, LF) around the value. Errors carry the byte
/// offset where the problem starts, relative to the start of the text plus `baseOffset`.
public struct StrictJSON {
    /// serde_json's recursion limit, which the safetensors reference reader inherits: the 128th nested array or
    /// object is rejected, so at most 127 may nest (measured with safetensors 0.8.0: a header whose unknown field
    /// holds 125 nested arrays is read, 126 are refused, the header and tensor objects counting as 2).
    public static let maxDepth = 128

    /// A parsed document and where the keys of its top-level object start.
    public struct Document: Sendable {
        /// The value.
        public var value: JSONValue
        /// For each member of a top-level object, the offset (plus `baseOffset`) of its key's opening quote.
        public var keyOffsets: [String: Int64]
    }

    /// Parses `bytes` as one JSON document.
    /// - Throws: `CheckpointError` `.malformedHeader` with `byteOffset` = offset of the problem + `baseOffset`.
    public static func parse(
        _ bytes: UnsafeRawBufferPointer, file: String? = nil, baseOffset: Int64 = 0, what: String = "JSON"
    ) throws(CheckpointError) -> JSONValue {
        try parseDocument(bytes, file: file, baseOffset: baseOffset, what: what).value
    }

    /// Parses `bytes` as one JSON document and records where its top-level keys start.
    ///
    /// - Parameter keysNameTensors: The top-level keys are tensor names (a safetensors header): an error inside
    ///   a member's key or value names that tensor in ``CheckpointError/tensor`` (except `__metadata__`).
    /// - Throws: `CheckpointError` `.malformedHeader` with `byteOffset` = offset of the problem + `baseOffset`.
    public static func parseDocument(
        _ bytes: UnsafeRawBufferPointer, file: String? = nil, baseOffset: Int64 = 0, what: String = "JSON",
        keysNameTensors: Bool = false
    ) throws(CheckpointError) -> Document {
        var parser = StrictJSON(bytes: bytes, file: file, baseOffset: baseOffset, what: what)
        parser.keysNameTensors = keysNameTensors
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        parser.topLevelKey = nil
        guard parser.position == bytes.count else { throw parser.fail("trailing characters after the \(what) value") }
        return Document(value: value, keyOffsets: parser.keyOffsets)
    }

    /// Parses `bytes` as one JSON object and hands each top-level member to `visit` in order, without keeping the
    /// tree: memory stays proportional to one member, not to the document (a safetensors header of millions of
    /// tensors).
    ///
    /// Every rule of ``parseDocument(_:file:baseOffset:what:keysNameTensors:)`` applies (duplicate keys at any
    /// level, depth, UTF-8, whitespace). Inside a member's object only the values of `retainedFields` and strings
    /// are built; any other array or object there, and a member value that is an array, is checked and handed on
    /// empty (`.array([])`, `.object([:])`), keeping its kind. A syntax error anywhere is reported before an error
    /// `visit` throws: the first error `visit` throws is kept, later members are parsed but not visited, and it is
    /// thrown once the whole text is valid.
    ///
    /// - Parameter visit: Called with the key, the offset (plus `baseOffset`) of its opening quote, and the value.
    /// - Returns: `false` if the document is valid JSON but not an object (`visit` was not called).
    public static func forEachMember(
        _ bytes: UnsafeRawBufferPointer, file: String? = nil, baseOffset: Int64 = 0, what: String = "JSON",
        keysNameTensors: Bool = false, retainedFields: Set<String>, budget: inout AllocationBudget,
        _ visit: (
            _ key: String, _ keyOffset: Int64, _ value: JSONValue, _ budget: inout AllocationBudget
        ) throws(CheckpointError) -> Void
    ) throws(CheckpointError) -> Bool {
        var parser = StrictJSON(bytes: bytes, file: file, baseOffset: baseOffset, what: what, budget: budget)
        defer { budget = parser.budget }
        parser.keysNameTensors = keysNameTensors
        parser.retainedFields = retainedFields
        parser.recordKeyOffsets = false
        parser.skipWhitespace()
        var deferred: CheckpointError?
        let isObject = parser.current == UInt8(ascii: "{")
        if isObject {
            try parser.parseTopObject { (key, offset, value, budget) throws(CheckpointError) in
                guard deferred == nil else { return }
                do throws(CheckpointError) { try visit(key, offset, value, &budget) } catch { deferred = error }
            }
        } else {
            _ = try parser.parseValue(depth: 0, keep: false)
        }
        parser.skipWhitespace()
        parser.topLevelKey = nil
        guard parser.position == bytes.count else { throw parser.fail("trailing characters after the \(what) value") }
        if let deferred { throw deferred }
        return isObject
    }

    /// Parses a byte array as one JSON document.
    public static func parse(
        _ bytes: [UInt8], file: String? = nil, what: String = "JSON"
    ) throws(CheckpointError) -> JSONValue {
        let result: Result<JSONValue, CheckpointError> = bytes.withUnsafeBytes { raw in
            do throws(CheckpointError) { return .success(try parse(raw, file: file, what: what)) } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    private let bytes: UnsafeRawBufferPointer
    private let file: String?
    private let baseOffset: Int64
    private let what: String
    private var position = 0
    private var keysNameTensors = false
    /// The top-level member being parsed, named in errors when ``keysNameTensors``.
    private var topLevelKey: String?
    private var keyOffsets: [String: Int64] = [:]
    private var recordKeyOffsets = true
    /// In ``forEachMember``: the fields of a member's object whose arrays and objects are built.
    private var retainedFields: Set<String>?

    /// What the values built may cost: the budget of the file the text comes from (the text's own size when the
    /// caller gives none). Values that are only checked, not kept, cost nothing.
    private var budget: AllocationBudget

    private init(
        bytes: UnsafeRawBufferPointer, file: String?, baseOffset: Int64, what: String, budget: AllocationBudget? = nil
    ) {
        self.bytes = bytes
        self.file = file
        self.baseOffset = baseOffset
        self.what = what
        self.budget = budget ?? AllocationBudget(file: file, fileByteCount: bytes.count)
    }

    /// A kept value: its box in the indirect enum and its slot in the parent (rounded up to malloc's sizes).
    private static let valueByteCount = 48

    private mutating func charge(_ byteCount: Int) throws(CheckpointError) {
        let tensor = keysNameTensors && topLevelKey != "__metadata__" ? topLevelKey : nil
        do throws(CheckpointError) {
            try budget.charge(
                byteCount, for: "the values of the \(what)\(tensor.map { " (tensor '\($0)')" } ?? "")",
                at: baseOffset + Int64(position))
        } catch {
            var located = error
            located.tensor = tensor
            throw located
        }
    }

    private func fail(_ message: String, at offset: Int? = nil) -> CheckpointError {
        let tensor = keysNameTensors && topLevelKey != "__metadata__" ? topLevelKey : nil
        return CheckpointError(
            .malformedHeader, message, file: file, byteOffset: baseOffset + Int64(offset ?? position), tensor: tensor)
    }

    private var current: UInt8? { position < bytes.count ? bytes[position] : nil }

    private mutating func skipWhitespace() {
        while let c = current, c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D { position += 1 }
    }

    private mutating func expect(_ literal: StaticString) throws(CheckpointError) {
        let count = literal.utf8CodeUnitCount
        guard position + count <= bytes.count else { throw fail("unexpected end of the \(what)") }
        for i in 0..<count where bytes[position + i] != literal.utf8Start[i] {
            throw fail("invalid literal in the \(what)")
        }
        position += count
    }

    /// Parses the value at `position`; `depth` is the number of arrays and objects around it.
    /// With `keep` false an array or object is checked but comes back empty (its kind kept).
    private mutating func parseValue(depth: Int, keep: Bool = true) throws(CheckpointError) -> JSONValue {
        guard let c = current else { throw fail("unexpected end of the \(what)") }
        if c == UInt8(ascii: "{") || c == UInt8(ascii: "[") {
            guard depth + 1 < StrictJSON.maxDepth else {
                throw fail(
                    "the \(what) nests \(depth + 1) arrays or objects; at most \(StrictJSON.maxDepth - 1) are allowed")
            }
        }
        if keep { try charge(Self.valueByteCount) }
        switch c {
        case UInt8(ascii: "{"): return try parseObject(depth: depth, keep: keep)
        case UInt8(ascii: "["): return try parseArray(depth: depth, keep: keep)
        case UInt8(ascii: "\""):
            let text = try parseString()
            if keep { try charge(AllocationBudget.stringByteCount(utf8Count: text.utf8.count)) }
            return .string(text)
        case UInt8(ascii: "t"):
            try expect("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expect("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try expect("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            let start = position
            try scanNumber()
            // A number inside a value that is not kept is checked, not copied out.
            guard keep else { return .number("0") }
            return .number(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self))
        default:
            let shown =
                c >= 0x21 && c < 0x7F ? "'\(Unicode.Scalar(c))'" : "byte 0x\(String(c, radix: 16, uppercase: true))"
            throw fail("unexpected \(shown) where a value should start in the \(what)")
        }
    }

    /// The top-level object of ``forEachMember``: members go to `visit` instead of into a tree.
    private mutating func parseTopObject(
        _ visit: (String, Int64, JSONValue, inout AllocationBudget) throws(CheckpointError) -> Void
    ) throws(CheckpointError) {
        position += 1
        var seen = Set<String>()
        skipWhitespace()
        if current == UInt8(ascii: "}") {
            position += 1
            return
        }
        while true {
            skipWhitespace()
            guard current == UInt8(ascii: "\"") else { throw fail("expected a string key in the \(what)") }
            let keyOffset = position
            topLevelKey = nil
            let key = try parseString()
            topLevelKey = key
            guard seen.insert(key).inserted else {
                throw fail("duplicate key '\(key)' in the \(what)", at: keyOffset)
            }
            skipWhitespace()
            guard current == UInt8(ascii: ":") else { throw fail("expected ':' after key '\(key)'") }
            position += 1
            skipWhitespace()
            // The member's values are dropped after `visit`: what they cost is given back, what `visit` keeps stays.
            let chargedBefore = budget.charged
            let value = try parseValue(depth: 1, keep: current == UInt8(ascii: "{"))
            let valueCost = budget.charged - chargedBefore
            try visit(key, baseOffset + Int64(keyOffset), value, &budget)
            budget.release(valueCost)
            skipWhitespace()
            if current == UInt8(ascii: ",") {
                position += 1
                continue
            }
            guard current == UInt8(ascii: "}") else { throw fail("expected ',' or '}' in an object of the \(what)") }
            position += 1
            topLevelKey = nil
            return
        }
    }

    private mutating func parseObject(depth: Int, keep: Bool = true) throws(CheckpointError) -> JSONValue {
        position += 1
        var members: [(key: String, value: JSONValue)] = []
        var seen = Set<String>()
        skipWhitespace()
        if current == UInt8(ascii: "}") {
            position += 1
            return .object(JSONObject(members))
        }
        while true {
            skipWhitespace()
            guard current == UInt8(ascii: "\"") else { throw fail("expected a string key in the \(what)") }
            let keyOffset = position
            if depth == 0 { topLevelKey = nil }
            let key = try parseString()
            if depth == 0 {
                topLevelKey = key
                if recordKeyOffsets { keyOffsets[key] = baseOffset + Int64(keyOffset) }
            }
            guard seen.insert(key).inserted else {
                throw fail("duplicate key '\(key)' in the \(what)", at: keyOffset)
            }
            skipWhitespace()
            guard current == UInt8(ascii: ":") else { throw fail("expected ':' after key '\(key)'") }
            position += 1
            skipWhitespace()
            // A kept member: its (key, value) slot, the key twice (members and `seen`) and the set's slot.
            if keep { try charge(48 + 2 * AllocationBudget.stringByteCount(utf8Count: key.utf8.count)) }
            let keepValue = keep && (depth != 1 || retainedFields?.contains(key) ?? true)
            let value = try parseValue(depth: depth + 1, keep: keepValue)
            if keep { members.append((key, value)) }
            skipWhitespace()
            if current == UInt8(ascii: ",") {
                position += 1
                continue
            }
            guard current == UInt8(ascii: "}") else { throw fail("expected ',' or '}' in an object of the \(what)") }
            position += 1
            if depth == 0 { topLevelKey = nil }
            return .object(JSONObject(members))
        }
    }

    private mutating func parseArray(depth: Int, keep: Bool = true) throws(CheckpointError) -> JSONValue {
        position += 1
        var elements: [JSONValue] = []
        skipWhitespace()
        if current == UInt8(ascii: "]") {
            position += 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            let element = try parseValue(depth: depth + 1, keep: keep)
            if keep { elements.append(element) }
            skipWhitespace()
            if current == UInt8(ascii: ",") {
                position += 1
                continue
            }
            guard current == UInt8(ascii: "]") else { throw fail("expected ',' or ']' in an array of the \(what)") }
            position += 1
            return .array(elements)
        }
    }

    private mutating func scanNumber() throws(CheckpointError) {
        if current == UInt8(ascii: "-") { position += 1 }
        guard let first = current, first >= 0x30 && first <= 0x39 else { throw fail("invalid number in the \(what)") }
        if first == 0x30 {
            position += 1
        } else {
            while let c = current, c >= 0x30 && c <= 0x39 { position += 1 }
        }
        if current == UInt8(ascii: ".") {
            position += 1
            guard let c = current, c >= 0x30 && c <= 0x39 else { throw fail("invalid number in the \(what)") }
            while let c = current, c >= 0x30 && c <= 0x39 { position += 1 }
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            position += 1
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { position += 1 }
            guard let c = current, c >= 0x30 && c <= 0x39 else { throw fail("invalid number in the \(what)") }
            while let c = current, c >= 0x30 && c <= 0x39 { position += 1 }
        }
    }

    private mutating func parseHex4() throws(CheckpointError) -> UInt32 {
        guard position + 4 <= bytes.count else { throw fail("truncated \\u escape in the \(what)") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[position]
            let digit: UInt32
            switch c {
            case 0x30...0x39: digit = UInt32(c - 0x30)
            case 0x41...0x46: digit = UInt32(c - 0x41 + 10)
            case 0x61...0x66: digit = UInt32(c - 0x61 + 10)
            default: throw fail("invalid \\u escape in the \(what)")
            }
            value = value << 4 | digit
            position += 1
        }
        return value
    }

    private mutating func parseString() throws(CheckpointError) -> String {
        position += 1  // opening quote
        var scalars = String.UnicodeScalarView()
        while true {
            guard let c = current else { throw fail("unterminated string in the \(what)") }
            switch c {
            case UInt8(ascii: "\""):
                position += 1
                return String(scalars)
            case UInt8(ascii: "\\"):
                position += 1
                guard let e = current else { throw fail("unterminated escape in the \(what)") }
                position += 1
                switch e {
                case UInt8(ascii: "\""): scalars.append("\"")
                case UInt8(ascii: "\\"): scalars.append("\\")
                case UInt8(ascii: "/"): scalars.append("/")
                case UInt8(ascii: "b"): scalars.append("\u{08}")
                case UInt8(ascii: "f"): scalars.append("\u{0C}")
                case UInt8(ascii: "n"): scalars.append("\n")
                case UInt8(ascii: "r"): scalars.append("\r")
                case UInt8(ascii: "t"): scalars.append("\t")
                case UInt8(ascii: "u"):
                    let escape = position - 2
                    var code = try parseHex4()
                    if (0xD800..<0xDC00).contains(code) {
                        guard position + 6 <= bytes.count, bytes[position] == UInt8(ascii: "\\"),
                            bytes[position + 1] == UInt8(ascii: "u")
                        else { throw fail("lone surrogate escape in the \(what)", at: escape) }
                        position += 2
                        let low = try parseHex4()
                        guard (0xDC00..<0xE000).contains(low) else {
                            throw fail("lone surrogate escape in the \(what)", at: escape)
                        }
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00..<0xE000).contains(code) {
                        throw fail("lone surrogate escape in the \(what)", at: escape)
                    }
                    guard let scalar = Unicode.Scalar(code) else { throw fail("invalid escape in the \(what)") }
                    scalars.append(scalar)
                default: throw fail("invalid escape in the \(what)")
                }
            case 0x00..<0x20:
                throw fail("control character in a string of the \(what)")
            case 0x00..<0x80:
                scalars.append(Unicode.Scalar(c))
                position += 1
            default:
                scalars.append(try decodeUTF8Scalar())
            }
        }
    }

    /// Decodes one multi-byte UTF-8 scalar strictly (no overlongs, no surrogates, at most U+10FFFF).
    private mutating func decodeUTF8Scalar() throws(CheckpointError) -> Unicode.Scalar {
        let lead = bytes[position]
        let length: Int
        var value: UInt32
        switch lead {
        case 0xC2...0xDF: length = 2; value = UInt32(lead & 0x1F)
        case 0xE0...0xEF: length = 3; value = UInt32(lead & 0x0F)
        case 0xF0...0xF4: length = 4; value = UInt32(lead & 0x07)
        default: throw fail("invalid UTF-8 in the \(what)")
        }
        guard position + length <= bytes.count else { throw fail("truncated UTF-8 in the \(what)") }
        for i in 1..<length {
            let b = bytes[position + i]
            guard b & 0xC0 == 0x80 else { throw fail("invalid UTF-8 in the \(what)") }
            value = value << 6 | UInt32(b & 0x3F)
        }
        let minimum: UInt32 = length == 2 ? 0x80 : length == 3 ? 0x800 : 0x10000
        guard value >= minimum, let scalar = Unicode.Scalar(value) else { throw fail("invalid UTF-8 in the \(what)") }
        position += length
        return scalar
    }
}
