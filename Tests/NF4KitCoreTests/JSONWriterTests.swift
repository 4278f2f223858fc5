import NF4KitCore
import NF4KitTestSupport
import Testing

/// Expected texts were printed by CPython 3.11.7's `json` module (see each test); none is computed by our code.
@Suite struct JSONWriterTests {
    /// `{"b": [1, 2.5, True, False, None, [], {}], "a": {"z": "x", "é": "üé", "emoji": "😀",
    ///   "ctl": "\x00\x1f\x7f\b\f\n\r\t\"\\/", "n": -0.0}, "A": 1e-05, "": "empty", "Z": {"nested": [{"k": [1]}]}}`
    static let sample: JSONValue = .object(
        JSONObject([
            (
                "b",
                .array([.integer(1), .double(2.5), .bool(true), .bool(false), .null, .array([]), .object(JSONObject())])
            ),
            (
                "a",
                .object(
                    JSONObject([
                        ("z", .string("x")), ("é", .string("üé")), ("emoji", .string("😀")),
                        ("ctl", .string("\u{0}\u{1F}\u{7F}\u{8}\u{C}\n\r\t\"\\/")), ("n", .double(-0.0)),
                    ]))
            ),
            ("A", .double(1e-05)),
            ("", .string("empty")),
            ("Z", .object(JSONObject([("nested", .array([.object(JSONObject([("k", .array([.integer(1)]))]))]))]))),
        ]))

    @Test func `pythonDefault matches json.dumps(obj)`() {
        #expect(
            JSONWriter.pythonDefault.string(Self.sample)
                == "{\"b\": [1, 2.5, true, false, null, [], {}], \"a\": {\"z\": \"x\", \"\\u00e9\": \"\\u00fc\\u00e9\", \"emoji\": \"\\ud83d\\ude00\", \"ctl\": \"\\u0000\\u001f\\u007f\\b\\f\\n\\r\\t\\\"\\\\/\", \"n\": -0.0}, \"A\": 1e-05, \"\": \"empty\", \"Z\": {\"nested\": [{\"k\": [1]}]}}"
        )
    }

    @Test func `pythonPretty matches json.dumps(obj, indent=2, sort_keys=True)`() {
        #expect(
            JSONWriter.pythonPretty.string(Self.sample)
                == "{\n  \"\": \"empty\",\n  \"A\": 1e-05,\n  \"Z\": {\n    \"nested\": [\n      {\n        \"k\": [\n          1\n        ]\n      }\n    ]\n  },\n  \"a\": {\n    \"ctl\": \"\\u0000\\u001f\\u007f\\b\\f\\n\\r\\t\\\"\\\\/\",\n    \"emoji\": \"\\ud83d\\ude00\",\n    \"n\": -0.0,\n    \"z\": \"x\",\n    \"\\u00e9\": \"\\u00fc\\u00e9\"\n  },\n  \"b\": [\n    1,\n    2.5,\n    true,\n    false,\n    null,\n    [],\n    {}\n  ]\n}"
        )
    }

    @Test func `pythonIndented matches json.dumps(obj, indent=2)`() {
        #expect(
            JSONWriter.pythonIndented.string(Self.sample)
                == "{\n  \"b\": [\n    1,\n    2.5,\n    true,\n    false,\n    null,\n    [],\n    {}\n  ],\n  \"a\": {\n    \"z\": \"x\",\n    \"\\u00e9\": \"\\u00fc\\u00e9\",\n    \"emoji\": \"\\ud83d\\ude00\",\n    \"ctl\": \"\\u0000\\u001f\\u007f\\b\\f\\n\\r\\t\\\"\\\\/\",\n    \"n\": -0.0\n  },\n  \"A\": 1e-05,\n  \"\": \"empty\",\n  \"Z\": {\n    \"nested\": [\n      {\n        \"k\": [\n          1\n        ]\n      }\n    ]\n  }\n}"
        )
    }

    @Test func `compact matches json.dumps(obj, ensure_ascii=False, separators=(",", ":"))`() {
        #expect(
            JSONWriter.compact.string(Self.sample)
                == "{\"b\":[1,2.5,true,false,null,[],{}],\"a\":{\"z\":\"x\",\"é\":\"üé\",\"emoji\":\"😀\",\"ctl\":\"\\u0000\\u001f\u{7F}\\b\\f\\n\\r\\t\\\"\\\\/\",\"n\":-0.0},\"A\":1e-05,\"\":\"empty\",\"Z\":{\"nested\":[{\"k\":[1]}]}}"
        )
        let sorted = JSONWriter(sortKeys: true)
        #expect(
            sorted.string(Self.sample)
                == "{\"\":\"empty\",\"A\":1e-05,\"Z\":{\"nested\":[{\"k\":[1]}]},\"a\":{\"ctl\":\"\\u0000\\u001f\u{7F}\\b\\f\\n\\r\\t\\\"\\\\/\",\"emoji\":\"😀\",\"n\":-0.0,\"z\":\"x\",\"é\":\"üé\"},\"b\":[1,2.5,true,false,null,[],{}]}"
        )
    }

    @Test func `writeObject streams the text string(_:) writes`() throws {
        // The sample's members, its array "b" made element by element; expected: the pythonPretty text above.
        let object = try #require(Self.sample.objectValue)
        let members: [(key: String, value: JSONPiece)] = object.members.map { member in
            guard let elements = member.value.arrayValue else { return (member.key, .value(member.value)) }
            return (member.key, .elements(count: elements.count) { elements[$0] })
        }
        #expect(JSONValue(members: members) == Self.sample)
        for threshold in [1, 16, 1 << 20] {
            var pieces: [String] = []
            JSONWriter.pythonPretty.writeObject(members, flushingEvery: threshold) { pieces.append($0) }
            #expect(pieces.joined() == JSONWriter.pythonPretty.string(Self.sample))
            if threshold == 1 { #expect(pieces.count > members.count) }
            if threshold == 1 << 20 { #expect(pieces.count == 1) }
        }
        var empty: [String] = []
        JSONWriter.pythonPretty.writeObject([]) { empty.append($0) }
        #expect(empty == ["{}"])
    }

    @Test func `writer output parses back to the same value`() throws {
        for writer in [JSONWriter.compact, .pythonDefault, .pythonPretty, .pythonIndented] where !writer.sortKeys {
            #expect(try StrictJSON.parse(writer.bytes(Self.sample)) == Self.sample)
        }
    }
}
