import NF4Kit
import NF4KitCore
import NF4KitFormats
import NF4KitTestSupport
import Testing

/// One crafted file of `Fixtures/files/malformed/` that must be refused, and what the error must say.
///
/// `byteOffset` and `tensor` come from `Fixtures/generate/make_malformed_safetensors.py`, which computes where
/// each problem starts from the bytes it writes (see the table in docs/safetensors.md); `reference` is what
/// safetensors 0.8.0 raises for the same file (checked by that script).
struct MalformedCase: Sendable, CustomTestStringConvertible {
    var file: String
    var code: CheckpointError.Code
    var byteOffset: Int64
    var tensor: String?
    /// Words the message must contain, naming the problem.
    var phrase: String
    var reference: String

    var testDescription: String { file }
}

@Suite struct SafetensorsMalformedTests {
    static let cases: [MalformedCase] = [
        // Outer framing.
        .init(
            file: "header-too-small-empty", code: .truncated, byteOffset: 0, phrase: "has 0 bytes",
            reference: "HeaderTooSmall"),
        .init(
            file: "header-too-small-7-bytes", code: .truncated, byteOffset: 0, phrase: "has 7 bytes",
            reference: "HeaderTooSmall"),
        .init(
            file: "header-too-large-100000001", code: .limitExceeded, byteOffset: 0,
            phrase: "100000001 exceeds the limit", reference: "HeaderTooLarge"),
        .init(
            file: "header-length-2-pow-63", code: .limitExceeded, byteOffset: 0,
            phrase: "9223372036854775808 exceeds the limit", reference: "HeaderTooLarge"),
        .init(
            file: "header-length-past-eof", code: .truncated, byteOffset: 0,
            phrase: "header length 60 runs past the end of the file (8 bytes)", reference: "InvalidHeaderLength"),
        .init(
            file: "header-length-100000000-in-16-bytes", code: .truncated, byteOffset: 0,
            phrase: "header length 100000000 runs past the end of the file (16 bytes)", reference: "InvalidHeaderLength"
        ),
        // Header JSON text.
        .init(
            file: "header-empty", code: .malformedHeader, byteOffset: 8, phrase: "unexpected end",
            reference: "InvalidHeaderDeserialization"),
        .init(
            file: "header-is-array", code: .malformedHeader, byteOffset: 8, phrase: "not a JSON object",
            reference: "InvalidHeaderDeserialization"),
        .init(
            file: "header-nul-padded", code: .malformedHeader, byteOffset: 10, phrase: "trailing characters",
            reference: "InvalidHeaderDeserialization"),
        .init(
            file: "header-utf8-bom", code: .malformedHeader, byteOffset: 8, phrase: "byte 0xEF",
            reference: "InvalidHeaderDeserialization"),
        .init(
            file: "header-trailing-x", code: .malformedHeader, byteOffset: 10, phrase: "trailing characters",
            reference: "InvalidHeaderDeserialization"),
        .init(
            file: "header-two-objects", code: .malformedHeader, byteOffset: 10, phrase: "trailing characters",
            reference: "InvalidHeaderDeserialization"),
        .init(
            file: "header-invalid-utf8", code: .malformedHeader, byteOffset: 11, phrase: "invalid UTF-8",
            reference: "InvalidHeader"),
        .init(
            file: "name-lone-surrogate", code: .malformedHeader, byteOffset: 11, phrase: "lone surrogate",
            reference: "InvalidHeaderDeserialization"),
        .init(
            file: "nesting-128-containers", code: .malformedHeader, byteOffset: 189, tensor: "t",
            phrase: "nests 128 arrays or objects; at most 127", reference: "InvalidHeaderDeserialization"),
        .init(
            file: "nesting-202-containers", code: .malformedHeader, byteOffset: 189, tensor: "t",
            phrase: "nests 128 arrays or objects; at most 127", reference: "InvalidHeaderDeserialization"),
        // Duplicates: the reference accepts two identical entries; we refuse every duplicate key.
        .init(
            file: "duplicate-name-different-offsets", code: .malformedHeader, byteOffset: 61, tensor: "a",
            phrase: "duplicate key 'a'", reference: "InvalidOffset"),
        .init(
            file: "duplicate-name-identical", code: .malformedHeader, byteOffset: 61, tensor: "a",
            phrase: "duplicate key 'a'", reference: "OK (one tensor)"),
        .init(
            file: "duplicate-metadata", code: .malformedHeader, byteOffset: 40, phrase: "duplicate key '__metadata__'",
            reference: "InvalidHeaderDeserialization"),
        .init(
            file: "duplicate-field-in-tensor", code: .malformedHeader, byteOffset: 27, tensor: "a",
            phrase: "duplicate key 'dtype'", reference: "InvalidHeaderDeserialization"),
        // Offsets.
        .init(
            file: "offsets-gap", code: .malformedHeader, byteOffset: 62, tensor: "b",
            phrase: "leaves a gap after the previous tensor (expected begin 4)", reference: "InvalidOffset"),
        .init(
            file: "offsets-overlap", code: .malformedHeader, byteOffset: 62, tensor: "b",
            phrase: "overlaps the previous tensor (expected begin 8)", reference: "InvalidOffset"),
        .init(
            file: "offsets-reversed", code: .malformedHeader, byteOffset: 9, tensor: "a",
            phrase: "[8, 0] and ends before it begins", reference: "InvalidOffset"),
        .init(
            file: "offsets-three-numbers", code: .malformedHeader, byteOffset: 9, tensor: "a",
            phrase: "array of 2 integers", reference: "InvalidHeaderDeserialization"),
        .init(
            file: "offsets-negative", code: .malformedHeader, byteOffset: 9, tensor: "a",
            phrase: "non-negative integers", reference: "InvalidHeaderDeserialization"),
        .init(
            file: "offsets-beyond-u64", code: .malformedHeader, byteOffset: 9, tensor: "a",
            phrase: "non-negative integers", reference: "InvalidHeaderDeserialization"),
        .init(
            file: "offsets-u64-max", code: .limitExceeded, byteOffset: 9, tensor: "a",
            phrase: "shape entry 18446744073709551615 is too large", reference: "ValidationOverflow"),
        .init(
            file: "offsets-past-eof-1-tib", code: .truncated, byteOffset: 92, tensor: "a",
            phrase: "[0, 1099511627776], but the data buffer has only 4 bytes", reference: "MetadataIncompleteBuffer"),
        // Data length.
        .init(
            file: "data-extra-byte", code: .malformedHeader, byteOffset: 72, phrase: "1 bytes follow the last tensor",
            reference: "MetadataIncompleteBuffer"),
        .init(
            file: "data-missing-byte", code: .truncated, byteOffset: 131, tensor: "b",
            phrase: "[4, 12], but the data buffer has only 11 bytes", reference: "MetadataIncompleteBuffer"),
        // Tensor info.
        .init(
            file: "dtype-F128", code: .unsupportedDType, byteOffset: 9, tensor: "a", phrase: "unknown dtype 'F128'",
            reference: "InvalidHeaderDeserialization"),
        .init(
            file: "dtype-lowercase-f32", code: .unsupportedDType, byteOffset: 9, tensor: "a",
            phrase: "unknown dtype 'f32'", reference: "InvalidHeaderDeserialization"),
        .init(
            file: "dtype-not-string", code: .malformedHeader, byteOffset: 9, tensor: "a",
            phrase: "'dtype' is not a string", reference: "InvalidHeaderDeserialization"),
        .init(
            file: "missing-shape", code: .malformedHeader, byteOffset: 9, tensor: "a", phrase: "missing field 'shape'",
            reference: "InvalidHeaderDeserialization"),
        .init(
            file: "missing-dtype", code: .malformedHeader, byteOffset: 9, tensor: "a", phrase: "missing field 'dtype'",
            reference: "InvalidHeaderDeserialization"),
        .init(
            file: "missing-data-offsets", code: .malformedHeader, byteOffset: 9, tensor: "a",
            phrase: "missing field 'data_offsets'", reference: "InvalidHeaderDeserialization"),
        .init(
            file: "shape-negative", code: .malformedHeader, byteOffset: 9, tensor: "a",
            phrase: "shape entry -2 is not a non-negative integer", reference: "InvalidHeaderDeserialization"),
        .init(
            file: "shape-float", code: .malformedHeader, byteOffset: 9, tensor: "a",
            phrase: "shape entry 2.0 is not a non-negative integer", reference: "InvalidHeaderDeserialization"),
        .init(
            file: "shape-exponent", code: .malformedHeader, byteOffset: 9, tensor: "a",
            phrase: "shape entry 1e0 is not a non-negative integer", reference: "InvalidHeaderDeserialization"),
        .init(
            file: "shape-null", code: .malformedHeader, byteOffset: 9, tensor: "a", phrase: "'shape' is not an array",
            reference: "InvalidHeaderDeserialization"),
        .init(
            file: "shape-string", code: .malformedHeader, byteOffset: 9, tensor: "a",
            phrase: #"shape entry "2" is not a non-negative integer"#, reference: "InvalidHeaderDeserialization"),
        .init(
            file: "tensor-info-not-object", code: .malformedHeader, byteOffset: 9, tensor: "a",
            phrase: "tensor info is not an object", reference: "InvalidHeaderDeserialization"),
        .init(
            file: "shape-size-mismatch", code: .malformedHeader, byteOffset: 9, tensor: "a",
            phrase: "shape [3] of F32 needs 12 bytes but data_offsets span 8", reference: "TensorInvalidInfo"),
        .init(
            file: "shape-zero-with-bytes", code: .malformedHeader, byteOffset: 9, tensor: "a",
            phrase: "shape [0] of F32 needs 0 bytes but data_offsets span 4", reference: "TensorInvalidInfo"),
        .init(
            file: "f4-three-elements", code: .malformedHeader, byteOffset: 9, tensor: "a",
            phrase: "3 elements of F4 are not a whole number of bytes", reference: "MisalignedSlice"),
        .init(
            file: "shape-product-overflow", code: .limitExceeded, byteOffset: 9, tensor: "a",
            phrase: "element count of shape [4294967296, 4294967296, 0] overflows", reference: "ValidationOverflow"),
        .init(
            file: "shape-bit-count-overflow", code: .limitExceeded, byteOffset: 9, tensor: "a",
            phrase: "bit count of shape [2305843009213693952] × F64 overflows", reference: "ValidationOverflow"),
        .init(
            file: "shape-dimension-u64-max", code: .limitExceeded, byteOffset: 9, tensor: "a",
            phrase: "shape entry 18446744073709551615 is too large", reference: "OK (stricter here)"),
        // Metadata.
        .init(
            file: "metadata-value-number", code: .malformedHeader, byteOffset: 9,
            phrase: "metadata value of 'format' is not a string", reference: "InvalidHeaderDeserialization"),
        .init(
            file: "metadata-nested-map", code: .malformedHeader, byteOffset: 9,
            phrase: "metadata value of 'format' is not a string", reference: "InvalidHeaderDeserialization"),
        .init(
            file: "metadata-array", code: .malformedHeader, byteOffset: 9,
            phrase: "__metadata__ must be an object of strings", reference: "InvalidHeaderDeserialization"),
        .init(
            file: "metadata-shaped-like-a-tensor", code: .malformedHeader, byteOffset: 9,
            phrase: "metadata value of 'shape' is not a string", reference: "InvalidHeaderDeserialization"),
    ]

    @Test(arguments: cases)
    func `each malformed file is refused with its code, place and tensor`(_ c: MalformedCase) throws {
        let path = Fixture.path("malformed/\(c.file).safetensors")
        let error = #expect(throws: CheckpointError.self, "reference 0.8.0: \(c.reference)") {
            try SafetensorsReader.read(path: path)
        }
        let e = try #require(error)
        #expect(e.code == c.code)
        #expect(e.code.isDataError)
        #expect(e.file == path)
        #expect(e.byteOffset == c.byteOffset)
        #expect(e.tensor == c.tensor)
        #expect(e.message.contains(c.phrase), "message: \(e.message)")
        #expect(e.description.hasPrefix("\(path), byte \(c.byteOffset): "))
    }

