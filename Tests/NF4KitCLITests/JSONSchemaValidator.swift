import Foundation

/// A JSON value that keeps the difference between integers and other numbers (JSONSerialization does not).
indirect enum SchemaJSON: Equatable {
    case null
    case bool(Bool)
    case integer(Int)
    case number(Double)
    case string(String)
    case array([SchemaJSON])
    case object([String: SchemaJSON])

    /// Parses one JSON document (RFC 8259); throws on anything else.
    static func parse(_ text: String) throws -> SchemaJSON {
        var parser = Parser(bytes: Array(text.utf8))
        let value = try parser.value()
        parser.skipSpace()
        guard parser.index == parser.bytes.count else { throw parser.failure("trailing characters") }
        return value
    }

    struct ParseError: Error, CustomStringConvertible { var description: String }

    private struct Parser {
        let bytes: [UInt8]
        var index = 0

        func failure(_ what: String) -> ParseError { ParseError(description: "JSON byte \(index): \(what)") }

        mutating func skipSpace() {
            while index < bytes.count, [0x20, 0x0A, 0x0D, 0x09].contains(bytes[index]) { index += 1 }
        }

        mutating func literal(_ word: String) throws {
            let w = Array(word.utf8)
            guard index + w.count <= bytes.count, Array(bytes[index..<(index + w.count)]) == w else {
                throw failure("expected \(word)")
            }
            index += w.count
        }

        mutating func value() throws -> SchemaJSON {
            skipSpace()
            guard index < bytes.count else { throw failure("unexpected end") }
            switch bytes[index] {
            case UInt8(ascii: "{"):
                index += 1
                var members: [String: SchemaJSON] = [:]
                skipSpace()
                if index < bytes.count, bytes[index] == UInt8(ascii: "}") { index += 1; return .object(members) }
                while true {
                    skipSpace()
                    let key = try string()
                    skipSpace()
                    try literal(":")
                    guard members[key] == nil else { throw failure("duplicate key \(key)") }
                    members[key] = try value()
                    skipSpace()
                    guard index < bytes.count else { throw failure("unterminated object") }
                    if bytes[index] == UInt8(ascii: "}") { index += 1; return .object(members) }
                    try literal(",")
                }
            case UInt8(ascii: "["):
                index += 1
                var items: [SchemaJSON] = []
                skipSpace()
                if index < bytes.count, bytes[index] == UInt8(ascii: "]") { index += 1; return .array(items) }
                while true {
                    items.append(try value())
                    skipSpace()
                    guard index < bytes.count else { throw failure("unterminated array") }
                    if bytes[index] == UInt8(ascii: "]") { index += 1; return .array(items) }
                    try literal(",")
                }
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): try literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false)
            case UInt8(ascii: "n"): try literal("null"); return .null
            default: return try number()
            }
        }

        mutating func number() throws -> SchemaJSON {
            let start = index
            while index < bytes.count, "+-0123456789.eE".utf8.contains(bytes[index]) { index += 1 }
            let text = String(decoding: bytes[start..<index], as: UTF8.self)
            guard
                text.range(of: #"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$"#, options: .regularExpression) != nil
            else {
                throw failure("bad number '\(text)'")
            }
            if !text.contains(where: { ".eE".contains($0) }), let n = Int(text) { return .integer(n) }
            guard let d = Double(text) else { throw failure("bad number '\(text)'") }
            return .number(d)
        }

        mutating func string() throws -> String {
            try literal("\"")
            var scalars = String.UnicodeScalarView()
            var raw: [UInt8] = []
            func flush() {
                scalars.append(contentsOf: String(decoding: raw, as: UTF8.self).unicodeScalars)
                raw.removeAll()
            }
            while true {
                guard index < bytes.count else { throw failure("unterminated string") }
                let b = bytes[index]
                index += 1
                if b == UInt8(ascii: "\"") { flush(); return String(scalars) }
                guard b >= 0x20 else { throw failure("control character in string") }
                guard b == UInt8(ascii: "\\") else { raw.append(b); continue }
                flush()
                guard index < bytes.count else { throw failure("unterminated escape") }
                let e = bytes[index]
                index += 1
                switch e {
                case UInt8(ascii: "\""): scalars.append("\"")
                case UInt8(ascii: "\\"): scalars.append("\\")
                case UInt8(ascii: "/"): scalars.append("/")
                case UInt8(ascii: "b"): scalars.append("\u{8}")
                case UInt8(ascii: "f"): scalars.append("\u{C}")
                case UInt8(ascii: "n"): scalars.append("\n")
                case UInt8(ascii: "r"): scalars.append("\r")
                case UInt8(ascii: "t"): scalars.append("\t")
                case UInt8(ascii: "u"):
                    var code = try hex4()
                    if (0xD800..<0xDC00).contains(code) {
                        try literal("\\u")
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw failure("lone surrogate") }
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let scalar = Unicode.Scalar(code) else { throw failure("bad \\u escape") }
                    scalars.append(scalar)
                default: throw failure("bad escape")
                }
            }
        }

        mutating func hex4() throws -> UInt32 {
            guard index + 4 <= bytes.count,
                let v = UInt32(String(decoding: bytes[index..<(index + 4)], as: UTF8.self), radix: 16)
            else {
                throw failure("bad \\u escape")
            }
            index += 4
            return v
        }
    }
}

