import Foundation
import NF4KitCore
import NF4KitFormats
import NF4KitTestSupport
import Testing

@Suite struct GGUFWriterTests {
    private func hex(_ text: String) -> [UInt8] { text.split(separator: " ").map { UInt8($0, radix: 16)! } }

    private func floats(_ values: [Float]) -> TensorBytes { TensorBytes(copyingElementsOf: values.map(\.bitPattern)) }

    private func fileBytes(_ path: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    @Test func `the spec's 192-byte example file is reproduced exactly`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let path = dir.file("tiny.gguf")
        try GGUFWriter.write(
            path: path,
            metadata: [
                GGUFMetadataEntry(key: "general.architecture", value: .string("llama")),
                GGUFMetadataEntry(key: "general.name", value: .string("tiny")),
            ],
            tensors: [(GGUFTensorPlan(name: "t", type: .f32, shape: [2, 3]), floats([0, 1, 2, 3, 4, 5]))],
            overwrite: false)
        let expected =
            hex(
                "47 47 55 46 03 00 00 00 01 00 00 00 00 00 00 00 02 00 00 00 00 00 00 00 "
                    + "14 00 00 00 00 00 00 00 67 65 6e 65 72 61 6c 2e 61 72 63 68 69 74 65 63 74 75 72 65 "
                    + "08 00 00 00 05 00 00 00 00 00 00 00 6c 6c 61 6d 61 "
                    + "0c 00 00 00 00 00 00 00 67 65 6e 65 72 61 6c 2e 6e 61 6d 65 08 00 00 00 "
                    + "04 00 00 00 00 00 00 00 74 69 6e 79 "
                    + "01 00 00 00 00 00 00 00 74 02 00 00 00 03 00 00 00 00 00 00 00 02 00 00 00 00 00 00 00 "
                    + "00 00 00 00 00 00 00 00 00 00 00 00")
            + [UInt8](repeating: 0, count: 14)
            + hex("00 00 00 00 00 00 80 3f 00 00 00 40 00 00 40 40 00 00 80 40 00 00 a0 40")
            + [UInt8](repeating: 0, count: 8)
        #expect(expected.count == 192)
        #expect(try fileBytes(path) == expected)
        #expect(!FileAccess.exists(path + ".partial"))
    }

    @Test func `metadata records encode as the spec's snippets`() throws {
        let cases: [(GGUFMetadataEntry, String)] = [
            (
                GGUFMetadataEntry(key: "general.alignment", value: .uint32(32)),
                "11 00 00 00 00 00 00 00 67 65 6e 65 72 61 6c 2e 61 6c 69 67 6e 6d 65 6e 74 04 00 00 00 20 00 00 00"
            ),
            (
                GGUFMetadataEntry(key: "x.flag", value: .bool(true)),
                "06 00 00 00 00 00 00 00 78 2e 66 6c 61 67 07 00 00 00 01"
            ),
            (
                GGUFMetadataEntry(key: "x.eps", value: .float32(1e-5)),
                "05 00 00 00 00 00 00 00 78 2e 65 70 73 06 00 00 00 ac c5 27 37"
            ),
            (
                GGUFMetadataEntry(key: "x.arr", value: .array(.uint32, [.uint32(1), .uint32(2)])),
                "05 00 00 00 00 00 00 00 78 2e 61 72 72 09 00 00 00 04 00 00 00 02 00 00 00 00 00 00 00 01 00 00 00 02 00 00 00"
            ),
            (
                GGUFMetadataEntry(key: "x.s", value: .stringArray(["a", "bc"])),
                "03 00 00 00 00 00 00 00 78 2e 73 09 00 00 00 08 00 00 00 02 00 00 00 00 00 00 00 "
                    + "01 00 00 00 00 00 00 00 61 02 00 00 00 00 00 00 00 62 63"
            ),
        ]
        for (entry, bytes) in cases {
            let layout = try GGUFLayout.plan(metadata: [entry], tensors: [])
            #expect(Array(layout.header[24..<(24 + hex(bytes).count)]) == hex(bytes), "\(entry.key)")
        }
        let info = try GGUFLayout.plan(
            metadata: [], tensors: [GGUFTensorPlan(name: "blk.0.attn_q.weight", type: .q4_0, shape: [4096, 4096])])
        let expected =
            hex("13 00 00 00 00 00 00 00") + Array("blk.0.attn_q.weight".utf8)
            + hex("02 00 00 00 00 10 00 00 00 00 00 00 00 10 00 00 00 00 00 00 02 00 00 00 00 00 00 00 00 00 00 00")
        #expect(Array(info.header[24..<(24 + expected.count)]) == expected)
        #expect(info.byteCounts == [4096 / 32 * 18 * 4096])
    }