    @Test(arguments: cases)
    func `opened through ModelSource, each malformed file is a data error with file and offset`(
        _ c: MalformedCase
    ) throws {
        // What `nf4kit inspect FILE` sees: format detection first, then the reader (exit code 65 for data errors).
        let path = Fixture.path("malformed/\(c.file).safetensors")
        let error = #expect(throws: CheckpointError.self) { try ModelSource.open(path) }
        let e = try #require(error)
        #expect(e.code.isDataError)
        #expect(e.file == path)
        #expect(e.byteOffset == c.byteOffset)
        #expect(e.code == c.code)
        #expect(e.message.contains(c.phrase), "message: \(e.message)")
        #expect(e.tensor == c.tensor)
    }

    @Test func `every failing fixture on disk has a case and every case a fixture`() throws {
        let names = try FileAccess.list(Fixture.path("malformed")).filter {
            $0.hasSuffix(".safetensors") && !$0.hasPrefix("ok-")
        }
        #expect(Set(names) == Set(Self.cases.map { "\($0.file).safetensors" }))
    }

    @Test func `a 16-byte file claiming a 100 MB header is refused by the length check, before any parsing`() throws {
        // N = 100_000_000 is within the cap, so only the file-size check stands between it and a 100 MB buffer.
        // The error must be that check's (byte 0, the length field), not one from reading or parsing N bytes.
        let path = Fixture.path("malformed/header-length-100000000-in-16-bytes.safetensors")
        #expect(try FileAccess.fileSize(path) == 16)
        let error = #expect(throws: CheckpointError.self) { try SafetensorsReader.read(path: path) }
        #expect(error?.code == .truncated)
        #expect(error?.byteOffset == 0)
        #expect(error?.message.contains("runs past the end of the file (16 bytes)") == true)
    }

