/// The value of a member of a document that ``JSONWriter/writeObject(_:flushingEvery:to:)`` writes piece by piece:
/// one value, or an array whose elements are made one at a time and dropped once written.
public enum JSONPiece {
    case value(JSONValue)
    /// An array of `count` elements; `element(i)` makes element `i` when it is written.
    case elements(count: Int, element: (Int) -> JSONValue)
}

extension JSONValue {
    /// The object `members` as one tree (each ``JSONPiece/elements(count:element:)`` made into an array): the value
    /// whose text ``JSONWriter/writeObject(_:flushingEvery:to:)`` writes.
    public init(members: [(key: String, value: JSONPiece)]) {
        self = .object(
            JSONObject(
                members.map { member in
                    switch member.value {
                    case .value(let value): (member.key, value)
                    case .elements(let count, let element): (member.key, .array((0..<count).map(element)))
                    }
                }))
    }
}

extension JSONWriter {
    /// Writes the object `members` as ``string(_:)`` writes `JSONValue(members:)`, byte for byte, without holding
    /// the whole text or tree: the text goes to `sink` in pieces of about `flushingEvery` UTF-8 bytes (the last
    /// one shorter), and only one array element at a time is made.
    public func writeObject(
        _ members: [(key: String, value: JSONPiece)], flushingEvery threshold: Int = 1 << 20,
        to sink: (String) throws -> Void
    ) rethrows {
        var out = ""
        func flushIfFull() throws {
            guard out.utf8.count >= threshold else { return }
            try sink(out)
            out.removeAll(keepingCapacity: true)
        }
        if members.isEmpty {
            try sink("{}")
            return
        }
        out += "{"
        for (i, member) in ordered(members).enumerated() {
            if i > 0 { out += itemSeparator }
            newline(1, into: &out)
            writeString(member.key, into: &out)
            out += keySeparator
            switch member.value {
            case .value(let value):
                write(value, level: 1, into: &out)
            case .elements(let count, _) where count == 0:
                out += "[]"
            case .elements(let count, let element):
                out += "["
                for index in 0..<count {
                    if index > 0 { out += itemSeparator }
                    newline(2, into: &out)
                    write(element(index), level: 2, into: &out)
                    try flushIfFull()
                }
                newline(1, into: &out)
                out += "]"
            }
            try flushIfFull()
        }
        newline(0, into: &out)
        out += "}"
        try sink(out)
    }
}
