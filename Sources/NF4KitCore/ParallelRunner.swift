import Dispatch
import Synchronization

/// Runs independent jobs (one per tensor) on a fixed number of threads.
///
/// Each worker takes the next job index from a shared counter, so at most `threads` jobs are in flight and the
/// memory in use is bounded by `threads` × one job's buffers. Jobs write their results to planned places, so the
/// output does not depend on the thread count or on the order jobs finish in.
public enum ParallelRunner {
    /// Calls `job(i)` once for every `i` in `0..<count` on up to `threads` threads.
    ///
    /// After the first error no new job starts; that error is rethrown once the running jobs have returned.
    /// - Parameters:
    ///   - threads: Worker count; values below 1 mean 1.
    ///   - isCancelled: Checked before each job; when it returns true, no new job starts and the call throws
    ///     `CancellationError`.
    public static func run(
        count: Int, threads: Int, isCancelled: @Sendable () -> Bool = { false },
        _ job: @Sendable (Int) throws -> Void
    ) throws {
        guard count > 0 else { return }
        let workers = max(1, min(threads, count))
        let next = Atomic<Int>(0)
        let failure = Mutex<(any Error)?>(nil)
        @Sendable func work() {
            while true {
                if failure.withLock({ $0 != nil }) { return }
                if isCancelled() {
                    failure.withLock { if $0 == nil { $0 = CancellationError() } }
                    return
                }
                let index = next.wrappingAdd(1, ordering: .relaxed).oldValue
                guard index < count else { return }
                do {
                    try job(index)
                } catch {
                    failure.withLock { if $0 == nil { $0 = error } }
                    return
                }
            }
        }
        if workers == 1 {
            work()
        } else {
            DispatchQueue.concurrentPerform(iterations: workers) { _ in work() }
        }
        if let error = failure.withLock({ $0 }) { throw error }
    }
}
