import Foundation
import NF4KitTestSupport
import Testing

/// `inspect --what-if` for today's models (issue 16, item 8).
@Suite struct WhatIfCLITests {
    @Test func `--what-if 70b sizes Llama-3.1-70B and shows which GPUs fit each use`() throws {
        let result = try NF4KitCLI.run(["inspect", "--what-if", "70b,8b"])
        #expect(result.status == 0)
        #expect(result.stderr.isEmpty)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        let header = try #require(lines.first { $0.contains("use") && $0.contains("memory") })
        for gpu in ["16 GB", "24 GB", "40 GB", "48 GB", "80 GB"] { #expect(header.contains(gpu)) }
        #expect(lines.contains { $0.hasPrefix("  70b ") && $0.contains("70.55B") })
        #expect(lines.contains { $0.contains("(Llama-3.1-70B)") })
        // 70B in 4-bit (about 37 GiB) fits 40, 48 and 80 GB cards but not 16 or 24; FP16 (131 GiB) fits none.
        let fourBit = try #require(lines.first { $0.contains("inference 4-bit") })
        #expect(fourBit.hasSuffix("-      -    yes    yes    yes"))
        let fp16 = try #require(lines.first { $0.contains("inference FP16") })
        #expect(fp16.hasSuffix("-      -      -      -      -"))
        #expect(lines.contains { $0.contains("inference 8-bit") })
        #expect(lines.contains { $0.contains("QLoRA (NF4+DQ base)") })
    }

    @Test func `--what-if takes model names and config.json paths, and its JSON says which GPUs fit`() throws {
        let config = Fixture.path("llama-tiny/fp16/config.json")
        let result = try NF4KitCLI.run(["inspect", "--what-if", "mistral-7b,qwen2.5-7b,405b,\(config)", "--json"])
        #expect(result.status == 0)
        let root = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let whatIf = try #require(root["whatIf"] as? [String: Any])
        #expect(whatIf["schemaVersion"] as? Int == 2)
        #expect(whatIf["gpuSizesGiB"] as? [Int] == [16, 24, 40, 48, 80])
        let models = try #require(whatIf["models"] as? [[String: Any]])
        #expect(models.map { $0["label"] as? String } == ["mistral-7b", "qwen2.5-7b", "405b", config])
        #expect(
            models.map { $0["publishedModel"] as? String } == ["Mistral-7B-v0.1", "Qwen2.5-7B", "Llama-3.1-405B", nil])
        #expect(models[3]["parameterCount"] as? Int == 1_963_264)
        let mistral = try #require(models[0]["fits"] as? [[String: Any]])
        #expect(
            mistral.map { $0["use"] as? String } == [
                "inference-fp16", "inference-int8", "inference-nf4", "training-full-fp16", "training-lora-fp16",
                "training-qlora",
            ])
        // Mistral 7B (7,241,732,096 parameters) in FP16: 2 bytes each, 13.5 GiB, fits every card listed.
        #expect(mistral[0]["byteCount"] as? Int == 2 * 7_241_732_096)
        #expect(mistral[0]["fitsGiB"] as? [Int] == [16, 24, 40, 48, 80])
        let architecture = try #require(models[1]["architecture"] as? [String: Any])
        #expect(architecture["attentionBias"] as? Bool == true)
        #expect(architecture["kvHeads"] as? Int == 4)
    }

    @Test func `an unknown size lists the accepted ones, and a missing config.json is an I/O error`() throws {
        let unknown = try NF4KitCLI.run(["inspect", "--what-if", "20b"])
        #expect(unknown.status == 64)
        #expect(unknown.stderr.contains("405b") && unknown.stderr.contains("qwen2.5-72b"))
        let missing = try NF4KitCLI.run(["inspect", "--what-if", "no/such/config.json"])
        #expect(missing.status == 74)
    }
}