    @Test func `a 1 TiB tensor in a 92-byte file is refused by the file-length check`() throws {
        // Sizing anything by these offsets would need 1 TiB; the reader must compare them with the file first.
        let path = Fixture.path("malformed/offsets-past-eof-1-tib.safetensors")
        #expect(try FileAccess.fileSize(path) == 92)
        let error = #expect(throws: CheckpointError.self) { try SafetensorsReader.read(path: path) }
        #expect(error?.code == .truncated)
        #expect(error?.tensor == "a")
    }
}

/// Seeded mutations of valid files: every outcome must be a checkpoint or a `CheckpointError`, never a trap.
@Suite struct SafetensorsMutationTests {
    static let seeds: [[UInt8]] = [
        SpecExample.bytes,
        (try? [UInt8](contentsOf: Fixture.path("malformed/ok-zero-size-shared-offset.safetensors"))) ?? [],
        (try? [UInt8](contentsOf: Fixture.path("malformed/ok-unusual-names.safetensors"))) ?? [],
    ]

    /// Reads `bytes`; a returned checkpoint must describe only bytes inside the file.
    private func check(_ bytes: [UInt8]) {
        let region = bytes.withUnsafeBytes { MappedRegion(copying: $0, description: "mutant") }
        do {
            let checkpoint = try SafetensorsReader.read(region: region, path: "mutant")
            for tensor in checkpoint.tensors {
                #expect(tensor.bytes.range.lowerBound >= 8 && tensor.bytes.range.upperBound <= bytes.count)
                #expect(tensor.dtype.byteCount(elementCount: tensor.shape.elementCount) == tensor.bytes.count)
            }
        } catch {
            #expect(error.file == "mutant")
            #expect(error.byteOffset.map { $0 >= 0 && $0 <= Int64(bytes.count) } == true, "\(error)")
        }
    }

