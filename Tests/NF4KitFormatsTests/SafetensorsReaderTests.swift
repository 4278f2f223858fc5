import NF4KitCore
import NF4KitFormats
import NF4KitTestSupport
import Foundation
import Testing

@Suite struct SafetensorsReaderTests {
    @Test func `reads the golden fp16 llama-tiny checkpoint`() throws {
        let checkpoint = try SafetensorsReader.read(path: Fixture.path("llama-tiny/fp16/model.safetensors"))
        // 2 layers x (4 attention + 3 MLP projections + 2 norms) + embed + norm + lm_head
        #expect(checkpoint.tensors.count == 21)
        #expect(checkpoint.metadata == ["format": "pt"])
        let q = try #require(checkpoint.tensor(named: "model.layers.0.self_attn.q_proj.weight"))
        #expect(q.dtype == .f16)
        #expect(q.shape == [256, 256])
        let k = try #require(checkpoint.tensor(named: "model.layers.0.self_attn.k_proj.weight"))
        #expect(k.shape == [128, 256])
        let embed = try #require(checkpoint.tensor(named: "model.embed_tokens.weight"))
        #expect(embed.shape == [1000, 256])
        #expect(embed.bytes.count == 1000 * 256 * 2)
    }

    @Test func `reads the spec's worked example`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let path = dir.file("example.safetensors")
        try SpecExample.bytes.write(to: path)
        let checkpoint = try SafetensorsReader.read(path: path)
        #expect(checkpoint.tensors.map(\.name) == ["b", "a"])
        #expect(checkpoint.tensors[0].bytes.array == [0x00, 0x00, 0x00, 0x3F])
        #expect(checkpoint.tensors[1].bytes.array == [0x00, 0x3C, 0x00, 0xC0])
    }
}

@Suite struct SafetensorsWriterTests {
    @Test func `writes the spec's worked example byte for byte`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let a = TensorBytes(copyingElementsOf: [UInt8]([0x00, 0x3C, 0x00, 0xC0]))
        let b = TensorBytes(copyingElementsOf: [UInt8]([0x00, 0x00, 0x00, 0x3F]))
        let layout = try SafetensorsLayout(tensors: [("a", .f16, [2]), ("b", .f32, [1])], metadata: [("format", "pt")])
        let writer = try SafetensorsWriter(path: dir.file("out.safetensors"), layout: layout, overwrite: false)
        try writer.write("a", bytes: a)
        try writer.write("b", bytes: b)
        try writer.finish()
        #expect(try [UInt8](contentsOf: dir.file("out.safetensors")) == SpecExample.bytes)
        #expect(!FileAccess.exists(dir.file("out.safetensors.partial")))
    }

    @Test(arguments: ["fp16", "nf4", "nf4-dq", "fp4-dq", "merged-fp16", "merged-nf4-dq"])
    func `rewriting a golden file reproduces transformers' bytes`(folder: String) throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let input = Fixture.path("llama-tiny/\(folder)/model.safetensors")
        let checkpoint = try SafetensorsReader.read(path: input)
        // Hand the tensors over in a different order: the writer's order must not depend on it.
        try SafetensorsWriter.write(
            checkpoint.tensors.reversed(), metadata: [("format", "pt")], to: dir.file("copy.safetensors"),
            overwrite: false)
        #expect(try [UInt8](contentsOf: dir.file("copy.safetensors")) == [UInt8](contentsOf: input))
    }

    @Test func `an empty checkpoint is 16 bytes`() throws {
        let layout = try SafetensorsLayout(tensors: [], metadata: nil)
        #expect(layout.headerBytes == [8, 0, 0, 0, 0, 0, 0, 0, 0x7B, 0x7D, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20])
    }

    @Test func `refuses to overwrite without permission and never overwrites an input`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let path = dir.file("x.safetensors")
        try SafetensorsWriter.write([], metadata: nil, to: path, overwrite: false)
        let error = #expect(throws: CheckpointError.self) {
            try SafetensorsWriter.write([], metadata: nil, to: path, overwrite: false)
        }
        #expect(error?.code == .outputExists)
        let inputError = #expect(throws: CheckpointError.self) {
            try SafetensorsWriter.write([], metadata: nil, to: path, overwrite: true, inputs: [path])
        }
        #expect(inputError?.code == .outputExists)
    }

    @Test func `an abandoned writer leaves no file behind`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        do {
            let layout = try SafetensorsLayout(tensors: [("a", .f32, [4])], metadata: nil)
            let writer = try SafetensorsWriter(path: dir.file("gone.safetensors"), layout: layout, overwrite: false)
            #expect(try FileAccess.list(dir.path).count == 1)  // the temporary file
            #expect(throws: CheckpointError.self) { try writer.finish() }
        }
        #expect(try FileAccess.list(dir.path).isEmpty)
    }
}

