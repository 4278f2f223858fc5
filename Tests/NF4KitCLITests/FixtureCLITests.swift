import Foundation
import NF4Kit
import NF4KitTestSupport
import Testing

@Suite struct FixtureCLITests {
    @Test func `tiny has the golden llama-tiny layout and config byte for byte`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let result = try NF4KitCLI.run(["fixture", "tiny", "-o", dir.file("tiny"), "--quiet"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.isEmpty)
        #expect(
            try [UInt8](contentsOf: dir.file("tiny/config.json"))
                == [UInt8](contentsOf: Fixture.path("llama-tiny/fp16/config.json")))
        let ours = try TestSafetensors(path: dir.file("tiny/model.safetensors"))
        let golden = try TestSafetensors(path: Fixture.path("llama-tiny/fp16/model.safetensors"))
        #expect(ours.headerKeysInOrder == golden.headerKeysInOrder)
        for tensor in golden.tensors {
            let mine = try #require(ours[tensor.name])
            #expect(mine.dtype == tensor.dtype)
            #expect(mine.shape == tensor.shape)
        }
    }

    @Test func `the same seed gives the same bytes with any thread count, another seed other bytes`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        for (name, args) in [("a", ["--threads", "1"]), ("b", ["--threads", "2"]), ("c", ["--seed", "7"])] {
            let result = try NF4KitCLI.run(
                ["fixture", "tiny", "-o", dir.file(name), "--lora-rank", "4", "--quiet"] + args)
            #expect(result.status == 0, "\(result.stderr)")
        }
        let a = try [UInt8](contentsOf: dir.file("a/model.safetensors"))
        #expect(a == (try [UInt8](contentsOf: dir.file("b/model.safetensors"))))
        #expect(a != (try [UInt8](contentsOf: dir.file("c/model.safetensors"))))
        #expect(
            try [UInt8](contentsOf: dir.file("a-lora/adapter_model.safetensors"))
                == [UInt8](contentsOf: dir.file("b-lora/adapter_model.safetensors")))
    }

    @Test func `an independent Python implementation regenerates every tensor`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let result = try NF4KitCLI.run([
            "fixture", "tiny", "-o", dir.file("m"), "--seed", "42", "--lora-rank", "8", "--quiet",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let check = try PythonInterop.run(
            script: "Tests/Interop/fixture_check.py", arguments: [dir.file("m"), "42", dir.file("m-lora")])
        #expect(check.status == 0, "\(check.stderr)")
        #expect(check.stdout.contains("49 tensors identical"))
    }

    @Test func `shards past --max-shard-size and reads back as one checkpoint`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let result = try NF4KitCLI.run(["fixture", "tiny", "-o", dir.file("s"), "--max-shard-size", "1MB", "--quiet"])
        #expect(result.status == 0, "\(result.stderr)")
        let names = try FileAccess.list(dir.file("s"))
        #expect(names.contains("model.safetensors.index.json"))
        // Greedy in state-dict order, 1,000,000 bytes: [embed 512000, q 131072, k 65536, v 65536, o 131072],
        // [gate 352256, up 352256], [down, 2 norms, layer 1 q k v o], [gate, up], [down, 2 norms, norm, lm_head 512000].
        #expect(names.filter { $0.hasPrefix("model-0000") && $0.hasSuffix("-of-00005.safetensors") }.count == 5)
        let source = try ModelSource.open(dir.file("s"))
        #expect(source.checkpoint.tensors.count == 21)
        #expect(source.checkpoint.tensors.reduce(0) { $0 + $1.shape.elementCount } == 1_963_264)
    }

    @Test func `bad usage exits 64 and an existing output 74`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        #expect(try NF4KitCLI.run(["fixture", "llama-3b", "-o", dir.file("x")]).status == 64)
        #expect(try NF4KitCLI.run(["fixture", "tiny", "-o", dir.file("x"), "--layers", "0"]).status == 64)
        #expect(try NF4KitCLI.run(["fixture", "tiny", "-o", dir.file("x"), "--quiet"]).status == 0)
        let again = try NF4KitCLI.run(["fixture", "tiny", "-o", dir.file("x")])
        #expect(again.status == 74)
        #expect(again.stderr.contains("already exists"))
        #expect(try NF4KitCLI.run(["fixture", "tiny", "-o", dir.file("x"), "--force", "--quiet"]).status == 0)
    }
}
