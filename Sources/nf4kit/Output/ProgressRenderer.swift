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
        var line = "\(event.tensorsDone)/\(event.tensorsTotal) tensors, \(Format.bytes(event.bytesDone)) of \(Format.bytes(event.bytesTotal)) (\(Format.fixed(percent, 1))%), \(Format.bytes(Int(event.throughput)))/s"
        if let eta = event.secondsRemaining, event.tensorsDone < event.tensorsTotal { line += ", ETA \(Format.fixed(eta, 1)) s" }
        if terminal {
            FileAccess.writeStandardError("\r\u{1B}[K" + line + (event.tensorsDone == event.tensorsTotal ? "\n" : ""))
        } else {
            FileAccess.writeStandardError(line + "\n")
        }
    }
}

/// Number formatting for human-readable output (JSON output uses raw numbers instead).
enum Format {
    /// `x` with `digits` decimals, rounded half away from zero.
    static func fixed(_ x: Double, _ digits: Int) -> String {
        guard x.isFinite else { return String(x) }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let rounded = (abs(x) * scale).rounded(.toNearestOrAwayFromZero) / scale
        let sign = x < 0 && rounded != 0 ? "-" : ""
        let whole = Int(rounded)
        guard digits > 0 else { return sign + String(whole) }
        let fraction = Int(((rounded - Double(whole)) * scale).rounded())
        let fractionText = String(fraction)
        return sign + String(whole) + "." + String(repeating: "0", count: max(0, digits - fractionText.count)) + fractionText
    }

    /// Bytes in binary units: `512 B`, `3.7 MiB`, `12.55 GiB`.
    static func bytes(_ count: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(count)
        var unit = 0
        while abs(value) >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(count) B" : "\(fixed(value, value < 10 ? 2 : 1)) \(units[unit])"
    }
}