@Suite struct ShardingTests {
    @Test func `shards greedily like huggingface_hub and names files with five digits`() {
        let plan = ShardPlan(tensors: [("a", 40), ("b", 40), ("c", 30), ("big", 500), ("d", 10)], maxShardBytes: 100)
        #expect(
            plan.shards.map(\.fileName) == [
                "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                "model-00003-of-00003.safetensors",
            ])
        #expect(plan.shards.map(\.tensorNames) == [["a", "b"], ["big"], ["c", "d"]])
        #expect(ShardPlan(tensors: [("a", 40)], maxShardBytes: 100).shards.map(\.fileName) == ["model.safetensors"])
    }

    @Test func `parses shard sizes as transformers users write them, in any case`() {
        #expect(ShardPlan.parseSize("5GB") == 5_000_000_000)
        #expect(ShardPlan.parseSize("2GiB") == 2_147_483_648)
        #expect(ShardPlan.parseSize("500MB") == 500_000_000)
        #expect(ShardPlan.parseSize("1024") == 1024)
        // Any case; a lower-case final b is bytes, not bits as in transformers.
        #expect(ShardPlan.parseSize("8Gb") == 8_000_000_000)
        #expect(ShardPlan.parseSize("30mb") == 30_000_000)
        #expect(ShardPlan.parseSize("500mib") == 524_288_000)
        #expect(ShardPlan.parseSize("2 GIB") == 2_147_483_648)
        #expect(ShardPlan.parseSize("100kb") == 100_000)
        #expect(ShardPlan.parseSize("0") == nil)
        #expect(ShardPlan.parseSize("-5GB") == nil)
        #expect(ShardPlan.parseSize("GB") == nil)
        #expect(ShardPlan.parseSize("1e30GB") == nil)
        #expect(ShardPlan.parseSize("lots") == nil)
    }

    @Test func `refuses shard names that leave the folder`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        for bad in ["../evil.safetensors", "/etc/passwd.safetensors", "sub\\x.safetensors", "model.bin"] {
            let index =
                "{\"metadata\": {}, \"weight_map\": {\"w\": \"\(bad.replacingOccurrences(of: "\\", with: "\\\\"))\"}}"
            try Array(index.utf8).write(to: dir.file("model.safetensors.index.json"))
            let error = #expect(throws: CheckpointError.self) {
                try SafetensorsIndex.read(path: dir.file("model.safetensors.index.json"))
            }
            #expect(error?.code == .refused)
            #expect(error?.tensor == "w")
        }
    }
}

/// The worked example of shared/spec/safetensors.md §7, as written by the reference writer.
enum SpecExample {
    static let header =
        #"{"__metadata__":{"format":"pt"},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F16","shape":[2],"data_offsets":[4,8]}}"#
    static var bytes: [UInt8] {
        [0x90, 0, 0, 0, 0, 0, 0, 0] + Array(header.utf8) + [UInt8](repeating: 0x20, count: 6) + [
            0x00, 0x00, 0x00, 0x3F, 0x00, 0x3C, 0x00, 0xC0,
        ]
    }
}
