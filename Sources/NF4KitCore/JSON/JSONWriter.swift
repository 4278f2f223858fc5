/// Serialises ``JSONValue`` the way the reference tools do, so our side files match theirs byte for byte.
public struct JSONWriter: Sendable {
    /// Spaces per level; `nil` writes everything on one line.
    public var indent: Int?
    public var sortKeys: Bool
    public var itemSeparator: String
    public var keySeparator: String
    /// Escape every character outside printable ASCII as `\uXXXX` (Python's `ensure_ascii=True`).
    public var asciiOnly: Bool

    public init(
        indent: Int? = nil, sortKeys: Bool = false, itemSeparator: String = ",", keySeparator: String = ":",
        asciiOnly: Bool = false
    ) {
        self.indent = indent
        self.sortKeys = sortKeys
        self.itemSeparator = itemSeparator
        self.keySeparator = keySeparator
        self.asciiOnly = asciiOnly
    }

    /// Compact, raw UTF-8 (serde_json as used by the safetensors writer).
    public static let compact = JSONWriter()
    /// Python `json.dumps(obj)` defaults: `", "`, `": "`, ASCII only (bitsandbytes' quant_state blob).
    public static let pythonDefault = JSONWriter(itemSeparator: ", ", keySeparator: ": ", asciiOnly: true)
    /// Python `json.dumps(obj, indent=2, sort_keys=True)` (transformers' config.json, before its final newline).
    public static let pythonPretty = JSONWriter(
        indent: 2, sortKeys: true, itemSeparator: ",", keySeparator: ": ", asciiOnly: true)
    /// Python `json.dumps(obj, indent=2)` without sorting (huggingface_hub's index files, PEFT's adapter_config).
    public static let pythonIndented = JSONWriter(indent: 2, itemSeparator: ",", keySeparator: ": ", asciiOnly: true)

    /// The serialised text.
    public func string(_ value: JSONValue) -> String {
        var out = ""
        write(value, level: 0, into: &out)
        return out
    }

    /// The serialised UTF-8 bytes.
    public func bytes(_ value: JSONValue) -> [UInt8] { Array(string(value).utf8) }

    func newline(_ level: Int, into out: inout String) {
        guard let indent else { return }
        out += "\n" + String(repeating: " ", count: indent * level)
    }

    func write(_ value: JSONValue, level: Int, into out: inout String) {
        switch value {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let text): out += text
        case .string(let s): writeString(s, into: &out)
        case .array(let elements):
            if elements.isEmpty {
                out += "[]"
                return
            }
            out += "["
            for (i, element) in elements.enumerated() {
                if i > 0 { out += itemSeparator }
                newline(level + 1, into: &out)
                write(element, level: level + 1, into: &out)
            }
            newline(level, into: &out)
            out += "]"
        case .object(let object):
            if object.count == 0 {
                out += "{}"
                return
            }
            out += "{"
            for (i, member) in ordered(object.members).enumerated() {
                if i > 0 { out += itemSeparator }
                newline(level + 1, into: &out)
                writeString(member.key, into: &out)
                out += keySeparator
                write(member.value, level: level + 1, into: &out)
            }
            newline(level, into: &out)
            out += "}"
        }
    }

    /// `members` in the order they are written: sorted by the Unicode scalars of their keys with `sortKeys`.
    func ordered<Value>(_ members: [(key: String, value: Value)]) -> [(key: String, value: Value)] {
        guard sortKeys else { return members }
        return members.sorted { $0.key.unicodeScalars.lexicographicallyPrecedes($1.key.unicodeScalars) }
    }

    private static let hexDigits = Array("0123456789abcdef")

    private func hex4(_ value: UInt32, into out: inout String) {
        out += "\\u"
        for shift in stride(from: 12, through: 0, by: -4) {
            out.append(JSONWriter.hexDigits[Int((value >> UInt32(shift)) & 0xF)])
        }
    }

    func writeString(_ s: String, into out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if scalar.value < 0x20 || (asciiOnly && scalar.value == 0x7F) {
                    hex4(scalar.value, into: &out)
                } else if asciiOnly && scalar.value > 0x7F {
                    if scalar.value > 0xFFFF {
                        let v = scalar.value - 0x10000
                        hex4(0xD800 + (v >> 10), into: &out)
                        hex4(0xDC00 + (v & 0x3FF), into: &out)
                    } else {
                        hex4(scalar.value, into: &out)
                    }
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }
}
