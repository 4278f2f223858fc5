/// An output file that only appears under its final name once it is complete.
///
/// Bytes go to a temporary file beside the final name, `NAME.nf4kit-<random>.partial`, created exclusively
/// (`O_CREAT | O_EXCL | O_NOFOLLOW`: never through a link, never an existing file) and written with `pwrite` at any
/// offset, from any thread. ``finish()`` fsyncs it and renames it to `NAME`. If the object goes away without
/// ``finish()``, or the process is interrupted (``OutputRegistry``), the temporary file is removed, so a failed or
/// interrupted run leaves nothing behind. The rules of ``OutputGuard`` decide what may be replaced.
// @unchecked Sendable because the descriptor is only used through pwrite, which is safe from several threads,
// and `finished` is written once by the owner in finish().
package final class OutputFile: @unchecked Sendable {
    /// The final path.
    package let path: String
    /// Where the bytes are written until ``finish()``.
    package let partialPath: String
    private let fd: Int32
    /// For a file of its own: the rules, `--force`, and the registration of the temporary file.
    private let standalone: (rules: OutputGuard, overwrite: Bool, token: Int)?
    private var finished = false

    /// Creates the temporary file for `path`.
    ///
    /// - Parameters:
    ///   - path: The final name.
    ///   - overwrite: Whether an existing regular file at `path` may be replaced (the CLI's `--force`).
    ///   - inputs: Paths this run reads (files and folders); the output may not be any of them, nor lie inside
    ///     one of the folders, even with `overwrite`.
    /// - Throws: ``CheckpointError`` `.outputExists` (an input, an existing output without `overwrite`, a link,
    ///   FIFO or device) or `.io`.
    package init(path: String, overwrite: Bool, inputs: [String] = []) throws(CheckpointError) {
        let rules = OutputGuard(inputs: inputs)
        try rules.check(path, isFolder: false, overwrite: overwrite)
        let created = createTemporary(
            for: path,
            { candidate -> Int32? in
                let fd = Platform.createExclusive(candidate)
                return fd >= 0 ? fd : nil
            })
        guard let (temporary, fd, token) = created else {
            throw CheckpointError(
                .io, "cannot create the output file: \(Platform.errnoDescription)", file: path)
        }
        self.path = path
        partialPath = temporary
        self.fd = fd
        standalone = (rules, overwrite, token)
        if let identity = Platform.identity(fd), let input = rules.input(identity: identity) {
            throw CheckpointError(.outputExists, "the temporary output is the input '\(input)'", file: temporary)
        }
    }

    /// A file created exclusively inside an output folder's temporary folder (renamed with the folder).
    init(inFolder folder: Int32, temporaryFolder: String, finalFolder: String, name: String) throws(CheckpointError) {
        fd = Platform.createExclusive(in: folder, name)
        guard fd >= 0 else {
            throw CheckpointError(
                .io, "cannot create the output file: \(Platform.errnoDescription)", file: temporaryFolder + "/" + name)
        }
        path = finalFolder + "/" + name
        partialPath = temporaryFolder + "/" + name
        standalone = nil
    }

    /// Refuses an output that is an input, or that exists when `overwrite` is false (see ``OutputGuard``).
    package static func checkTarget(_ path: String, overwrite: Bool, inputs: [String]) throws(CheckpointError) {
        try OutputGuard(inputs: inputs).check(path, isFolder: false, overwrite: overwrite)
    }

    /// Writes `bytes` at `offset` of the output.
    package func write(_ bytes: UnsafeRawBufferPointer, at offset: Int64) throws(CheckpointError) {
        guard bytes.count > 0 else { return }
        guard Platform.writeAll(fd, bytes, at: offset) else {
            throw CheckpointError(
                .io, "write failed: \(Platform.errnoDescription)", file: partialPath, byteOffset: offset)
        }
    }

    /// Writes a byte view at `offset` of the output: copied inside the kernel from the input file when the view is
    /// part of a file mapping and the system can copy between the two files, otherwise (or for what is left after a
    /// short copy) written from memory.
    package func write(_ bytes: TensorBytes, at offset: Int64) throws(CheckpointError) {
        let copied = bytes.region.copy(bytes.range, into: fd, at: offset)
        guard copied < bytes.count else { return }
        try bytes.withUnsafeBytes { (raw) throws(CheckpointError) in
            try write(UnsafeRawBufferPointer(rebasing: raw[copied...]), at: offset + Int64(copied))
        }
    }

    /// Sets the file's length (so a planned file can be written out of order).
    package func setLength(_ length: Int64) throws(CheckpointError) {
        guard Platform.truncate(fd, to: length) else {
            throw CheckpointError(.io, "cannot size the output: \(Platform.errnoDescription)", file: partialPath)
        }
    }

    /// Flushes the file to disk and renames it to its final name (a file inside an output folder is only flushed;
    /// the folder is renamed by ``OutputDirectory/finish()``).
    ///
    /// Without `overwrite` the rename never replaces an output that appeared meanwhile (another run's).
    package func finish() throws(CheckpointError) {
        precondition(!finished, "OutputFile.finish() called twice")
        try InputIntegrity.check()  // never rename an output made from an input that shrank under us
        guard Platform.sync(fd) else {
            throw CheckpointError(.io, "fsync failed: \(Platform.errnoDescription)", file: partialPath)
        }
        guard let standalone else {
            finished = true
            return
        }
        try standalone.rules.check(path, isFolder: false, overwrite: standalone.overwrite)
        let renamed = OutputRegistry.exclusive { () -> (Bool, Int32) in
            let done =
                standalone.overwrite ? Platform.rename(partialPath, path) : Platform.renameNoReplace(partialPath, path)
            return (done, Platform.errorNumber)
        }
        guard let renamed else {
            throw CheckpointError(.io, "interrupted before the output was complete", file: path)
        }
        guard renamed.0 else {
            if renamed.1 == Platform.fileExistsError {
                throw CheckpointError(
                    .outputExists, "the output appeared while this run was writing it (another run?); not replaced",
                    file: path)
            }
            throw CheckpointError(.io, "cannot rename to the final name: \(Platform.errnoDescription)", file: path)
        }
        finished = true
        OutputRegistry.unregister(standalone.token)
        Platform.syncDirectory(OutputDirectory.parent(of: path))
    }

    deinit {
        Platform.close(fd)
        if let standalone, !finished {
            Platform.unlink(partialPath)
            OutputRegistry.unregister(standalone.token)
        }
    }
}

