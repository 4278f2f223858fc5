import Foundation
import NF4Kit
import NF4KitCore
import NF4KitFormats
import NF4KitTestSupport
import Testing

/// `nf4kit convert` of a folder with Llama 3.1-style rope scaling (`rope_type: "llama3"`, Fixtures/files/llama3-rope)
/// against what llama.cpp's own tools wrote: the F32 `rope_freqs.weight` first, no rope scaling keys.
@Suite struct Llama3RopeCLITests {
    func compare(_ ours: String, _ reference: String) throws -> String {
        let compare = try PythonInterop.run(script: "Tests/Interop/gguf_compare.py", arguments: [ours, reference])
        #expect(compare.status == 0, "\(compare.stdout)\(compare.stderr)")
        return compare.stdout
    }

    @Test func `convert -o x.gguf writes convert_hf_to_gguf.py's rope_freqs and file (gguf_compare.py)`() throws {
        let dir = TemporaryDirectory("cli-llama3-rope")
        defer { dir.cleanup() }
        let folder = try Llama3RopeFixture.folder(in: dir)
        let reference = Llama3RopeFixture.reference("BF16.gguf")
        let out = dir.file("ours.gguf")
        let result = try NF4KitCLI.run(["convert", folder, "-o", out, "--quiet"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try compare(out, reference).hasPrefix("OK: 12/12 tensors identical"))
        // Same order, offsets and keys too: the converter yields rope_freqs.weight before the model's tensors.
        let ours = try GGUFFile.read(path: out)
        let golden = try GGUFFile.read(path: reference)
        #expect(ours.tensors.map(\.name) == golden.tensors.map(\.name))
        #expect(ours.tensors.first?.name == "rope_freqs.weight")
        #expect(ours.tensors.map(\.relativeOffset) == golden.tensors.map(\.relativeOffset))
        #expect(ours.metadata.map(\.key) == golden.metadata.map(\.key))
        #expect(!ours.metadata.contains { $0.key.hasPrefix("llama.rope.scaling") })
    }

    @Test func `--to q4_k_m keeps rope_freqs F32 and equals convert_hf_to_gguf f16 + llama-quantize`() throws {
        let dir = TemporaryDirectory("cli-llama3-rope")
        defer { dir.cleanup() }
        let folder = try Llama3RopeFixture.folder(in: dir)
        let out = dir.file("Q4_K_M.gguf")
        let result = try NF4KitCLI.run(["convert", folder, "-o", out, "--to", "q4_k_m", "--quiet"])
        #expect(result.status == 0, "\(result.stderr)")
        let ours = try GGUFFile.read(path: out)
        let rope = try #require(ours.tensors.first { $0.name == "rope_freqs.weight" })
        #expect(rope.type == .f32 && rope.dimensions == [64])
        let reference = Llama3RopeFixture.reference("Q4_K_M.gguf")
        #expect(try compare(out, reference).hasPrefix("OK: 12/12 tensors identical"))
        #expect(ours.tensors.map(\.name) == (try GGUFFile.read(path: reference)).tensors.map(\.name))
    }

    @Test func `a GGUF with rope_freqs reads back to a folder without it, as transformers' loader skips it`() throws {
        let dir = TemporaryDirectory("cli-llama3-rope")
        defer { dir.cleanup() }
        let out = dir.file("back")
        let result = try NF4KitCLI.run(["convert", Llama3RopeFixture.reference("BF16.gguf"), "-o", out, "--quiet"])
        #expect(result.status == 0, "\(result.stderr)")
        let checkpoint = try ModelSource.open(out).checkpoint
        #expect(checkpoint.tensors.count == 11)
        #expect(!checkpoint.tensors.contains { $0.name.contains("rope") })
        let original = try ModelSource.open(Fixture.path("llama3-rope/hf")).checkpoint
        #expect(Set(checkpoint.tensors.map(\.name)) == Set(original.tensors.map(\.name)))
    }
}

extension Llama3RopeCLITests {
    @Test func `merge -o x.gguf writes rope_freqs and the converter's keys (gguf_compare.py --keys-only)`() throws {
        let dir = TemporaryDirectory("cli-llama3-rope")
        defer { dir.cleanup() }
        let folder = try Llama3RopeFixture.folder(in: dir)
        let reference = Llama3RopeFixture.reference("BF16.gguf")
        let out = dir.file("merged.gguf")
        let result = try NF4KitCLI.run(
            ["merge", folder, Fixture.path("llama3-rope/lora"), "-o", out, "--to", "bf16", "--quiet"])
        #expect(result.status == 0, "\(result.stderr)")
        let compare = try PythonInterop.run(
            script: "Tests/Interop/gguf_compare.py", arguments: [out, reference, "--keys-only"])
        #expect(compare.status == 0 && compare.stdout.hasPrefix("OK:"), "\(compare.stdout)\(compare.stderr)")
        let ours = try GGUFFile.read(path: out)
        let golden = try GGUFFile.read(path: reference)
        #expect(ours.tensors.map(\.name) == golden.tensors.map(\.name))
        let rope = try #require(ours.tensors.first)
        let same = ours.bytes(of: rope).withUnsafeBytes { a in
            golden.bytes(of: golden.tensors[0]).withUnsafeBytes { b in a.elementsEqual(b) }
        }
        #expect(rope.name == "rope_freqs.weight" && same)
    }
}
