// Inputs that shrink while they are mapped. Reading a page of a mapping past the end of its file raises SIGBUS,
// which would kill the process. A SIGBUS handler maps a zero page over the faulting page when the address lies
// in one of our input mappings and marks that mapping; the read then completes (with zeros), and
// `InputIntegrity.check()` turns the mark into an I/O error (exit 74) naming the file before any output is
// renamed into place and before the CLI reports success. Faults anywhere else restore the default action, so
// they still end the process as before.
@preconcurrency import Glibc
import Synchronization

/// Checks that no input changed size under its mapping.
package enum InputIntegrity {
    /// - Throws: ``CheckpointError`` `.io` naming every input that shrank while it was mapped.
    package static func check() throws(CheckpointError) {
        let shrunk = MappingGuard.shrunkPaths()
        guard let first = shrunk.first else { return }
        let others =
            shrunk.count > 1 ? " (and \(shrunk.count - 1) more: \(shrunk.dropFirst().joined(separator: ", ")))" : ""
        throw CheckpointError(
            .io, "the file became shorter while it was being read (was it modified or truncated?)\(others)", file: first
        )
    }

    /// Forgets that `path` shrank (tests that provoke the fault on purpose call this at once, so the rest of the
    /// process does not see it).
    package static func acknowledge(_ path: String) { MappingGuard.forget(path) }
}

enum MappingGuard {
    static let slotCount = 4096
    /// Start, end and fault flag of each registered mapping; read by the signal handler without locks.
    /// A slot is free when its start is 0. Written only under `registry`'s lock.
    nonisolated(unsafe) static let starts = UnsafeMutablePointer<UInt>.allocate(capacity: slotCount)
    nonisolated(unsafe) static let ends = UnsafeMutablePointer<UInt>.allocate(capacity: slotCount)
    nonisolated(unsafe) static let faulted = UnsafeMutablePointer<Int>.allocate(capacity: slotCount)
    /// Read before the handler is installed, so the handler calls nothing but `mmap` and `signal`.
    static let pageSize = UInt(sysconf(Int32(_SC_PAGESIZE)))
    /// The path of each slot, and the paths of unmapped regions that had faulted.
    static let registry = Mutex<(paths: [String?], shrunkAndGone: [String])>(
        ([String?](repeating: nil, count: slotCount), []))

    static let installed: Bool = {
        starts.initialize(repeating: 0, count: slotCount)
        ends.initialize(repeating: 0, count: slotCount)
        faulted.initialize(repeating: 0, count: slotCount)
        _ = pageSize
        var action = sigaction()
        action.__sigaction_handler.sa_sigaction = { _, info, _ in
            let address = UInt(bitPattern: info?.pointee._sifields._sigfault.si_addr)
            let page = MappingGuard.pageSize
            for slot in 0..<MappingGuard.slotCount {
                let start = MappingGuard.starts[slot]
                guard start != 0, address >= start, address < MappingGuard.ends[slot] else { continue }
                let pageStart = address & ~(page - 1)
                let zero = mmap(
                    UnsafeMutableRawPointer(bitPattern: pageStart), Int(page), PROT_READ,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0)
                if zero != MAP_FAILED {
                    MappingGuard.faulted[slot] = 1
                    return
                }
                break
            }
            // Not ours (or the zero page failed): the default action, so the fault kills the process as before.
            signal(SIGBUS, SIG_DFL)
        }
        action.sa_flags = SA_SIGINFO | SA_NODEFER
        sigemptyset(&action.sa_mask)
        return sigaction(SIGBUS, &action, nil) == 0
    }()

    /// Registers a read-only mapping of `path`; returns its slot, or nil when every slot is taken (the mapping
    /// then has no protection, as before).
    static func register(_ base: UnsafeRawPointer, count: Int, path: String) -> Int? {
        guard installed else { return nil }
        return registry.withLock { state -> Int? in
            guard let slot = state.paths.firstIndex(where: { $0 == nil }) else { return nil }
            state.paths[slot] = path
            faulted[slot] = 0
            ends[slot] = UInt(bitPattern: base) + UInt(count)
            starts[slot] = UInt(bitPattern: base)
            return slot
        }
    }

    /// Forgets a mapping before it is unmapped, remembering its path if it had faulted.
    static func unregister(_ slot: Int) {
        registry.withLock { state in
            if faulted[slot] != 0, let path = state.paths[slot] { state.shrunkAndGone.append(path) }
            starts[slot] = 0
            ends[slot] = 0
            faulted[slot] = 0
            state.paths[slot] = nil
        }
    }

    static func forget(_ path: String) {
        registry.withLock { state in
            state.shrunkAndGone.removeAll { $0 == path }
            for slot in 0..<slotCount where state.paths[slot] == path { faulted[slot] = 0 }
        }
    }

    static func shrunkPaths() -> [String] {
        registry.withLock { state in
            var paths = state.shrunkAndGone
            for slot in 0..<slotCount where faulted[slot] != 0 {
                if let path = state.paths[slot], !paths.contains(path) { paths.append(path) }
            }
            return paths
        }
    }
}
