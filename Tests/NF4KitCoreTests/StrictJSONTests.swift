import NF4KitCore
import NF4KitTestSupport
import Testing

@Suite struct StrictJSONTests {
    private func parse(_ text: String) throws(CheckpointError) -> JSONValue {
        try StrictJSON.parse(Array(text.utf8))
    }

    private func failure(_ bytes: [UInt8]) -> CheckpointError? {
        do {
            _ = try StrictJSON.parse(bytes)
            return nil
        } catch {
            return error
        }
    }

    private func failure(_ text: String) -> CheckpointError? { failure(Array(text.utf8)) }

    @Test func `parses every kind of value and keeps member order and number text`() throws {
        let value = try parse(
            #" {"z": [1, -2.50, 1e-06, 6.0, true, false, null], "a": {"s": "x\u00e9\ud83d\ude00\n"}} "#)
        #expect(value.objectValue?.keys == ["z", "a"])
        #expect(
            value["z"]
                == .array([
                    .number("1"), .number("-2.50"), .number("1e-06"), .number("6.0"), .bool(true), .bool(false), .null,
                ]))
        #expect(value["a"]?["s"] == .string("xé😀\n"))
    }

    @Test func `rejects a duplicate key at the top and nested, at the second key`() {
        let top = failure(#"{"a": 1, "a": 1}"#)
        #expect(top?.code == .malformedHeader)
        #expect(top?.byteOffset == 9)
        #expect(top?.message.contains("duplicate key 'a'") == true)
        let nested = failure(#"{"x": {"k": 1, "k": 2}}"#)
        #expect(nested?.byteOffset == 15)
        #expect(nested?.message.contains("duplicate key 'k'") == true)
        // Keys equal after unescaping are duplicates too.
        #expect(failure(#"{"a": 1, "\u0061": 2}"#)?.byteOffset == 9)
    }

    @Test func `127 nested containers are accepted and the 128th is refused, as serde_json does`() throws {
        let ok = String(repeating: "[", count: 127) + String(repeating: "]", count: 127)
        #expect(throws: Never.self) { try parse(ok) }
        let objects = String(repeating: #"{"k":"#, count: 126) + "[]" + String(repeating: "}", count: 126)
        #expect(throws: Never.self) { try parse(objects) }
        // Scalars are not containers: 127 arrays around a number are fine.
        #expect(throws: Never.self) {
            try parse(String(repeating: "[", count: 127) + "1" + String(repeating: "]", count: 127))
        }

        let deep = String(repeating: "[", count: 128) + String(repeating: "]", count: 128)
        let error = failure(deep)
        #expect(error?.code == .malformedHeader)
        #expect(error?.byteOffset == 127)  // the 128th '['
        #expect(error?.message.contains("nests 128 arrays or objects; at most 127") == true)
        #expect(failure(String(repeating: "[", count: 100_000))?.byteOffset == 127)
    }

    @Test func `lone surrogate escapes are refused at their backslash`() {
        #expect(failure(#"["a\ud800"]"#)?.byteOffset == 3)
        #expect(failure(#"["a\udc00b"]"#)?.byteOffset == 3)
        #expect(failure(#"["\ud800\u0041"]"#)?.byteOffset == 2)
        #expect(failure(#"["\ud800\ud800"]"#)?.message.contains("lone surrogate") == true)
    }

    @Test func `a byte order mark is not whitespace`() {
        let error = failure([0xEF, 0xBB, 0xBF] + Array("{}".utf8))
        #expect(error?.byteOffset == 0)
        #expect(error?.message.contains("byte 0xEF") == true)
    }

    @Test func `NUL padding is refused where it starts, space padding is accepted`() throws {
        let error = failure(Array("{}".utf8) + [0, 0, 0])
        #expect(error?.byteOffset == 2)
        #expect(error?.message.contains("trailing characters") == true)
        #expect(try StrictJSON.parse(Array(" \t\r\n{} \t\r\n".utf8)) == .object(JSONObject()))
    }

    @Test func `malformed UTF-8 is refused`() {
        #expect(failure([0x22, 0xC0, 0xAF, 0x22])?.byteOffset == 1)  // overlong '/'
        #expect(failure([0x22, 0xED, 0xA0, 0x80, 0x22])?.byteOffset == 1)  // an encoded surrogate
        #expect(failure([0x22, 0xF4, 0x90, 0x80, 0x80, 0x22])?.byteOffset == 1)  // above U+10FFFF
        #expect(failure([0x22, 0xE2, 0x82])?.message.contains("UTF-8") == true)  // truncated
        #expect(failure([0x22, 0xFF, 0x22])?.byteOffset == 1)
    }

    @Test(arguments: [
        "01", "1.", ".5", "+1", "-", "1e", "1e+", "0x10", "NaN", "Infinity", "tru", "nul", "[1,]", #"{"a":1,}"#, "",
        "{", #"{"a" 1}"#, "\"a\u{1}\"",
    ])
    func `invalid JSON text is refused`(_ text: String) {
        #expect(failure(text)?.code == .malformedHeader)
    }

    @Test func `uint64Value accepts only plain non-negative integers that fit`() throws {
        #expect(try parse("18446744073709551615").uint64Value == UInt64.max)
        #expect(try parse("18446744073709551616").uint64Value == nil)
        #expect(try parse("2.0").uint64Value == nil)
        #expect(try parse("1e0").uint64Value == nil)
        #expect(try parse("-2").uint64Value == nil)
        #expect(try parse("-0").uint64Value == nil)
    }

    @Test func `parseDocument records where top-level keys start and names the tensor in errors`() throws {
        let text = #"{"__metadata__": {"a": "b"}, "w": {"x": [1, 2]}, "v\u0000": 1}"#
        let document = try Array(text.utf8).withUnsafeBytes { raw throws(CheckpointError) in
            try StrictJSON.parseDocument(raw, baseOffset: 8)
        }
        #expect(document.keyOffsets == ["__metadata__": 9, "w": 37, "v\u{0}": 57])

        let bad = #"{"__metadata__": {}, "w": {"x": [1, 2], "x": 3}}"#
        let error = Array(bad.utf8).withUnsafeBytes { raw -> CheckpointError? in
            do throws(CheckpointError) {
                _ = try StrictJSON.parseDocument(raw, file: "f", baseOffset: 8, keysNameTensors: true)
                return nil
            } catch { return error }
        }
        #expect(error?.tensor == "w")
        #expect(error?.file == "f")
        #expect(error?.byteOffset == Int64(48))  // 8 + offset 40 of the second "x"
        let metadataError = Array(#"{"__metadata__": {"a": 1, "a": 2}}"#.utf8).withUnsafeBytes {
            raw -> CheckpointError? in
            do throws(CheckpointError) {
                _ = try StrictJSON.parseDocument(raw, keysNameTensors: true)
                return nil
            } catch { return error }
        }
        #expect(metadataError != nil)
        #expect(metadataError?.tensor == nil)
    }
}
