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
