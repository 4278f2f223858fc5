import Foundation
import NF4KitTestSupport
import Testing

/// What a new user tried with GGUF outputs and inputs, and what nf4kit now says or does (second new-user trial).
@Suite struct GGUFMistakesCLITests {
    @Test func `a LoRA adapter with a llama-quantize type is refused, not written as F32 under that name`() throws {
        let dir = TemporaryDirectory("cli-gguf-mistakes")
        defer { dir.cleanup() }
        let result = try NF4KitCLI.run([
            "convert", Fixture.path("llama-g/lora"), "-o", dir.file("l.gguf"), "--to", "q4_k_m",
        ])
        #expect(result.status == 64, "\(result.stderr)")
        #expect(result.stderr.contains("a llama.cpp LoRA adapter holds f32, f16, bf16 or q8_0"), "\(result.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
    }

    @Test func `merge -o x.gguf prints the warning that the adapter was made for another base`() throws {
        let dir = TemporaryDirectory("cli-gguf-mistakes")
        defer { dir.cleanup() }
        // llama3-rope's adapter names llama3-bpe/hf as its base, whose config differs from this one.
        let base = try Llama3RopeFixture.folder(in: dir)
        let result = try NF4KitCLI.run([
            "merge", base, Fixture.path("llama3-rope/lora"), "-o", dir.file("m.gguf"), "--no-progress",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("Warning: "), "\(result.stderr)")
        #expect(result.stderr.contains("the adapter was made for base"), "\(result.stderr)")
    }

    @Test func `a BPE GGUF diffs against its folder without importing the tokenizer`() throws {
        let dir = TemporaryDirectory("cli-gguf-mistakes")
        defer { dir.cleanup() }
        let folder = try LlamaBPEFixture.folder(in: dir)
        let reference = try LlamaBPEFixture.reference(in: dir)
        let result = try NF4KitCLI.run(["diff", folder, reference])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("11 tensors in both, 11 identical"), "\(result.stdout)")
    }

    @Test func `merge --to nf4 into a .gguf says where a 4-bit merge goes`() throws {
        let dir = TemporaryDirectory("cli-gguf-mistakes")
        defer { dir.cleanup() }
        let result = try NF4KitCLI.run([
            "merge", Fixture.path("llama-g/hf"), Fixture.path("llama-g/lora"), "-o", dir.file("m.gguf"), "--to", "nf4",
        ])
        #expect(result.status == 64, "\(result.stderr)")
        #expect(result.stderr.contains("merge writes a 4-bit result to .safetensors or a folder"), "\(result.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
    }

    @Test func `requantizing a k-quant GGUF warns that the errors add up, and an F16 one does not`() throws {
        let dir = TemporaryDirectory("cli-gguf-mistakes")
        defer { dir.cleanup() }
        let again = try NF4KitCLI.run([
            "convert", Fixture.path("llama-g/gguf/Q4_K_M.gguf"), "-o", dir.file("q8.gguf"), "--to", "q8_0",
        ])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stderr.contains("warning: 16 tensors were already quantized"), "\(again.stderr)")
        let first = try NF4KitCLI.run([
            "convert", Fixture.path("llama-g/gguf/F16.gguf"), "-o", dir.file("q4.gguf"), "--to", "q4_k_m",
        ])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(!first.stderr.contains("warning"), "\(first.stderr)")
    }

    @Test func `an adapter that does not fit its base says which base it took and how to give another`() throws {
        let dir = TemporaryDirectory("cli-gguf-mistakes")
        defer { dir.cleanup() }
        // llama3-rope's adapter names llama3-bpe/hf (a 2-head model) in base_model_name_or_path, and is made for an
        // 8-head one: without --base the shapes do not fit.
        let result = try NF4KitCLI.run(["convert", Fixture.path("llama3-rope/lora"), "-o", dir.file("l.gguf")])
        #expect(result.status == 65, "\(result.stderr)")
        #expect(
            result.stderr.contains("from base_model_name_or_path; give --base BASE for another"), "\(result.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
    }
}
