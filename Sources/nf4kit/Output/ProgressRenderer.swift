import NF4Kit
import Synchronization

/// Renders ``ProgressEvent``s on standard error: one redrawn line on a terminal, a plain line every few seconds
/// otherwise, nothing when quiet.
final class ProgressRenderer: Sendable {
    private let enabled: Bool
    private let terminal = FileAccess.isStandardErrorTerminal
    private let lastPrinted = Mutex<Double>(-1)
    private static let plainInterval = 5.0
    private static let terminalInterval = 0.1

    init(enabled: Bool) { self.enabled = enabled }

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

    private func render(_ event: ProgressEvent) {
        let interval = terminal ? Self.terminalInterval : Self.plainInterval
        let due = lastPrinted.withLock { last -> Bool in
            let isLast = event.tensorsDone == event.tensorsTotal
            guard isLast || event.elapsedSeconds - last >= interval else { return false }
            last = event.elapsedSeconds
            return true
        }
        guard due else { return }
        let percent = event.bytesTotal > 0 ? 100 * Double(event.bytesDone) / Double(event.bytesTotal) : 100
        var line = "\(event.tensorsDone)/\(event.tensorsTotal) tensors, \(TextFormatting.bytes(event.bytesDone)) of \(TextFormatting.bytes(event.bytesTotal)) (\(TextFormatting.fixed(percent, 1))%), \(TextFormatting.bytes(Self.wholeBytes(event.throughput)))/s"
        if let eta = event.secondsRemaining, event.tensorsDone < event.tensorsTotal { line += ", ETA \(TextFormatting.fixed(eta, 1)) s" }
        if terminal {
            FileAccess.writeStandardError("\r\u{1B}[K" + line + (event.tensorsDone == event.tensorsTotal ? "\n" : ""))
        } else {
            FileAccess.writeStandardError(line + "\n")
        }
    }
}
