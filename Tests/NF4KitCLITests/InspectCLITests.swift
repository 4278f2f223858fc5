import Foundation
import NF4KitTestSupport
import Testing

@Suite struct InspectCLITests {
    @Test func `inspecting the nf4-dq fixture prints the summary and the memory breakdown`() throws {
        let result = try NF4KitCLI.run(["inspect", Fixture.path("llama-tiny/nf4-dq")])
        #expect(result.status == 0)
        #expect(result.stderr.isEmpty)
        // 2 x (q 65,536 + k 32,768 + v 32,768 + o 65,536 + 3 x 176,128) + 2 x 256,000 + 5 x 256
        #expect(result.stdout.contains("parameters     1,963,264"))
        #expect(result.stdout.contains("tensors        21 (91 stored)"))
        #expect(result.stdout.contains("4-bit weights  14 (nf4, block 64, double quant)"))
        #expect(result.stdout.contains("Memory breakdown"))
        #expect(result.stdout.contains("4-bit codes"))
        #expect(result.stdout.contains("bits per quantized parameter: 4.127"))
        #expect(result.stdout.contains("NF4 + double quant"))
        #expect(result.stdout.contains("█"))
    }

    @Test func `--tensors lists a 4-bit weight as one row`() throws {
        let result = try NF4KitCLI.run(["inspect", "--tensors", Fixture.path("llama-tiny/nf4")])
        #expect(result.status == 0)
        let lines = result.stdout.split(separator: "\n")
        let row = try #require(lines.first { $0.contains("model.layers.0.mlp.down_proj.weight") })
        #expect(row.contains("[256, 688]"))
        #expect(row.contains("nf4"))
        #expect(row.contains("88,064"))
        #expect(!lines.contains { $0.contains(".absmax") || $0.contains("quant_state") })
    }

    @Test func `--json writes one JSON document with a schema version`() throws {
        let result = try NF4KitCLI.run(["inspect", "--json", "--lora-rank", "16", Fixture.path("llama-tiny/fp16")])
        #expect(result.status == 0)
        let root = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(root["schemaVersion"] as? Int == 1)
        let training = try #require(root["training"] as? [String: Any])
        #expect(training["rank"] as? Int == 16)
        #expect(training["adapterDType"] as? String == "f32")
    }

    @Test func `an adapter folder is reported with rank, alpha and targets`() throws {
        let result = try NF4KitCLI.run(["inspect", Fixture.path("llama-tiny/lora")])
        #expect(result.status == 0)
        #expect(result.stdout.contains("Adapter"))
        #expect(result.stdout.contains("rank              8"))
        #expect(result.stdout.contains("alpha             16"))
        #expect(result.stdout.contains("q_proj"))
    }

    @Test func `training memory prints one table`() throws {
        let result = try NF4KitCLI.run([
            "inspect", "--lora-rank", "8", "--lora-targets", "q_proj,v_proj", "--lora-dtype", "bf16",
            Fixture.path("llama-tiny/nf4-dq"),
        ])
        #expect(result.status == 0)
        #expect(result.stdout.contains("Training memory (LoRA r=8 on 4 modules"))
        #expect(result.stdout.contains("QLoRA, 4-bit base"))
        #expect(result.stdout.contains("full fine-tuning, mixed FP16"))
    }

    @Test func `a truncated file exits 65 naming the file and byte offset`() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let path = directory.file("broken.safetensors")
        // header length 100, but only 6 header bytes follow
        try ([100, 0, 0, 0, 0, 0, 0, 0] + Array(#"{"a": "#.utf8)).write(to: path)
        let result = try NF4KitCLI.run(["inspect", path])
        #expect(result.status == 65)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.contains(path))
        #expect(result.stderr.contains("byte 0"))
    }

    @Test func `a malformed 4-bit quant state exits 65 naming the file, byte offset and tensor`() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let path = directory.file("model.safetensors")
        // A hand-made safetensors file: codes, absmax, quant_map and a quant state that is not JSON.
        let blob = Array("{oops}".utf8)
        let header =
            #"{"w.weight":{"dtype":"U8","shape":[64,1],"data_offsets":[0,64]},"w.weight.absmax":{"dtype":"F32","shape":[2],"data_offsets":[64,72]},"w.weight.quant_map":{"dtype":"F32","shape":[16],"data_offsets":[72,136]},"w.weight.quant_state.bitsandbytes__nf4":{"dtype":"U8","shape":[6],"data_offsets":[136,142]}}"#
        var headerBytes = Array(header.utf8)
        while headerBytes.count % 8 != 0 { headerBytes.append(0x20) }
        var bytes: [UInt8] = withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { Array($0) }
        bytes += headerBytes + [UInt8](repeating: 0, count: 136) + blob
        try bytes.write(to: path)
        let result = try NF4KitCLI.run(["inspect", path])
        #expect(result.status == 65)
        #expect(result.stdout.isEmpty)
        // the blob starts at 8 + header + 136; the bad character is its second byte
        let offset = 8 + headerBytes.count + 136 + 1
        #expect(result.stderr.contains("\(path), byte \(offset)"))
        #expect(result.stderr.contains("w.weight.quant_state.bitsandbytes__nf4"))
    }

    @Test func `an unknown LoRA dtype is a usage error`() throws {
        let result = try NF4KitCLI.run([
            "inspect", "--lora-rank", "8", "--lora-dtype", "f16", Fixture.path("llama-tiny/fp16"),
        ])
        #expect(result.status == 64)
        #expect(result.stdout.isEmpty)
    }

    @Test func `a LoRA target that matches nothing is a usage error`() throws {
        let result = try NF4KitCLI.run([
            "inspect", "--lora-rank", "8", "--lora-targets", "w_proj", Fixture.path("llama-tiny/fp16"),
        ])
        #expect(result.status == 64)
        #expect(result.stderr.contains("w_proj"))
    }
}
