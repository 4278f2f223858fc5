// Opening an input file: follows symbolic links (a Hugging Face cache snapshot is made of links into blobs/),
// never blocks (a FIFO would wait forever for a writer), and accepts only regular files.
@preconcurrency import Glibc

/// An open, regular input file: its descriptor and size at the time it was opened.
struct InputFile: ~Copyable {
    let fd: Int32
    let byteCount: Int64

    /// Opens `path` read-only.
    ///
    /// - Throws: ``CheckpointError`` `.notFound` when nothing is there, `.refused` (exit 65) for a folder, FIFO,
    ///   socket or device, `.io` when the file cannot be opened or examined; every message names the file.
    init(path: String) throws(CheckpointError) {
        // stat first, so a FIFO or device is refused without being opened at all.
        var info = stat()
        guard stat(path, &info) == 0 else {
            let reason = Platform.errnoDescription
            throw CheckpointError(
                Platform.exists(path) ? .io : .notFound, "cannot open the file: \(reason)", file: path)
        }
        try InputFile.requireRegular(info.st_mode, path)
        // O_NONBLOCK: if the path was replaced by a FIFO since stat, open returns at once instead of waiting.
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else {
            let reason = Platform.errnoDescription
            throw CheckpointError(
                Platform.exists(path) ? .io : .notFound, "cannot open the file: \(reason)", file: path)
        }
        guard fstat(fd, &info) == 0 else {
            let reason = Platform.errnoDescription
            _ = Glibc.close(fd)
            throw CheckpointError(.io, "cannot read the file size: \(reason)", file: path)
        }
        do {
            try InputFile.requireRegular(info.st_mode, path)
        } catch {
            _ = Glibc.close(fd)
            throw error
        }
        let flags = fcntl(fd, F_GETFL)
        if flags >= 0 { _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) }
        self.fd = fd
        self.byteCount = Int64(info.st_size)
    }

    deinit { _ = Glibc.close(fd) }

    private static func requireRegular(_ mode: mode_t, _ path: String) throws(CheckpointError) {
        switch mode & S_IFMT {
        case S_IFREG: return
        case S_IFDIR: throw CheckpointError(.refused, "expected a file, found a folder", file: path)
        case S_IFIFO: throw CheckpointError(.refused, "expected a regular file, found a FIFO (named pipe)", file: path)
        case S_IFSOCK: throw CheckpointError(.refused, "expected a regular file, found a socket", file: path)
        case S_IFCHR, S_IFBLK: throw CheckpointError(.refused, "expected a regular file, found a device", file: path)
        default: throw CheckpointError(.refused, "expected a regular file", file: path)
        }
    }
}
