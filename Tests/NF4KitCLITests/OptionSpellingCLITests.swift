import Foundation
import NF4KitCore
import NF4KitTestSupport
import Testing

/// The spellings people type for types, profiles, block sizes and shard sizes, through the built binary.
@Suite struct OptionSpellingCLITests {
    /// A file with one F32 [2, 64] weight, written by hand.
    static func plainFile(in dir: TemporaryDirectory) throws -> String {
        let path = dir.file("plain.safetensors")
        let values = (0..<128).map { Float($0) / 128 - 0.5 }
        try BnbInputCLITests.safetensors([("layer.weight", "F32", [2, 64], BnbInputCLITests.f32(values))]).write(
            to: path)
        return path
    }

    @Test(arguments: [
        ("fp16", DType.f16), ("float16", .f16), ("half", .f16), ("F16", .f16), ("FP16", .f16),
        ("bf16", .bf16), ("BFloat16", .bf16), ("BF16", .bf16), ("fp32", .f32), ("Float32", .f32), ("f32", .f32),
    ])
    func `convert --to takes the float spellings of PyTorch and transformers in any case`(
        spelling: String, dtype: DType
    ) throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let input = try Self.plainFile(in: dir)
        let result = try NF4KitCLI.run([
            "convert", input, "-o", dir.file("out.safetensors"), "--to", spelling, "--quiet",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try TestSafetensors(path: dir.file("out.safetensors"))["layer.weight"]?.dtype == dtype)
    }