    @Test(arguments: 0..<3)
    func `random byte edits and truncations never trap`(_ seedIndex: Int) {
        let original = Self.seeds[seedIndex]
        #expect(original.count > 16)
        var rng = SeededGenerator(seed: UInt64(seedIndex) + 1)
        for _ in 0..<3000 {
            var bytes = original
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                case 1:
                    bytes[Int.random(in: 8..<min(bytes.count, 200), using: &rng)] = Array(
                        "{}[],:\"0123456789-.e\\ ".utf8
                    ).randomElement(using: &rng)!
                case 2: bytes.removeLast(Int.random(in: 0...min(8, bytes.count - 1), using: &rng))
                default:
                    bytes.insert(
                        UInt8.random(in: 0...255, using: &rng), at: Int.random(in: 0...bytes.count, using: &rng))
                }
                if bytes.isEmpty { break }
            }
            check(bytes)
        }
    }

    @Test func `extreme numbers in every numeric slot never trap`() {
        let header = Array(SpecExample.header.utf8)
        let extremes = [
            "0", "1", "7", "4294967296", "9223372036854775807", "9223372036854775808", "18446744073709551615",
            "18446744073709551616", "-1", "1e3", "2.0",
        ]
        // Each run of digits in the header is replaced by each extreme value in turn.
        var runs: [Range<Int>] = []
        var i = 0
        while i < header.count {
            if header[i] >= 0x30 && header[i] <= 0x39 {
                let start = i
                while i < header.count && header[i] >= 0x30 && header[i] <= 0x39 { i += 1 }
                runs.append(start..<i)
            } else {
                i += 1
            }
        }
        #expect(runs.count == 8)  // the two shapes, two pairs of offsets, and the "32"/"16" of the dtypes
        for run in runs {
            for value in extremes {
                var text = header
                text.replaceSubrange(run, with: Array(value.utf8))
                while text.count % 8 != 0 { text.append(0x20) }
                let data: [UInt8] = [0x00, 0x00, 0x00, 0x3F, 0x00, 0x3C, 0x00, 0xC0]
                check(withUnsafeBytes(of: UInt64(text.count).littleEndian, Array.init) + text + data)
            }
        }
    }
}

