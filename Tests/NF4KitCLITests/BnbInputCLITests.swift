import Foundation
import NF4Kit
import NF4KitTestSupport
import Testing

/// Crafted bitsandbytes inputs through the CLI: each is refused input (exit 65) naming the tensor, never a trap.
@Suite struct BnbInputCLITests {
    /// A safetensors file of `(name, dtype, shape, bytes)` records, written by hand (no nf4kit code involved).
    static func safetensors(_ tensors: [(String, String, [Int], [UInt8])]) -> [UInt8] {
        var entries: [String] = []
        var data: [UInt8] = []
        for (name, dtype, shape, bytes) in tensors {
            let dims = shape.map(String.init).joined(separator: ",")
            entries.append(
                #""\#(name)":{"dtype":"\#(dtype)","shape":[\#(dims)],"data_offsets":[\#(data.count),\#(data.count + bytes.count)]}"#
            )
            data += bytes
        }
        var header = Array(("{" + entries.joined(separator: ",") + "}").utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        return withUnsafeBytes(of: UInt64(header.count).littleEndian) { Array($0) } + header + data
    }

    static func f32(_ values: [Float]) -> [UInt8] {
        values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian) { Array($0) } }
    }

    @Test func `an input with both W and W.absmax is refused naming the colliding tensor`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let path = dir.file("m.safetensors")
        try Self.safetensors([
            ("layer.weight", "F32", [2, 64], Self.f32((0..<128).map { Float($0) / 128 })),
            ("layer.weight.absmax", "F32", [2], Self.f32([1, 1])),
        ]).write(to: path)
        let result = try NF4KitCLI.run(["convert", path, "-o", dir.file("out.safetensors")])
        #expect(result.status == 65, "\(result.stderr)")
        #expect(result.stderr.contains("'layer.weight.absmax'"))
        #expect(!FileManager.default.fileExists(atPath: dir.file("out.safetensors")))
    }

    @Test func `quant-state fields near Int.max are malformed input for inspect and convert`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let states = [
            #"{"quant_type": "nf4", "blocksize": 64, "dtype": "float16", "shape": [9223372036854775807, 2]}"#,
            #"{"quant_type": "nf4", "blocksize": 64, "dtype": "float16", "shape": [9223372036854775807]}"#,
            #"{"quant_type": "nf4", "blocksize": 9223372036854775807, "dtype": "float16", "shape": [2, 64]}"#,
            #"{"quant_type": "nf4", "blocksize": 64, "dtype": "float16", "shape": [2, 64], "nested_blocksize": 9223372036854775807, "nested_dtype": "float32", "nested_offset": 0.5}"#,
        ]
        for (i, state) in states.enumerated() {
            let path = dir.file("m\(i).safetensors")
            let absmaxDType = state.contains("nested") ? "U8" : "F32"
            try Self.safetensors([
                ("w.weight", "U8", [64, 1], [UInt8](repeating: 0x77, count: 64)),
                ("w.weight.absmax", absmaxDType, [2], absmaxDType == "U8" ? [0, 0] : Self.f32([1, 1])),
                ("w.weight.quant_map", "F32", [16], Self.f32([Float](repeating: 0, count: 16))),
                ("w.weight.quant_state.bitsandbytes__nf4", "U8", [state.utf8.count], Array(state.utf8)),
            ]).write(to: path)
            let inspect = try NF4KitCLI.run(["inspect", path])
            #expect(inspect.status == 65, "\(state): \(inspect.stderr)")
            #expect(inspect.stderr.contains("w.weight"), "\(state): \(inspect.stderr)")
            let convert = try NF4KitCLI.run(["convert", path, "-o", dir.file("o\(i).safetensors"), "--to", "f16"])
            #expect(convert.status == 65, "\(state): \(convert.stderr)")
        }
    }

    @Test func `double quantization of a weight whose absmax mean is not finite is refused, and works without it`()
        throws
    {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let path = dir.file("m.safetensors")
        var values = (0..<128).map { Float($0) / 128 }
        values[5] = .infinity
        try Self.safetensors([("layer.weight", "F32", [2, 64], Self.f32(values))]).write(to: path)
        let refused = try NF4KitCLI.run(["convert", path, "-o", dir.file("dq.safetensors")])
        #expect(refused.status == 65, "\(refused.stderr)")
        #expect(refused.stderr.contains("'layer.weight'") && refused.stderr.contains("--no-double-quant"))
        #expect(!FileManager.default.fileExists(atPath: dir.file("dq.safetensors")))
        let plain = try NF4KitCLI.run(["convert", path, "-o", dir.file("plain.safetensors"), "--no-double-quant"])
        #expect(plain.status == 0, "\(plain.stderr)")
        // What we wrote we read back.
        #expect(try NF4KitCLI.run(["inspect", dir.file("plain.safetensors")]).status == 0)
    }

    @Test func `an already 4-bit input given to convert --to nf4 is refused input`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let result = try NF4KitCLI.run(["convert", Fixture.path("llama-tiny/nf4-dq"), "-o", dir.file("out")])
        #expect(result.status == 65)
        #expect(result.stderr.contains("already quantized"))
    }

    @Test func `quant-state fields near Int.max in an NF4 companion GGUF are malformed input`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let weight = "model.layers.0.self_attn.q_proj.weight"
        let source = try GGUFTestSafetensors.load(Fixture.path("gguf/bnb-nf4-q_proj.safetensors")).map(\.tensor)
        var encoded = try GGUFBridge.encodeCompanion(source)
        let key = GGUFBnbCompanion.quantStatePrefix + weight
        let index = try #require(encoded.metadata.firstIndex { $0.key == key })
        for (i, state) in [
            #"{"quant_type": "nf4", "blocksize": 64, "dtype": "float16", "shape": [9223372036854775807]}"#,
            #"{"quant_type": "nf4", "blocksize": 64, "dtype": "float16", "shape": [4611686018427387904, 4]}"#,
        ].enumerated() {
            encoded.metadata[index] = GGUFMetadataEntry(key: key, value: .string(state))
            let path = dir.file("m\(i).gguf")
            try GGUFWriter.write(path: path, metadata: encoded.metadata, tensors: encoded.tensors, overwrite: false)
            let inspect = try NF4KitCLI.run(["inspect", path])
            #expect(inspect.status == 65, "\(inspect.stderr)")
            #expect(inspect.stderr.contains(weight), "\(inspect.stderr)")
            let convert = try NF4KitCLI.run(["convert", path, "-o", dir.file("o\(i).safetensors"), "--to", "f16"])
            #expect(convert.status == 65, "\(convert.stderr)")
        }
    }
}
