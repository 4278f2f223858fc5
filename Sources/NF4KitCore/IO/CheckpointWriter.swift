/// An output file that only appears under its final name once it is complete.
///
/// Bytes go to `NAME.partial` (written with `pwrite` at any offset, from any thread); ``finish()`` fsyncs and
/// renames it to `NAME`. If the object goes away without ``finish()``, the partial file is removed, so an
/// interrupted or failed run leaves nothing behind.
// @unchecked Sendable because the descriptor is only used through pwrite, which is safe from several threads,
// and `finished` is written once by the owner in finish().
public final class OutputFile: @unchecked Sendable {
    /// The final path.
    public let path: String
    /// Where the bytes are written until ``finish()``.
    public let partialPath: String
    private let fd: Int32
    private var finished = false

    /// Creates `path + ".partial"`.
    ///
    /// - Parameters:
    ///   - path: The final name.
    ///   - overwrite: Whether an existing file at `path` may be replaced (the CLI's `--force`).
    ///   - inputs: Paths this run reads; the output may not be any of them, even with `overwrite`.
    /// - Throws: ``CheckpointError`` `.outputExists` or `.io`.
    public init(path: String, overwrite: Bool, inputs: [String] = []) throws(CheckpointError) {
        try OutputFile.checkTarget(path, overwrite: overwrite, inputs: inputs)
        self.path = path
        self.partialPath = path + ".partial"
        fd = Platform.open(partialPath, flags: Platform.createFlags)
        guard fd >= 0 else {
            throw CheckpointError(.io, "cannot create the output file: \(Platform.errnoDescription)", file: partialPath)
        }
    }

    /// Refuses an output that is an input, or that exists when `overwrite` is false.
    public static func checkTarget(_ path: String, overwrite: Bool, inputs: [String]) throws(CheckpointError) {
        if let target = Platform.identity(path) {
            for input in inputs {
                if let other = Platform.identity(input), other == target {
                    throw CheckpointError(
                        .outputExists, "the output is the input '\(input)'; nf4kit never overwrites an input",
                        file: path)
                }
            }
            if !overwrite {
                throw CheckpointError(.outputExists, "the output already exists (use --force to replace it)", file: path)
            }
        }
    }

    /// Writes `bytes` at `offset` of the output.
    public func write(_ bytes: UnsafeRawBufferPointer, at offset: Int64) throws(CheckpointError) {
        guard bytes.count > 0 else { return }
        guard Platform.writeAll(fd, bytes, at: offset) else {
            throw CheckpointError(.io, "write failed: \(Platform.errnoDescription)", file: partialPath, byteOffset: offset)
        }
    }

    /// Sets the file's length (so a planned file can be written out of order).
    public func setLength(_ length: Int64) throws(CheckpointError) {
        guard Platform.truncate(fd, to: length) else {
            throw CheckpointError(.io, "cannot size the output: \(Platform.errnoDescription)", file: partialPath)
        }
    }

    /// Flushes the file to disk and renames it to its final name.
    public func finish() throws(CheckpointError) {
        precondition(!finished, "OutputFile.finish() called twice")
        try InputIntegrity.check()  // never rename an output made from an input that shrank under us
        guard Platform.sync(fd) else {
            throw CheckpointError(.io, "fsync failed: \(Platform.errnoDescription)", file: partialPath)
        }
        guard Platform.rename(partialPath, path) else {
            throw CheckpointError(.io, "cannot rename to the final name: \(Platform.errnoDescription)", file: path)
        }
        finished = true
    }

    deinit {
        Platform.close(fd)
        if !finished { Platform.unlink(partialPath) }
    }
}

/// An output folder that only appears under its final name once it is complete.
///
/// Files are written inside `NAME.partial/`; ``finish()`` renames the folder to `NAME` (replacing an existing
/// one only when allowed). If it goes away unfinished, the partial folder and its files are removed.
// @unchecked Sendable: `finished` is written once by the owner in finish(); the paths are immutable.
public final class OutputDirectory: @unchecked Sendable {
    public let path: String
    public let partialPath: String
    private let overwrite: Bool
    private var finished = false

    /// Creates `path + ".partial/"` (emptied first if a previous run left it behind).
    public init(path: String, overwrite: Bool, inputs: [String] = []) throws(CheckpointError) {
        try OutputFile.checkTarget(path, overwrite: overwrite, inputs: inputs)
        for input in inputs where input.hasPrefix(path + "/") {
            throw CheckpointError(.outputExists, "the output folder contains the input '\(input)'", file: path)
        }
        self.path = path
        self.overwrite = overwrite
        partialPath = path + ".partial"
        if Platform.exists(partialPath) { OutputDirectory.removeTree(partialPath) }
        guard Platform.makeDirectory(partialPath) else {
            throw CheckpointError(.io, "cannot create the output folder: \(Platform.errnoDescription)", file: partialPath)
        }
    }

