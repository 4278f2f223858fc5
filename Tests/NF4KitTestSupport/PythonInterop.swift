import Foundation
public import Testing

/// Runs the Python scripts of `Tests/Interop/` for interoperability tests (safetensors, GGUF, ...).
///
/// The interpreter is the one named by the environment variable `NF4KIT_PYTHON` (a venv with numpy,
/// safetensors and gguf; torch is not assumed). When it is not set:
/// - if `CI` is set, ``run(script:arguments:sourceLocation:)`` throws ``NotConfigured`` and the test fails;
/// - otherwise it records a warning issue saying the interop check was not run and cancels the test, so the
///   result shows "cancelled" with the reason, never a silent pass.
///
/// ```swift
/// let result = try PythonInterop.run(script: "Tests/Interop/safetensors_python_reads.py", arguments: [file])
/// #expect(result.status == 0, "\(result.stderr)")
/// ```
public enum PythonInterop {
    /// The environment variable naming the Python interpreter.
    public static let interpreterVariable = "NF4KIT_PYTHON"

    /// Thrown when `NF4KIT_PYTHON` is unset in CI, or names something that cannot be run.
    public struct NotConfigured: Error, CustomStringConvertible {
        /// What is missing and how to set it up.
        public var description: String
    }

    /// The interpreter path from the environment, if set and non-empty.
    public static var interpreter: String? {
        guard let value = ProcessInfo.processInfo.environment[interpreterVariable], !value.isEmpty else { return nil }
        return value
    }

    /// Runs `script` with the configured interpreter and waits for it.
    ///
    /// - Parameters:
    ///   - script: A path relative to the repository root (`Tests/Interop/x.py`) or an absolute path.
    ///   - arguments: Arguments after the script path.
    /// - Returns: The exit status and everything the script wrote to stdout and stderr (UTF-8).
    /// - Throws: ``NotConfigured`` (see the type's discussion), or an error if the process cannot start.
    ///   Without `NF4KIT_PYTHON` outside CI, the test is cancelled (after a warning issue).
    public static func run(
        script: String, arguments: [String] = [], sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> (status: Int32, stdout: String, stderr: String) {
        guard let python = interpreter else {
            let reason =
                "Python interop was not run: set \(interpreterVariable) to a Python with numpy and safetensors "
                + "(python3 -m venv /tmp/venv && /tmp/venv/bin/pip install numpy safetensors gguf)"
            if ProcessInfo.processInfo.environment["CI"] != nil {
                throw NotConfigured(description: reason + "; CI is set, so this is a failure")
            }
            Issue.record(Comment(rawValue: reason), severity: .warning, sourceLocation: sourceLocation)
            try Test.cancel(Comment(rawValue: reason), sourceLocation: sourceLocation)
        }
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw NotConfigured(description: "\(interpreterVariable)=\(python) is not an executable file")
        }
        let scriptPath = script.hasPrefix("/") ? script : RepositoryPaths.root + "/" + script
        let scratch = TemporaryDirectory("nf4kit-python")
        defer { scratch.cleanup() }
        // Output goes to files, not pipes, so a chatty script cannot fill a pipe buffer and block.
        let outPath = scratch.file("stdout")
        let errPath = scratch.file("stderr")
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        let err = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [scriptPath] + arguments
        var environment = ProcessInfo.processInfo.environment
        environment["PYTHONDONTWRITEBYTECODE"] = "1"
        environment["PYTHONIOENCODING"] = "utf-8"
        process.environment = environment
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        try out.close()
        try err.close()
        let stdout = String(decoding: try Data(contentsOf: URL(fileURLWithPath: outPath)), as: UTF8.self)
        let stderr = String(decoding: try Data(contentsOf: URL(fileURLWithPath: errPath)), as: UTF8.self)
        return (process.terminationStatus, stdout, stderr)
    }
}
