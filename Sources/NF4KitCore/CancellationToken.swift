import Synchronization

/// A flag that asks running work to stop; workers check it between items.
///
/// ``ParallelRunner/map(count:threads:cancellation:_:)`` checks it before every job, and the merge pipeline before
/// every tensor, so work stops within one item of ``cancel()`` and the unfinished output is removed as on any
/// other error. Swift's `Task.isCancelled` cannot do this job: the runner's workers are GCD threads, where it is
/// always false.
public final class CancellationToken: Sendable {
    private let cancelled = Atomic<Bool>(false)

    /// A token that is not cancelled.
    public init() {}

    /// The process-wide token every pipeline checks unless given another one; the command-line tool trips it
    /// from its SIGINT handler. ``cancel()`` is an atomic store and so may be called from a signal handler.
    public static let process = CancellationToken()

    /// Asks the work checking this token to stop.
    public func cancel() { cancelled.store(true, ordering: .relaxed) }

    /// Whether ``cancel()`` was called.
    public var isCancelled: Bool { cancelled.load(ordering: .relaxed) }

    /// Throws `CancellationError` when ``cancel()`` was called.
    public func check() throws(CancellationError) {
        if isCancelled { throw CancellationError() }
    }
}
