import Foundation
import NF4KitCore
import NF4KitFormats
import NF4KitTestSupport
import Testing

@Suite struct GGUFReaderTests {
    static let sample = Fixture.path("gguf/sample.gguf")
    static let expected = Fixture.path("gguf/sample.expected.safetensors")

    @Test func `golden sample header is version 3 with five tensors and seventeen keys`() throws {
        let file = try GGUFFile.read(path: Self.sample)
        #expect(file.version == 3)
        #expect(file.tensors.count == 5)
        #expect(file.metadata.count == 17)
        #expect(file.alignment == 32)
        #expect(file.dataStart % 32 == 0)
    }

    @Test func `golden sample metadata has every key with its type and value`() throws {
        let file = try GGUFFile.read(path: Self.sample)
        let expected: [String: GGUFValue] = [
            "general.architecture": .string("llama"),
            "general.name": .string("tiny sample"),
            "sample.u8": .uint8(200),
            "sample.i8": .int8(-100),
            "sample.u16": .uint16(60000),
            "sample.i16": .int16(-30000),
            "sample.u32": .uint32(7),
            "sample.i32": .int32(-7),
            "sample.u64": .uint64(1 << 40),
            "sample.i64": .int64(-(1 << 40)),
            "sample.f32": .float32(0.5),
            "sample.f64": .float64(3.25),
            "sample.bool": .bool(true),
            "sample.str": .string("héllo gguf"),
            "sample.arr_i32": .array(.int32, [.int32(1), .int32(2), .int32(3)]),
            "sample.arr_str": .array(.string, [.string("a"), .string("bc"), .string("")]),
            "sample.arr_f32": .array(.float32, [.float32(0.25), .float32(-1.5)]),
        ]
        #expect(Set(file.metadata.map(\.key)) == Set(expected.keys))
        for (key, value) in expected {
            #expect(file[key] == value, "\(key)")
            #expect(file[key]?.type == value.type, "\(key)")
        }
        #expect(file.metadata.first?.key == "general.architecture")
        #expect(file.metadata.first?.recordOffset == 24)
    }

    @Test func `golden sample tensor infos have the ggml types and reversed shapes`() throws {
        let file = try GGUFFile.read(path: Self.sample)
        let infos = Dictionary(uniqueKeysWithValues: file.tensors.map { ($0.name, $0) })
        #expect(infos["t.f32"]?.type == .f32)
        #expect(infos["t.f32"]?.dimensions == [64, 8])
        #expect(infos["t.f32"]?.shape == [8, 64])
        #expect(infos["t.f16"]?.type == .f16)
        #expect(infos["t.f16"]?.shape == [4, 32])
        #expect(infos["t.q8_0"]?.type == .q8_0)
        #expect(infos["t.q8_0"]?.byteCount == 6 * 2 * 34)
        #expect(infos["t.q4_0"]?.type == .q4_0)
        #expect(infos["t.q4_0"]?.byteCount == 6 * 2 * 18)
        #expect(infos["t.bf16"]?.type == .bf16)
        #expect(infos["t.bf16"]?.shape == [6, 64])
        for info in file.tensors {
            #expect(info.relativeOffset % 32 == 0)
            #expect(info.fileOffset == file.dataStart + info.relativeOffset)
        }
    }

    @Test func `golden f32 and f16 tensors equal the expected values exactly`() throws {
        let checkpoint = try GGUFFile.read(path: Self.sample).checkpoint(skippingBlockTypes: true)
        let expected = try GGUFTestSafetensors.byName(Self.expected)
        let f32 = try #require(checkpoint.tensor(named: "t.f32"))
        #expect(f32.dtype == .f32)
        #expect(f32.shape == [8, 64])
        #expect(f32.bytes.array == expected["t.f32"]?.bytes)
        let f16 = try #require(checkpoint.tensor(named: "t.f16"))
        #expect(f16.dtype == .f16)
        #expect(f16.shape == [4, 32])
        #expect(f16.bytes.array == expected["t.f16"]?.bytes)
    }

