import Foundation
import NF4KitCore
import NF4KitFormats
import NF4KitTestSupport
import Testing

@Suite struct TorchCheckpointReaderTests {
    // MARK: Golden files written by torch.save

    @Test func `golden pytorch_model.bin holds the same tensors as the golden fp16 safetensors`() throws {
        let checkpoint = try TorchCheckpointReader.read(path: TorchFixture.path("llama-tiny/pytorch_model.bin"))
        let expected = try SafetensorsReader.read(path: Fixture.path("llama-tiny/fp16/model.safetensors")).tensorsByName
        #expect(checkpoint.format == .torch)
        #expect(checkpoint.tensors.count == expected.count)
        #expect(Set(checkpoint.tensors.map(\.name)) == Set(expected.keys))
        #expect(checkpoint.tensors.first?.name == "model.embed_tokens.weight")  // state-dict order, not sorted
        for tensor in checkpoint.tensors {
            let reference = try #require(expected[tensor.name])
            #expect(tensor.dtype == reference.dtype, "\(tensor.name)")
            #expect(tensor.shape == reference.shape, "\(tensor.name)")
            #expect(tensor.bytes.array == reference.bytes.array, "\(tensor.name)")
        }
    }

    @Test func `golden adapter_model.bin holds the same tensors as the golden adapter safetensors`() throws {
        let result = try TorchCheckpointReader.readDetailed(path: TorchFixture.path("lora/adapter_model.bin"))
        let expected = try SafetensorsReader.read(path: Fixture.path("llama-tiny/lora/adapter_model.safetensors"))
            .tensorsByName
        #expect(result.aliases.isEmpty)
        #expect(result.skippedEntries.isEmpty)
        #expect(Set(result.checkpoint.tensors.map(\.name)) == Set(expected.keys))
        for tensor in result.checkpoint.tensors {
            let reference = try #require(expected[tensor.name])
            #expect(tensor.dtype == reference.dtype, "\(tensor.name)")
            #expect(tensor.shape == reference.shape, "\(tensor.name)")
            #expect(tensor.bytes.array == reference.bytes.array, "\(tensor.name)")
        }
    }

    @Test func `stored records are views of the mapped file, not copies`() throws {
        let path = TorchFixture.path("llama-tiny/pytorch_model.bin")
        let checkpoint = try TorchCheckpointReader.read(path: path)
        let file = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        for tensor in checkpoint.tensors {
            #expect(tensor.bytes.region.path == path)
            #expect(tensor.descriptor.fileOffset % 64 == 0)  // torch aligns records to 64 bytes
            let start = Int(tensor.descriptor.fileOffset)
            #expect(Array(file[start..<(start + tensor.descriptor.byteCount)]) == tensor.bytes.array)
        }
    }

    // MARK: Crafted layouts (pickled with torch's opcodes by Fixtures/generate/make_hostile_torch.py)

    @Test(arguments: [
        "crafted/views.bin", "crafted/views-deflated.bin", "crafted/views-zip64.bin",
        "crafted/views-bigendian.bin",
    ])
    func `views, scalars, empty, float8 and parameters read to their row-major values`(_ file: String) throws {
        let result = try TorchCheckpointReader.readDetailed(path: TorchFixture.path(file))
        let tensors = result.checkpoint.tensorsByName
        #expect(
            result.checkpoint.tensors.map(\.name) == [
                "w", "transposed", "slice", "scalar", "empty", "f8", "lm_head.weight", "embed.weight", "bf16",
            ])
        #expect(result.skippedEntries == ["step"])

