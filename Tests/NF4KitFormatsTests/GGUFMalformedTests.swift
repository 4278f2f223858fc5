import NF4Kit
import NF4KitCore
import NF4KitFormats
import NF4KitTestSupport
import Testing

/// One test per file of Fixtures/files/gguf/malformed (made by Tests/Interop/gguf_make_fixtures.py, whose
/// manifest.json records the code and byte offset of each case): the reader throws, never traps, and names the place.
@Suite struct GGUFMalformedTests {
    private func expectFailure(
        _ name: String, _ code: CheckpointError.Code, at offset: Int64, tensor: String?,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let path = Fixture.path("gguf/malformed/\(name).gguf")
        let error = #expect(throws: CheckpointError.self, sourceLocation: sourceLocation) {
            try GGUFFile.read(path: path)
        }
        #expect(
            error?.code == code, "\(error.map(String.init(describing:)) ?? "no error")", sourceLocation: sourceLocation)
        #expect(
            error?.byteOffset == offset, "\(error.map(String.init(describing:)) ?? "no error")",
            sourceLocation: sourceLocation)
        #expect(error?.tensor == tensor, sourceLocation: sourceLocation)
        #expect(error?.file == path, sourceLocation: sourceLocation)
        #expect(error?.code.isDataError == true || code == .unsupported, sourceLocation: sourceLocation)
    }

    @Test func `the valid base of the corpus reads`() throws {
        let file = try GGUFFile.read(path: Fixture.path("gguf/malformed/valid_base.gguf"))
        #expect(file.tensors.map(\.name) == ["a", "b"])
        #expect(file["x.arr"] == .array(.uint32, [.uint32(1), .uint32(2), .uint32(3)]))
    }

    @Test func `an alignment of 24 is malformedHeader at byte 342`() {
        expectFailure("alignment_not_power_of_two", .malformedHeader, at: 342, tensor: nil)
    }

    @Test func `an alignment stored as UINT64 is malformedHeader at byte 342`() {
        expectFailure("alignment_not_uint32", .malformedHeader, at: 342, tensor: nil)
    }

    @Test func `an alignment of 0 is malformedHeader at byte 342`() {
        expectFailure("alignment_zero", .malformedHeader, at: 342, tensor: nil)
    }

    @Test func `an array count larger than the file is truncated at byte 322`() {
        expectFailure("array_count_huge", .truncated, at: 322, tensor: nil)
    }

    @Test func `a wrong magic is malformedHeader at byte 0`() {
        expectFailure("bad_magic", .malformedHeader, at: 0, tensor: nil)
    }

    @Test func `a big-endian file is unsupported at byte 4`() {
        expectFailure("big_endian", .unsupported, at: 4, tensor: nil)
    }

    @Test func `a Q8_0 row that is not a whole block is malformedHeader at byte 425`() {
        expectFailure("block_type_row_not_multiple", .malformedHeader, at: 425, tensor: "b")
    }

    @Test func `a byte size that overflows is limitExceeded at byte 384`() {
        expectFailure("byte_size_overflows", .limitExceeded, at: 384, tensor: "a")
    }

    @Test func `a dimension above 2^63 is limitExceeded at byte 388`() {
        expectFailure("dimension_above_int64", .limitExceeded, at: 388, tensor: "a")
    }

    @Test func `dimensions whose product overflows is limitExceeded at byte 384`() {
        expectFailure("dimension_product_overflows", .limitExceeded, at: 384, tensor: "a")
    }

    @Test func `a duplicate key is malformedHeader at byte 301`() {
        expectFailure("duplicate_key", .malformedHeader, at: 301, tensor: nil)
    }

    @Test func `a duplicate tensor name is malformedHeader at byte 416`() {
        expectFailure("duplicate_tensor_name", .malformedHeader, at: 416, tensor: "a")
    }

    @Test func `an empty key is malformedHeader at byte 24`() {
        expectFailure("empty_key", .malformedHeader, at: 24, tensor: nil)
    }

    @Test func `a key length past the end is truncated at byte 24`() {
        expectFailure("key_length_past_end", .truncated, at: 24, tensor: nil)
    }

    @Test func `a key that is not UTF-8 is malformedHeader at byte 32`() {
        expectFailure("key_not_utf8", .malformedHeader, at: 32, tensor: nil)
    }

    @Test func `a key-value count above 2^63 is limitExceeded at byte 16`() {
        expectFailure("kv_count_above_int64", .limitExceeded, at: 16, tensor: nil)
    }

    @Test func `a key-value count whose size overflows is truncated at byte 8`() {
        expectFailure("kv_count_overflows", .truncated, at: 8, tensor: nil)
    }

    @Test func `a nested array is malformedHeader at byte 318`() {
        expectFailure("nested_array", .malformedHeader, at: 318, tensor: nil)
    }

    @Test func `a misaligned tensor offset is malformedHeader at byte 441`() {
        expectFailure("offset_misaligned", .malformedHeader, at: 441, tensor: "b")
    }

    @Test func `a tensor offset past the end is truncated at byte 441`() {
        expectFailure("offset_past_end", .truncated, at: 441, tensor: "b")
    }

    @Test func `tensor offsets out of order is malformedHeader at byte 441`() {
        expectFailure("offsets_out_of_order", .malformedHeader, at: 441, tensor: "b")
    }

    @Test func `overlapping tensor offsets is malformedHeader at byte 441`() {
        expectFailure("offsets_overlap", .malformedHeader, at: 441, tensor: "b")
    }

    @Test func `a removed tensor type id reads as unknown and is unsupportedDType at byte 437 when decoded`() throws {
        try expectUnknownType("removed_tensor_type")
    }

    @Test func `a tensor count larger than the file is truncated at byte 8`() {
        expectFailure("tensor_count_huge", .truncated, at: 8, tensor: nil)
    }

    @Test func `a 64-byte tensor name is limitExceeded at byte 375`() {
        expectFailure("tensor_name_64_bytes", .limitExceeded, at: 375, tensor: String(repeating: "n", count: 64))
    }

    @Test func `five dimensions is limitExceeded at byte 384`() {
        expectFailure("too_many_dimensions", .limitExceeded, at: 384, tensor: "a")
    }

    @Test func `a file cut before the data section is truncated at byte 449`() {
        expectFailure("truncated_before_data", .truncated, at: 449, tensor: nil)
    }

    @Test func `a file cut inside the counts is truncated at byte 16`() {
        expectFailure("truncated_counts", .truncated, at: 16, tensor: nil)
    }

    @Test func `a file cut inside an array is truncated at byte 322`() {
        expectFailure("truncated_in_array", .truncated, at: 322, tensor: nil)
    }

    @Test func `a file cut inside a string value is truncated at byte 93`() {
        expectFailure("truncated_in_string_value", .truncated, at: 93, tensor: nil)
    }

    @Test func `a file cut inside tensor data is truncated at byte 441`() {
        expectFailure("truncated_in_tensor_data", .truncated, at: 441, tensor: "b")
    }

    @Test func `a file cut inside a tensor info is truncated at byte 429`() {
        expectFailure("truncated_in_tensor_info", .truncated, at: 429, tensor: nil)
    }

    @Test func `a file cut inside the magic is truncated at byte 0`() {
        expectFailure("truncated_magic", .truncated, at: 0, tensor: nil)
    }

    @Test func `a file cut inside the version is truncated at byte 4`() {
        expectFailure("truncated_version", .truncated, at: 4, tensor: nil)
    }

    @Test func `an unknown tensor type id reads as unknown and is unsupportedDType at byte 437 when decoded`() throws {
        try expectUnknownType("unknown_tensor_type")
    }

    /// The header of a file whose tensor 'b' has an unknown type id reads (inspect lists it); decoding it fails
    /// naming the file, the type field (byte 437) and the tensor.
    private func expectUnknownType(_ name: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let path = Fixture.path("gguf/malformed/\(name).gguf")
        let file = try GGUFFile.read(path: path)
        let b = try #require(file.tensor(named: "b"), sourceLocation: sourceLocation)
        #expect(!b.type.isKnown && b.type.name == "unknown(\(b.type.id))", sourceLocation: sourceLocation)
        #expect(b.typeFieldOffset == 437, sourceLocation: sourceLocation)
        let error = #expect(throws: CheckpointError.self, sourceLocation: sourceLocation) {
            try GGUFBridge.readCheckpoint(path: path)
        }
        #expect(error?.code == .unsupportedDType, sourceLocation: sourceLocation)
        #expect(error?.byteOffset == 437 && error?.tensor == "b" && error?.file == path, sourceLocation: sourceLocation)
        #expect(error?.message.contains("unknown ggml type id \(b.type.id)") == true, sourceLocation: sourceLocation)
    }

    @Test func `an unknown value type id is malformedHeader at byte 52`() {
        expectFailure("unknown_value_type", .malformedHeader, at: 52, tensor: nil)
    }

    @Test func `version 1 is unsupported at byte 4`() {
        expectFailure("version_1", .unsupported, at: 4, tensor: nil)
    }
}
