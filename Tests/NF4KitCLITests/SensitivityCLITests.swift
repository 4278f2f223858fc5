import Foundation
import NF4KitTestSupport
import Testing

@Suite struct SensitivityCLITests {
    @Test func `--sensitivity on llama-tiny fp16 prints the error table and the chart`() throws {
        let result = try NF4KitCLI.run(["inspect", "--sensitivity", Fixture.path("llama-tiny/fp16")])
        #expect(result.status == 0)
        #expect(result.stderr.isEmpty)
        #expect(
            result.stdout.contains("Quantization sensitivity (14 weights that convert quantizes, 1,449,984 parameters"))
        let lines = result.stdout.split(separator: "\n")
        let header = try #require(lines.first { $0.contains("scheme") && $0.contains("RMSE") && $0.contains("SNR dB") })
        #expect(header.contains("bits/param"))
        let nf4dq = try #require(lines.first { $0.hasPrefix("  nf4-dq ") })
        #expect(nf4dq.contains("4.127"))
        #expect(lines.contains { $0.hasPrefix("  int4 ") })
        #expect(result.stdout.contains("By layer type"))
        #expect(result.stdout.contains("By component"))
        #expect(result.stdout.contains("█"))
        #expect(!result.stdout.contains("Per tensor"))
    }

    @Test func `--sensitivity --tensors adds a row per weight`() throws {
        let result = try NF4KitCLI.run([
            "inspect", "--sensitivity", "--tensors", "--schemes", "nf4,int4", Fixture.path("llama-tiny/fp16"),
        ])
        #expect(result.status == 0)
        let lines = result.stdout.split(separator: "\n")
        let row = try #require(lines.first { $0.contains("model.layers.1.mlp.down_proj.weight") })
        #expect(row.contains("[256, 688]"))
        #expect(!lines.contains { $0.contains("lm_head") || $0.contains("embed_tokens") })
    }

    @Test func `--sensitivity --json parses and holds every scheme for the whole model`() throws {
        let result = try NF4KitCLI.run(["inspect", "--sensitivity", "--json", Fixture.path("llama-tiny/fp16")])
        #expect(result.status == 0)
        let root = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(root["schemaVersion"] as? Int == 1)
        #expect(root["whatIf"] is NSNull)
        let sensitivity = try #require(root["sensitivity"] as? [String: Any])
        #expect(sensitivity["blocksize"] as? Int == 64)
        #expect((sensitivity["tensors"] as? [Any])?.count == 14)
        let model = try #require(sensitivity["model"] as? [String: Any])
        let schemes = try #require(model["schemes"] as? [[String: Any]])
        #expect(
            schemes.map { $0["scheme"] as? String } == [
                "nf4", "nf4-dq", "fp4", "fp4-dq", "int4", "q4_0", "q8_0", "q4_k", "q5_k", "q6_k", "iq4_nl", "iq4_xs",
                "bf16",
            ])
        let nf4 = try #require(schemes.first)
        #expect(nf4["parameterCount"] as? Int == 1_449_984)
        #expect((nf4["rmse"] as? Double).map { $0 > 0 } == true)
        let types = try #require(sensitivity["byLayerType"] as? [[String: Any]])
        #expect(types.map { $0["label"] as? String } == ["q", "k", "v", "o", "gate", "up", "down"])
    }

    @Test func `--what-if on a config.json lists the model first, then the Llama sizes`() throws {
        let result = try NF4KitCLI.run([
            "inspect", "--what-if", "7b,13b,30b,65b", "--lora-rank", "8", "--json",
            Fixture.path("llama-tiny/fp16/config.json"),
        ])
        #expect(result.status == 0)
        let root = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let whatIf = try #require(root["whatIf"] as? [String: Any])
        #expect(whatIf["loraRank"] as? Int == 8)
        let models = try #require(whatIf["models"] as? [[String: Any]])
        #expect(models.map { $0["label"] as? String } == ["config.json", "7b", "13b", "30b", "65b"])
        #expect(models.first?["parameterCount"] as? Int == 1_963_264)
        #expect(models[1]["parameterCount"] as? Int == 6_738_415_616)
    }

    @Test func `--what-if alone prints a table of the sizes`() throws {
        let result = try NF4KitCLI.run(["inspect", "--what-if", "7b,65b"])
        #expect(result.status == 0)
        #expect(result.stdout.contains("What-if memory"))
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.contains { $0.hasPrefix("  7b ") && $0.contains("6.74B") })
        #expect(lines.contains { $0.hasPrefix("  65b ") })
        #expect(result.stdout.contains("QLoRA (NF4+DQ base)"))
    }

    @Test func `an unknown scheme or size is a usage error`() throws {
        let scheme = try NF4KitCLI.run([
            "inspect", "--sensitivity", "--schemes", "nf4,q3_k", Fixture.path("llama-tiny/fp16"),
        ])
        #expect(scheme.status == 64)
        #expect(scheme.stderr.contains("q3_k"))
        let size = try NF4KitCLI.run(["inspect", "--what-if", "20b"])
        #expect(size.status == 64)
        let blocksize = try NF4KitCLI.run([
            "inspect", "--sensitivity", "--blocksize", "48", Fixture.path("llama-tiny/fp16"),
        ])
        #expect(blocksize.status == 64)
        let missing = try NF4KitCLI.run(["inspect", "--sensitivity"])
        #expect(missing.status == 64)
    }
}
