import Synchronization

/// The rules that decide whether an output may be created at a path (docs/cli.md "Outputs").
///
/// - An input is never overwritten, even with `--force`: the output, every folder above it and (for a folder
///   output) everything it would replace are compared by device and inode with every input file and folder.
/// - Only a regular file, or a folder holding only regular files that looks like one nf4kit writes, is replaced,
///   and only with `overwrite`. Links, FIFOs, devices and sockets are never replaced or written through.
package struct OutputGuard: Sendable {
    /// Device and inode of a file system object.
    package struct Identity: Hashable, Sendable {
        package var device: UInt64
        package var inode: UInt64
    }

    /// Identities of the input files and folders (links followed), with the path the user gave.
    private let inputs: [Identity: String]
    /// Identities of every folder that contains an input (by the path as given and by its resolved path).
    private let inputAncestors: [Identity: String]

    /// Records the identities of `inputs` (files and folders this run reads).
    package init(inputs: [String]) {
        var identities: [Identity: String] = [:]
        var ancestors: [Identity: String] = [:]
        for input in inputs where !input.isEmpty {
            if let id = Platform.identity(input) { identities[Identity(device: id.device, inode: id.inode)] = input }
            for folder in OutputGuard.ancestors(of: input) {
                if let id = Platform.identity(folder) {
                    ancestors[Identity(device: id.device, inode: id.inode), default: input] = input
                }
            }
        }
        self.inputs = identities
        inputAncestors = ancestors
    }

    /// The input that `path` (links followed) is, if any.
    package func input(at path: String) -> String? {
        guard let id = Platform.identity(path) else { return nil }
        return inputs[Identity(device: id.device, inode: id.inode)]
    }

    /// The input whose identity is `id`, if any.
    package func input(identity id: (device: UInt64, inode: UInt64)) -> String? {
        inputs[Identity(device: id.device, inode: id.inode)]
    }

    /// Checks that an output may be written at `path`.
    ///
    /// - Parameters:
    ///   - isFolder: Whether the output is a folder (else a file).
    ///   - overwrite: Whether an existing output may be replaced (`--force`).
    /// - Returns: Whether something is at `path` now (and will be replaced).
    /// - Throws: ``CheckpointError`` `.outputExists` (exit 74) naming the rule.
    @discardableResult
    package func check(_ path: String, isFolder: Bool, overwrite: Bool) throws(CheckpointError) -> Bool {
        guard !path.isEmpty else {
            throw CheckpointError(.invalidArgument, "the output name is empty")
        }
        for folder in OutputGuard.ancestors(of: path) {
            if let input = input(at: folder) {
                throw CheckpointError(
                    .outputExists,
                    "the output would be inside the input folder '\(input)'; nf4kit never writes into an input",
                    file: path)
            }
        }
        guard let found = Platform.entry(path) else { return false }
        if let input = input(at: path) ?? input(identity: (found.device, found.inode)) {
            throw CheckpointError(
                .outputExists,
                "the output is the input '\(input)'; nf4kit never overwrites an input, even with --force",
                file: path)
        }
        switch found.kind {
        case .link:
            throw CheckpointError(
                .outputExists, "the output is a symbolic link; nf4kit never writes through or replaces a link",
                file: path)
        case .other:
            throw CheckpointError(
                .outputExists,
                "the output is not a regular file or folder (a FIFO, device or socket); nf4kit never replaces one",
                file: path)
        case .file, .directory: break
        }
        if let input = inputAncestors[Identity(device: found.device, inode: found.inode)] {
            throw CheckpointError(
                .outputExists, "the output contains the input '\(input)'; nf4kit never overwrites an input", file: path)
        }
        guard overwrite else {
            throw CheckpointError(.outputExists, "the output already exists (use --force to replace it)", file: path)
        }
        if isFolder {
            guard found.kind == .directory else {
                throw CheckpointError(
                    .outputExists, "the output exists and is a file; a folder output replaces only a folder", file: path
                )
            }
            try OutputGuard.checkReplaceableFolder(path)
        } else {
            guard found.kind == .file else {
                throw CheckpointError(
                    .outputExists, "the output exists and is a folder; a file output replaces only a file", file: path)
            }
        }
        return true
    }

    /// Refuses a folder that nf4kit could not have written: anything but regular files in it, or no model file.
    package static func checkReplaceableFolder(_ path: String) throws(CheckpointError) {
        let fd = Platform.openDirectory(path)
        guard fd >= 0 else {
            throw CheckpointError(
                .io, "cannot open the existing output folder: \(Platform.errnoDescription)", file: path)
        }
        defer { Platform.close(fd) }
        guard let names = Platform.listDirectory(fd: fd) else {
            throw CheckpointError(
                .io, "cannot list the existing output folder: \(Platform.errnoDescription)", file: path)
        }
        for name in names where Platform.entry(in: fd, name)?.kind != .file {
            throw CheckpointError(
                .outputExists,
                "the existing output folder holds '\(name)', which is not a regular file; --force replaces only a "
                    + "folder nf4kit could have written",
                file: path)
        }
        let modelFile = names.contains { name in
            name.hasSuffix(".safetensors") || name.hasSuffix(".safetensors.index.json") || name.hasSuffix(".gguf")
                || name == "config.json" || name == "adapter_config.json"
        }
        guard names.isEmpty || modelFile else {
            throw CheckpointError(
                .outputExists,
                "the existing folder holds no model files (.safetensors, config.json, ...); --force replaces only a "
                    + "folder nf4kit could have written",
                file: path)
        }
    }

    /// The folders above `path`, nearest first: by its spelling made absolute (when it has no `..`, whose meaning
    /// depends on links) and by the resolved location of its nearest existing parent.
    package static func ancestors(of path: String) -> [String] {
        var result: [String] = []
        func addPrefixes(_ parts: [Substring]) {
            var parts = parts
            while !parts.isEmpty {
                result.append("/" + parts.joined(separator: "/"))
                parts.removeLast()
            }
            result.append("/")
        }
        let absolute = path.hasPrefix("/") ? path : (Platform.currentDirectory ?? ".") + "/" + path
        var parents = Array(absolute.split(separator: "/", omittingEmptySubsequences: true).dropLast())
        if !parents.contains("..") { addPrefixes(parents) }
        while true {
            if let resolved = Platform.realPath("/" + parents.joined(separator: "/")) {
                addPrefixes(resolved.split(separator: "/", omittingEmptySubsequences: true))
                break
            }
            if parents.isEmpty { break }
            parents.removeLast()
        }
        return result
    }
}

