import Foundation
import NF4KitTestSupport
import Testing

/// The output promises of docs/cli.md, one test per class of issue 13 / 16, each through the built binary in a
/// temporary folder of its own: only the output changes, an input is never overwritten, links, FIFOs and folders
/// nf4kit did not write are never replaced, concurrent runs leave one whole output, interrupts leave nothing, and
/// the output's name decides its form.
@Suite struct OutputSafetyCLITests {
    static let fp16 = Fixture.path("llama-tiny/fp16")

    /// Names in `folder`, sorted.
    static func names(_ folder: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
    }

    /// What is at `path` itself (a link is not followed).
    static func type(_ path: String) -> FileAttributeType? {
        (try? FileManager.default.attributesOfItem(atPath: path))?[.type] as? FileAttributeType
    }

    /// A folder with one file nobody may touch.
    static func victim(in dir: TemporaryDirectory) throws -> (folder: String, file: String) {
        let folder = dir.file("victim")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try Array("precious\n".utf8).write(to: folder + "/keep.txt")
        return (folder, folder + "/keep.txt")
    }

    // MARK: links

    @Test func `a link at the old temporary name is not written through`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let (_, keep) = try Self.victim(in: dir)
        try FileManager.default.createSymbolicLink(
            atPath: dir.file("out.safetensors.partial"), withDestinationPath: keep)
        let result = try NF4KitCLI.run(["convert", Self.fp16, "-o", dir.file("out.safetensors"), "--to", "f16", "-q"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try String(contentsOfFile: keep, encoding: .utf8) == "precious\n")
        #expect(Self.type(dir.file("out.safetensors.partial")) == .typeSymbolicLink)
        #expect(Self.type(dir.file("out.safetensors")) == .typeRegular)
        #expect(try Self.names(dir.path) == ["out.safetensors", "out.safetensors.partial", "victim"])
    }

