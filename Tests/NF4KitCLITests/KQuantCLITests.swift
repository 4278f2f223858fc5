import Foundation
import NF4KitCore
import NF4KitFormats
import NF4KitTestSupport
import Testing

/// The k-quant half of the GGUF CLI against llama.cpp's own files: `convert HF -o x.gguf --to TYPE` must equal
/// convert_hf_to_gguf.py --outtype f16 + llama-quantize (golden llama-g/gguf/<TYPE>.gguf) tensor by tensor (order,
/// type, shape, offset, bytes) and key by key (cosmetic names aside); `merge ... --to q4_k_m` the golden
/// merged-Q4_K_M.gguf; a GGUF back to a folder transformers' from-gguf/ reading.
@Suite(.serialized) struct KQuantCLITests {
    static let cosmetic: Set<String> = ["general.name", "general.basename", "general.size_label"]

    static func expectSame(_ path: String, _ goldenName: String) throws {
        let ours = try GGUFFile.read(path: path)
        let golden = try GGUFFile.read(path: Fixture.path("llama-g/gguf/\(goldenName)"))
        #expect(ours.tensors.map(\.name) == golden.tensors.map(\.name), "\(goldenName): tensor order")
        for (mine, theirs) in zip(ours.tensors, golden.tensors) {
            #expect(mine.type == theirs.type, "\(goldenName): \(theirs.name)")
            #expect(mine.dimensions == theirs.dimensions, "\(goldenName): \(theirs.name)")
            #expect(mine.relativeOffset == theirs.relativeOffset, "\(goldenName): \(theirs.name)")
            let same = ours.bytes(of: mine).withUnsafeBytes { a in
                golden.bytes(of: theirs).withUnsafeBytes { b in a.elementsEqual(b) }
            }
            #expect(same, "\(goldenName): bytes of \(theirs.name)")
        }
        let mineKeys = ours.metadata.filter { !cosmetic.contains($0.key) }
        let theirKeys = golden.metadata.filter { !cosmetic.contains($0.key) }
        #expect(mineKeys.map(\.key) == theirKeys.map(\.key), "\(goldenName): key order")
        for (mine, theirs) in zip(mineKeys, theirKeys) {
            #expect(mine.value == theirs.value, "\(goldenName): metadata \(theirs.key)")
        }
    }

    /// Every llama-quantize file type but q8_0 (which convert_hf_to_gguf.py writes itself), spelled as users type it.
    static let fileTypes = [
        "q4_0", "Q4_1", "q5_0", "q5_1", "q2_k", "q3_k_s", "Q3_K_M", "q3_k_l", "q4_k_s", "Q4_K_M", "q5_k_s", "q5_k_m",
        "q6_k", "iq4_nl", "IQ4_XS",
    ]

