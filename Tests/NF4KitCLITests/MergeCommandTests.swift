import Foundation
import NF4Kit
import NF4KitTestSupport
import Testing

/// Runs the built `nf4kit merge` binary and checks exit codes, stderr and the output files.
@Suite struct MergeCommandTests {
    /// Runs `nf4kit merge ARGUMENTS` through the shared runner.
    func run(_ arguments: [String]) throws -> NF4KitCLI.Result { try NF4KitCLI.run(["merge"] + arguments) }

    @Test func `merging the golden adapter exits 0, writes the folder and summarises on stderr`() throws {
        let directory = TemporaryDirectory("nf4kit-cli-merge")
        defer { directory.cleanup() }
        let result = try run([
            Fixture.path("llama-tiny/fp16"), Fixture.path("llama-tiny/lora"), "-o", directory.file("out"),
        ])
        #expect(result.status == 0)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.contains("Merged 14 modules"))
        #expect(FileManager.default.fileExists(atPath: directory.file("out/model.safetensors")))
        #expect(FileManager.default.fileExists(atPath: directory.file("out/config.json")))
    }

    @Test func `the adapter saved as adapter_model.bin merges exactly as the safetensors one`() throws {
        let directory = TemporaryDirectory("nf4kit-cli-merge")
        defer { directory.cleanup() }
        let fromSafetensors = try run([
            Fixture.path("llama-tiny/fp16"), Fixture.path("llama-tiny/lora"), "-o", directory.file("a"), "--quiet",
        ])
        let fromBin = try run([
            Fixture.path("llama-tiny/fp16"), Fixture.path("torch/lora"), "-o", directory.file("b"), "--quiet",
        ])
        #expect(fromSafetensors.status == 0, "\(fromSafetensors.stderr)")
        #expect(fromBin.status == 0, "\(fromBin.stderr)")
        #expect(
            try [UInt8](contentsOf: directory.file("a/model.safetensors"))
                == [UInt8](contentsOf: directory.file("b/model.safetensors")))
    }

    @Test func `an existing output needs --force (exit 74), and --force replaces it`() throws {
        let directory = TemporaryDirectory("nf4kit-cli-merge")
        defer { directory.cleanup() }
        try FileManager.default.createDirectory(atPath: directory.file("out"), withIntermediateDirectories: true)
        let arguments = [
            Fixture.path("llama-tiny/fp16"), Fixture.path("llama-tiny/lora"), "-o", directory.file("out"), "--quiet",
        ]
        let refused = try run(arguments)
        #expect(refused.status == 74)
        #expect(refused.stderr.contains("--force"))
        let forced = try run(arguments + ["--force"])
        #expect(forced.status == 0)
        #expect(forced.stderr.isEmpty)
        #expect(FileManager.default.fileExists(atPath: directory.file("out/model.safetensors")))
    }

    @Test func `an adapter key with no base tensor exits 65 naming the key`() throws {
        let directory = TemporaryDirectory("nf4kit-cli-merge")
        defer { directory.cleanup() }
        let adapter = directory.file("adapter")
        try FileManager.default.createDirectory(atPath: adapter, withIntermediateDirectories: true)
        try Array("{\"peft_type\": \"LORA\", \"r\": 2, \"lora_alpha\": 4}".utf8).write(
            to: adapter + "/adapter_config.json")
        func tensor(_ name: String, _ shape: [Int]) -> Tensor {
            let count = Shape(shape).elementCount
            let bytes = TensorBytes(copyingElementsOf: [Float](repeating: 0.5, count: count).map { $0.bitPattern })
            return Tensor(
                descriptor: TensorDescriptor(
                    name: name, dtype: .f32, shape: Shape(shape), file: "memory", fileOffset: 0, byteCount: bytes.count),
                bytes: bytes)
        }
        try SafetensorsWriter.write(
            [
                tensor("base_model.model.model.layers.7.self_attn.q_proj.lora_A.weight", [2, 256]),
                tensor("base_model.model.model.layers.7.self_attn.q_proj.lora_B.weight", [256, 2]),
            ], metadata: [("format", "pt")], to: adapter + "/adapter_model.safetensors", overwrite: false)
        let result = try run([Fixture.path("llama-tiny/fp16"), adapter, "-o", directory.file("out")])
        #expect(result.status == 65)
        #expect(result.stderr.contains("base_model.model.model.layers.7.self_attn.q_proj.lora_A.weight"))
        #expect(!FileManager.default.fileExists(atPath: directory.file("out")))
    }

    @Test(arguments: [
        ["--weights", "1,2"],
        ["--to", "f16", "--blocksize", "64"],
        ["--to", "bf16", "--no-double-quant"],
        ["--to", "int8"],
        ["--to", "nf4", "--blocksize", "48"],
    ])
    func `bad option combinations exit 64`(extra: [String]) throws {
        let directory = TemporaryDirectory("nf4kit-cli-merge")
        defer { directory.cleanup() }
        let result = try run(
            [Fixture.path("llama-tiny/fp16"), Fixture.path("llama-tiny/lora"), "-o", directory.file("out")] + extra)
        #expect(result.status == 64)
        #expect(!FileManager.default.fileExists(atPath: directory.file("out")))
    }

    @Test func `a refused adapter config exits 65 with the reason`() throws {
        let directory = TemporaryDirectory("nf4kit-cli-merge")
        defer { directory.cleanup() }
        let adapter = directory.file("adapter")
        try FileManager.default.createDirectory(atPath: adapter, withIntermediateDirectories: true)
        var config = try [UInt8](contentsOf: Fixture.path("llama-tiny/lora/adapter_config.json"))
        config = Array(
            String(decoding: config, as: UTF8.self).replacingOccurrences(
                of: "\"layer_replication\": null", with: "\"layer_replication\": [[0, 2], [0, 2]]"
            ).utf8)
        try config.write(to: adapter + "/adapter_config.json")
        try [UInt8](contentsOf: Fixture.path("llama-tiny/lora/adapter_model.safetensors")).write(
            to: adapter + "/adapter_model.safetensors")
        let result = try run([Fixture.path("llama-tiny/fp16"), adapter, "-o", directory.file("out")])
        #expect(result.status == 65)
        #expect(result.stderr.contains("layer_replication"))
    }

    @Test func `a delta that overflows the f16 output exits 1 unless --allow-nonfinite`() throws {
        let directory = TemporaryDirectory("nf4kit-cli-merge")
        defer { directory.cleanup() }
        // Weight 1e30 keeps every merged value finite in f32 but far above the f16 maximum (65504): the output
        // would hold infinities, which the check after rounding to the output dtype must catch.
        let arguments = [
            Fixture.path("llama-tiny/fp16"), Fixture.path("llama-tiny/lora"), "--weights", "1e30", "--quiet",
        ]
        let refused = try run(arguments + ["-o", directory.file("out")])
        #expect(refused.status == 1, "\(refused.stderr)")
        #expect(refused.stderr.contains("non-finite"))
        #expect(refused.stderr.contains("overflows"))
        #expect(refused.stderr.contains("--allow-nonfinite"))
        #expect(!FileManager.default.fileExists(atPath: directory.file("out")))
        let allowed = try run(arguments + ["-o", directory.file("allowed"), "--allow-nonfinite"])
        #expect(allowed.status == 0, "\(allowed.stderr)")
        #expect(FileManager.default.fileExists(atPath: directory.file("allowed/model.safetensors")))
    }
}