/// An output folder that only appears under its final name once it is complete.
///
/// Files are created exclusively inside a fresh temporary folder `NAME.nf4kit-<random>.partial/` (made with
/// `mkdir`, used through a descriptor opened with `O_NOFOLLOW`); ``finish()`` renames it to `NAME`. With
/// `overwrite`, an existing folder that nf4kit could have written (regular files only, see ``OutputGuard``) is
/// moved aside to a unique name, the new folder renamed in, and the old one removed, so two runs writing the same
/// output leave one run's folder, whole. An unfinished or interrupted folder is removed without following links.
// @unchecked Sendable: `finished` is written once by the owner in finish(); the rest is immutable.
package final class OutputDirectory: @unchecked Sendable {
    /// The final path.
    package let path: String
    /// The temporary folder the files are written into.
    package let partialPath: String
    private let overwrite: Bool
    private let rules: OutputGuard
    private let fd: Int32
    private let token: Int
    private var finished = false

    /// Creates the temporary folder for `path`.
    ///
    /// - Parameters:
    ///   - path: The final folder (a trailing `/` is ignored).
    ///   - overwrite: Whether an existing folder nf4kit could have written may be replaced (`--force`).
    ///   - inputs: Files and folders this run reads; the output may not be, contain, or lie inside any of them.
    /// - Throws: ``CheckpointError`` `.outputExists` or `.io`.
    package init(path: String, overwrite: Bool, inputs: [String] = []) throws(CheckpointError) {
        var path = path
        while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
        let rules = OutputGuard(inputs: inputs)
        try rules.check(path, isFolder: true, overwrite: overwrite)
        let created = createTemporary(
            for: path,
            { candidate -> Int32? in
                guard Platform.makeDirectoryExclusive(candidate) else { return nil }
                let fd = Platform.openDirectory(candidate)
                if fd < 0 { _ = Platform.removeDirectory(candidate) }
                return fd >= 0 ? fd : nil
            })
        guard let (temporary, fd, token) = created else {
            throw CheckpointError(.io, "cannot create the output folder: \(Platform.errnoDescription)", file: path)
        }
        self.path = path
        self.overwrite = overwrite
        self.rules = rules
        partialPath = temporary
        self.fd = fd
        self.token = token
    }

    /// The path of a file inside the temporary folder.
    package func partialFile(_ name: String) -> String { partialPath + "/" + name }

    /// Creates the file `name` (a plain name) inside the folder, exclusively.
    /// - Throws: ``CheckpointError`` `.invalidArgument` for a name that is not a plain file name, `.io`.
    package func createFile(_ name: String) throws(CheckpointError) -> OutputFile {
        guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else {
            throw CheckpointError(.invalidArgument, "'\(name)' is not a plain file name", file: path)
        }
        return try OutputFile(inFolder: fd, temporaryFolder: partialPath, finalFolder: path, name: name)
    }

    /// Writes a small file `name` into the folder.
    package func writeFile(_ name: String, _ bytes: [UInt8]) throws(CheckpointError) {
        let file = try createFile(name)
        let failure: CheckpointError? = bytes.withUnsafeBytes { raw in
            do throws(CheckpointError) { try file.write(raw, at: 0) } catch { return error }
            return nil
        }
        if let failure { throw failure }
        try file.finish()
    }

    /// Copies the file at `source` (links followed: inputs may be links) byte for byte into the folder as `name`.
    package func copyFile(from source: String, as name: String) throws(CheckpointError) {
        guard Platform.resolvedKind(source) == .file else {
            throw CheckpointError(
                .refused, "not a regular file (a FIFO, device, socket or folder); nf4kit copies only files",
                file: source)
        }
        let file = try createFile(name)
        if try FileAccess.fileSize(source) > 0 {
            let region = try MappedRegion(mapping: source)
            try region.withUnsafeBytes { (raw) throws(CheckpointError) in try file.write(raw, at: 0) }
        }
        try file.finish()
    }

    /// Renames the temporary folder to the final name, replacing an existing output only if allowed.
    ///
    /// - Throws: ``CheckpointError`` `.outputExists` when the output exists without `overwrite` (also when another
    ///   run finished it meanwhile) or may not be replaced; `.io`.
    package func finish() throws(CheckpointError) {
        precondition(!finished, "OutputDirectory.finish() called twice")
        try InputIntegrity.check()  // never rename an output made from an input that shrank under us
        _ = Platform.sync(fd)
        for _ in 0..<8 {
            guard overwrite, Platform.entry(path) != nil else {
                let renamed = OutputRegistry.exclusive { () -> (Bool, Int32) in
                    (Platform.renameNoReplace(partialPath, path), Platform.errorNumber)
                }
                guard let renamed else {
                    throw CheckpointError(.io, "interrupted before the output was complete", file: path)
                }
                if renamed.0 { return done() }
                if renamed.1 == Platform.fileExistsError || renamed.1 == Platform.notEmptyError {
                    if overwrite { continue }
                    throw CheckpointError(
                        .outputExists, "the output already exists (use --force to replace it)", file: path)
                }
                throw CheckpointError(.io, "cannot rename to the final name: \(Platform.errnoDescription)", file: path)
            }
            try rules.check(path, isFolder: true, overwrite: true)
            let aside = temporaryName(for: path, suffix: "replaced")
            // Under the registry's lock, so an interrupt never sees the old output moved aside and the new one not
            // yet in place. The old output is removed only once it was checked again where nobody else can touch
            // it (its unique aside name); anything else is put back.
            typealias Swap = (moved: Bool, renamed: Bool, error: Int32)
            let outcome = OutputRegistry.exclusive { () -> Result<Swap, CheckpointError> in
                var moved = false
                if Platform.rename(path, aside) {
                    if let refusal = checkMovedAside(aside) {
                        if !Platform.renameNoReplace(aside, path) {
                            return .failure(
                                CheckpointError(
                                    refusal.code, refusal.message + "; it was left at '\(aside)'", file: path))
                        }
                        return .failure(refusal)
                    }
                    moved = true
                } else if Platform.errorNumber != Platform.noEntryError {
                    return .failure(
                        CheckpointError(
                            .io, "cannot move the old output aside: \(Platform.errnoDescription)", file: path))
                }
                let renamed = Platform.renameNoReplace(partialPath, path)
                let error = Platform.errorNumber
                if !renamed, moved, error != Platform.fileExistsError, error != Platform.notEmptyError {
                    _ = Platform.renameNoReplace(aside, path)  // put the old output back
                    moved = false
                }
                return .success((moved, renamed, error))
            }
            switch outcome {
            case nil: throw CheckpointError(.io, "interrupted before the output was complete", file: path)
            case .failure(let error)?: throw error
            case .success(let result)?:
                if result.moved { Platform.removeTree(aside) }
                if result.renamed { return done() }
                guard result.error == Platform.fileExistsError || result.error == Platform.notEmptyError else {
                    throw CheckpointError(
                        .io, "cannot rename to the final name: \(Platform.errnoDescription)", file: path)
                }
                continue  // another run put its folder there meanwhile: move that one aside too
            }
        }
        throw CheckpointError(.io, "other runs keep writing the same output; gave up", file: path)
    }

    private func done() {
        finished = true
        OutputRegistry.unregister(token)
        Platform.syncDirectory(OutputDirectory.parent(of: path))
    }

    /// The old output, once moved aside, must still be a folder nf4kit could have written and no input.
    private func checkMovedAside(_ aside: String) -> CheckpointError? {
        guard let found = Platform.entry(aside), found.kind == .directory else {
            return CheckpointError(.outputExists, "the output changed into something that is not a folder", file: path)
        }
        if let input = rules.input(identity: (found.device, found.inode)) {
            return CheckpointError(.outputExists, "the output is the input '\(input)'", file: path)
        }
        do throws(CheckpointError) {
            try rules.check(aside, isFolder: true, overwrite: true)
        } catch {
            return CheckpointError(error.code, error.message, file: path)
        }
        return nil
    }

    deinit {
        Platform.close(fd)
        if !finished {
            Platform.removeTree(partialPath)
            OutputRegistry.unregister(token)
        }
    }

    /// Removes a file, or a folder and everything below it; links are removed, never followed.
    package static func removeTree(_ path: String) { Platform.removeTree(path) }

    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}

