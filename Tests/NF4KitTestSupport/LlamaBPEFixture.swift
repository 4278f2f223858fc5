import Foundation

/// The Llama 3 BPE fixture (Fixtures/files/llama3-bpe): a tiny bf16 Llama with the real Llama 3.2 `tokenizer.json`,
/// and convert_hf_to_gguf.py's GGUF of it. The two large files are stored gzipped; these helpers unpack them.
public enum LlamaBPEFixture {
    /// Copies `llama3-bpe/hf` to `dir/name` with `tokenizer.json` unpacked, and returns the folder's path.
    public static func folder(in dir: TemporaryDirectory, name: String = "llama3") throws -> String {
        let folder = dir.file(name)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let source = Fixture.path("llama3-bpe/hf")
        for file in try FileManager.default.contentsOfDirectory(atPath: source) {
            if file.hasSuffix(".gz") {
                try gunzip(source + "/" + file, to: folder + "/" + String(file.dropLast(3)))
            } else {
                try FileManager.default.copyItem(atPath: source + "/" + file, toPath: folder + "/" + file)
            }
        }
        return folder
    }

    /// Unpacks convert_hf_to_gguf.py's `BF16.gguf` into `dir` and returns its path.
    public static func reference(in dir: TemporaryDirectory) throws -> String {
        let path = dir.file("reference-BF16.gguf")
        try gunzip(Fixture.path("llama3-bpe/gguf/BF16.gguf.gz"), to: path)
        return path
    }

    struct GunzipFailed: Error, CustomStringConvertible {
        var description: String
    }

    /// `gzip -dc source > destination`.
    public static func gunzip(_ source: String, to destination: String) throws {
        _ = FileManager.default.createFile(atPath: destination, contents: nil)
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: destination))
        defer { try? output.close() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["gzip", "-dc", source]
        process.standardOutput = output
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw GunzipFailed(description: "gzip -dc \(source) exited \(process.terminationStatus)")
        }
    }
}
