import Synchronization

/// How far a long analysis (``CheckpointDiff/compare(_:_:threads:progress:)``,
/// ``SensitivityReport/analyze(_:options:progress:)``) has got, reported after each tensor from any thread.
///
/// The library never prints; the command-line tool renders these on standard error.
public struct AnalysisProgress: Sendable, Hashable {
    /// Tensors finished so far.
    public var tensorsDone: Int
    /// Tensors to process.
    public var tensorsTotal: Int
    /// Input bytes of the finished tensors (stored bytes; for a diff, of both sides).
    public var bytesDone: Int
    /// Input bytes of every tensor to process.
    public var bytesTotal: Int

    /// Creates a progress value.
    public init(tensorsDone: Int, tensorsTotal: Int, bytesDone: Int, bytesTotal: Int) {
        self.tensorsDone = tensorsDone
        self.tensorsTotal = tensorsTotal
        self.bytesDone = bytesDone
        self.bytesTotal = bytesTotal
    }
}

/// Counts finished tensors and their bytes from several threads and reports ``AnalysisProgress``.
final class AnalysisProgressCounter: Sendable {
    private let state = Mutex<(tensors: Int, bytes: Int)>((0, 0))
    private let tensorsTotal: Int
    private let bytesTotal: Int
    private let report: (@Sendable (AnalysisProgress) -> Void)?

    init(tensorsTotal: Int, bytesTotal: Int, report: (@Sendable (AnalysisProgress) -> Void)?) {
        self.tensorsTotal = tensorsTotal
        self.bytesTotal = bytesTotal
        self.report = report
    }

    /// Records one finished tensor of `bytes` input bytes and reports (inside the lock, so reports arrive in order).
    func finished(bytes: Int) {
        guard let report else { return }
        state.withLock { state in
            state.tensors += 1
            state.bytes += bytes
            report(
                AnalysisProgress(
                    tensorsDone: state.tensors, tensorsTotal: tensorsTotal, bytesDone: state.bytes,
                    bytesTotal: bytesTotal))
        }
    }
}
