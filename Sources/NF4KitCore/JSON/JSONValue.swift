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
        lhs.members.count == rhs.members.count
            && zip(lhs.members, rhs.members).allSatisfy { $0.key == $1.key && $0.value == $1.value }
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

/// Python's `repr(float)` for doubles, as `json.dumps` prints them.
package enum PythonFloat {
    /// The text Python's `json.dumps` writes for `value`: `repr(value)` for finite values (`2.0`, `1e-05`,
    /// `1e+16`, `0.0001`), and `NaN`, `Infinity`, `-Infinity` otherwise.
    ///
    /// Both languages print the shortest digits that round-trip; they differ in where they switch to
    /// exponent notation. Python (`float_repr_style = 'short'`, format code `r`) writes plain digits when the
    /// decimal exponent `e` of `d.ddd × 10^e` satisfies -4 <= e < 16, else `d.ddde±XX` with at least two exponent
    /// digits. Swift's `description` switches at 2^53 instead (`9.999999999999998e+15` where Python writes
    /// `9999999999999998.0`), so only its digits are used here.
    package static func repr(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value < 0 ? "-Infinity" : "Infinity" }
        let sign = value.sign == .minus ? "-" : ""
        if value == 0 { return sign + "0.0" }
        // Split Swift's shortest representation into digits and a decimal point position.
        var text = Substring(value.magnitude.description)
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            exponent = Int(text[text.index(after: e)...]) ?? 0
            text = text[..<e]
        }
        var digits = ""
        var pointAt = 0  // digits before the decimal point in `text`
        var seenPoint = false
        for c in text {
            if c == "." {
                seenPoint = true
            } else {
                digits.append(c)
                if !seenPoint { pointAt += 1 }
            }
        }
        // value = 0.DIGITS × 10^decimalPoint
        var decimalPoint = pointAt + exponent
        while digits.first == "0" {
            digits.removeFirst()
            decimalPoint -= 1
        }
        while digits.last == "0" { digits.removeLast() }
        let scientific = decimalPoint - 1  // exponent of d.ddd × 10^e
        if scientific >= -4 && scientific < 16 {
            if decimalPoint <= 0 {
                return sign + "0." + String(repeating: "0", count: -decimalPoint) + digits
            }
            if decimalPoint >= digits.count {
                return sign + digits + String(repeating: "0", count: decimalPoint - digits.count) + ".0"
            }
            let split = digits.index(digits.startIndex, offsetBy: decimalPoint)
            return sign + digits[..<split] + "." + digits[split...]
        }
        let mantissa = digits.count > 1 ? String(digits.first!) + "." + digits.dropFirst() : digits
        let magnitude = String(abs(scientific))
        return sign + mantissa + "e" + (scientific < 0 ? "-" : "+") + (magnitude.count < 2 ? "0" : "") + magnitude
    }
}
