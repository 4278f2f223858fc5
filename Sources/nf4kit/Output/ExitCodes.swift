import ArgumentParser
import NF4Kit

/// The exit codes of `nf4kit`, as documented in `--help` and docs/cli.md.
enum ExitCodes {
    /// Success.
    static let success: Int32 = 0
    /// A failure that is not one of the kinds below (for example a non-finite merged value).
    static let failure: Int32 = 1
    /// Bad usage: unknown option, bad value, option combination (sysexits EX_USAGE).
    static let usage: Int32 = 64
    /// An input file is malformed, hostile or unsupported (sysexits EX_DATAERR).
    static let dataError: Int32 = 65
    /// An input is missing or a read/write failed; an output exists without --force (sysexits EX_IOERR).
    static let ioError: Int32 = 74

    static let helpText = """
        Exit codes: 0 success; 1 failure; 64 bad usage; 65 malformed, refused or unsupported input \
        (the message names the file, byte offset and tensor); 74 I/O error, missing input, existing output \
        without --force, or an output that may not be replaced (an input, a link, FIFO or device); 130, 143, 129 \
        interrupted by SIGINT, SIGTERM, SIGHUP (the partial output is removed).
        """

    /// The exit code for an error thrown by the library.
    static func code(for error: CheckpointError) -> Int32 {
        if error.code.isDataError { return dataError }
        switch error.code {
        case .io, .notFound, .outputExists: return ioError
        case .invalidArgument: return usage
        default: return failure
        }
    }
}

/// Runs a command body, printing a library error to stderr and exiting with its documented code.
func reportingErrors<T>(_ body: () async throws -> T) async throws -> T {
    do {
        let result = try await body()
        try InputIntegrity.check()  // an input that shrank while mapped read as zeros: not a success
        return result
    } catch let error as CheckpointError {
        FileAccess.writeStandardError("Error: \(error)\n")
        throw ExitCode(ExitCodes.code(for: error))
    }
}