/// The temporary outputs of this process, so that an interrupt can remove them (issue 16: interrupted runs leave
/// nothing behind).
///
/// Outputs are created and registered under one lock, and the final renames of a folder replaced with `--force`
/// run under it too, so ``removeAll()`` never sees a half-finished swap.
package enum OutputRegistry {
    private struct State: ~Copyable {
        var paths: [Int: String] = [:]
        var next = 0
        var closed = false
    }
    private static let state = Mutex(State())

    /// Runs `create` (which makes the entry at `path` and returns a value, or `nil` on failure) and records `path`
    /// for removal on interrupt, atomically with respect to ``removeAll()``.
    /// - Returns: The value and the registration token, or `nil` when `create` failed or an interrupt is being
    ///   handled (nothing is created then).
    package static func create<R>(_ path: String, _ create: () -> R?) -> (R, Int)? {
        state.withLock { state -> (R, Int)? in
            guard !state.closed, let value = create() else { return nil }
            let token = state.next
            state.next += 1
            state.paths[token] = path
            return (value, token)
        }
    }

    /// Forgets a registration (the entry was renamed into place or removed).
    package static func unregister(_ token: Int) {
        _ = state.withLock { state in state.paths.removeValue(forKey: token) }
    }

    /// Runs `body` while no interrupt cleanup can run; `nil` (and `body` not run) once an interrupt is handled.
    package static func exclusive<R>(_ body: () -> R) -> R? {
        state.withLock { state -> R? in state.closed ? nil : body() }
    }

    /// Removes every registered temporary output of this process (links are never followed) and refuses new
    /// ones. Called by the command line on SIGINT, SIGTERM and SIGHUP before it exits.
    /// - Returns: The paths removed.
    @discardableResult
    package static func removeAll() -> [String] {
        state.withLock { state in
            state.closed = true
            let paths = state.paths.sorted { $0.key < $1.key }.map(\.value)
            for path in paths { Platform.removeTree(path) }
            state.paths = [:]
            return paths
        }
    }
}

/// A name for a temporary entry beside `path`: `path.nf4kit-<16 hex digits>.<suffix>`, unique per call.
func temporaryName(for path: String, suffix: String) -> String {
    var trimmed = path
    while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
    var random = SystemRandomNumberGenerator()
    let value = random.next() as UInt64
    let hex = String(value, radix: 16)
    return trimmed + ".nf4kit-" + String(repeating: "0", count: 16 - hex.count) + hex + "." + suffix
}
