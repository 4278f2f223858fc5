import Foundation
import NF4Kit
import NF4KitTestSupport
import Testing

/// `nf4kit convert --skip` with module names as transformers users write `llm_int8_skip_modules` (issue 16 item 4).
@Suite struct SkipModulesCLITests {
    /// The weights written as 4-bit groups, and `llm_int8_skip_modules` of the output's config.
    func quantizedWeights(_ folder: String) throws -> (weights: [String], skipModules: JSONValue?) {
        let source = try ModelSource.open(folder)
        let weights = try BnbQuantizedWeight.groups(in: source.checkpoint.tensors).map(\.weightName).sorted()
        return (weights, source.config?["quantization_config"]?["llm_int8_skip_modules"])
    }

    /// The 14 Linear weights of the golden llama-tiny (2 layers × 7 projections).
    static let linears = (0..<2).flatMap { layer in
        [
            "mlp.down_proj", "mlp.gate_proj", "mlp.up_proj", "self_attn.k_proj", "self_attn.o_proj", "self_attn.q_proj",
            "self_attn.v_proj",
        ].map { "model.layers.\(layer).\($0).weight" }
    }

    @Test func `--skip down_proj leaves every down_proj unquantized and names them in llm_int8_skip_modules`() throws {
        let directory = TemporaryDirectory("nf4kit-skip")
        defer { directory.cleanup() }
        let result = try NF4KitCLI.run([
            "convert", Fixture.path("llama-tiny/fp16"), "-o", directory.file("out"), "--skip", "down_proj",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("12 tensors quantized, 9 kept"), "\(result.stderr)")
        #expect(!result.stderr.contains("warning"))
        let (weights, skipModules) = try quantizedWeights(directory.file("out"))
        #expect(weights == Self.linears.filter { !$0.contains("down_proj") }.sorted())
        #expect(
            skipModules
                == .array([
                    .string("lm_head"), .string("model.layers.0.mlp.down_proj"),
                    .string("model.layers.1.mlp.down_proj"),
                ]))
    }

    @Test func `a module name and the glob that says the same write the same bytes`() throws {
        let directory = TemporaryDirectory("nf4kit-skip")
        defer { directory.cleanup() }
        let name = try NF4KitCLI.run([
            "convert", Fixture.path("llama-tiny/fp16"), "-o", directory.file("name"), "--skip", "down_proj", "--quiet",
        ])
        let glob = try NF4KitCLI.run([
            "convert", Fixture.path("llama-tiny/fp16"), "-o", directory.file("glob"), "--skip", "*down_proj*",
            "--quiet",
        ])
        #expect(name.status == 0 && glob.status == 0, "\(name.stderr) \(glob.stderr)")
        for file in ["model.safetensors", "config.json"] {
            #expect(
                try [UInt8](contentsOf: directory.file("name/" + file))
                    == [UInt8](contentsOf: directory.file("glob/" + file)))
        }
    }

    @Test(arguments: ["layers.0", "mlp", "self_attn", "model.layers.1.self_attn.q_proj"])
    func `a name matches whole components of the module's dotted name`(pattern: String) throws {
        let directory = TemporaryDirectory("nf4kit-skip")
        defer { directory.cleanup() }
        let result = try NF4KitCLI.run([
            "convert", Fixture.path("llama-tiny/fp16"), "-o", directory.file("out"), "--skip", pattern, "--quiet",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let expectedSkipped: [String] =
            switch pattern {
            case "layers.0": Self.linears.filter { $0.hasPrefix("model.layers.0.") }
            case "mlp": Self.linears.filter { $0.contains(".mlp.") }
            case "self_attn": Self.linears.filter { $0.contains(".self_attn.") }
            default: ["model.layers.1.self_attn.q_proj.weight"]
            }
        let (weights, skipModules) = try quantizedWeights(directory.file("out"))
        #expect(weights == Self.linears.filter { !expectedSkipped.contains($0) }.sorted())
        let listed = skipModules?.arrayValue?.compactMap(\.stringValue) ?? []
        #expect(listed == ["lm_head"] + Self.linears.filter(expectedSkipped.contains).map { String($0.dropLast(7)) })
    }

    @Test func `a pattern that selects nothing is warned about on stderr, and the run goes on`() throws {
        let directory = TemporaryDirectory("nf4kit-skip")
        defer { directory.cleanup() }
        // `proj` is no whole component of any name (transformers 5's suffix rule would take q_proj for it).
        let result = try NF4KitCLI.run([
            "convert", Fixture.path("llama-tiny/fp16"), "-o", directory.file("out"), "--skip", "down_prj",
            "--skip", "proj", "--skip", "*zzz*", "--include", "nothing.here",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.contains("warning: --skip 'down_prj' selects no tensor of the input"))
        #expect(result.stderr.contains("warning: --skip 'proj' selects no tensor of the input"))
        #expect(result.stderr.contains("warning: --skip '*zzz*' selects no tensor of the input"))
        #expect(result.stderr.contains("warning: --include 'nothing.here' selects no tensor of the input"))
        #expect(result.stderr.contains("14 tensors quantized"))
        let (_, skipModules) = try quantizedWeights(directory.file("out"))
        #expect(skipModules == .array([.string("lm_head")]), "--skip given: lm_head is listed, as transformers needs")
        let quiet = try NF4KitCLI.run([
            "convert", Fixture.path("llama-tiny/fp16"), "-o", directory.file("quiet"), "--skip", "down_prj", "--quiet",
        ])
        #expect(quiet.status == 0)
        #expect(quiet.stderr.isEmpty, "--quiet leaves only errors")
    }
}