/// Validates JSON against the JSON Schema (draft 2020-12) subset our docs/schemas use: `type`, `properties`,
/// `required`, `additionalProperties: false`, `items`, `enum`, `const`, `minimum`, `anyOf`, `$ref` to `#/$defs/...`.
/// Any other keyword is reported as an error, so a schema cannot rely on a check this validator skips.
struct JSONSchemaValidator {
    let root: SchemaJSON

    init(schemaFile: String) throws {
        root = try SchemaJSON.parse(try String(contentsOfFile: schemaFile, encoding: .utf8))
    }

    /// Keywords anywhere in the schema that this validator does not check (walks `$defs`, `properties`, `items`,
    /// `anyOf`).
    func unsupportedKeywords() -> [String] {
        var found: [String] = []
        func walk(_ schema: SchemaJSON, _ path: String) {
            guard case .object(let s) = schema else { return }
            for key in s.keys where !Self.checked.contains(key) && !Self.annotations.contains(key) {
                found.append("\(path): \(key)")
            }
            if case .object(let defs)? = s["$defs"] { for (name, d) in defs { walk(d, path + "/$defs/" + name) } }
            if case .object(let properties)? = s["properties"] {
                for (name, p) in properties { walk(p, path + "/properties/" + name) }
            }
            if let items = s["items"] { walk(items, path + "/items") }
            if case .array(let options)? = s["anyOf"] {
                for (i, o) in options.enumerated() { walk(o, path + "/anyOf/\(i)") }
            }
        }
        walk(root, "#")
        return found.sorted()
    }

    private static let checked: Set<String> = [
        "type", "properties", "required", "additionalProperties", "items", "enum", "const", "minimum", "anyOf", "$ref",
    ]

    private static let annotations: Set<String> = ["$schema", "$id", "$defs", "title", "description"]

    /// Every violation, as `path: what` (empty when valid).
    func errors(_ value: SchemaJSON) -> [String] {
        var found: [String] = []
        check(value, against: root, at: "$", into: &found)
        return found
    }

    private func resolve(_ reference: String) -> SchemaJSON? {
        guard reference.hasPrefix("#/$defs/"), case .object(let top) = root, case .object(let defs)? = top["$defs"]
        else { return nil }
        return defs[String(reference.dropFirst("#/$defs/".count))]
    }

    private static func typeName(_ value: SchemaJSON) -> String {
        switch value {
        case .null: "null"
        case .bool: "boolean"
        case .integer: "integer"
        case .number: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }

    private func check(_ value: SchemaJSON, against schema: SchemaJSON, at path: String, into found: inout [String]) {
        guard case .object(let s) = schema else { found.append("\(path): schema is not an object"); return }
        for key in s.keys where !Self.checked.contains(key) && !Self.annotations.contains(key) {
            found.append("\(path): unsupported schema keyword \(key)")
        }
        if case .string(let reference)? = s["$ref"] {
            guard let target = resolve(reference) else { found.append("\(path): unresolved $ref \(reference)"); return }
            check(value, against: target, at: path, into: &found)
        }
        if case .array(let options)? = s["anyOf"] {
            let passes = options.contains { option in
                var scratch: [String] = []
                check(value, against: option, at: path, into: &scratch)
                return scratch.isEmpty
            }
            if !passes { found.append("\(path): matches none of anyOf") }
        }
        if let type = s["type"] {
            let allowed: [String]
            switch type {
            case .string(let t): allowed = [t]
            case .array(let ts): allowed = ts.compactMap { if case .string(let t) = $0 { t } else { nil } }
            default: allowed = []
            }
            let actual = Self.typeName(value)
            if !(allowed.contains(actual) || (actual == "integer" && allowed.contains("number"))) {
                found.append("\(path): \(actual), expected \(allowed.joined(separator: " or "))")
                return
            }
        }
        if case .array(let options)? = s["enum"], !options.contains(value) {
            found.append("\(path): \(value) is not one of the enum")
        }
        if let constant = s["const"], constant != value { found.append("\(path): \(value), expected \(constant)") }
        if let minimum = s["minimum"] {
            let bound: Double? =
                switch minimum {
                case .integer(let i): Double(i);
                case .number(let d): d;
                default: nil
                }
            let actual: Double? =
                switch value {
                case .integer(let i): Double(i);
                case .number(let d): d;
                default: nil
                }
            if let bound, let actual, actual < bound {
                found.append("\(path): \(actual) is below the minimum \(bound)")
            }
        }
        if case .object(let members) = value {
            if case .array(let required)? = s["required"] {
                for case .string(let key) in required where members[key] == nil {
                    found.append("\(path): missing \(key)")
                }
            }
            let properties: [String: SchemaJSON]
            if case .object(let p)? = s["properties"] { properties = p } else { properties = [:] }
            for (key, member) in members.sorted(by: { $0.key < $1.key }) {
                if let property = properties[key] {
                    check(member, against: property, at: path + "." + key, into: &found)
                } else if s["additionalProperties"] == .bool(false) {
                    found.append("\(path): unexpected key \(key)")
                }
            }
        }
        if case .array(let items) = value, let itemSchema = s["items"] {
            for (i, item) in items.enumerated() { check(item, against: itemSchema, at: "\(path)[\(i)]", into: &found) }
        }
    }
}