    @Test(arguments: ["NF4", "nf4", "Nf4", "FP4"])
    func `convert --to takes 4-bit names in any case`(spelling: String) throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let input = try Self.plainFile(in: dir)
        let result = try NF4KitCLI.run([
            "convert", input, "-o", dir.file("out.safetensors"), "--to", spelling, "--profile", "CPU", "--quiet",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let blob = spelling.lowercased() == "fp4" ? "bitsandbytes__fp4" : "bitsandbytes__nf4"
        #expect(try TestSafetensors(path: dir.file("out.safetensors"))["layer.weight.quant_state." + blob] != nil)
    }

    /// Whether an argument-parser error lists `value` (`'a', 'b' or 'c'`, or one `- value` line each for long lists),
    /// or contains the text of a custom message.
    static func lists(_ stderr: String, _ value: String) -> Bool {
        stderr.contains("'\(value)'")
            || stderr.split(separator: "\n").contains { $0.trimmingCharacters(in: .whitespaces) == "- \(value)" }
            || (value.contains(" ") && stderr.contains(value))
    }

    @Test func `a refused value is a usage error that lists the accepted values`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let input = try Self.plainFile(in: dir)
        let out = dir.file("out.safetensors")
        for (option, value, listed) in [
            ("--to", "int3", ["nf4", "fp4", "f16", "bf16", "f32", "q8_0", "q4_k_m"]),
            ("--blocksize", "48", ["32", "64", "128", "256", "512", "1024", "2048", "4096"]),
            ("--compute-dtype", "f8", ["f16", "bf16", "f32"]),
            ("--profile", "tpu", ["cpu", "cuda"]),
            ("--max-shard-size", "lots", ["5GB, 30mb, 500MiB, 2GiB"]),
            ("--max-shard-size", "0", ["5GB, 30mb, 500MiB, 2GiB"]),
        ] {
            let result = try NF4KitCLI.run(["convert", input, "-o", out, option, value])
            #expect(result.status == 64, "\(option) \(value): \(result.stderr)")
            #expect(result.stderr.contains("'\(value)' is invalid for '\(option)"), "\(result.stderr)")
            for item in listed { #expect(Self.lists(result.stderr, item), "\(option) \(value): \(result.stderr)") }
            #expect(!FileManager.default.fileExists(atPath: out))
        }
        // A llama-quantize type is a value --to knows, refused here because the output is not a .gguf.
        let gguf = try NF4KitCLI.run(["convert", input, "-o", out, "--to", "Q8_0"])
        #expect(gguf.status == 64, "\(gguf.stderr)")
        #expect(gguf.stderr.contains(".gguf"), "\(gguf.stderr)")
        for item in ["nf4", "fp4", "f16", "bf16", "f32"] { #expect(Self.lists(gguf.stderr, item), "\(gguf.stderr)") }
        let merge = try NF4KitCLI.run([
            "merge", Fixture.path("llama-tiny/fp16"), Fixture.path("llama-tiny/lora"), "-o", out, "--to", "q4_0",
        ])
        #expect(merge.status == 64)
        for item in ["same", "f16", "bf16", "f32", "nf4", "fp4"] {
            #expect(Self.lists(merge.stderr, item), "\(merge.stderr)")
        }
        // q8_0 is a GGUF type: accepted, then refused for a safetensors output.
        let q8 = try NF4KitCLI.run(["convert", input, "-o", out, "--to", "Q8_0"])
        #expect(q8.status == 64)
        #expect(q8.stderr.contains("is a GGUF type"), "\(q8.stderr)")
        let lora = try NF4KitCLI.run([
            "inspect", Fixture.path("llama-tiny/fp16"), "--lora-rank", "8", "--lora-dtype", "f16",
        ])
        #expect(lora.status == 64)
        #expect(Self.lists(lora.stderr, "f32") && Self.lists(lora.stderr, "bf16"), "\(lora.stderr)")
    }

    @Test func `compute dtype, merge target, LoRA dtype and fixture dtype take the same spellings`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let converted = try NF4KitCLI.run([
            "convert", Fixture.path("llama-tiny/fp16"), "-o", dir.file("nf4"), "--to", "NF4", "--compute-dtype",
            "Float16",
            "--quiet",
        ])
        #expect(converted.status == 0, "\(converted.stderr)")
        let config = try String(contentsOfFile: dir.file("nf4/config.json"), encoding: .utf8)
        #expect(config.contains(#""bnb_4bit_compute_dtype": "float16""#))
        let merged = try NF4KitCLI.run([
            "merge", Fixture.path("llama-tiny/fp16"), Fixture.path("llama-tiny/lora"), "-o", dir.file("m"), "--to",
            "FP32",
            "--quiet",
        ])
        #expect(merged.status == 0, "\(merged.stderr)")
        #expect(try TestSafetensors(path: dir.file("m/model.safetensors")).tensors.allSatisfy { $0.dtype == .f32 })
        let inspect = try NF4KitCLI.run([
            "inspect", Fixture.path("llama-tiny/fp16"), "--lora-rank", "8", "--lora-dtype", "BFloat16", "--json",
        ])
        #expect(inspect.status == 0, "\(inspect.stderr)")
        let fixture = try NF4KitCLI.run(["fixture", "tiny", "-o", dir.file("t"), "--dtype", "BF16", "--quiet"])
        #expect(fixture.status == 0, "\(fixture.stderr)")
        #expect(try TestSafetensors(path: dir.file("t/model.safetensors"))["lm_head.weight"]?.dtype == .bf16)
    }

    @Test(arguments: [
        ("1mb", 1_000_000), ("1MB", 1_000_000), ("1MiB", 1_048_576), ("0.001gib", 1_073_741), ("1000000", 1_000_000),
    ])
    func `max shard size takes transformers' units in any case`(spelling: String, bytes: Int) throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let result = try NF4KitCLI.run([
            "convert", Fixture.path("llama-tiny/fp16"), "-o", dir.file("out"), "--to", "f32", "--max-shard-size",
            spelling,
            "--quiet",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        // The f32 copy is about 8 MB, so every spelling gives several shards, none above the limit.
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.file("out")).filter {
            $0.hasSuffix(".safetensors")
        }
        #expect(files.count > 1)
        for file in files {
            let size = try FileManager.default.attributesOfItem(atPath: dir.file("out/" + file))[.size] as? Int ?? .max
            let largestTensor = 1000 * 256 * 4  // embed_tokens / lm_head in f32 may exceed a small limit on their own
            #expect(size <= max(bytes, largestTensor) + 4096, "\(file): \(size) bytes")
        }
    }
}
