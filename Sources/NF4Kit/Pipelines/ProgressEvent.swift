import Synchronization
import NF4KitCore

/// Progress of a long-running pipeline, reported through a `@Sendable (ProgressEvent) -> Void` callback.
///
/// The library never prints; the command-line tool renders these on standard error.
public struct ProgressEvent: Sendable {
    /// Tensors finished so far.
    public var tensorsDone: Int
    public var tensorsTotal: Int
    /// Input bytes processed so far.
    public var bytesDone: Int
    public var bytesTotal: Int
    /// Seconds since the pipeline started.
    public var elapsedSeconds: Double
    /// The tensor just finished.
    public var lastTensor: String

    public init(
        tensorsDone: Int, tensorsTotal: Int, bytesDone: Int, bytesTotal: Int, elapsedSeconds: Double, lastTensor: String
    ) {
        self.tensorsDone = tensorsDone
        self.tensorsTotal = tensorsTotal
        self.bytesDone = bytesDone
        self.bytesTotal = bytesTotal
        self.elapsedSeconds = elapsedSeconds
        self.lastTensor = lastTensor
    }

    /// Bytes per second so far.
    public var throughput: Double { elapsedSeconds > 0 ? Double(bytesDone) / elapsedSeconds : 0 }

    /// Estimated seconds left at the current throughput.
    public var secondsRemaining: Double? {
        guard bytesDone > 0, throughput > 0 else { return nil }
        return Double(bytesTotal - bytesDone) / throughput
    }
}

/// Counts finished tensors and bytes from several worker threads and emits ``ProgressEvent``s.
package final class ProgressTracker: Sendable {
    private struct State {
        var tensorsDone = 0
        var bytesDone = 0
    }
    private let state = Mutex(State())
    private let tensorsTotal: Int
    private let bytesTotal: Int
    private let start: Double
    private let report: (@Sendable (ProgressEvent) -> Void)?

    package init(tensorsTotal: Int, bytesTotal: Int, report: (@Sendable (ProgressEvent) -> Void)?) {
        self.tensorsTotal = tensorsTotal
        self.bytesTotal = bytesTotal
        self.report = report
        start = FileAccess.monotonicSeconds
    }

    /// Seconds since the tracker was made.
    package var elapsedSeconds: Double { FileAccess.monotonicSeconds - start }

    /// Records one finished tensor of `bytes` input bytes.
    package func finished(_ tensor: String, bytes: Int) {
        let snapshot = state.withLock { state -> State in
            state.tensorsDone += 1
            state.bytesDone += bytes
            return state
        }
        report?(
            ProgressEvent(
                tensorsDone: snapshot.tensorsDone, tensorsTotal: tensorsTotal, bytesDone: snapshot.bytesDone,
                bytesTotal: bytesTotal, elapsedSeconds: elapsedSeconds, lastTensor: tensor))
    }
}