    @Test func `golden bf16 tensor widens to the expected values and is the rounding of the source`() throws {
        let checkpoint = try GGUFFile.read(path: Self.sample).checkpoint(skippingBlockTypes: true)
        let expected = try GGUFTestSafetensors.byName(Self.expected)
        let bf16 = try #require(checkpoint.tensor(named: "t.bf16"))
        #expect(bf16.dtype == .bf16)
        let halves = bf16.bytes.elements(as: UInt16.self)
        let widened = halves.map { Float(bitPattern: UInt32($0) << 16).bitPattern }
        #expect(widened == expected["t.bf16.dequant_f32"]?.floats.map(\.bitPattern))
        let rounded = try #require(expected["t.bf16.source_f32"]).floats.map {
            FloatConversion.bfloat16Bits(fromFloatBits: $0.bitPattern)
        }
        #expect(rounded == halves)
    }

    @Test func `checkpoint refuses block types unless asked to skip them`() throws {
        let file = try GGUFFile.read(path: Self.sample)
        let error = #expect(throws: CheckpointError.self) { try file.checkpoint() }
        #expect(error?.code == .unsupportedDType)
        #expect(error?.tensor == "t.q8_0")
        #expect(error?.byteOffset == file.tensor(named: "t.q8_0")?.recordOffset)
        let plain = try file.checkpoint(skippingBlockTypes: true)
        #expect(plain.tensors.map(\.name) == ["t.f32", "t.f16", "t.bf16"])
        #expect(plain.format == .gguf)
        #expect(plain.metadata["general.name"] == "tiny sample")
        #expect(plain.metadata["sample.u64"] == "1099511627776")
    }

    @Test func `every ggml type has the block size and type size of the spec table`() {
        let table: [(UInt32, String, Int, Int)] = [
            (0, "F32", 1, 4), (1, "F16", 1, 2), (2, "Q4_0", 32, 18), (3, "Q4_1", 32, 20), (6, "Q5_0", 32, 22),
            (7, "Q5_1", 32, 24), (8, "Q8_0", 32, 34), (9, "Q8_1", 32, 36), (10, "Q2_K", 256, 84),
            (11, "Q3_K", 256, 110), (12, "Q4_K", 256, 144), (13, "Q5_K", 256, 176), (14, "Q6_K", 256, 210),
            (15, "Q8_K", 256, 292), (16, "IQ2_XXS", 256, 66), (17, "IQ2_XS", 256, 74), (18, "IQ3_XXS", 256, 98),
            (19, "IQ1_S", 256, 50), (20, "IQ4_NL", 32, 18), (21, "IQ3_S", 256, 110), (22, "IQ2_S", 256, 82),
            (23, "IQ4_XS", 256, 136), (24, "I8", 1, 1), (25, "I16", 1, 2), (26, "I32", 1, 4), (27, "I64", 1, 8),
            (28, "F64", 1, 8), (29, "IQ1_M", 256, 56), (30, "BF16", 1, 2), (34, "TQ1_0", 256, 54),
            (35, "TQ2_0", 256, 66), (39, "MXFP4", 32, 17), (40, "NVFP4", 64, 36), (41, "Q1_0", 128, 18),
        ]
        #expect(GGMLType.allKnown.count == table.count)
        for (id, name, block, size) in table {
            let type = GGMLType(id: id)
            #expect(type?.name == name)
            #expect(type?.blockSize == block, "\(name)")
            #expect(type?.typeSize == size, "\(name)")
            #expect(GGMLType(name: name)?.id == id)
        }
        for removed: UInt32 in [4, 5, 31, 32, 33, 36, 37, 38, 42, 99] { #expect(GGMLType(id: removed) == nil) }
    }

    @Test func `a file without the final padding still reads`() throws {
        let file = try GGUFFile.read(path: Fixture.path("gguf/malformed/valid_without_final_padding.gguf"))
        #expect(file.tensors.map(\.name) == ["a", "b"])
        #expect(file.bytes(of: file.tensors[0]).floats == [0, 1, 2, 3, 4, 5, 6, 7])
    }
}
