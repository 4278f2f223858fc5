import NF4Kit
import Synchronization

/// Renders progress on standard error as one redrawn line, only when standard error is a terminal: nothing when it
/// is piped or redirected, nothing with --quiet or --no-progress.
///
/// A frame shows tensors, bytes done of the total, the share, the rate, the time elapsed and, once enough has been
/// measured (``etaMinimumSeconds`` and ``etaMinimumShare`` of the bytes), the time left. The first frame is drawn
/// after ``firstFrameSeconds``, so a job that ends sooner prints nothing; the line is erased when the job ends.
final class ProgressRenderer: Sendable {
    private struct State {
        var lastDrawn = -1.0
        var drawn = false
        var finished = false
    }
    private let enabled: Bool
    private let label: String
    private let start = FileAccess.monotonicSeconds
    private let state = Mutex(State())

    /// No frame before the job has run this long.
    static let firstFrameSeconds = 0.5
    /// Frames at most this often.
    static let frameInterval = 0.1
    /// No ETA before this much time was measured...
    static let etaMinimumSeconds = 1.0
    /// ...and this share of the bytes was done.
    static let etaMinimumShare = 0.03

    /// - Parameters:
    ///   - enabled: false for --quiet or --no-progress; off anyway when standard error is not a terminal.
    ///   - label: the job's name at the start of each frame (`convert`, `diff`, ...).
    init(enabled: Bool, label: String = "") {
        self.enabled = enabled && FileAccess.isStandardErrorTerminal
        self.label = label
    }

    /// A job that failed never reports its last tensor: erase its line so that the error starts on a clean line.
    deinit {
        state.withLock { state in
            if state.drawn && !state.finished { FileAccess.writeStandardError("\r\u{1B}[K") }
        }
    }

    /// The callback to hand to a pipeline, or `nil` when progress is off.
    var callback: (@Sendable (ProgressEvent) -> Void)? {
        guard enabled else { return nil }
        return { [self] event in self.render(event) }
    }

    /// A rate as whole bytes, clamped: the first event can report an infinite or NaN rate.
    static func wholeBytes(_ rate: Double) -> Int {
        guard rate.isFinite, rate > 0 else { return 0 }
        return rate < 9e18 ? Int(rate) : Int(9e18)
    }

    /// The callback to hand to an analysis (diff, sensitivity), or `nil` when progress is off.
    var analysisCallback: (@Sendable (AnalysisProgress) -> Void)? {
        guard enabled else { return nil }
        return { [self] progress in
            self.render(
                ProgressEvent(
                    tensorsDone: progress.tensorsDone, tensorsTotal: progress.tensorsTotal,
                    bytesDone: progress.bytesDone,
                    bytesTotal: progress.bytesTotal, elapsedSeconds: FileAccess.monotonicSeconds - self.start,
                    lastTensor: ""))
        }
    }

    private func render(_ event: ProgressEvent) {
        state.withLock { state in
            guard !state.finished else { return }
            if event.tensorsDone >= event.tensorsTotal {
                state.finished = true
                if state.drawn { FileAccess.writeStandardError("\r\u{1B}[K") }
                return
            }
            guard event.elapsedSeconds >= Self.firstFrameSeconds,
                event.elapsedSeconds - state.lastDrawn >= Self.frameInterval
            else { return }
            state.lastDrawn = event.elapsedSeconds
            state.drawn = true
            FileAccess.writeStandardError("\r\u{1B}[K" + Self.frame(event, label: label))
        }
    }

    /// One frame: `convert: 3/84 tensors, 12.3 MiB of 45.0 MiB (27.3%), 8.10 MiB/s, 1.5 s elapsed, ETA 4 s`.
    static func frame(_ event: ProgressEvent, label: String) -> String {
        typealias F = TextFormatting
        let share = event.bytesTotal > 0 ? Double(event.bytesDone) / Double(event.bytesTotal) : 0
        var line = label.isEmpty ? "" : label + ": "
        line +=
            "\(event.tensorsDone)/\(event.tensorsTotal) tensors, \(F.bytes(event.bytesDone)) of \(F.bytes(event.bytesTotal))"
        line +=
            " (\(F.fixed(100 * share, 1))%), \(F.bytes(Self.wholeBytes(event.throughput)))/s, \(F.fixed(event.elapsedSeconds, 1)) s elapsed"
        if let eta = eta(event) { line += ", ETA " + duration(eta) }
        return line
    }

    /// Seconds left at the rate measured so far, or `nil` until ``etaMinimumSeconds`` and ``etaMinimumShare``.
    static func eta(_ event: ProgressEvent) -> Double? {
        guard event.bytesTotal > 0, event.elapsedSeconds >= etaMinimumSeconds,
            Double(event.bytesDone) >= etaMinimumShare * Double(event.bytesTotal), event.bytesDone > 0
        else { return nil }
        return event.elapsedSeconds * Double(event.bytesTotal - event.bytesDone) / Double(event.bytesDone)
    }

    /// `42 s`, `3 min 05 s`, `2 h 10 min`.
    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded(.up))
        if s < 60 { return "\(s) s" }
        if s < 3600 { return "\(s / 60) min " + (s % 60 < 10 ? "0" : "") + "\(s % 60) s" }
        return "\(s / 3600) h \((s % 3600) / 60) min"
    }
}
