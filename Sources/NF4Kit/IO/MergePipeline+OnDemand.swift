import Dispatch
import NF4KitCore
import Synchronization

extension OutputUnit {
    /// This unit's one output as `byteCount` bytes computed on first read: the fill runs
    /// ``produce(form:options:sink:scratch:)`` into the region's own storage with buffers taken from `pool`, then
    /// releases the base tensor's pages. Its errors (a non-finite value, a cancellation) come out of
    /// `TensorBytes.materialize()`.
    func onDemandBytes(byteCount: Int, form: OutputForm, options: MergeOptions, pool: MergeScratchPool) -> TensorBytes {
        let unit = self
        let region = MappedRegion(deferred: byteCount, description: "merged tensor '\(entry.name)'") { destination in
            try options.cancellation.check()
            try pool.withScratch { scratch in
                _ = try unit.produce(form: form, options: options, sink: .memory(destination), scratch: scratch)
            }
            unit.releaseInputPages()
        }
        return region.all
    }
}

/// The scratch buffers of merges computed on demand by the GGUF export's workers: one merge runs at a time, since a
/// merge already spreads over `MergeOptions.threadCount` threads and the export's other workers convert and write
/// meanwhile. So at most one tensor is being merged in f32, however many tensors the export has in flight, and the
/// buffers are reused from one merge to the next.
final class MergeScratchPool: Sendable {
    private let scratch = Mutex<MergeScratch?>(MergeScratch())
    private let turn = DispatchSemaphore(value: 1)

    /// Allocates the buffers for merges of up to `floatCount` values before any merge runs, so that they never grow
    /// (a freed block raises malloc's mmap threshold, after which it keeps the export's own buffers resident).
    func reserve(floatCount: Int) {
        try? withScratch { _ = $0.floats(floatCount) }
    }

    /// Calls `body` with the scratch buffers, once no other merge holds them.
    func withScratch<R>(_ body: (MergeScratch) throws -> R) throws -> R {
        turn.wait()
        defer { turn.signal() }
        let held = scratch.withLock { $0.take() }!
        defer { scratch.withLock { $0 = held } }
        return try body(held)
    }
}
