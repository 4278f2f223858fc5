import Foundation
import NF4KitCore
import NF4Kit
import NF4KitFormats
import NF4KitQuant
import NF4KitTestSupport
import Testing

/// The NF4 companion-tensor convention on real bitsandbytes bytes (layer-0 q_proj of the golden nf4 / nf4-dq
/// checkpoints, copied unchanged into Fixtures/files/gguf/bnb-*-q_proj.safetensors).
@Suite struct GGUFBnbCompanionTests {
    static let variants = ["nf4-dq", "nf4"]
    static let weight = "model.layers.0.self_attn.q_proj.weight"

    private func roundTrip(
        _ variant: String, in dir: TemporaryDirectory
    ) throws -> (
        [GGUFTestSafetensors.Entry], GGUFFile, [Tensor]
    ) {
        let source = try GGUFTestSafetensors.load(Fixture.path("gguf/bnb-\(variant)-q_proj.safetensors"))
        let encoded = try GGUFBridge.encodeCompanion(
            source.map(\.tensor), metadata: [GGUFMetadataEntry(key: "general.architecture", value: .string("llama"))])
        let path = dir.file("\(variant).gguf")
        try GGUFWriter.write(path: path, metadata: encoded.metadata, tensors: encoded.tensors, overwrite: false)
        let file = try GGUFFile.read(path: path)
        return (source, file, try GGUFBnbCompanion.decode(file))
    }

    @Test(arguments: variants)
    func `safetensors to GGUF to safetensors gives identical bitsandbytes tensors`(_ variant: String) throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let (source, _, decoded) = try roundTrip(variant, in: dir)
        #expect(decoded.count == source.count)
        let byName = Dictionary(uniqueKeysWithValues: decoded.map { ($0.name, $0) })
        for entry in source {
            let tensor = try #require(byName[entry.name], "\(entry.name)")
            #expect(tensor.dtype == entry.dtype, "\(entry.name)")
            #expect(tensor.shape.dimensions == entry.shape, "\(entry.name)")
            #expect(tensor.bytes.array == entry.bytes, "\(entry.name)")
        }
    }

    @Test func `double-quantized weight becomes nf4, absmax, absmax2 and absmax_offset companions`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let (source, file, _) = try roundTrip("nf4-dq", in: dir)
        let w = Self.weight
        #expect(file.tensor(named: w) == nil)
        #expect(file.tensor(named: w + ".nf4")?.type == .i8)
        #expect(file.tensor(named: w + ".nf4")?.dimensions == [128, 256])
        #expect(file.tensor(named: w + ".absmax")?.type == .i8)
        #expect(file.tensor(named: w + ".absmax")?.dimensions == [1024])
        #expect(file.tensor(named: w + ".absmax2")?.type == .f32)
        #expect(file.tensor(named: w + ".absmax2")?.dimensions == [4])
        let offset = try #require(file.tensor(named: w + ".absmax_offset"))
        #expect(offset.dimensions == [1])
        // nested_offset in the golden quant state is 0.05191352963447571.
        #expect(file.bytes(of: offset).floats == [Float(0.05191352963447571)])
        #expect(file.tensor(named: "model.layers.0.input_layernorm.weight")?.type == .f16)
        #expect(file["general.architecture"] == .string("llama"))
        #expect(file["general.type"] == .string("model"))
        #expect(file["bnb.version"] == .uint32(1))
        #expect(file["nf4kit.bnb.version"] == .uint32(1))
        #expect(file["nf4kit.bnb.weights"] == .stringArray([w]))
        #expect(file["bnb.quant_type"] == .string("nf4"))
        #expect(file["bnb.blocksize"] == .uint32(64))
        #expect(file["bnb.double_quant"] == .bool(true))
        #expect(file["bnb.nested_blocksize"] == .uint32(256))
        #expect(file["bnb.compute_dtype"] == .string("float16"))
        #expect(file["bnb.nibble_order"] == .string("high_first"))
        #expect(file["bnb.qk_permuted"] == .bool(false))
        #expect(file["bnb.quant_map"]?.arrayElements?.count == 16)
        #expect(file["bnb.nested_quant_map"]?.arrayElements?.count == 256)
        let state = source.first { $0.name.hasSuffix("quant_state.bitsandbytes__nf4") }
        #expect(file["nf4kit.bnb.quant_state." + w] == .string(String(decoding: state?.bytes ?? [], as: UTF8.self)))
        #expect(file["general.file_type"] == nil)
        #expect(file["general.quantization_version"] == nil)
    }

    @Test func `plain absmax weight has no nested companions`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let (_, file, _) = try roundTrip("nf4", in: dir)
        #expect(file.tensor(named: Self.weight + ".absmax")?.type == .f32)
        #expect(file.tensor(named: Self.weight + ".absmax2") == nil)
        #expect(file["bnb.double_quant"] == .bool(false))
        #expect(file["bnb.nested_quant_map"] == nil)
    }

    @Test func `a weight with an odd row length is stored 1-D with bnb.shape`() throws {
        // 3 x 5 = 15 elements -> 8 packed bytes, one 64-block.
        let w = "odd.weight"
        let json = #"{"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [3, 5]}"#
        func tensor(_ name: String, _ dtype: DType, _ shape: [Int], _ bytes: [UInt8]) -> Tensor {
            GGUFTestSafetensors.Entry(name: name, dtype: dtype, shape: shape, bytes: bytes).tensor
        }
        let tensors = [
            tensor(w, .u8, [8, 1], Array(0..<8)),
            tensor(w + ".absmax", .f32, [1], [0, 0, 0x80, 0x3F]),
            tensor(w + ".quant_map", .f32, [16], [UInt8](repeating: 1, count: 64)),
            tensor(w + ".quant_state.bitsandbytes__nf4", .u8, [json.utf8.count], Array(json.utf8)),
        ]
        let encoded = try GGUFBridge.encodeCompanion(tensors)
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        try GGUFWriter.write(
            path: dir.file("odd.gguf"), metadata: encoded.metadata, tensors: encoded.tensors, overwrite: false)
        let file = try GGUFFile.read(path: dir.file("odd.gguf"))
        #expect(file.tensor(named: w + ".nf4")?.dimensions == [8])
        #expect(file["bnb.shape." + w] == .uint64Array([5, 3]))
        let decoded = try GGUFBnbCompanion.decode(file)
        #expect(decoded.map(\.name) == tensors.map(\.name))
        #expect(decoded.map(\.bytes.array) == tensors.map(\.bytes.array))
        #expect(decoded.map(\.shape) == tensors.map(\.shape))
    }

    @Test func `an incomplete bitsandbytes group is refused`() throws {
        let source = try GGUFTestSafetensors.load(Fixture.path("gguf/bnb-nf4-dq-q_proj.safetensors"))
        let withoutNested = source.filter { !$0.name.hasSuffix(".nested_absmax") }.map(\.tensor)
        let error = #expect(throws: CheckpointError.self) { try GGUFBridge.encodeCompanion(withoutNested) }
        #expect(error?.code == .malformedHeader)
        #expect(error?.tensor == Self.weight + ".quant_state.bitsandbytes__nf4")
        #expect(error?.message.contains("'\(Self.weight).nested_absmax'") == true)
    }

    @Test func `a companion file whose codes are the wrong size is refused when read as bitsandbytes weights`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let source = try GGUFTestSafetensors.load(Fixture.path("gguf/bnb-nf4-q_proj.safetensors"))
        var encoded = try GGUFBridge.encodeCompanion(source.map(\.tensor))
        let index = try #require(encoded.tensors.firstIndex { $0.0.name.hasSuffix(".nf4") })
        encoded.tensors[index] = (
            GGUFTensorPlan(name: encoded.tensors[index].0.name, type: .i8, dimensions: [64]),
            TensorBytes(copyingElementsOf: [UInt8](repeating: 0, count: 64))
        )
        try GGUFWriter.write(
            path: dir.file("bad.gguf"), metadata: encoded.metadata, tensors: encoded.tensors, overwrite: false)
        let file = try GGUFFile.read(path: dir.file("bad.gguf"))
        // The container is fine; the sizes disagree with the quant state, which Quant's one model checks.
        let decoded = try GGUFBnbCompanion.decode(file)
        let error = #expect(throws: CheckpointError.self) { try BnbQuantizedWeight.groups(in: decoded) }
        #expect(error?.code == .shapeMismatch)
        #expect(error?.tensor == Self.weight)
        #expect(error?.byteOffset == file.tensor(named: Self.weight + ".nf4")?.fileOffset)
        #expect(error?.message.contains("needs 32768 bytes") == true)
    }

    @Test func `a quant state with a huge shape in a companion file is malformed input, not a trap`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let source = try GGUFTestSafetensors.load(Fixture.path("gguf/bnb-nf4-q_proj.safetensors"))
        var encoded = try GGUFBridge.encodeCompanion(source.map(\.tensor))
        let key = GGUFBnbCompanion.quantStatePrefix + Self.weight
        let index = try #require(encoded.metadata.firstIndex { $0.key == key })
        let huge =
            #"{"quant_type": "nf4", "blocksize": 64, "dtype": "float16", "shape": [9223372036854775807], "#
            + #""nested_blocksize": 9223372036854775807, "nested_dtype": "float32", "nested_offset": 0.5}"#
        encoded.metadata[index] = GGUFMetadataEntry(key: key, value: .string(huge))
        try GGUFWriter.write(
            path: dir.file("huge.gguf"), metadata: encoded.metadata, tensors: encoded.tensors, overwrite: false)
        let decoded = try GGUFBnbCompanion.decode(try GGUFFile.read(path: dir.file("huge.gguf")))
        let error = #expect(throws: CheckpointError.self) { try BnbQuantizedWeight.groups(in: decoded) }
        #expect(error?.code == .malformedHeader)
        #expect(error?.tensor == Self.weight + ".quant_state.bitsandbytes__nf4")
    }
}

