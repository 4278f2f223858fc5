import Foundation
import Synchronization
import NF4Kit
import NF4KitCore
import NF4KitFormats
import NF4KitTestSupport
import Testing

/// A small state dict whose sharding at 100 bytes is worked out by hand below.
enum ShardedSample {
    /// (name, dtype, shape, bytes) in state-dict order.
    static let specs: [(String, DType, Shape, Int)] = [
        ("model.embed_tokens.weight", .f16, [8, 4], 64),
        ("model.layers.0.weight", .f32, [4, 4], 64),
        ("model.layers.0.bias", .bf16, [4], 8),
        ("model.layers.1.weight", .i8, [100], 100),
        ("lm_head.weight", .f16, [4, 8], 64),
        ("scalar", .f64, [], 8),
        ("empty", .f32, [0, 5], 0),
    ]

    /// Greedy at 100 bytes, as huggingface_hub: 64 | 64+8 | 100 | 64+8+0.
    static let expectedShards: [[String]] = [
        ["model.embed_tokens.weight"],
        ["model.layers.0.weight", "model.layers.0.bias"],
        ["model.layers.1.weight"],
        ["lm_head.weight", "scalar", "empty"],
    ]

    /// What transformers 5 writes: `json.dumps(index, indent=2, sort_keys=True) + "\n"`.
    /// total_size = 64+64+8+100+64+8+0 = 308; total_parameters = 32+16+4+100+32+1+0 = 185.
    static let expectedIndex = """
        {
          "metadata": {
            "total_parameters": 185,
            "total_size": 308
          },
          "weight_map": {
            "empty": "model-00004-of-00004.safetensors",
            "lm_head.weight": "model-00004-of-00004.safetensors",
            "model.embed_tokens.weight": "model-00001-of-00004.safetensors",
            "model.layers.0.bias": "model-00002-of-00004.safetensors",
            "model.layers.0.weight": "model-00002-of-00004.safetensors",
            "model.layers.1.weight": "model-00003-of-00004.safetensors",
            "scalar": "model-00004-of-00004.safetensors"
          }
        }

        """

    static func tensors(seed: UInt64 = 7) -> [Tensor] {
        var rng = SeededGenerator(seed: seed)
        return specs.map { name, dtype, shape, count in
            let bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
            return Tensor(
                descriptor: TensorDescriptor(
                    name: name, dtype: dtype, shape: shape, file: "memory", fileOffset: 0, byteCount: count),
                bytes: TensorBytes(copyingElementsOf: bytes))
        }
    }

    static func plan() throws -> SafetensorsFolderWriter.Plan {
        try SafetensorsFolderWriter.Plan(
            tensors: specs.map { ($0.0, $0.1, $0.2) }, metadata: [("format", "pt")], maxShardBytes: 100)
    }

    /// Writes the sample as a sharded folder, tensors in reverse order from several threads.
    static func writeFolder(at path: String) throws {
        let writer = try SafetensorsFolderWriter(path: path, plan: try plan(), overwrite: false)
        let tensors = Array(tensors().reversed())
        let failures = Mutex<[CheckpointError]>([])
        DispatchQueue.concurrentPerform(iterations: tensors.count) { i in
            do throws(CheckpointError) { try writer.write(tensors[i].name, bytes: tensors[i].bytes) } catch {
                failures.withLock { $0.append(error) }
            }
        }
        if let first = failures.withLock({ $0.first }) { throw first }
        try writer.writeSideFile("config.json", bytes: Array("{\"model_type\": \"llama\"}\n".utf8))
        try writer.finish()
    }
}

@Suite struct ShardedFolderTests {
    @Test func `plans shards greedily in state-dict order`() throws {
        let plan = try ShardedSample.plan()
        #expect(plan.shardPlan.shards.map(\.tensorNames) == ShardedSample.expectedShards)
        #expect(plan.shardPlan.shards.map(\.fileName) == (1...4).map { "model-0000\($0)-of-00004.safetensors" })
        #expect(plan.totalByteCount == 308)
        #expect(plan.totalParameters == 185)
    }

