import Foundation
import NF4KitTestSupport
import Testing

/// `nf4kit convert` on PEFT adapters (issue 16 item 1): an adapter folder in gives an adapter folder out, float
/// targets only.
@Suite struct AdapterConvertCLITests {
    @Test(arguments: [[], ["--to", "nf4"], ["--to", "fp4"]])
    func `quantizing an adapter folder exits 65 and says to quantize the base instead`(_ target: [String]) throws {
        let directory = TemporaryDirectory("nf4kit-adapter")
        defer { directory.cleanup() }
        let result = try NF4KitCLI.run(
            ["convert", Fixture.path("llama-tiny/lora"), "-o", directory.file("lora-nf4")] + target)
        #expect(result.status == 65)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.contains("PEFT LoRA adapter"), "\(result.stderr)")
        #expect(result.stderr.contains("trained in 16/32-bit on top of a 4-bit base"))
        #expect(result.stderr.contains("quantize the base model instead"))
        #expect(result.stderr.contains("--to f16, bf16 or f32"))
        #expect(!FileManager.default.fileExists(atPath: directory.file("lora-nf4")))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
    }

    @Test func `a bare file of LoRA factors is refused for nf4 too, naming a factor`() throws {
        let directory = TemporaryDirectory("nf4kit-adapter")
        defer { directory.cleanup() }
        let result = try NF4KitCLI.run([
            "convert", Fixture.path("llama-tiny/lora/adapter_model.safetensors"), "-o", directory.file("q"),
        ])
        #expect(result.status == 65)
        #expect(
            result.stderr.contains("'base_model.model.model.layers.0.mlp.down_proj.lora_A.weight'"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: directory.file("q")))
    }

    @Test func `an adapter_model.bin folder converted to f32 is an adapter folder that merges exactly as the original`()
        throws
    {
        let directory = TemporaryDirectory("nf4kit-adapter")
        defer { directory.cleanup() }
        // The .bin adapter plus a side file, as PEFT's save_pretrained leaves a README.md.
        let input = directory.file("lora-bin")
        try FileManager.default.createDirectory(atPath: input, withIntermediateDirectories: true)
        for name in ["adapter_config.json", "adapter_model.bin"] {
            try FileManager.default.copyItem(atPath: Fixture.path("torch/lora/" + name), toPath: input + "/" + name)
        }
        try Array("# my adapter\n".utf8).write(to: input + "/README.md")

        let converted = try NF4KitCLI.run(["convert", input, "-o", directory.file("out"), "--to", "f32"])
        #expect(converted.status == 0, "\(converted.stderr)")
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: directory.file("out")).sorted()
                == ["README.md", "adapter_config.json", "adapter_model.safetensors"])
        #expect(
            try [UInt8](contentsOf: directory.file("out/adapter_config.json"))
                == [UInt8](contentsOf: input + "/adapter_config.json"))
        #expect(try [UInt8](contentsOf: directory.file("out/README.md")) == Array("# my adapter\n".utf8))

        let fromOriginal = try NF4KitCLI.run([
            "merge", Fixture.path("llama-tiny/fp16"), Fixture.path("llama-tiny/lora"), "-o", directory.file("a"),
            "--quiet",
        ])
        let fromConverted = try NF4KitCLI.run([
            "merge", Fixture.path("llama-tiny/fp16"), directory.file("out"), "-o", directory.file("b"), "--quiet",
        ])
        #expect(fromOriginal.status == 0, "\(fromOriginal.stderr)")
        #expect(fromConverted.status == 0, "\(fromConverted.stderr)")
        #expect(
            try [UInt8](contentsOf: directory.file("a/model.safetensors"))
                == [UInt8](contentsOf: directory.file("b/model.safetensors")))
    }

    @Test(arguments: ["F16", "BF16", "F32"])
    func `an adapter cast to a float type is what PEFT loads: Python reads the original names and rounded values`(
        _ dtype: String
    ) throws {
        let directory = TemporaryDirectory("nf4kit-adapter")
        defer { directory.cleanup() }
        let out = directory.file("lora-\(dtype.lowercased())")
        let result = try NF4KitCLI.run([
            "convert", Fixture.path("llama-tiny/lora"), "-o", out, "--to", dtype.lowercased(),
        ])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("28 tensors written as \(dtype.lowercased())"), "\(result.stderr)")
        let python = try PythonInterop.run(
            script: "Tests/Interop/peft_adapter_folder_check.py",
            arguments: [Fixture.path("llama-tiny/lora"), out, dtype])
        #expect(python.status == 0, "\(python.stderr)")
        #expect(python.stdout.contains("\"tensors\": 28"))

        let merged = try NF4KitCLI.run([
            "merge", Fixture.path("llama-tiny/fp16"), out, "-o", directory.file("merged"), "--no-progress",
        ])
        #expect(merged.status == 0, "\(merged.stderr)")
        #expect(merged.stderr.contains("Merged 14 modules"))
    }

    @Test func `an adapter written as one .safetensors file keeps its tensor names`() throws {
        let directory = TemporaryDirectory("nf4kit-adapter")
        defer { directory.cleanup() }
        let out = directory.file("lora.safetensors")
        let result = try NF4KitCLI.run([
            "convert", Fixture.path("llama-tiny/lora"), "-o", out, "--to", "f16", "--quiet",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let inspect = try NF4KitCLI.run(["inspect", out, "--tensors"])
        #expect(inspect.status == 0, "\(inspect.stderr)")
        #expect(inspect.stdout.contains("base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight"))
    }
}
