import Dispatch
import NF4KitCore
import Synchronization

/// Reusable buffers for one tensor's f32 values and its output bytes, so the pipeline does not allocate (and the
/// kernel does not fault in fresh zeroed pages) per tensor. Peak size: the largest merged tensor in f32 plus its
/// output bytes.
// @unchecked Sendable because one thread uses it at a time: the merge pipeline's loop, or a merge computed on demand
// that took it from a `MergeScratchPool`.
final class MergeScratch: @unchecked Sendable {
    private let floatBuffer = ScratchBuffer()
    private let byteBuffer = ScratchBuffer()

    /// A buffer of `count` floats (contents undefined), valid until the next call.
    func floats(_ count: Int) -> UnsafeMutableBufferPointer<Float> { floatBuffer.unsafeFloats(count) }

    /// A buffer of `count` bytes (contents undefined), valid until the next call.
    func bytes(_ count: Int) -> UnsafeMutableRawBufferPointer { byteBuffer.unsafeBytes(count) }

    /// A float tensor's values widened to f32 into ``floats(_:)``.
    func load(_ tensor: Tensor, threadCount: Int) throws(CheckpointError) -> UnsafeMutableBufferPointer<Float> {
        let count = try LoRAMerger.floatElementCount(tensor)
        let values = floats(count)
        tensor.bytes.withUnsafeBytes {
            FloatConversion.widen($0, from: tensor.dtype, into: values, threadCount: threadCount)
        }
        return values
    }

    // Write-behind: two buffers used in turn; a buffer is reused only after the writer thread has written it.
    private let behind = [ScratchBuffer(), ScratchBuffer()]
    private let behindDone = [DispatchGroup(), DispatchGroup()]
    private var nextBehind = 0
    private let writerQueue = DispatchQueue(label: "nf4kit.merge.write-behind")
    private let writeFailure = FailureBox()

    /// The first error of the writer thread.
    final class FailureBox: Sendable {
        let first = Mutex<(any Error)?>(nil)
    }

    /// A write-behind buffer and its slot.
    struct BehindBuffer {
        let buffer: UnsafeMutableRawBufferPointer
        let slot: Int
    }

    /// The next write-behind buffer of `count` bytes, once its previous write is done. Throws an earlier write's
    /// error, so a failed write stops the merge at the next tensor.
    func writeBehindBuffer(_ count: Int) throws -> BehindBuffer {
        let slot = nextBehind
        nextBehind = 1 - slot
        behindDone[slot].wait()
        if let failure = writeFailure.first.withLock({ $0 }) { throw failure }
        return BehindBuffer(buffer: behind[slot].unsafeBytes(count), slot: slot)
    }

    /// Writes `buffer` on the writer thread; its error comes back from the next ``writeBehindBuffer(_:)`` or
    /// ``finishWrites()``.
    func writeBehind(_ buffer: BehindBuffer, _ write: @escaping @Sendable (UnsafeRawBufferPointer) throws -> Void) {
        let raw = UnsafeRawBufferPointer(buffer.buffer)
        let failure = writeFailure
        behindDone[buffer.slot].enter()
        nonisolated(unsafe) let bytes = raw
        writerQueue.async { [group = behindDone[buffer.slot]] in
            do { try write(bytes) } catch { failure.first.withLock { if $0 == nil { $0 = error } } }
            group.leave()
        }
    }

    /// Waits for every write-behind and throws the first error.
    func finishWrites() throws {
        writerQueue.sync {}
        if let failure = writeFailure.first.withLock({ $0 }) { throw failure }
    }

    deinit {
        writerQueue.sync {}  // the writer thread may still read a write-behind buffer
    }
}