    @Test(arguments: ["folder", "file"])
    func `-o LINK --force leaves the link and its target alone`(target: String) throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let (folder, keep) = try Self.victim(in: dir)
        let link = dir.file(target == "folder" ? "out" : "out.safetensors")
        try FileManager.default.createSymbolicLink(
            atPath: link, withDestinationPath: target == "folder" ? folder : keep)
        let result = try NF4KitCLI.run(["convert", Self.fp16, "-o", link, "--to", "f16", "--force", "-q"])
        #expect(result.status == 74)
        #expect(result.stderr.contains("symbolic link"), "\(result.stderr)")
        #expect(Self.type(link) == .typeSymbolicLink)
        #expect(try Self.names(folder) == ["keep.txt"])
        #expect(try String(contentsOfFile: keep, encoding: .utf8) == "precious\n")
        #expect(try Self.names(dir.path).count == 2, "no temporary entry is left")
    }

    @Test func `a link inside an output folder stops --force, and its target is kept`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let (folder, keep) = try Self.victim(in: dir)
        let out = dir.file("out")
        #expect(try NF4KitCLI.run(["convert", Self.fp16, "-o", out, "--to", "f16", "-q"]).status == 0)
        try FileManager.default.createSymbolicLink(atPath: out + "/tokenizer.json", withDestinationPath: keep)
        try FileManager.default.createSymbolicLink(atPath: out + "/sub", withDestinationPath: folder)
        let result = try NF4KitCLI.run(["convert", Self.fp16, "-o", out, "--to", "bf16", "--force", "-q"])
        #expect(result.status == 74)
        #expect(result.stderr.contains("not a regular file"), "\(result.stderr)")
        #expect(try Self.names(out) == ["config.json", "model.safetensors", "sub", "tokenizer.json"])
        #expect(try Self.names(folder) == ["keep.txt"])
        #expect(try String(contentsOfFile: keep, encoding: .utf8) == "precious\n")
    }

    // MARK: what --force may replace

    @Test func `a FIFO is never replaced, even with --force`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let fifo = dir.file("out.gguf")
        #expect(mkfifo(fifo, 0o644) == 0)
        let result = try NF4KitCLI.run(["convert", Self.fp16, "-o", fifo, "--to", "f16", "--force", "-q"])
        #expect(result.status == 74)
        #expect(result.stderr.contains("FIFO"), "\(result.stderr)")
        var info = stat()
        #expect(lstat(fifo, &info) == 0 && (info.st_mode & S_IFMT) == S_IFIFO)
        #expect(try Self.names(dir.path) == ["out.gguf"])
    }

    @Test func `--force does not replace a folder nf4kit could not have written`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let (folder, keep) = try Self.victim(in: dir)
        let result = try NF4KitCLI.run(["convert", Self.fp16, "-o", folder, "--to", "f16", "--force", "-q"])
        #expect(result.status == 74)
        #expect(result.stderr.contains("no model files"), "\(result.stderr)")
        #expect(try String(contentsOfFile: keep, encoding: .utf8) == "precious\n")
        #expect(try Self.names(dir.path) == ["victim"])
    }

    @Test func `--force replaces an output folder nf4kit wrote, with nothing left of the old one`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let out = dir.file("out")
        #expect(try NF4KitCLI.run(["convert", Self.fp16, "-o", out, "-q"]).status == 0)
        try Array("old".utf8).write(to: out + "/stale.txt")
        let result = try NF4KitCLI.run(["convert", Self.fp16, "-o", out + "/", "--to", "f16", "--force", "-q"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try Self.names(out) == ["config.json", "model.safetensors"])
        #expect(
            try [UInt8](contentsOf: out + "/model.safetensors")
                == [UInt8](contentsOf: Self.fp16 + "/model.safetensors"))
        #expect(try Self.names(dir.path) == ["out"])
    }

    // MARK: inputs

    @Test func `an input folder spelled another way is never overwritten`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        try FileManager.default.copyItem(atPath: Self.fp16, toPath: dir.file("m"))
        let before = try [UInt8](contentsOf: dir.file("m/model.safetensors"))
        for (input, output) in [("./m/", "./m"), ("m", "m/"), ("m/../m", "m"), ("m", "./m/.")] {
            let result = try NF4KitCLI.run(["convert", dir.file(input), "-o", dir.file(output), "--force", "-q"])
            #expect(result.status == 74, "\(input) -> \(output)")
            #expect(result.stderr.contains("input"), "\(result.stderr)")
        }
        #expect(try [UInt8](contentsOf: dir.file("m/model.safetensors")) == before)
        #expect(try Self.names(dir.file("m")) == ["config.json", "model.safetensors"])
        #expect(try Self.names(dir.path) == ["m"])
    }

    @Test func `a Hugging Face cache snapshot of links is read through them, and its blobs are never replaced`() throws
    {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let blobs = dir.file("models--org--tiny/blobs"), snapshot = dir.file("models--org--tiny/snapshots/abc")
        try FileManager.default.createDirectory(atPath: blobs, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: snapshot, withIntermediateDirectories: true)
        for (name, blob) in [("model.safetensors", "b1"), ("config.json", "b2")] {
            try FileManager.default.copyItem(atPath: Self.fp16 + "/" + name, toPath: blobs + "/" + blob)
            try FileManager.default.createSymbolicLink(
                atPath: snapshot + "/" + name, withDestinationPath: "../../blobs/" + blob)
        }
        let before = try [UInt8](contentsOf: blobs + "/b1")
        let converted = try NF4KitCLI.run(["convert", snapshot, "-o", dir.file("out"), "--to", "f16", "-q"])
        #expect(converted.status == 0, "\(converted.stderr)")
        #expect(try [UInt8](contentsOf: dir.file("out/model.safetensors")) == before)
        #expect(Self.type(dir.file("out/config.json")) == .typeRegular, "side files are copied, not linked")
        for target in [blobs + "/b1", blobs + "/b2"] {
            let result = try NF4KitCLI.run([
                "convert", snapshot, "-o", target, "--format", "gguf", "--to", "f16", "--force", "-q",
            ])
            #expect(result.status == 74, "\(target): \(result.stderr)")
        }
        #expect(try [UInt8](contentsOf: blobs + "/b1") == before)
        #expect(Self.type(snapshot + "/model.safetensors") == .typeSymbolicLink)
        #expect(try Self.names(blobs) == ["b1", "b2"])
    }

    @Test func `an output inside an input folder is refused, even naming one of its files`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        try FileManager.default.copyItem(atPath: Self.fp16, toPath: dir.file("m"))
        try FileManager.default.copyItem(atPath: Fixture.path("llama-tiny/lora"), toPath: dir.file("adapter"))
        let config = try [UInt8](contentsOf: dir.file("m/config.json"))
        let adapterConfig = try [UInt8](contentsOf: dir.file("adapter/adapter_config.json"))
        let convert = try NF4KitCLI.run(["convert", dir.file("m"), "-o", dir.file("m/config.json"), "--force", "-q"])
        #expect(convert.status == 74)
        #expect(convert.stderr.contains("inside the input folder"), "\(convert.stderr)")
        let merge = try NF4KitCLI.run([
            "merge", dir.file("m"), dir.file("adapter"), "-o", dir.file("adapter/adapter_config.json"), "--force", "-q",
        ])
        #expect(merge.status == 74)
        let containing = try NF4KitCLI.run([
            "convert", dir.file("m/model.safetensors"), "-o", dir.path, "--force", "-q",
        ])
        #expect(containing.status == 74, "a folder output may not replace a folder holding an input")
        #expect(try [UInt8](contentsOf: dir.file("m/config.json")) == config)
        #expect(try [UInt8](contentsOf: dir.file("adapter/adapter_config.json")) == adapterConfig)
        #expect(try Self.names(dir.file("m")) == ["config.json", "model.safetensors"])
        #expect(try Self.names(dir.path) == ["adapter", "m"])
    }

    // MARK: concurrent runs

    @Test(arguments: ["out", "out.safetensors"])
    func `concurrent runs to one output leave one run's output, whole`(name: String) throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let executable = try NF4KitCLI.executable()
        var references: [[String: [UInt8]]] = []
        for seed in ["2", "3"] {
            let reference = dir.file("ref-\(seed)-\(name)")
            #expect(try NF4KitCLI.run(["fixture", "tiny", "-o", reference, "--seed", seed, "-q"]).status == 0)
            references.append(try Self.contents(reference))
        }
        let out = dir.file(name)
        for round in 0..<4 {
            let processes = try ["2", "3"].map { seed in
                let process = Process()
                process.executableURL = URL(fileURLWithPath: executable)
                process.arguments = ["fixture", "tiny", "-o", out, "--seed", seed, "--force", "-q"]
                try process.run()
                return process
            }
            for process in processes { process.waitUntilExit() }
            #expect(processes.allSatisfy { $0.terminationStatus == 0 }, "round \(round)")
            let written = try Self.contents(out)
            #expect(references.contains(written), "round \(round): the output mixes both runs")
            #expect(try Self.names(dir.path).filter { $0.contains(".nf4kit-") }.isEmpty, "no temporary left")
        }
    }

    /// Every file of a folder (or the file itself) by name.
    static func contents(_ path: String) throws -> [String: [UInt8]] {
        guard type(path) == .typeDirectory else { return ["": try [UInt8](contentsOf: path)] }
        var result: [String: [UInt8]] = [:]
        for name in try names(path) { result[name] = try [UInt8](contentsOf: path + "/" + name) }
        return result
    }

    // MARK: interrupts

    @Test(arguments: [(Int32(2), Int32(130)), (Int32(15), Int32(143)), (Int32(1), Int32(129))])
    func `SIGINT, SIGTERM and SIGHUP exit 128 + signal and leave no partial output`(signal: Int32, status: Int32) throws
    {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let model = dir.file("model.safetensors")
        try Self.writeLargeModel(model)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try NF4KitCLI.executable())
        process.arguments = ["convert", model, "-o", dir.file("out.safetensors"), "--threads", "1", "-q"]
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Wait until the temporary output exists, so the signal comes while it is being written.
        var started = false
        for _ in 0..<3000 where process.isRunning {
            if try Self.names(dir.path).contains(where: { $0.hasPrefix("out.safetensors.nf4kit-") }) {
                started = true
                break
            }
            usleep(10_000)
        }
        #expect(started, "the convert never created its temporary output")
        kill(process.processIdentifier, signal)
        process.waitUntilExit()
        #expect(process.terminationReason == .exit)
        #expect(process.terminationStatus == status)
        #expect(try Self.names(dir.path) == ["model.safetensors"], "only the input is left")
    }

    /// A safetensors file with one F16 Linear weight of 4096 x 8192 (64 MiB): quantizing it on one thread takes
    /// long enough (seconds in a debug build) to be interrupted while the output is being written.
    static func writeLargeModel(_ path: String) throws {
        let rows = 4096, columns = 8192
        let byteCount = rows * columns * 2
        var header = Array(
            #"{"model.layers.0.mlp.down_proj.weight":{"dtype":"F16","shape":[\#(rows),\#(columns)],"data_offsets":[0,\#(byteCount)]}}"#
                .utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        var bytes = withUnsafeBytes(of: UInt64(header.count).littleEndian) { Array($0) } + header
        let halves: [UInt16] = [0x3C00, 0xBC00, 0x3800, 0xB400, 0x2E66, 0xA266, 0x4000, 0x0000]
        var chunk = [UInt8]()
        chunk.reserveCapacity(1 << 16)
        for i in 0..<(1 << 15) {
            let half = halves[(i * 7 + i / 8) % halves.count]
            chunk += [UInt8(half & 0xFF), UInt8(half >> 8)]
        }
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        handle.write(Data(bytes))
        bytes = []
        let data = Data(chunk)
        for _ in 0..<(byteCount / chunk.count) { handle.write(data) }
    }

    // MARK: the name decides the form

    @Test func `a .safetensors name gives one file, a plain name or a trailing slash a folder`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let golden = try [UInt8](contentsOf: Self.fp16 + "/model.safetensors")
        #expect(
            try NF4KitCLI.run(["convert", Self.fp16, "-o", dir.file("y.safetensors"), "--to", "f16", "-q"]).status == 0)
        #expect(Self.type(dir.file("y.safetensors")) == .typeRegular)
        #expect(try [UInt8](contentsOf: dir.file("y.safetensors")) == golden)
        let file = Self.fp16 + "/model.safetensors"
        #expect(try NF4KitCLI.run(["convert", file, "-o", dir.file("ydir/"), "--to", "f16", "-q"]).status == 0)
        #expect(try Self.names(dir.file("ydir")) == ["model.safetensors"])
        #expect(try NF4KitCLI.run(["convert", file, "-o", dir.file("plain"), "--to", "f16", "-q"]).status == 0)
        #expect(try [UInt8](contentsOf: dir.file("plain/model.safetensors")) == golden)
        #expect(try Self.names(dir.path) == ["plain", "y.safetensors", "ydir"])
    }

    @Test func `a .gguf name gives a GGUF file that gguf-py reads, with Hugging Face names`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let out = dir.file("llama-f16.gguf")
        let result = try NF4KitCLI.run(["convert", Self.fp16, "-o", out, "--to", "f16", "--layout", "hf", "-q"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(Array(try [UInt8](contentsOf: out).prefix(4)) == Array("GGUF".utf8))
        let python = try PythonInterop.run(
            script: "Tests/Interop/gguf_hf_layout_reads.py", arguments: [out, Self.fp16 + "/model.safetensors"])
        #expect(python.status == 0, "\(python.stderr)")
        #expect(python.stdout.contains("ok 21"))
        let plain = try NF4KitCLI.run([
            "convert", Self.fp16, "-o", dir.file("g"), "--format", "gguf", "--to", "f16", "--layout", "hf", "-q",
        ])
        #expect(plain.status == 0, "\(plain.stderr)")
        #expect(try [UInt8](contentsOf: dir.file("g")) == [UInt8](contentsOf: out))
    }

    @Test func `merge and fixture write the form their output name says`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let lora = Fixture.path("llama-tiny/lora")
        let merged = try NF4KitCLI.run([
            "merge", Self.fp16, lora, "-o", dir.file("m.gguf"), "--fused-arithmetic", "--layout", "hf", "-q",
        ])
        #expect(merged.status == 0, "\(merged.stderr)")
        let python = try PythonInterop.run(
            script: "Tests/Interop/gguf_hf_layout_reads.py",
            arguments: [dir.file("m.gguf"), Fixture.path("llama-tiny/merged-fp16/model.safetensors")])
        #expect(python.status == 0, "\(python.stderr)")
        let fourBit = try NF4KitCLI.run([
            "merge", Fixture.path("llama-tiny/nf4-dq"), lora, "-o", dir.file("q.gguf"), "--layout", "hf",
        ])
        #expect(fourBit.status == 64, "\(fourBit.stderr)")
        #expect(try NF4KitCLI.run(["fixture", "tiny", "-o", dir.file("f.safetensors"), "-q"]).status == 0)
        #expect(Self.type(dir.file("f.safetensors")) == .typeRegular)
        #expect(try NF4KitCLI.run(["fixture", "tiny", "-o", dir.file("f.gguf"), "-q"]).status == 0)
        #expect(Array(try [UInt8](contentsOf: dir.file("f.gguf")).prefix(4)) == Array("GGUF".utf8))
        #expect(try Self.names(dir.path) == ["f.gguf", "f.safetensors", "m.gguf"])
    }

    @Test func `a name that says one format never holds the other, and a too-big single file is refused`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let cases: [[String]] = [
            ["-o", dir.file("a.gguf"), "--format", "safetensors"],
            ["-o", dir.file("a.safetensors"), "--format", "gguf"],
            ["-o", dir.file("a/"), "--format", "gguf"],
            ["-o", dir.file("a"), "--to", "q8_0"],  // q8_0 is a GGUF type
            ["-o", dir.file("a.bin")],
            ["-o", ""],
            ["-o", dir.file("a.safetensors"), "--max-shard-size", "1MB"],
        ]
        for arguments in cases {
            let result = try NF4KitCLI.run(["convert", Self.fp16] + arguments)
            #expect(result.status == 64, "\(arguments): \(result.stderr)")
            #expect(result.stderr.hasPrefix("Error:"), "\(arguments)")
        }
        let big = try NF4KitCLI.run(["convert", Self.fp16, "-o", dir.file("a.safetensors"), "--max-shard-size", "1MB"])
        #expect(big.stderr.contains("--max-shard-size"))
        let sharded = try NF4KitCLI.run(["convert", Self.fp16, "-o", dir.file("s"), "--max-shard-size", "1MB", "-q"])
        #expect(sharded.status == 0, "\(sharded.stderr)")
        #expect(try Self.names(dir.path) == ["s"])
    }

    @Test func `a sharded folder's index is the one transformers writes, with total_parameters`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let out = dir.file("s")
        let result = try NF4KitCLI.run(["convert", Self.fp16, "-o", out, "--max-shard-size", "1MB", "-q"])
        #expect(result.status == 0, "\(result.stderr)")
        let python = try PythonInterop.run(script: "Tests/Interop/safetensors_read_folder.py", arguments: [out])
        #expect(python.status == 0, "\(python.stderr)")
        let report = try JSONSerialization.jsonObject(with: Data(python.stdout.utf8)) as? [String: Any]
        // llama-tiny (golden README): vocab 1000, hidden 256, 2 layers, MLP 688, 4 heads of 64, 2 KV heads.
        let layer = 256 * 256 * 2 + 256 * 128 * 2 + 256 * 688 * 3 + 256 * 2
        #expect(report?["total_parameters"] as? Int == 1000 * 256 * 2 + 2 * layer + 256)
        #expect((report?["files"] as? [String])?.count == 3)
    }
}
