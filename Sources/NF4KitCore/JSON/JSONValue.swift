/// A JSON value that keeps what a re-serialisation needs: member order and the literal text of numbers.
///
/// Numbers stay as the text they were written with (`6.0`, `1e-06`), so a config written by Python and
/// re-emitted by us keeps its exact digits.
public indirect enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    /// A number, as its literal JSON text.
    case number(String)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    /// A number from an integer.
    public static func integer<T: BinaryInteger>(_ value: T) -> JSONValue { .number(String(value)) }

    /// A number from a double, printed like Python's `repr(float)` (`2.0`, `0.0522410087287426`, `5e-05`).
    public static func double(_ value: Double) -> JSONValue { .number(PythonFloat.repr(value)) }

    public var stringValue: String? { if case .string(let s) = self { s } else { nil } }
    public var boolValue: Bool? { if case .bool(let b) = self { b } else { nil } }
    public var arrayValue: [JSONValue]? { if case .array(let a) = self { a } else { nil } }
    public var objectValue: JSONObject? { if case .object(let o) = self { o } else { nil } }
    public var isNull: Bool { if case .null = self { true } else { false } }

    /// The value as an `Int` if it is a JSON integer literal (no fraction or exponent) that fits.
    public var intValue: Int? {
        guard case .number(let text) = self, !text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) else {
            return nil
        }
        return Int(text)
    }

    /// The value as a non-negative integer literal that fits in `UInt64` (`2.0`, `1e0`, `-2` are not).
    public var uint64Value: UInt64? {
        guard case .number(let text) = self, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return UInt64(text)
    }

    /// The value as a `Double` (any number literal).
    public var doubleValue: Double? {
        guard case .number(let text) = self else { return nil }
        return Double(text)
    }

    /// The member `key` of an object, or `nil`.
    public subscript(key: String) -> JSONValue? { objectValue?[key] }
}

/// A JSON object's members in their written order. Keys are unique (the parser rejects duplicates).
public struct JSONObject: Sendable, Hashable, Sequence {
    public private(set) var members: [(key: String, value: JSONValue)]

    public init(_ members: [(key: String, value: JSONValue)] = []) { self.members = members }

    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        lhs.members.count == rhs.members.count && zip(lhs.members, rhs.members).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }
    public func hash(into hasher: inout Hasher) {
        for member in members {
            hasher.combine(member.key)
            hasher.combine(member.value)
        }
    }

    public var keys: [String] { members.map(\.key) }
    public var count: Int { members.count }
    public func makeIterator() -> IndexingIterator<[(key: String, value: JSONValue)]> { members.makeIterator() }

    /// Reads or replaces a member; setting `nil` removes it; a new key is appended.
    public subscript(key: String) -> JSONValue? {
        get { members.first { $0.key == key }?.value }
        set {
            if let index = members.firstIndex(where: { $0.key == key }) {
                if let newValue { members[index].value = newValue } else { members.remove(at: index) }
            } else if let newValue {
                members.append((key, newValue))
            }
        }
    }
}

/// Python's `repr(float)` for doubles: shortest round-trip digits, plain notation for 1e-4 <= |x| < 1e16.
public enum PythonFloat {
    public static func repr(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value < 0 ? "-Infinity" : "Infinity" }
        // Swift's description already uses shortest round-trip digits with the same notation switch points
        // (checked against Python for the values in the NF4 spec §6.2); normalise the exponent form.
        var text = value.description
        if let e = text.firstIndex(of: "e") {
            // Swift: "5e-05", "1e+16" — same as Python.
            let mantissa = text[..<e]
            if mantissa.hasSuffix(".0") { text = String(mantissa.dropLast(2)) + text[e...] }
        }
        return text
    }
}
