import NF4Kit
import NF4KitCore
import NF4KitFormats
import NF4KitQuant
import NF4KitTestSupport
import Testing

@Suite struct GGUFBridgeTests {
    static let sample = Fixture.path("gguf/sample.gguf")

    @Test func `the golden sample becomes a checkpoint with block tensors dequantized to the reference values`() throws
    {
        let checkpoint = try GGUFBridge.readCheckpoint(path: Self.sample)
        let expected = try GGUFTestSafetensors.byName(Fixture.path("gguf/sample.expected.safetensors"))
        #expect(checkpoint.format == .gguf)
        #expect(checkpoint.tensors.map(\.name) == ["t.f32", "t.f16", "t.q8_0", "t.q4_0", "t.bf16"])
        for name in ["t.q8_0", "t.q4_0"] {
            let tensor = try #require(checkpoint.tensor(named: name))
            #expect(tensor.dtype == .f32)
            #expect(tensor.shape == [6, 64])
            #expect(tensor.bytes.array == expected[name + ".dequant_f32"]?.bytes, "\(name)")
        }
        #expect(checkpoint.tensor(named: "t.f32")?.bytes.array == expected["t.f32"]?.bytes)
        #expect(checkpoint.tensor(named: "t.bf16")?.dtype == .bf16)
    }

    @Test func `encoding the golden sources reproduces the file's Q8_0, Q4_0 and BF16 bytes`() throws {
        let file = try GGUFFile.read(path: Self.sample)
        let expected = try GGUFTestSafetensors.byName(Fixture.path("gguf/sample.expected.safetensors"))
        for (name, type) in [("t.q8_0", GGMLType.q8_0), ("t.q4_0", .q4_0), ("t.bf16", .bf16)] {
            let source = try #require(expected[name + ".source_f32"])
            let (plan, bytes) = try GGUFBridge.encode(source.tensor, as: type)
            let info = try #require(file.tensor(named: name))
            #expect(plan.dimensions == info.dimensions, "\(name)")
            #expect(plan.type == info.type)
            #expect(bytes.array == file.bytes(of: info).array, "\(name)")
        }
    }

    @Test func `encoding a tensor whose rows are not whole blocks is refused`() throws {
        let tensor = GGUFTestSafetensors.Entry(
            name: "w", dtype: .f32, shape: [2, 48], bytes: [UInt8](repeating: 0, count: 384)
        ).tensor
        let error = #expect(throws: CheckpointError.self) { try GGUFBridge.encode(tensor, as: .q4_0) }
        #expect(error?.code == .invalidArgument)
        #expect(error?.tensor == "w")
        let unsupported = #expect(throws: CheckpointError.self) { try GGUFBridge.encode(tensor, as: .iq2_xxs) }
        #expect(unsupported?.code == .unsupportedDType)
    }

    @Test func `an NF4 companion file reads back as the bitsandbytes checkpoint`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let source = try GGUFTestSafetensors.load(Fixture.path("gguf/bnb-nf4-dq-q_proj.safetensors"))
        let encoded = try GGUFBridge.encodeCompanion(source.map(\.tensor))
        try GGUFWriter.write(
            path: dir.file("m.gguf"), metadata: encoded.metadata, tensors: encoded.tensors, overwrite: false)
        let checkpoint = try GGUFBridge.readCheckpoint(path: dir.file("m.gguf"))
        #expect(Set(checkpoint.tensors.map(\.name)) == Set(source.map(\.name)))
        for entry in source {
            #expect(checkpoint.tensor(named: entry.name)?.bytes.array == entry.bytes, "\(entry.name)")
            #expect(checkpoint.tensor(named: entry.name)?.dtype == entry.dtype, "\(entry.name)")
        }
    }
}

@Suite struct GGUFBridgeExportTypeTests {
    private func tensor(_ dtype: DType, _ shape: Shape) -> Tensor {
        let count = dtype.byteCount(elementCount: shape.elementCount) ?? 0
        return GGUFTestSafetensors.Entry(
            name: "t", dtype: dtype, shape: shape.dimensions, bytes: [UInt8](repeating: 0, count: count)
        ).tensor
    }

    @Test func `block types go to matrices with whole-block rows, norms stay F32, other rows fall back to F16`() {
        #expect(GGUFBridge.exportType(for: tensor(.f16, [64, 256]), requested: .q4_0) == .q4_0)
        #expect(GGUFBridge.exportType(for: tensor(.bf16, [256]), requested: .q8_0) == .f32)
        #expect(GGUFBridge.exportType(for: tensor(.f32, [4, 48]), requested: .q8_0) == .f16)
        #expect(GGUFBridge.exportType(for: tensor(.f16, [4, 48]), requested: .bf16) == .bf16)
        #expect(GGUFBridge.exportType(for: tensor(.i64, [4]), requested: .q8_0) == .i64)
        #expect(GGUFBridge.exportType(for: tensor(.u8, [4]), requested: .f16) == nil)
    }

    @Test func `llama file types follow llama_ftype`() {
        #expect(GGUFBridge.llamaFileType(for: .q8_0) == 7)
        #expect(GGUFBridge.llamaFileType(for: .q4_0) == 2)
        #expect(GGUFBridge.llamaFileType(for: .bf16) == 32)
        #expect(GGUFBridge.llamaFileType(for: .i8) == nil)
    }
}
