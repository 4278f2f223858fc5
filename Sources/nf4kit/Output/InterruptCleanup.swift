import Dispatch
import NF4Kit

#if canImport(Glibc)
import Glibc
#endif

/// Removes this run's partial outputs on SIGINT, SIGTERM and SIGHUP, then exits with 128 + the signal number
/// (130, 143, 129), as docs/cli.md promises: an interrupted run leaves nothing behind.
///
/// The signals are handled on a dispatch queue (not in a signal handler), so the cleanup may take locks and
/// allocate; ``OutputRegistry/removeAll()`` waits for a folder swap in progress and then refuses new outputs.
enum InterruptCleanup {
    private static let queue = DispatchQueue(label: "nf4kit.interrupts")
    // The sources must stay alive for the whole run; written once by install() at start-up, before any other thread.
    nonisolated(unsafe) private static var sources: [any DispatchSourceSignal] = []

    /// Installs the handlers (once, at start-up, before any output exists).
    static func install() {
        for signalNumber in [SIGINT, SIGTERM, SIGHUP] {
            // A signal the parent ignores stays ignored (`nohup` for SIGHUP, `&` in a script for SIGINT).
            let previous = signal(signalNumber, SIG_IGN)
            if let previous, unsafeBitCast(previous, to: Int.self) == unsafeBitCast(SIG_IGN, to: Int.self) { continue }
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: queue)
            source.setEventHandler {
                let removed = OutputRegistry.removeAll()
                let name = signalNumber == SIGINT ? "interrupted" : signalNumber == SIGTERM ? "terminated" : "hung up"
                var message = "\n\(name): "
                message += removed.isEmpty ? "no partial output to remove\n" : "removed the partial output\n"
                FileAccess.writeStandardError(message)
                _exit(128 + signalNumber)
            }
            source.resume()
            sources.append(source)
        }
    }
}