    /// The path of a file inside the partial folder.
    public func partialFile(_ name: String) -> String { partialPath + "/" + name }

    /// Renames the partial folder to the final name, replacing an existing output if allowed.
    public func finish() throws(CheckpointError) {
        precondition(!finished, "OutputDirectory.finish() called twice")
        try InputIntegrity.check()
        if Platform.exists(path) {
            guard overwrite else {
                throw CheckpointError(.outputExists, "the output already exists (use --force to replace it)", file: path)
            }
            let old = path + ".replaced.partial"
            if Platform.exists(old) { OutputDirectory.removeTree(old) }
            guard Platform.rename(path, old) else {
                throw CheckpointError(.io, "cannot move the old output aside: \(Platform.errnoDescription)", file: path)
            }
            OutputDirectory.removeTree(old)
        }
        guard Platform.rename(partialPath, path) else {
            throw CheckpointError(.io, "cannot rename to the final name: \(Platform.errnoDescription)", file: path)
        }
        finished = true
    }

    deinit {
        if !finished { OutputDirectory.removeTree(partialPath) }
    }

    /// Removes a file, or a folder and everything below it (no links are followed).
    package static func removeTree(_ path: String) {
        if Platform.isDirectory(path), let names = Platform.listDirectory(path) {
            for name in names { removeTree(path + "/" + name) }
            _ = Platform.removeDirectory(path)
        } else {
            Platform.unlink(path)
        }
    }
}

/// Small whole-file helpers for JSON side files (config.json, index files, adapter configs).
public enum FileAccess {
    /// Reads a small file completely, refusing files larger than `limit` bytes before allocating.
    public static func readSmallFile(_ path: String, limit: Int = 64 << 20) throws(CheckpointError) -> [UInt8] {
        let file = try InputFile(path: path)
        let fd = file.fd, size = file.byteCount
        guard size <= Int64(limit) else {
            throw CheckpointError(.limitExceeded, "the file is \(size) bytes; at most \(limit) are read", file: path)
        }
        var bytes = [UInt8](repeating: 0, count: Int(size))
        let got = bytes.withUnsafeMutableBytes { Platform.read(fd, into: $0, at: 0) }
        guard got == Int(size) else {
            throw CheckpointError(.io, "read failed: \(Platform.errnoDescription)", file: path)
        }
        return bytes
    }

    /// Writes a small file atomically (`.partial`, fsync, rename).
    public static func writeSmallFile(_ path: String, _ bytes: [UInt8], overwrite: Bool) throws(CheckpointError) {
        let file = try OutputFile(path: path, overwrite: overwrite)
        let failure: CheckpointError? = bytes.withUnsafeBytes { raw in
            do throws(CheckpointError) { try file.write(raw, at: 0) } catch { return error }
            return nil
        }
        if let failure { throw failure }
        try file.finish()
    }

    public static func exists(_ path: String) -> Bool { Platform.exists(path) }
    public static func isDirectory(_ path: String) -> Bool { Platform.isDirectory(path) }
    /// Sorted names in a folder.
    public static func list(_ path: String) throws(CheckpointError) -> [String] {
        guard let names = Platform.listDirectory(path) else {
            throw CheckpointError(.io, "cannot list the folder: \(Platform.errnoDescription)", file: path)
        }
        return names
    }
    public static func makeDirectory(_ path: String) throws(CheckpointError) {
        guard Platform.makeDirectory(path) else {
            throw CheckpointError(.io, "cannot create the folder: \(Platform.errnoDescription)", file: path)
        }
    }
    /// Size of a file in bytes.
    public static func fileSize(_ path: String) throws(CheckpointError) -> Int64 {
        try InputFile(path: path).byteCount
    }
    /// Copies a (side) file byte for byte.
    public static func copyFile(from source: String, to destination: String) throws(CheckpointError) {
        let region = try MappedRegion(mapping: source)
        let file = try OutputFile(path: destination, overwrite: true)
        try region.withUnsafeBytes { (raw) throws(CheckpointError) in try file.write(raw, at: 0) }
        try file.finish()
    }
    public static var processorCount: Int { Platform.processorCount }
    public static var isStandardErrorTerminal: Bool { Platform.isStandardErrorTerminal }
    public static func writeStandardError(_ text: String) { Platform.writeStandardError(text) }
    public static var peakResidentBytes: Int { Platform.peakResidentBytes }
    public static var monotonicSeconds: Double { Platform.monotonicSeconds }
}