    @Test(arguments: fileTypes)
    func `convert HF folder --to TYPE equals convert_hf_to_gguf f16 + llama-quantize`(type: String) throws {
        let scratch = TemporaryDirectory("nf4kit-kquant-cli")
        defer { scratch.cleanup() }
        let output = scratch.file("out.gguf")
        let result = try NF4KitCLI.run([
            "convert", Fixture.path("llama-g/hf"), "-o", output, "--to", type, "--threads", "2", "-q",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        try Self.expectSame(output, "\(type.uppercased()).gguf")
    }

    @Test func `gguf-py reads the Q4_K_M we write as llama-quantize's and dequantizes the same values`() throws {
        let scratch = TemporaryDirectory("nf4kit-kquant-cli")
        defer { scratch.cleanup() }
        let output = scratch.file("Q4_K_M.gguf")
        let run = try NF4KitCLI.run(["convert", Fixture.path("llama-g/hf"), "-o", output, "--to", "q4_k_m", "-q"])
        #expect(run.status == 0, "\(run.stderr)")
        let result = try PythonInterop.run(
            script: "Tests/Interop/gguf_compare.py", arguments: [output, Fixture.path("llama-g/gguf/Q4_K_M.gguf")])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.hasPrefix("OK: 21/21 tensors identical"), "\(result.stdout)")
    }

    @Test func `merge base adapter --to q4_k_m equals the golden merged-Q4_K_M`() throws {
        let scratch = TemporaryDirectory("nf4kit-kquant-cli")
        defer { scratch.cleanup() }
        let output = scratch.file("m.gguf")
        let result = try NF4KitCLI.run([
            "merge", Fixture.path("llama-g/hf"), Fixture.path("llama-g/lora"), "-o", output, "--to", "Q4_K_M", "-q",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        try Self.expectSame(output, "merged-Q4_K_M.gguf")
    }

    @Test func `convert F16.gguf --to q4_k_m equals llama-quantize`() throws {
        let scratch = TemporaryDirectory("nf4kit-kquant-cli")
        defer { scratch.cleanup() }
        let output = scratch.file("x.gguf")
        let result = try NF4KitCLI.run([
            "convert", Fixture.path("llama-g/gguf/F16.gguf"), "-o", output, "--to", "q4_k_m", "-q",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        try Self.expectSame(output, "Q4_K_M.gguf")
    }

    @Test func `a GGUF to a folder is transformers' f32 reading by default, and nf4 is that folder quantized`() throws {
        let scratch = TemporaryDirectory("nf4kit-kquant-cli")
        defer { scratch.cleanup() }
        let folder = scratch.file("hf")
        let run = try NF4KitCLI.run(["convert", Fixture.path("llama-g/gguf/Q4_K_M.gguf"), "-o", folder, "-q"])
        #expect(run.status == 0, "\(run.stderr)")
        let ours = try Data(contentsOf: URL(fileURLWithPath: folder + "/model.safetensors"))
        let golden = try Data(contentsOf: URL(fileURLWithPath: Fixture.path("gguf-llama/from-gguf/model.safetensors")))
        #expect(ours == golden)

        let direct = scratch.file("nf4-direct")
        let viaFolder = scratch.file("nf4-via-folder")
        let a = try NF4KitCLI.run([
            "convert", Fixture.path("llama-g/gguf/Q4_K_M.gguf"), "-o", direct, "--to", "nf4", "-q",
        ])
        let b = try NF4KitCLI.run(["convert", folder, "-o", viaFolder, "--to", "nf4", "-q"])
        #expect(a.status == 0 && b.status == 0, "\(a.stderr)\(b.stderr)")
        for name in ["model.safetensors", "config.json"] {
            let x = try Data(contentsOf: URL(fileURLWithPath: direct + "/" + name))
            let y = try Data(contentsOf: URL(fileURLWithPath: viaFolder + "/" + name))
            #expect(x == y, "\(name)")
        }
        #expect(!FileManager.default.fileExists(atPath: direct + ".nf4kit-import"))
    }

    @Test func `a truncated GGUF is refused with exit 65 naming file, offset and tensor`() throws {
        let scratch = TemporaryDirectory("nf4kit-kquant-cli")
        defer { scratch.cleanup() }
        let bytes = try Data(contentsOf: URL(fileURLWithPath: Fixture.path("llama-g/gguf/Q4_K_M.gguf")))
        let truncated = scratch.file("t.gguf")
        try bytes.prefix(900_000).write(to: URL(fileURLWithPath: truncated))
        for arguments in [["-o", scratch.file("x.gguf"), "--to", "q4_0"], ["-o", scratch.file("folder")]] {
            let result = try NF4KitCLI.run(["convert", truncated] + arguments)
            #expect(result.status == 65)
            #expect(result.stderr.contains(truncated) && result.stderr.contains("byte "), "\(result.stderr)")
            #expect(result.stderr.contains("tensor 'blk.1.attn_q.weight'"), "\(result.stderr)")
        }
    }

    /// The golden Q4_K_M.gguf with the type id of blk.0.attn_q.weight's record replaced by `typeID`.
    static func patchedType(_ typeID: UInt32, into path: String) throws {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Fixture.path("llama-g/gguf/Q4_K_M.gguf"))))
        let name = Array("blk.0.attn_q.weight".utf8)
        let record = withUnsafeBytes(of: UInt64(name.count).littleEndian, Array.init) + name
        let start = try #require(
            (0...(bytes.count - record.count)).first { Array(bytes[$0..<($0 + record.count)]) == record })
        let dimsAt = start + record.count
        let dimensionCount = Int(bytes[dimsAt])
        let typeAt = dimsAt + 4 + 8 * dimensionCount
        #expect(bytes[typeAt] == 12)  // Q4_K in the golden file
        withUnsafeBytes(of: typeID.littleEndian) { for (i, byte) in $0.enumerated() { bytes[typeAt + i] = byte } }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    @Test
    func `an unknown type to decode, or a size that does not fit its type, exits 65 naming file, offset and tensor`()
        throws
    {
        let scratch = TemporaryDirectory("nf4kit-kquant-cli")
        defer { scratch.cleanup() }
        let unknown = scratch.file("unknown.gguf"), resized = scratch.file("resized.gguf")
        try Self.patchedType(99, into: unknown)
        try Self.patchedType(0, into: resized)  // F32: 4 bytes per value, more than the Q4_K data it has
        for (input, says) in [(unknown, "tensor 'blk.0.attn_q.weight'"), (resized, "tensor 'blk.0.attn_q.weight'")] {
            for arguments in [
                ["convert", input, "-o", scratch.file("x.gguf"), "--to", "q4_0"],
                ["convert", input, "-o", scratch.file("f")],
                ["diff", Fixture.path("llama-g/gguf/Q4_K_M.gguf"), input],
            ] {
                let result = try NF4KitCLI.run(arguments)
                #expect(result.status == 65, "\(arguments)")
                #expect(result.stderr.contains(input + ", byte "), "\(result.stderr)")
                #expect(result.stderr.contains(says), "\(result.stderr)")
            }
        }
    }

    @Test func `a llama-quantize type needs a .gguf output`() throws {
        let result = try NF4KitCLI.run([
            "convert", Fixture.path("llama-g/hf"), "-o", "/tmp/nf4kit-never", "--to", "q4_k_m",
        ])
        #expect(result.status == 64)
        #expect(result.stderr.contains(".gguf"))
    }
}