    @Test func `writes shards and an index that read back as one checkpoint`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let folder = dir.file("out")
        try ShardedSample.writeFolder(at: folder)

        let names = try FileAccess.list(folder).sorted()
        #expect(
            names == [
                "config.json", "model-00001-of-00004.safetensors", "model-00002-of-00004.safetensors",
                "model-00003-of-00004.safetensors", "model-00004-of-00004.safetensors", "model.safetensors.index.json",
            ])
        #expect(!FileAccess.exists(folder + ".partial"))

        let source = try ModelSource.open(folder)
        #expect(source.kind == .safetensors)
        #expect(source.checkpoint.files.count == 4)
        #expect(source.config?["model_type"] == .string("llama"))
        let expected = ShardedSample.tensors()
        #expect(Set(source.checkpoint.tensors.map(\.name)) == Set(expected.map(\.name)))
        for tensor in expected {
            let read = try #require(source.checkpoint.tensor(named: tensor.name))
            #expect(read.dtype == tensor.dtype)
            #expect(read.shape == tensor.shape)
            #expect(read.bytes.array == tensor.bytes.array, "\(tensor.name)")
        }
        for shard in 1...4 {
            let file = folder + "/model-0000\(shard)-of-00004.safetensors"
            let checkpoint = try SafetensorsReader.read(path: file)
            #expect(Set(checkpoint.tensors.map(\.name)) == Set(ShardedSample.expectedShards[shard - 1]))
            #expect(checkpoint.metadata == ["format": "pt"])
        }
    }

    @Test func `the index is what transformers 5 writes`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        try ShardedSample.writeFolder(at: dir.file("out"))
        let text = String(
            decoding: try [UInt8](contentsOf: dir.file("out/model.safetensors.index.json")), as: UTF8.self)
        #expect(text == ShardedSample.expectedIndex)
    }

    @Test func `everything within the limit is one model.safetensors without index`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let tensors = ShardedSample.tensors()
        try SafetensorsFolderWriter.write(
            tensors, metadata: [("format", "pt")], to: dir.file("one"), maxShardBytes: 5_000_000_000, overwrite: false)
        #expect(try FileAccess.list(dir.file("one")) == ["model.safetensors"])
        // The single file is the plain writer's file, byte for byte.
        try SafetensorsWriter.write(
            tensors, metadata: [("format", "pt")], to: dir.file("plain.safetensors"), overwrite: false)
        #expect(
            try [UInt8](contentsOf: dir.file("one/model.safetensors"))
                == [UInt8](contentsOf: dir.file("plain.safetensors")))
    }

    @Test func `an unfinished folder leaves nothing behind and a missing tensor is named`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        do {
            let writer = try SafetensorsFolderWriter(
                path: dir.file("out"), plan: try ShardedSample.plan(), overwrite: false)
            let tensors = ShardedSample.tensors()
            for tensor in tensors.dropLast() { try writer.write(tensor.name, bytes: tensor.bytes) }
            let error = #expect(throws: CheckpointError.self) { try writer.finish() }
            #expect(error?.tensor == "empty")
        }
        #expect(!FileAccess.exists(dir.file("out")))
        #expect(!FileAccess.exists(dir.file("out.partial")))
    }

    @Test func `refuses an existing folder without overwrite`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        try ShardedSample.writeFolder(at: dir.file("out"))
        let error = #expect(throws: CheckpointError.self) { try ShardedSample.writeFolder(at: dir.file("out")) }
        #expect(error?.code == .outputExists)
    }

    // MARK: inconsistent folders

    private func editIndex(_ folder: String, _ edit: (String) -> String) throws {
        let path = folder + "/model.safetensors.index.json"
        let text = String(decoding: try [UInt8](contentsOf: path), as: UTF8.self)
        let edited = edit(text)
        #expect(edited != text)
        try Array(edited.utf8).write(to: path)
    }

    @Test func `an index naming a tensor its shard lacks is refused, naming the tensor`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let folder = dir.file("out")
        try ShardedSample.writeFolder(at: folder)
        try editIndex(folder) {
            $0.replacingOccurrences(
                of: "\"empty\":", with: "\"ghost\": \"model-00001-of-00004.safetensors\",\n    \"empty\":")
        }
        let error = #expect(throws: CheckpointError.self) { try ModelSource.open(folder) }
        #expect(error?.tensor == "ghost")
        #expect(error?.file == folder + "/model-00001-of-00004.safetensors")
        #expect(error?.message.contains("'ghost'") == true)
    }

    @Test func `a shard holding a tensor the index does not list is refused, naming the tensor`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let folder = dir.file("out")
        try ShardedSample.writeFolder(at: folder)
        try editIndex(folder) {
            $0.replacingOccurrences(
                of: "    \"model.layers.0.bias\": \"model-00002-of-00004.safetensors\",\n", with: "")
        }
        let error = #expect(throws: CheckpointError.self) { try ModelSource.open(folder) }
        #expect(error?.tensor == "model.layers.0.bias")
        #expect(error?.file == folder + "/model-00002-of-00004.safetensors")
    }

    @Test func `a tensor present in two shards is refused, naming the tensor`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let folder = dir.file("twice")
        try FileAccess.makeDirectory(folder)
        let w = TensorBytes(copyingElementsOf: [UInt8]([1, 2]))
        func tensor(_ name: String) -> Tensor {
            Tensor(
                descriptor: TensorDescriptor(
                    name: name, dtype: .u8, shape: [2], file: "memory", fileOffset: 0, byteCount: 2), bytes: w)
        }
        try SafetensorsWriter.write(
            [tensor("w"), tensor("a")], metadata: nil, to: folder + "/model-00001-of-00002.safetensors",
            overwrite: false)
        try SafetensorsWriter.write(
            [tensor("w"), tensor("b")], metadata: nil, to: folder + "/model-00002-of-00002.safetensors",
            overwrite: false)
        let index = SafetensorsIndex(
            weightMap: [
                ("a", "model-00001-of-00002.safetensors"), ("b", "model-00002-of-00002.safetensors"),
                ("w", "model-00001-of-00002.safetensors"),
            ],
            totalSize: 8, totalParameters: 8)
        try index.jsonBytes().write(to: folder + "/model.safetensors.index.json")
        let error = #expect(throws: CheckpointError.self) { try ModelSource.open(folder) }
        #expect(error?.tensor == "w")
        #expect(error?.file == folder + "/model-00002-of-00002.safetensors")
        #expect(error?.message.contains("assigns elsewhere") == true)

        // Listing the name twice in the index itself is a duplicate key.
        try Array(
            #"{"metadata": {}, "weight_map": {"w": "model-00001-of-00002.safetensors", "w": "model-00002-of-00002.safetensors"}}"#
                .utf8
        )
        .write(to: folder + "/model.safetensors.index.json")
        let duplicate = #expect(throws: CheckpointError.self) { try ModelSource.open(folder) }
        #expect(duplicate?.code == .malformedHeader)
        #expect(duplicate?.message.contains("duplicate key 'w'") == true)
        #expect(duplicate?.byteOffset == 73)  // the second "w"
    }

    @Test func `a shard file named by the index but absent is reported`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let folder = dir.file("out")
        try ShardedSample.writeFolder(at: folder)
        try FileManager.default.removeItem(atPath: folder + "/model-00003-of-00004.safetensors")
        let error = #expect(throws: CheckpointError.self) { try ModelSource.open(folder) }
        #expect(error?.code == .notFound)
        #expect(error?.file == folder + "/model-00003-of-00004.safetensors")
    }
}
