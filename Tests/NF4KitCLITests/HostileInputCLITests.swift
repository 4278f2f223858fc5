import Foundation
import NF4KitTestSupport
import Testing

/// Crafted inputs that used to trap, hang or allocate without bound, driven through the CLI as a user would,
/// each in a temporary folder of its own.
@Suite struct HostileInputCLITests {
    /// A safetensors file with one f32 tensor filled with `value`.
    static func safetensors(name: String, shape: [Int], value: Float) -> [UInt8] {
        let count = shape.reduce(1, *)
        let header = "{\"\(name)\":{\"dtype\":\"F32\",\"shape\":\(shape),\"data_offsets\":[0,\(count * 4)]}}"
        var bytes = [UInt8](repeating: 0, count: 8)
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { bytes.replaceSubrange(0..<8, with: $0) }
        bytes += Array(header.utf8)
        for _ in 0..<count { withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes += $0 } }
        return bytes
    }

    /// Runs the CLI, killing it after `seconds` (a hang then fails the test instead of stopping the suite).
    static func run(_ arguments: [String], seconds: Double = 120) throws -> NF4KitCLI.Result {
        let directory = TemporaryDirectory("nf4kit-hostile-run")
        defer { directory.cleanup() }
        let outPath = directory.file("stdout"), errPath = directory.file("stderr")
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try NF4KitCLI.executable())
        process.arguments = arguments
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        try process.run()
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
            Issue.record("nf4kit \(arguments) did not finish within \(seconds) s")
        }
        process.waitUntilExit()
        return NF4KitCLI.Result(
            status: process.terminationStatus,
            stdout: String(decoding: try Data(contentsOf: URL(fileURLWithPath: outPath)), as: UTF8.self),
            stderr: String(decoding: try Data(contentsOf: URL(fileURLWithPath: errPath)), as: UTF8.self))
    }

    @Test func `inspect --sensitivity on finite but huge weights reports infinite errors instead of trapping`() throws {
        let directory = TemporaryDirectory("nf4kit-huge-weights")
        defer { directory.cleanup() }
        // 1e38 is a finite f32, but a Q8_0 block scale of 1e38 / 127 overflows float16, so the decoded error is
        // infinite; the bar chart used to convert an infinite bar length to Int.
        let path = directory.file("huge.safetensors")
        try Self.safetensors(name: "model.layers.0.self_attn.q_proj.weight", shape: [64, 64], value: 1e38).write(
            to: path)
        let result = try Self.run(["inspect", "--sensitivity", path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("inf"))
        #expect(result.stdout.contains("████"))
    }

    @Test func `a FIFO as weight file or config.json is refused naming it, without blocking`() throws {
        let directory = TemporaryDirectory("nf4kit-fifo")
        defer { directory.cleanup() }
        let fifo = directory.file("model.safetensors")
        #expect(mkfifo(fifo, 0o600) == 0)
        let direct = try Self.run(["inspect", fifo], seconds: 60)
        #expect(direct.status == 65)
        #expect(direct.stderr.contains(fifo))
        #expect(direct.stderr.contains("FIFO"))

        let folder = directory.file("model")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
        try Self.safetensors(name: "model.layers.0.mlp.up_proj.weight", shape: [2, 64], value: 0.5)
            .write(to: folder + "/model.safetensors")
        #expect(mkfifo(folder + "/config.json", 0o600) == 0)
        let side = try Self.run(["inspect", folder], seconds: 60)
        #expect(side.status == 65)
        #expect(side.stderr.contains(folder + "/config.json"))
    }

    @Test func `a weight file reached through a symbolic link is read (Hugging Face snapshots are links)`() throws {
        let directory = TemporaryDirectory("nf4kit-link")
        defer { directory.cleanup() }
        try FileManager.default.createDirectory(atPath: directory.file("blobs"), withIntermediateDirectories: false)
        try FileManager.default.createDirectory(atPath: directory.file("snapshot"), withIntermediateDirectories: false)
        try Self.safetensors(name: "model.layers.0.mlp.up_proj.weight", shape: [2, 64], value: 0.5)
            .write(to: directory.file("blobs/0123abcd"))
        try FileManager.default.createSymbolicLink(
            atPath: directory.file("snapshot/model.safetensors"), withDestinationPath: "../blobs/0123abcd")
        let result = try Self.run(["inspect", directory.file("snapshot")])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("128"))
    }

    @Test
    func
        `a Git LFS pointer, an HTML page, a folder shard and an empty weight get exit 65 and a message naming the file`()
        throws
    {
        let directory = TemporaryDirectory("nf4kit-misnamed")
        defer { directory.cleanup() }
        let pointer = directory.file("model.safetensors")
        try Array("version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 12\n".utf8).write(to: pointer)
        let lfs = try Self.run(["inspect", pointer])
        #expect(lfs.status == 65)
        #expect(lfs.stderr.contains(pointer) && lfs.stderr.contains("git lfs pull"))
        #expect(!lfs.stderr.contains("exceeds the limit"))

        let page = directory.file("page.safetensors")
        try Array("<!DOCTYPE html><html><body>rate limited</body></html>".utf8).write(to: page)
        let html = try Self.run(["inspect", page])
        #expect(html.status == 65)
        #expect(html.stderr.contains("HTML page"))

        let folder = directory.file("sharded")
        try FileManager.default.createDirectory(
            atPath: folder + "/model-00002-of-00002.safetensors", withIntermediateDirectories: true)
        try Self.safetensors(name: "a.weight", shape: [2, 64], value: 1).write(
            to: folder + "/model-00001-of-00002.safetensors")
        let index =
            #"{"metadata": {}, "weight_map": {"a.weight": "model-00001-of-00002.safetensors", "b.weight": "model-00002-of-00002.safetensors"}}"#
        try Array(index.utf8).write(to: folder + "/model.safetensors.index.json")
        let shard = try Self.run(["inspect", folder])
        #expect(shard.status == 65)
        #expect(shard.stderr.contains("model-00002-of-00002.safetensors") && shard.stderr.contains("folder"))

        let empty = directory.file("empty.safetensors")
        try Self.safetensors(name: "model.layers.0.self_attn.k_proj.weight", shape: [64, 0], value: 0).write(to: empty)
        let convert = try Self.run(["convert", empty, "-o", directory.file("out.safetensors")])
        #expect(convert.status == 65)
        #expect(convert.stderr.contains(empty) && convert.stderr.contains("model.layers.0.self_attn.k_proj.weight"))
        #expect(!FileManager.default.fileExists(atPath: directory.file("out.safetensors")))
    }

    /// Runs the CLI under an address-space limit (`ulimit -v`, in KiB), so an allocation beyond it fails the run.
    static func runLimited(kilobytes: Int, _ arguments: [String]) throws -> NF4KitCLI.Result {
        let command = "ulimit -v \(kilobytes) && exec \"$0\" \"$@\""
        let shell = ["-c", command, try NF4KitCLI.executable()] + arguments
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = shell
        let directory = TemporaryDirectory("nf4kit-limited")
        defer { directory.cleanup() }
        let outPath = directory.file("stdout"), errPath = directory.file("stderr")
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        try process.run()
        process.waitUntilExit()
        return NF4KitCLI.Result(
            status: process.terminationStatus,
            stdout: String(decoding: try Data(contentsOf: URL(fileURLWithPath: outPath)), as: UTF8.self),
            stderr: String(decoding: try Data(contentsOf: URL(fileURLWithPath: errPath)), as: UTF8.self))
    }

    @Test func `inspecting a 77 KB .bin with 4,000 views of one storage reads no tensor data`() throws {
        // Copying every view while reading headers took 4,000 x 1 MiB; under a 1.5 GB address-space limit the
        // old reader aborted.
        let result = try Self.runLimited(
            kilobytes: 1_500_000, ["inspect", Fixture.path("torch/crafted/many-views.bin")])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("4,000"))
    }

    @Test func `a .bin tensor named __metadata__ is refused input naming the file, not a usage error`() throws {
        let directory = TemporaryDirectory("nf4kit-metadata-key")
        defer { directory.cleanup() }
        let input = Fixture.path("torch/crafted/metadata-key.bin")
        let result = try Self.run(["convert", "--to", "f16", input, "-o", directory.file("out.safetensors")])
        #expect(result.status == 65)
        #expect(result.stderr.contains(input) && result.stderr.contains("__metadata__"))
    }

    @Test func `a GGUF metadata array far larger in memory than on disk is refused before it is built`() throws {
        let directory = TemporaryDirectory("nf4kit-gguf-array")
        defer { directory.cleanup() }
        func string(_ text: String) -> [UInt8] {
            var bytes: [UInt8] = []
            withUnsafeBytes(of: UInt64(text.utf8.count).littleEndian) { bytes += $0 }
            return bytes + Array(text.utf8)
        }
        func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] { withUnsafeBytes(of: value.littleEndian) { Array($0) } }
        // 2^24 UINT8 elements: 16 MiB on disk, 400 MB as values (24 bytes each) before the budget.
        let count = 1 << 24
        var file = Array("GGUF".utf8) + le(UInt32(3)) + le(UInt64(0)) + le(UInt64(1))
        file += string("tokenizer.ggml.token_type") + le(UInt32(9)) + le(UInt32(0)) + le(UInt64(count))
        file += [UInt8](repeating: 0, count: count)
        let path = directory.file("array.gguf")
        try file.write(to: path)
        let result = try Self.run(["inspect", path])
        #expect(result.status == 65)
        #expect(result.stderr.contains(path) && result.stderr.contains("tokenizer.ggml.token_type"))
        #expect(result.stderr.contains("budget of"))
    }

    /// A stored (not deflated) zip of `records`, CRC fields 0 (which the reader does not check), as torch writes it.
    static func storedZip(_ records: [(name: String, data: [UInt8])]) -> [UInt8] {
        func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] { withUnsafeBytes(of: value.littleEndian) { Array($0) } }
        var file: [UInt8] = []
        var central: [UInt8] = []
        for (name, data) in records {
            let offset = UInt32(file.count)
            let common =
                le(UInt16(20)) + le(UInt16(0)) + le(UInt16(0)) + le(UInt16(0)) + le(UInt16(0)) + le(UInt32(0))
                + le(UInt32(data.count)) + le(UInt32(data.count)) + le(UInt16(name.utf8.count))
            file += le(UInt32(0x0403_4B50)) + common + le(UInt16(0)) + Array(name.utf8) + data
            central +=
                le(UInt32(0x0201_4B50)) + le(UInt16(20)) + common + le(UInt16(0)) + le(UInt16(0))
                + le(UInt16(0)) + le(UInt16(0)) + le(UInt32(0)) + le(offset) + Array(name.utf8)
        }
        let centralOffset = UInt32(file.count)
        file += central
        file +=
            le(UInt32(0x0605_4B50)) + le(UInt16(0)) + le(UInt16(0)) + le(UInt16(records.count))
            + le(UInt16(records.count)) + le(UInt32(central.count)) + le(centralOffset) + le(UInt16(0))
        return file
    }

    @Test func `a 20 MB pickle of four million memo entries is refused by the file's budget`() throws {
        let directory = TemporaryDirectory("nf4kit-memo")
        defer { directory.cleanup() }
        // PROTO 2, EMPTY_DICT, then LONG_BINPUT i for i < 4,000,000 (the memo limit), STOP.
        var pickle: [UInt8] = [0x80, 0x02, 0x7D]
        pickle.reserveCapacity(3 + 5 * 4_000_000 + 1)
        for index in 0..<UInt32(4_000_000) {
            pickle.append(0x72)
            withUnsafeBytes(of: index.littleEndian) { pickle += $0 }
        }
        pickle.append(0x2E)
        let path = directory.file("memo.bin")
        try Self.storedZip([("archive/data.pkl", pickle), ("archive/version", Array("3\n".utf8))]).write(to: path)
        // 1.7 GB with the pickle values stored inline, about 400 MB with them boxed: more than 8 x 20 MB + 16 MiB.
        let result = try Self.runLimited(kilobytes: 1_000_000, ["inspect", path])
        #expect(result.status == 65, "\(result.stderr)")
        #expect(result.stderr.contains(path) && result.stderr.contains("memo entries"))
        #expect(!result.stderr.contains("Fatal error") && !result.stderr.contains("crashed"))
    }
}
