import Foundation
import NF4KitTestSupport
import Testing

/// `nf4kit inspect` on the other containers: GGUF (metadata as gguf-dump shows it) and PyTorch .bin.
@Suite struct ContainerInspectCLITests {
    @Test func `inspect of the golden GGUF lists every metadata key with its value and the ggml types`() throws {
        let result = try NF4KitCLI.run(["inspect", Fixture.path("gguf/sample.gguf"), "--tensors"])
        #expect(result.status == 0, "\(result.stderr)")
        // Values from shared/golden/README.md, written by gguf-py.
        for line in [
            "general.name", "'tiny sample'", "sample.u64", "1099511627776", "sample.i16", "-30000",
            "sample.str", "'héllo gguf'", "['a', 'bc', '']", "Q8_0", "Q4_0", "BF16",
        ] {
            #expect(result.stdout.contains(line), "missing \(line)")
        }
    }

    @Test func `inspect --json of the GGUF carries typed metadata`() throws {
        let result = try NF4KitCLI.run(["inspect", Fixture.path("gguf/sample.gguf"), "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let gguf = try #require(json["gguf"] as? [String: Any])
        #expect(gguf["version"] as? Int == 3)
        let metadata = try #require(gguf["metadata"] as? [[String: Any]])
        let byKey = Dictionary(uniqueKeysWithValues: metadata.map { ($0["key"] as! String, $0) })
        #expect(byKey["sample.i64"]?["value"] as? Int == -1_099_511_627_776)
        #expect(byKey["sample.f32"]?["value"] as? Double == 0.5)
        #expect(byKey["sample.arr_i32"]?["value"] as? [Int] == [1, 2, 3])
        let tensors = try #require(gguf["tensors"] as? [[String: Any]])
        #expect(Set(tensors.map { $0["type"] as! String }) == ["F32", "F16", "Q8_0", "Q4_0", "BF16"])
    }

    @Test func `inspect calls a llama.cpp LoRA GGUF an adapter`() throws {
        // lora-F16.gguf was written by convert_lora_to_gguf.py (general.type = 'adapter').
        let text = try NF4KitCLI.run(["inspect", Fixture.path("llama-g/gguf/lora-F16.gguf")])
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.contains("kind          adapter (llama)"), "\(text.stdout)")
        let json = try NF4KitCLI.run(["inspect", Fixture.path("llama-g/gguf/lora-F16.gguf"), "--json"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect((object["summary"] as? [String: Any])?["kind"] as? String == "adapter")
        let model = try NF4KitCLI.run(["inspect", Fixture.path("llama-g/gguf/F16.gguf")])
        #expect(model.stdout.contains("kind          model (llama)"), "\(model.stdout)")
    }

    @Test func `inspect reads a PyTorch .bin model and adapter without running a pickle`() throws {
        let model = try NF4KitCLI.run(["inspect", Fixture.path("torch/llama-tiny")])
        #expect(model.status == 0, "\(model.stderr)")
        #expect(model.stdout.contains("format        torch"))
        #expect(model.stdout.contains("1,963,264"))
        let hostile = try NF4KitCLI.run(["inspect", Fixture.path("torch/hostile/global-os-system.bin")])
        #expect(hostile.status == 65)
        #expect(hostile.stderr.contains("os.system"))
    }
}

@Suite struct DiffCLITests {
    @Test func `diff of a model with itself reports every tensor identical`() throws {
        let result = try NF4KitCLI.run(["diff", Fixture.path("llama-tiny/fp16"), Fixture.path("torch/llama-tiny")])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("21 tensors in both, 21 identical, 0 differ"))
    }

    @Test func `diff --json parses and carries the summary`() throws {
        let result = try NF4KitCLI.run([
            "diff", Fixture.path("llama-tiny/fp16"), Fixture.path("llama-tiny/merged-fp16"), "--json",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(json["schemaVersion"] as? Int == 1)
        let summary = try #require(json["summary"] as? [String: Any])
        #expect(summary["tensorsInBoth"] as? Int == 21)
        // The LoRA adapter targets the 14 projections; norms, embeddings and lm_head are unchanged.
        #expect(summary["identicalTensors"] as? Int == 7)
    }

    @Test func `diff of a malformed file exits 65`() throws {
        let result = try NF4KitCLI.run([
            "diff", Fixture.path("llama-tiny/fp16"), Fixture.path("torch/hostile/global-os-system.bin"),
        ])
        #expect(result.status == 65)
        #expect(result.stderr.contains("os.system"))
    }
}
