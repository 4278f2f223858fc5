import Foundation
import NF4KitTestSupport
import Testing

/// `nf4kit convert` end to end through the built binary: golden folders byte for byte, exit codes, streams.
@Suite struct ConvertCLITests {
    @Test(arguments: [
        ("nf4-dq", [String]()), ("nf4", ["--no-double-quant"]), ("fp4-dq", ["--to", "fp4"]),
    ])
    func `converting golden fp16 reproduces the bitsandbytes folder byte for byte`(
        golden: String, options: [String]
    ) throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let result = try NF4KitCLI.run(["convert", Fixture.path("llama-tiny/fp16"), "-o", dir.file("out")] + options)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.isEmpty, "stdout carries no diagnostics")
        #expect(result.stderr.contains("14 tensors quantized, 7 kept"))
        for file in ["model.safetensors", "config.json"] {
            #expect(
                try [UInt8](contentsOf: dir.file("out/\(file)"))
                    == [UInt8](contentsOf: Fixture.path("llama-tiny/\(golden)/\(file)")),
                "\(file) differs from golden \(golden)")
        }
    }

    @Test func `dequantizing then quantizing again gives the golden nf4 file back`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let back = try NF4KitCLI.run([
            "convert", Fixture.path("llama-tiny/nf4"), "-o", dir.file("f16"), "--to", "f16", "--quiet",
        ])
        #expect(back.status == 0, "\(back.stderr)")
        #expect(back.stderr.isEmpty, "--quiet prints nothing")
        let config = try String(contentsOfFile: dir.file("f16/config.json"), encoding: .utf8)
        #expect(!config.contains("quantization_config"))
        let again = try NF4KitCLI.run([
            "convert", dir.file("f16"), "-o", dir.file("nf4"), "--no-double-quant", "--quiet",
        ])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(
            try [UInt8](contentsOf: dir.file("nf4/model.safetensors"))
                == [UInt8](contentsOf: Fixture.path("llama-tiny/nf4/model.safetensors")))
    }

    @Test func `a PyTorch .bin checkpoint converts to the golden nf4-dq`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let result = try NF4KitCLI.run([
            "convert", Fixture.path("torch/llama-tiny/pytorch_model.bin"), "-o", dir.file("m.safetensors"), "--quiet",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(
            try [UInt8](contentsOf: dir.file("m.safetensors"))
                == [UInt8](contentsOf: Fixture.path("llama-tiny/nf4-dq/model.safetensors")))
    }

    @Test func `usage errors exit 64, an existing output 74, malformed input 65`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let fp16 = Fixture.path("llama-tiny/fp16")
        #expect(try NF4KitCLI.run(["convert", fp16, "-o", dir.file("a"), "--blocksize", "48"]).status == 64)
        #expect(try NF4KitCLI.run(["convert", fp16, "-o", dir.file("a"), "--to", "int3"]).status == 64)
        let requantize = try NF4KitCLI.run(["convert", Fixture.path("llama-tiny/nf4-dq"), "-o", dir.file("b")])
        #expect(requantize.status == 65, "an already-4-bit input is refused input, not bad usage")
        #expect(requantize.stderr.contains("4-bit") || requantize.stderr.contains("quantized"))
        #expect(try NF4KitCLI.run(["convert", fp16, "-o", dir.file("c"), "--quiet"]).status == 0)
        let exists = try NF4KitCLI.run(["convert", fp16, "-o", dir.file("c")])
        #expect(exists.status == 74)
        #expect(exists.stderr.contains("already exists"))
        let input = try NF4KitCLI.run(["convert", fp16, "-o", fp16, "--force"])
        #expect(input.status == 74, "an input is never overwritten")
        #expect(FileManager.default.fileExists(atPath: fp16 + "/model.safetensors"))
        let malformed = try NF4KitCLI.run([
            "convert", Fixture.path("malformed/header-too-large-100000001.safetensors"), "-o", dir.file("d"),
        ])
        #expect(malformed.status == 65)
        #expect(malformed.stderr.contains("byte 0"))
        #expect(!FileManager.default.fileExists(atPath: dir.file("d")))
        #expect(!FileManager.default.fileExists(atPath: dir.file("d.partial")))
    }
}
