import Dispatch
import Synchronization

/// Runs independent jobs on a fixed number of threads; the one place nf4kit fans work out.
///
/// Each worker takes the next job index from a shared counter, so at most `threads` jobs are in flight and the
/// memory in use is bounded by `threads` × one job's buffers. Results are kept by index, so the output does not
/// depend on the thread count or on the order jobs finish in. Kernels that split one tensor into ranges use
/// ``forEachPart(count:parts:_:)``, the same runner without cancellation.
package enum ParallelRunner {
    /// Calls `job(i)` once for every `i` in `0..<count` on up to `threads` threads and returns the results in
    /// index order.
    ///
    /// After the first error no new job starts; that error is rethrown once the running jobs have returned.
    /// - Parameters:
    ///   - threads: Worker count; values below 1 mean 1.
    ///   - cancellation: Checked before each job; once cancelled, no new job starts and the call throws
    ///     `CancellationError`. `nil` for work that cannot be cancelled.
    /// - Throws: The first job's error, or `CancellationError`.
    @discardableResult
    package static func map<T: Sendable>(
        count: Int, threads: Int, cancellation: CancellationToken? = .process, _ job: @Sendable (Int) throws -> T
    ) throws -> [T] {
        let results = IndexedResults<T>(count: max(count, 0))
        let failure = Mutex<(any Error)?>(nil)
        fanOut(count: count, threads: threads) { index in
            if failure.withLock({ $0 != nil }) { return false }
            do {
                if let cancellation, cancellation.isCancelled { throw CancellationError() }
                results.set(index, try job(index))
                return true
            } catch {
                failure.withLock { if $0 == nil { $0 = error } }
                return false
            }
        }
        if let error = failure.withLock({ $0 }) { throw error }
        return results.values
    }

    /// Calls `job(i)` for every `i` in `0..<count` on up to `threads` threads, for jobs that cannot fail and work
    /// that is not cancelled (an inspection, a comparison); results in index order.
    package static func map<T: Sendable>(count: Int, threads: Int, _ job: @Sendable (Int) -> T) -> [T] {
        let results = IndexedResults<T>(count: max(count, 0))
        fanOut(count: count, threads: threads) { index in
            results.set(index, job(index))
            return true
        }
        return results.values
    }

    /// Splits `0..<count` into `parts` contiguous ranges (fewer when `count` is smaller) and calls `body` on each,
    /// concurrently. For kernels that share one tensor between threads: each range must touch its own bytes.
    package static func forEachPart(count: Int, parts: Int, _ body: @Sendable (Range<Int>) -> Void) {
        let parts = max(1, min(parts, count))
        guard parts > 1 else {
            if count > 0 { body(0..<count) }
            return
        }
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            body((count * part / parts)..<(count * (part + 1) / parts))
        }
    }

    /// Runs `step(i)` for each index on up to `threads` workers until it returns false or the indices run out.
    private static func fanOut(count: Int, threads: Int, _ step: @Sendable (Int) -> Bool) {
        guard count > 0 else { return }
        let workers = max(1, min(threads, count))
        let next = Atomic<Int>(0)
        @Sendable func work() {
            while true {
                let index = next.wrappingAdd(1, ordering: .relaxed).oldValue
                guard index < count, step(index) else { return }
            }
        }
        if workers == 1 {
            work()
        } else {
            DispatchQueue.concurrentPerform(iterations: workers) { _ in work() }
        }
    }
}

/// Results written by index from several threads and read once all writers are done.
package final class IndexedResults<T: Sendable>: Sendable {
    private let storage: Mutex<[T?]>

    /// `count` empty slots.
    package init(count: Int) { storage = Mutex([T?](repeating: nil, count: count)) }

    /// Stores the result of job `index`.
    package func set(_ index: Int, _ value: T) { storage.withLock { $0[index] = value } }

    /// The results in index order (only the filled slots, so a run stopped early gives a prefix-free subset).
    package var values: [T] { storage.withLock { $0.compactMap { $0 } } }
}
