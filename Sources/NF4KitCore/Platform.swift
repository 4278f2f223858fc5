// The one place that imports the C library. Everything else calls these wrappers.
@preconcurrency import Glibc

/// Thin wrappers over POSIX calls used by the I/O layer.
enum Platform {
    static var errnoDescription: String { String(cString: strerror(errno)) }

    static func open(_ path: String, flags: Int32, mode: mode_t = 0o644) -> Int32 {
        Glibc.open(path, flags, mode)
    }
    static func close(_ fd: Int32) { _ = Glibc.close(fd) }

    /// Size of an open file, or `nil` with errno set.
    static func fileSize(_ fd: Int32) -> Int64? {
        var info = stat()
        guard fstat(fd, &info) == 0 else { return nil }
        return Int64(info.st_size)
    }

    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        guard stat(path, &info) == 0 else { return false }
        return (info.st_mode & S_IFMT) == S_IFDIR
    }

    static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    /// Device and inode of a path, to tell whether two paths name the same file.
    static func identity(_ path: String) -> (device: UInt64, inode: UInt64)? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return (UInt64(info.st_dev), UInt64(info.st_ino))
    }

    static func mapReadOnly(_ fd: Int32, count: Int) -> UnsafeRawPointer? {
        let pointer = mmap(nil, count, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let pointer, pointer != MAP_FAILED else { return nil }
        _ = madvise(pointer, count, MADV_SEQUENTIAL)
        return UnsafeRawPointer(pointer)
    }

    /// `madvise(MADV_DONTNEED)` on the whole pages inside `range` of a read-only file mapping.
    static func releasePages(_ base: UnsafeRawPointer, range: Range<Int>) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (range.lowerBound + page - 1) / page * page
        let end = range.upperBound / page * page
        guard end > start else { return }
        _ = madvise(UnsafeMutableRawPointer(mutating: base + start), end - start, MADV_DONTNEED)
    }

    /// `count` bytes of fresh pages of our own (an anonymous private mapping), to give back with ``unmap(_:count:)``.
    static func mapAnonymous(count: Int) -> UnsafeMutableRawPointer? {
        let pointer = mmap(nil, count, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let pointer, pointer != MAP_FAILED else { return nil }
        return pointer
    }

    static func unmap(_ pointer: UnsafeRawPointer, count: Int) {
        _ = munmap(UnsafeMutableRawPointer(mutating: pointer), count)
    }

    /// Writes all of `bytes` at `offset`, retrying short writes and EINTR. Returns false with errno set.
    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int64) -> Bool {
        var done = 0
        while done < bytes.count {
            let written = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done))
            if written < 0 {
                if errno == EINTR { continue }
                return false
            }
            done += written
        }
        return true
    }

    /// Copies up to `count` bytes from `input` at `inputOffset` to `output` at `outputOffset` inside the kernel
    /// (`copy_file_range(2)`: page cache to page cache, no mapping faulted in), retrying EINTR. Returns the count
    /// copied (0 at the input's end) or -1 with errno set (EXDEV, EINVAL, ENOSYS, EOPNOTSUPP when unsupported).
    static func copyFileRange(
        from input: Int32, at inputOffset: Int64, to output: Int32, at outputOffset: Int64, count: Int
    ) -> Int {
        guard let copyFileRange = copyFileRangeFunction else {
            errno = ENOSYS
            return -1
        }
        var from = off_t(inputOffset), to = off_t(outputOffset)
        while true {
            let copied = copyFileRange(input, &from, output, &to, count, 0)
            if copied < 0 && errno == EINTR { continue }
            return copied
        }
    }

    /// `copy_file_range` from the C library, looked up at run time (the Swift Glibc module does not declare it).
    private typealias CopyFileRange =
        @convention(c) (
            Int32, UnsafeMutablePointer<off_t>?, Int32, UnsafeMutablePointer<off_t>?, Int, UInt32
        ) -> Int
    private static let copyFileRangeFunction: CopyFileRange? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "copy_file_range") else { return nil }
        return unsafeBitCast(symbol, to: CopyFileRange.self)
    }()

    /// A second descriptor for the same open file, closed on exec; -1 with errno set on failure.
    static func duplicate(_ fd: Int32) -> Int32 { fcntl(fd, F_DUPFD_CLOEXEC, 0) }

    /// Reads up to `count` bytes at `offset` into `buffer`; returns the count read or -1.
    static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) -> Int {
        var done = 0
        while done < buffer.count {
            let got = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if got < 0 {
                if errno == EINTR { continue }
                return -1
            }
            if got == 0 { break }
            done += got
        }
        return done
    }

    static func truncate(_ fd: Int32, to size: Int64) -> Bool { ftruncate(fd, off_t(size)) == 0 }
    static func sync(_ fd: Int32) -> Bool { fsync(fd) == 0 }
    static func rename(_ from: String, _ to: String) -> Bool { Glibc.rename(from, to) == 0 }
    static func unlink(_ path: String) { _ = Glibc.unlink(path) }
    static func makeDirectory(_ path: String) -> Bool { mkdir(path, 0o755) == 0 || errno == EEXIST }
    static func removeDirectory(_ path: String) -> Bool { rmdir(path) == 0 }

    /// Names in a directory (without `.` and `..`), sorted; `nil` if it cannot be listed.
    static func listDirectory(_ path: String) -> [String]? {
        guard let dir = opendir(path) else { return nil }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    // MARK: Output safety (links are never followed when writing or deleting)

    /// What a directory entry is, without following a link at its place (`lstat`).
    enum EntryKind: Equatable {
        case file, directory, link, other
    }

    /// The kind and identity of the entry at `path` itself (a link is reported as a link), or `nil` if none.
    static func entry(_ path: String) -> (kind: EntryKind, device: UInt64, inode: UInt64)? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return (kind(info.st_mode), UInt64(info.st_dev), UInt64(info.st_ino))
    }

    private static func kind(_ mode: mode_t) -> EntryKind {
        switch mode & S_IFMT {
        case S_IFREG: .file
        case S_IFDIR: .directory
        case S_IFLNK: .link
        default: .other
        }
    }

    /// The kind of what `path` names, links followed, or `nil` if nothing is there.
    static func resolvedKind(_ path: String) -> EntryKind? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return kind(info.st_mode)
    }

    /// The kind and identity of an entry inside an open folder, without following a link.
    static func entry(in directory: Int32, _ name: String) -> (kind: EntryKind, device: UInt64, inode: UInt64)? {
        var info = stat()
        guard fstatat(directory, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { return nil }
        return (kind(info.st_mode), UInt64(info.st_dev), UInt64(info.st_ino))
    }

    /// Device and inode of an open descriptor.
    static func identity(_ fd: Int32) -> (device: UInt64, inode: UInt64)? {
        var info = stat()
        guard fstat(fd, &info) == 0 else { return nil }
        return (UInt64(info.st_dev), UInt64(info.st_ino))
    }

    /// Creates a new regular file: fails if anything (a link included) is at `path`.
    static func createExclusive(_ path: String) -> Int32 {
        Glibc.open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
    }

    /// Creates a new regular file named `name` inside the open folder `directory`, exclusively.
    static func createExclusive(in directory: Int32, _ name: String) -> Int32 {
        openat(directory, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
    }

    /// Creates a new folder: fails if anything is at `path`.
    static func makeDirectoryExclusive(_ path: String) -> Bool { mkdir(path, 0o755) == 0 }

    /// Opens a folder for `*at` calls; fails on a link.
    static func openDirectory(_ path: String) -> Int32 {
        Glibc.open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
    }

    /// Names in an open folder (without `.` and `..`), or `nil`.
    static func listDirectory(fd: Int32) -> [String]? {
        let copy = dup(fd)
        guard copy >= 0, let dir = fdopendir(copy) else { return nil }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// Removes the entry at `path`: a file or link is unlinked (a link's target is never touched), a folder is
    /// emptied through `*at` calls on descriptors opened with `O_NOFOLLOW`, then removed. Best effort.
    static func removeTree(_ path: String) {
        guard let found = entry(path) else { return }
        if found.kind == .directory {
            let fd = openDirectory(path)
            if fd >= 0 {
                emptyDirectory(fd)
                _ = Glibc.close(fd)
            }
            if rmdir(path) != 0, errno == ENOTEMPTY {  // a worker added a file meanwhile: once more
                let again = openDirectory(path)
                if again >= 0 {
                    emptyDirectory(again)
                    _ = Glibc.close(again)
                }
                _ = rmdir(path)
            }
        } else {
            _ = Glibc.unlink(path)
        }
    }

    private static func emptyDirectory(_ fd: Int32, depth: Int = 0) {
        guard depth < 64, let names = listDirectory(fd: fd) else { return }
        for name in names {
            if entry(in: fd, name)?.kind == .directory {
                let child = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                if child >= 0 {
                    emptyDirectory(child, depth: depth + 1)
                    _ = Glibc.close(child)
                }
                _ = unlinkat(fd, name, AT_REMOVEDIR)
            } else {
                _ = unlinkat(fd, name, 0)
            }
        }
    }

    /// The canonical absolute path (links resolved), or `nil`.
    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// The value of the environment variable `name`, or `nil` when it is not set.
    static func environment(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }

    /// The current folder.
    static var currentDirectory: String? {
        guard let cwd = getcwd(nil, 0) else { return nil }
        defer { free(cwd) }
        return String(cString: cwd)
    }

    static var processID: Int32 { getpid() }

    /// The current `errno`, and the values the output layer tells apart.
    static var errorNumber: Int32 { errno }
    static var fileExistsError: Int32 { EEXIST }
    static var notEmptyError: Int32 { ENOTEMPTY }
    static var noEntryError: Int32 { ENOENT }

    /// `renameat2` from the C library, looked up at run time (the Swift Glibc module does not declare it).
    private typealias RenameAt2 =
        @convention(c) (
            Int32, UnsafePointer<CChar>, Int32, UnsafePointer<CChar>, UInt32
        ) -> Int32
    private static let renameAt2: RenameAt2? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "renameat2") else { return nil }
        return unsafeBitCast(symbol, to: RenameAt2.self)
    }()

    /// Renames `from` to `to` only if nothing is at `to` (`RENAME_NOREPLACE`); errno `EEXIST` otherwise.
    /// Without `renameat2` (old C libraries), files use link + unlink and folders a plain rename after a check.
    static func renameNoReplace(_ from: String, _ to: String) -> Bool {
        if let renameAt2 {
            let result = renameAt2(AT_FDCWD, from, AT_FDCWD, to, 1)  // RENAME_NOREPLACE
            if result == 0 { return true }
            if errno != EINVAL && errno != ENOSYS { return false }
        }
        if entry(from)?.kind == .directory {
            if entry(to) != nil {
                errno = EEXIST
                return false
            }
            return Glibc.rename(from, to) == 0
        }
        guard link(from, to) == 0 else { return false }
        _ = Glibc.unlink(from)
        return true
    }

    /// Syncs a folder's entries (after a rename into it).
    static func syncDirectory(_ path: String) {
        let fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        _ = Glibc.close(fd)
    }

    /// Ends the process at once with `status`, without running exit handlers (used after a signal's cleanup).
    static func exitNow(_ status: Int32) -> Never { _exit(status) }

    static let readOnlyFlags: Int32 = O_RDONLY | O_CLOEXEC
    static let createFlags: Int32 = O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC
    static var processorCount: Int { Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) }
    static var isStandardErrorTerminal: Bool { isatty(STDERR_FILENO) != 0 }

    /// Writes a string to standard error without buffering.
    static func writeStandardError(_ text: String) {
        var text = text
        text.withUTF8 { bytes in
            var done = 0
            while done < bytes.count {
                let n = Glibc.write(STDERR_FILENO, bytes.baseAddress! + done, bytes.count - done)
                if n <= 0 { if errno == EINTR { continue } else { return } }
                done += n
            }
        }
    }

    /// Peak resident set size of this process in bytes (from getrusage).
    static var peakResidentBytes: Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Int(usage.ru_maxrss) * 1024
    }

    /// Monotonic clock in seconds.
    static var monotonicSeconds: Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

/// libm functions for the modules that do not import the C library.
package enum PlatformMath {
    /// `pow(x, y)` in double precision (glibc's is correctly rounded in all but rare cases).
    package static func pow(_ x: Double, _ y: Double) -> Double { Glibc.pow(x, y) }
}
