import Foundation
import NF4KitTestSupport
import Testing

/// `merge BASE ADAPTER -o x.gguf` merges and exports in one pass: the merge's checks still stop it, and nothing but
/// the finished GGUF is ever left beside it.
@Suite struct MergeGGUFCLITests {
    @Test func `a delta that overflows the f16 merge exits 1 unless --allow-nonfinite, leaving nothing`() throws {
        let dir = TemporaryDirectory("cli-merge-gguf")
        defer { dir.cleanup() }
        // Weight 1e30 keeps the merged values finite in f32 but far above the f16 maximum (65504) of the merge of
        // an f16 base, which PEFT's merge would save as infinities.
        let arguments = [
            "merge", Fixture.path("llama-g/hf"), Fixture.path("llama-g/lora"), "--weights", "1e30", "-q",
        ]
        let refused = try NF4KitCLI.run(arguments + ["-o", dir.file("out.gguf")])
        #expect(refused.status == 1, "\(refused.stderr)")
        #expect(
            refused.stderr.contains("non-finite") && refused.stderr.contains("--allow-nonfinite"), "\(refused.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
        let allowed = try NF4KitCLI.run(arguments + ["-o", dir.file("allowed.gguf"), "--allow-nonfinite"])
        #expect(allowed.status == 0, "\(allowed.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["allowed.gguf"])
    }
}