    @Test func `write then read gives back every metadata type and every tensor`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let path = dir.file("all.gguf")
        let metadata: [GGUFMetadataEntry] = [
            .init(key: "general.architecture", value: .string("llama")),
            .init(key: "k.u8", value: .uint8(255)), .init(key: "k.i8", value: .int8(-128)),
            .init(key: "k.u16", value: .uint16(65535)), .init(key: "k.i16", value: .int16(-32768)),
            .init(key: "k.u32", value: .uint32(.max)), .init(key: "k.i32", value: .int32(.min)),
            .init(key: "k.f32", value: .float32(-0.0)), .init(key: "k.bool", value: .bool(false)),
            .init(key: "k.str", value: .string("ünïcode ✓")), .init(key: "k.u64", value: .uint64(.max)),
            .init(key: "k.i64", value: .int64(.min)), .init(key: "k.f64", value: .float64(.pi)),
            .init(key: "k.arr_u8", value: .array(.uint8, [.uint8(1), .uint8(2)])),
            .init(key: "k.arr_bool", value: .array(.bool, [.bool(true), .bool(false)])),
            .init(key: "k.arr_f64", value: .array(.float64, [.float64(1.5)])),
            .init(key: "k.arr_i64", value: .array(.int64, [.int64(-1), .int64(1 << 50)])),
            .init(key: "k.arr_str", value: .stringArray(["", "x"])),
        ]
        var rng = SeededGenerator(seed: 7)
        let values = (0..<(3 * 64)).map { _ in Float(rng.nextNormal()) }
        let i16: [Int16] = [1, -2, 3, -4, 5, -6]
        let tensors: [(GGUFTensorPlan, TensorBytes)] = [
            (GGUFTensorPlan(name: "f32", type: .f32, shape: [3, 64]), floats(values)),
            (GGUFTensorPlan(name: "i16", type: .i16, shape: [2, 3]), TensorBytes(copyingElementsOf: i16)),
            (
                GGUFTensorPlan(name: "q8", type: .q8_0, shape: [2, 32]),
                TensorBytes(copyingElementsOf: [UInt8](repeating: 7, count: 68))
            ),
            (
                GGUFTensorPlan(name: "scalar", type: .f64, shape: []),
                TensorBytes(copyingElementsOf: [Double(2.5).bitPattern])
            ),
        ]
        let layout = try GGUFWriter.write(path: path, metadata: metadata, tensors: tensors, overwrite: false)
        let file = try GGUFFile.read(path: path)
        #expect(file.metadata.map(\.key) == metadata.map(\.key))
        for entry in metadata {
            #expect(file[entry.key] == entry.value, "\(entry.key)")
        }
        #expect(file["k.f32"].map { if case .float32(let v) = $0 { v.sign == .minus } else { false } } == true)
        #expect(file.tensors.map(\.name) == ["f32", "i16", "q8", "scalar"])
        #expect(file.tensors.map(\.type) == [.f32, .i16, .q8_0, .f64])
        #expect(file.tensors[0].dimensions == [64, 3])
        #expect(file.tensors[3].dimensions == [1])
        #expect(file.tensors.map(\.fileOffset) == layout.tensorOffsets)
        for (index, tensor) in tensors.enumerated() {
            #expect(file.bytes(of: file.tensors[index]).array == tensor.1.array)
        }
        let checkpoint = try file.checkpoint(skippingBlockTypes: true)
        #expect(checkpoint.tensor(named: "f32")?.shape == [3, 64])
        #expect(checkpoint.tensor(named: "i16")?.dtype == .i16)
    }

    @Test func `tensors are contiguous in plan order and zero padded including the last`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let path = dir.file("pad.gguf")
        let layout = try GGUFWriter.write(
            path: path, metadata: [],
            tensors: [
                (GGUFTensorPlan(name: "a", type: .f32, shape: [3]), floats([1, 2, 3])),
                (
                    GGUFTensorPlan(name: "b", type: .f16, shape: [5]),
                    TensorBytes(copyingElementsOf: [UInt16](repeating: 0xFFFF, count: 5))
                ),
            ],
            overwrite: false)
        #expect(layout.tensorOffsets == [layout.dataStart, layout.dataStart + 32])
        #expect(layout.fileSize == layout.dataStart + 64)
        let bytes = try fileBytes(path)
        #expect(bytes.count == Int(layout.fileSize))
        let start = Int(layout.dataStart)
        #expect(bytes[(start + 12)..<(start + 32)].allSatisfy { $0 == 0 })
        #expect(bytes[(start + 42)..<(start + 64)].allSatisfy { $0 == 0 })
        #expect(bytes[(start + 32)..<(start + 42)].allSatisfy { $0 == 0xFF })
    }

    @Test func `general.alignment 64 moves the data and the offsets`() throws {
        let layout = try GGUFLayout.plan(
            metadata: [GGUFMetadataEntry(key: "general.alignment", value: .uint32(64))],
            tensors: [
                GGUFTensorPlan(name: "a", type: .f32, shape: [3]), GGUFTensorPlan(name: "b", type: .f32, shape: [3]),
            ])
        #expect(layout.alignment == 64)
        #expect(layout.dataStart % 64 == 0)
        #expect(layout.tensorOffsets[1] - layout.tensorOffsets[0] == 64)
        #expect(layout.fileSize == layout.dataStart + 128)
    }

    @Test func `tensors may be written in any order`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let path = dir.file("order.gguf")
        let layout = try GGUFLayout.plan(
            metadata: [],
            tensors: [
                GGUFTensorPlan(name: "a", type: .f32, shape: [2]), GGUFTensorPlan(name: "b", type: .f32, shape: [2]),
            ])
        let writer = try GGUFWriter(path: path, layout: layout, overwrite: false)
        try writer.write(tensorAt: 1, floats([3, 4]))
        try writer.write(tensorAt: 0, floats([1, 2]))
        try writer.finish()
        let file = try GGUFFile.read(path: path)
        #expect(file.bytes(of: file.tensors[0]).floats == [1, 2])
        #expect(file.bytes(of: file.tensors[1]).floats == [3, 4])
    }

    @Test func `an unfinished file leaves nothing behind and a missing tensor fails finish`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let path = dir.file("missing.gguf")
        let layout = try GGUFLayout.plan(metadata: [], tensors: [GGUFTensorPlan(name: "a", type: .f32, shape: [2])])
        do {
            let writer = try GGUFWriter(path: path, layout: layout, overwrite: false)
            let error = #expect(throws: CheckpointError.self) { try writer.finish() }
            #expect(error?.tensor == "a")
            let wrongSize = #expect(throws: CheckpointError.self) { try writer.write(tensorAt: 0, floats([1])) }
            #expect(wrongSize?.code == .invalidArgument)
        }
        #expect(!FileAccess.exists(path))
        #expect(!FileAccess.exists(path + ".partial"))
    }

    @Test func `an existing output is refused unless overwrite is allowed`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let path = dir.file("exists.gguf")
        try GGUFWriter.write(path: path, metadata: [], tensors: [], overwrite: false)
        let error = #expect(throws: CheckpointError.self) {
            try GGUFWriter.write(path: path, metadata: [], tensors: [], overwrite: false)
        }
        #expect(error?.code == .outputExists)
        try GGUFWriter.write(
            path: path, metadata: [GGUFMetadataEntry(key: "a.b", value: .bool(true))], tensors: [], overwrite: true)
        #expect(try GGUFFile.read(path: path)["a.b"] == .bool(true))
    }

    @Test(arguments: [
        (
            "nested array", [GGUFMetadataEntry(key: "x", value: .array(.array, [.array(.uint8, [.uint8(1)])]))],
            [GGUFTensorPlan]()
        ),
        ("empty array", [GGUFMetadataEntry(key: "x", value: .array(.uint8, []))], []),
        ("mixed array", [GGUFMetadataEntry(key: "x", value: .array(.uint8, [.int8(1)]))], []),
        (
            "duplicate key",
            [GGUFMetadataEntry(key: "x", value: .bool(true)), GGUFMetadataEntry(key: "x", value: .bool(false))], []
        ),
        ("alignment 24", [GGUFMetadataEntry(key: "general.alignment", value: .uint32(24))], []),
        ("alignment as UINT64", [GGUFMetadataEntry(key: "general.alignment", value: .uint64(32))], []),
        ("64-byte name", [], [GGUFTensorPlan(name: String(repeating: "n", count: 64), type: .f32, shape: [1])]),
        (
            "duplicate name", [],
            [GGUFTensorPlan(name: "a", type: .f32, shape: [1]), GGUFTensorPlan(name: "a", type: .f32, shape: [1])]
        ),
        ("Q8_0 row of 16", [], [GGUFTensorPlan(name: "q", type: .q8_0, shape: [2, 16])]),
        ("five dimensions", [], [GGUFTensorPlan(name: "a", type: .f32, shape: [1, 1, 1, 1, 1])]),
    ])
    func `the planner refuses what ggml would reject`(
        _ label: String, _ metadata: [GGUFMetadataEntry], _ tensors: [GGUFTensorPlan]
    ) {
        let error = #expect(throws: CheckpointError.self, "\(label)") {
            try GGUFLayout.plan(metadata: metadata, tensors: tensors)
        }
        #expect(error?.code == .invalidArgument, "\(label)")
    }
}
