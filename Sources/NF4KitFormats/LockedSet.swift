import Synchronization

/// A set of strings shared between threads.
final class LockedSet: Sendable {
    private let storage = Mutex<Set<String>>([])
    func insert(_ value: String) { storage.withLock { _ = $0.insert(value) } }
    func contains(_ value: String) -> Bool { storage.withLock { $0.contains(value) } }
}
