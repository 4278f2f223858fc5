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

/// Scratch buffer sets for merges that run on several threads at once (tensors computed on demand by the GGUF
/// export's workers): a merge takes a set to itself and gives it back, so there are as many sets as merges ever ran
/// at once, each as large as the largest tensor it merged.
final class MergeScratchPool: Sendable {
    private let free = Mutex<[MergeScratch]>([])

    /// Calls `body` with a set no other caller holds until it returns.
    func withScratch<R>(_ body: (MergeScratch) throws -> R) throws -> R {
        let scratch = free.withLock { $0.popLast() } ?? MergeScratch()
        defer { free.withLock { $0.append(scratch) } }
        return try body(scratch)
    }
}