/// Whole golden checkpoints through GGUF and back, compared as files.
@Suite struct GGUFBnbCompanionCheckpointTests {
    @Test(arguments: ["nf4-dq", "nf4", "fp4-dq"])
    func `a whole bitsandbytes checkpoint through GGUF and back is the same safetensors file byte for byte`(
        _ variant: String
    ) throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let original = Fixture.path("llama-tiny/\(variant)/model.safetensors")
        let source = try SafetensorsReader.read(path: original)
        let encoded = try GGUFBridge.encodeCompanion(
            source.tensors, metadata: [GGUFMetadataEntry(key: "general.architecture", value: .string("llama"))])
        let gguf = dir.file("model.gguf")
        try GGUFWriter.write(path: gguf, metadata: encoded.metadata, tensors: encoded.tensors, overwrite: false)
        let file = try GGUFFile.read(path: gguf)
        #expect(file["nf4kit.bnb.weights"]?.arrayElements?.count == 14)
        #expect(file["bnb.quant_type"] == .string(variant.hasPrefix("fp4") ? "fp4" : "nf4"))
        let decoded = try GGUFBnbCompanion.decode(file)
        let back = dir.file("model.safetensors")
        try SafetensorsWriter.write(decoded, metadata: [("format", "pt")], to: back, overwrite: false)
        let expected = try MappedRegion(mapping: original).all.array
        let actual = try MappedRegion(mapping: back).all.array
        #expect(actual.count == expected.count)
        #expect(actual == expected)
    }
}