        let w = try #require(tensors["w"])
        #expect(w.dtype == .f32 && w.shape == [2])
        #expect(w.bytes.array.floats == [1, 2])
        // A 3x4 grid 0...11 saved transposed: size (4, 3), stride (1, 4).
        let transposed = try #require(tensors["transposed"])
        #expect(transposed.shape == [4, 3])
        #expect(transposed.bytes.array.floats == [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11])
        let slice = try #require(tensors["slice"])
        #expect(slice.shape == [4])
        #expect(slice.bytes.array.floats == [4, 5, 6, 7])
        let scalar = try #require(tensors["scalar"])
        #expect(scalar.dtype == .i64 && scalar.shape == [])
        #expect(scalar.bytes.array == [42, 0, 0, 0, 0, 0, 0, 0])
        let empty = try #require(tensors["empty"])
        #expect(empty.dtype == .f16 && empty.shape == [0, 3] && empty.bytes.count == 0)
        let f8 = try #require(tensors["f8"])
        #expect(f8.dtype == .f8e4m3 && f8.shape == [2])
        #expect(f8.bytes.array == [0x40, 0x44])  // storage bytes 38 40 44, offset 1
        let tied = try #require(tensors["lm_head.weight"])
        #expect(tied.dtype == .f16 && tied.shape == [2, 2])
        #expect(tied.bytes.array == [0x00, 0x3C, 0x00, 0x40, 0x00, 0x42, 0x00, 0x44])  // 1, 2, 3, 4
        #expect(tensors["embed.weight"]?.bytes.array == tied.bytes.array)
        let bf16 = try #require(tensors["bf16"])  // saved as an nn.Parameter
        #expect(bf16.dtype == .bf16 && bf16.bytes.array == [0x80, 0x3F, 0x00, 0xC0])
    }

    @Test func `the spec's worked example pickle from PyTorch 2.13 reads as w = [1, 2]`() throws {
        let checkpoint = try TorchCheckpointReader.read(path: TorchFixture.path("crafted/spec-example.bin"))
        #expect(checkpoint.tensors.count == 1)
        let w = try #require(checkpoint.tensor(named: "w"))
        #expect(w.dtype == .f32 && w.shape == [2])
        #expect(w.bytes.array == [0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0x40])
    }

    @Test func `tensors sharing a whole storage are reported as aliases of the first name`() throws {
        let result = try TorchCheckpointReader.readDetailed(path: TorchFixture.path("crafted/views.bin"))
        // 'transposed' and 'slice' share a storage too, but neither covers it whole: both stay tensors.
        #expect(result.aliases == [TorchAlias(name: "lm_head.weight", target: "embed.weight")])
        let deduplicated = result.deduplicated()
        #expect(!deduplicated.tensors.contains { $0.name == "lm_head.weight" })
        #expect(deduplicated.tensors.count == 8)
        #expect(deduplicated.metadata == ["format": "pt", "lm_head.weight": "embed.weight"])
    }

    @Test func `deflated records inflate into owned memory and stored ones stay mapped`() throws {
        let storedPath = TorchFixture.path("crafted/views.bin")
        let stored = try TorchCheckpointReader.read(path: storedPath)
        let deflated = try TorchCheckpointReader.read(path: TorchFixture.path("crafted/views-deflated.bin"))
        #expect(stored.tensor(named: "w")?.bytes.region.path == storedPath)
        #expect(deflated.tensor(named: "w")?.bytes.region.path.contains("inflated") == true)
        // Non-contiguous views are always copied out.
        #expect(stored.tensor(named: "transposed")?.bytes.region.path != storedPath)
    }

    @Test func `legacy pre-1.6 files read from their storage section without copying`() throws {
        let path = TorchFixture.path("crafted/legacy.bin")
        let checkpoint = try TorchCheckpointReader.read(path: path)
        #expect(checkpoint.tensors.map(\.name) == ["w", "b"])
        let w = try #require(checkpoint.tensor(named: "w"))
        #expect(w.dtype == .f32 && w.shape == [2, 3])
        #expect(w.bytes.array.floats == [0, 1, 2, 3, 4, 5])
        #expect(w.bytes.region.path == path)
        // Storages follow the pickles in key order ("9405846..." = b first): count 2, then 1.0, 2.0 as halves.
        let b = try #require(checkpoint.tensor(named: "b"))
        #expect(b.dtype == .f16 && b.bytes.array == [0x00, 0x3C, 0x00, 0x40])
        let file = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(Int(b.descriptor.fileOffset) == file.count - 8 - 24 - 4)
    }

    @Test func `sharded folder reads every shard through the index`() throws {
        let result = try TorchCheckpointReader.readSharded(
            indexPath: TorchFixture.path("crafted/sharded/pytorch_model.bin.index.json"))
        #expect(result.checkpoint.tensors.map(\.name) == ["a", "b"])
        #expect(
            result.checkpoint.files.map { ($0 as NSString).lastPathComponent } == [
                "pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin",
            ])
        #expect(result.checkpoint.tensor(named: "a")?.bytes.array.floats == [1, 2])
        let b = try #require(result.checkpoint.tensor(named: "b"))
        #expect(b.dtype == .f16 && b.bytes.array == [0x00, 0x38, 0x00, 0x3E, 0x00, 0xC0])  // 0.5, 1.5, -2
    }

    @Test func `an index naming a shard outside its folder is refused`() {
        #expect {
            _ = try TorchCheckpointReader.readSharded(
                indexPath: TorchFixture.path("crafted/sharded-bad-index/pytorch_model.bin.index.json"))
        } throws: { error in
            guard let error = error as? CheckpointError else { return false }
            return error.code == .malformedHeader && error.tensor == "b"
        }
    }
}