@Suite struct SafetensorsCraftedValidFilesTests {
    private func read(_ name: String) throws -> Checkpoint {
        try SafetensorsReader.read(path: Fixture.path("malformed/\(name).safetensors"))
    }

    @Test func `an unpadded header with unaligned F32 data reads`() throws {
        let checkpoint = try read("ok-unpadded-header")
        let w = try #require(checkpoint.tensor(named: "w"))
        #expect(w.descriptor.fileOffset == 62)
        // 1.5 and -2.25 as little-endian f32, read from an offset that is not a multiple of 4.
        #expect(w.bytes.array == [0x00, 0x00, 0xC0, 0x3F, 0x00, 0x00, 0x10, 0xC0])
    }

    @Test func `leading and trailing JSON whitespace around the header is accepted`() throws {
        let checkpoint = try read("ok-leading-whitespace")
        #expect(checkpoint.tensor(named: "w")?.bytes.array == [7, 8])
    }

    @Test func `null and empty metadata mean no metadata`() throws {
        let withNull = try read("ok-metadata-null")
        #expect(withNull.metadata.isEmpty)
        #expect(withNull.tensor(named: "w")?.bytes.array == [5])
        let empty = try read("ok-metadata-empty")
        #expect(empty.metadata.isEmpty)
        #expect(empty.tensors.isEmpty)
    }

    @Test func `zero-size tensors may share an offset`() throws {
        let checkpoint = try read("ok-zero-size-shared-offset")
        #expect(Set(checkpoint.tensors.map(\.name)) == ["empty", "none", "w", "tail"])
        #expect(checkpoint.tensor(named: "empty")?.shape == [0, 5])
        #expect(checkpoint.tensor(named: "empty")?.bytes.count == 0)
        #expect(checkpoint.tensor(named: "tail")?.shape == [3, 0])
        #expect(checkpoint.tensor(named: "w")?.bytes.array == [1, 2])
    }

    @Test func `unknown fields in a tensor info are ignored`() throws {
        let checkpoint = try read("ok-unknown-field")
        #expect(checkpoint.tensor(named: "w")?.bytes.array == [9])
    }

    @Test func `members out of offset order are read in data order`() throws {
        let checkpoint = try read("ok-members-out-of-order")
        #expect(checkpoint.tensors.map(\.name) == ["first", "second"])
        #expect(checkpoint.tensor(named: "second")?.bytes.array == [3, 4])
    }

    @Test func `empty, escaped and non-ASCII names are accepted`() throws {
        #expect(try read("ok-empty-name").tensor(named: "")?.bytes.array == [42])
        let checkpoint = try read("ok-unusual-names")
        #expect(checkpoint.tensor(named: "a\u{0}b")?.bytes.array == [1])
        #expect(checkpoint.tensor(named: "été 😀")?.bytes.array == [2])
        #expect(checkpoint.tensor(named: "F32")?.bytes.array == [3])
    }

    @Test func `F4 with four elements takes two bytes`() throws {
        let w = try #require(try read("ok-f4-four-elements").tensor(named: "w"))
        #expect(w.dtype == .f4)
        #expect(w.shape == [4])
        #expect(w.bytes.array == [0x21, 0x43])
    }

    @Test func `127 nested arrays and objects are accepted, as by the reference`() throws {
        #expect(try read("ok-nesting-127-containers").tensors.map(\.name) == ["t"])
    }

    @Test func `a scalar and an empty tensor read with their shapes`() throws {
        let checkpoint = try read("ok-scalar-and-empty")
        #expect(checkpoint.tensor(named: "s")?.shape == [])
        #expect(checkpoint.tensor(named: "s")?.bytes.array == [0, 0, 0, 0, 0, 0, 0x0A, 0x40])
        #expect(checkpoint.tensor(named: "e")?.shape == [0, 5])
    }
}