/// Small whole-file helpers for JSON side files (config.json, index files, adapter configs).
package enum FileAccess {
    /// Reads a small file completely, refusing files larger than `limit` bytes before allocating.
    package static func readSmallFile(_ path: String, limit: Int = 64 << 20) throws(CheckpointError) -> [UInt8] {
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
    package static func writeSmallFile(_ path: String, _ bytes: [UInt8], overwrite: Bool) throws(CheckpointError) {
        let file = try OutputFile(path: path, overwrite: overwrite)
        let failure: CheckpointError? = bytes.withUnsafeBytes { raw in
            do throws(CheckpointError) { try file.write(raw, at: 0) } catch { return error }
            return nil
        }
        if let failure { throw failure }
        try file.finish()
    }

    package static func exists(_ path: String) -> Bool { Platform.exists(path) }
    package static func isDirectory(_ path: String) -> Bool { Platform.isDirectory(path) }
    /// Sorted names in a folder.
    package static func list(_ path: String) throws(CheckpointError) -> [String] {
        guard let names = Platform.listDirectory(path) else {
            throw CheckpointError(.io, "cannot list the folder: \(Platform.errnoDescription)", file: path)
        }
        return names
    }
    package static func makeDirectory(_ path: String) throws(CheckpointError) {
        guard Platform.makeDirectory(path) else {
            throw CheckpointError(.io, "cannot create the folder: \(Platform.errnoDescription)", file: path)
        }
    }
    /// Size of a file in bytes.
    package static func fileSize(_ path: String) throws(CheckpointError) -> Int64 {
        try InputFile(path: path).byteCount
    }
    /// Copies a (side) file byte for byte.
    package static func copyFile(from source: String, to destination: String) throws(CheckpointError) {
        let region = try MappedRegion(mapping: source)
        let file = try OutputFile(path: destination, overwrite: true)
        try region.withUnsafeBytes { (raw) throws(CheckpointError) in try file.write(raw, at: 0) }
        try file.finish()
    }
    /// The value of the environment variable `name`, or `nil` when it is not set.
    package static func environment(_ name: String) -> String? { Platform.environment(name) }
    /// The absolute path of `path` with every link resolved, or `nil` when it does not exist.
    package static func realPath(_ path: String) -> String? { Platform.realPath(path) }
    package static var processorCount: Int { Platform.processorCount }
    package static var isStandardErrorTerminal: Bool { Platform.isStandardErrorTerminal }
    package static func writeStandardError(_ text: String) { Platform.writeStandardError(text) }
    package static var peakResidentBytes: Int { Platform.peakResidentBytes }
    package static var monotonicSeconds: Double { Platform.monotonicSeconds }
}

/// Creates a fresh temporary beside `path` under a unique random name (``temporaryName(for:suffix:)``) with `create`
/// (which must fail on an existing name, never follow a link, and return a descriptor or `nil`), registered for
/// interrupt cleanup. Tries another name when one exists already; gives up after 16 tries or on any other error.
/// - Returns: the temporary's path, descriptor and ``OutputRegistry`` token, or `nil` (errno says why).
private func createTemporary(
    for path: String, _ create: (String) -> Int32?
) -> (path: String, fd: Int32, token: Int)? {
    for _ in 0..<16 {
        let candidate = temporaryName(for: path, suffix: "partial")
        if let (fd, token) = OutputRegistry.create(candidate, { create(candidate) }) { return (candidate, fd, token) }
        if Platform.errorNumber != Platform.fileExistsError { break }
    }
    return nil
}
