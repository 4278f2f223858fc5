import Foundation
import NF4KitTestSupport
import Testing

/// Progress on a terminal and silence when stderr is not one (issue 16, item 9). The terminal is a pseudo-terminal
/// made by util-linux `script`; the jobs run on a generated 31 MB F16 checkpoint so that they last a few seconds.
@Suite(.serialized) struct ProgressCLITests {
    /// 24 F16 weights of [1024, 640] (15.7 M parameters) with finite values of magnitude 2^-7 ... 2^-6.
    static func writeModel(to path: String) throws {
        let count = 24, rows = 1024, columns = 640
        let tensorBytes = rows * columns * 2
        var header = "{"
        for i in 0..<count {
            header +=
                (i == 0 ? "" : ",")
                + "\"model.layers.\(i).mlp.up_proj.weight\":{\"dtype\":\"F16\",\"shape\":[\(rows),\(columns)],"
            header += "\"data_offsets\":[\(i * tensorBytes),\((i + 1) * tensorBytes)]}"
        }
        header += "}"
        while (8 + header.utf8.count) % 8 != 0 { header += " " }
        var bytes = [UInt8]()
        bytes.reserveCapacity(8 + header.utf8.count + count * tensorBytes)
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { bytes += $0 }
        bytes += Array(header.utf8)
        var generator = SeededGenerator(seed: 16)
        for _ in 0..<(count * tensorBytes / 8) {
            let r = generator.next()
            for lane in 0..<4 {
                let bits = UInt16(truncatingIfNeeded: r >> (16 * lane)) & 0x83FF | 0x2000
                bytes.append(UInt8(bits & 0xFF))
                bytes.append(UInt8(bits >> 8))
            }
        }
        try bytes.write(to: path)
    }

    struct Frame {
        var text: String
        var elapsed: Double
        var eta: Double?
    }

    /// Runs `arguments` with stderr on a pseudo-terminal (stdout to a file); returns the terminal's bytes, the exit
    /// code and the wall time.
    static func runOnTerminal(
        _ arguments: [String], in directory: TemporaryDirectory
    ) throws -> (tty: String, status: Int32, seconds: Double) {
        try #require(
            FileManager.default.isExecutableFile(atPath: "/usr/bin/script"),
            "util-linux script (package bsdutils) makes the pseudo-terminal of this test")
        let quoted = ([try NF4KitCLI.executable()] + arguments).map { "'" + $0 + "'" }.joined(separator: " ")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/script")
        process.arguments = ["-qfec", quoted + " > '" + directory.file("stdout") + "'", "/dev/null"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardInput = FileHandle.nullDevice
        let start = Date()
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (String(decoding: data, as: UTF8.self), process.terminationStatus, Date().timeIntervalSince(start))
    }

    /// The frames drawn with `\r` + erase-line, in order (the final erase is not a frame).
    static func frames(_ tty: String) -> [Frame] {
        tty.components(separatedBy: "\r\u{1B}[K").dropFirst().compactMap { chunk -> Frame? in
            let line = chunk.split(separator: "\r").first.map(String.init) ?? ""
            guard let elapsedRange = line.range(of: #"[0-9.]+ s elapsed"#, options: .regularExpression) else {
                return nil
            }
            let elapsed = Double(line[elapsedRange].split(separator: " ")[0]) ?? -1
            var eta: Double?
            if let etaRange = line.range(of: #"ETA .*$"#, options: .regularExpression) {
                let parts = line[etaRange].dropFirst(4).split(separator: " ")
                // "42 s", "3 min 05 s", "2 h 10 min"
                var seconds = 0.0
                var i = 0
                while i + 1 < parts.count {
                    let value = Double(parts[i]) ?? .nan
                    seconds += value * (parts[i + 1] == "h" ? 3600 : parts[i + 1] == "min" ? 60 : 1)
                    i += 2
                }
                eta = seconds
            }
            return Frame(text: line, elapsed: elapsed, eta: eta)
        }
    }

    /// Frames appear, each shows bytes and a rate, no ETA before a second has been measured, and every ETA is sane:
    /// elapsed + ETA stays within three times the real duration (plus 2 s of slack for a loaded machine).
    static func checkFrames(_ tty: String, seconds: Double, label: String) {
        let frames = frames(tty)
        #expect(!frames.isEmpty, "no progress frame on the terminal: \(tty.debugDescription)")
        for frame in frames {
            #expect(frame.text.hasPrefix(label + ": "), "\(frame.text)")
            #expect(frame.text.contains(" MiB of ") && frame.text.contains("/s"), "\(frame.text)")
            if let eta = frame.eta {
                #expect(frame.elapsed >= 1.0, "ETA before a second was measured: \(frame.text)")
                #expect(frame.elapsed + eta <= 3 * seconds + 2, "ETA not sane for a \(seconds) s job: \(frame.text)")
            }
        }
        #expect(
            tty.hasSuffix("\r\u{1B}[K"),
            "the progress line is not erased at the end: \(tty.suffix(120).debugDescription)")
    }

    @Test func `diff and --sensitivity draw progress frames with a sane ETA on a terminal, and nothing when piped`()
        throws
    {
        let directory = TemporaryDirectory("nf4kit-progress")
        defer { directory.cleanup() }
        let model = directory.file("m.safetensors")
        try Self.writeModel(to: model)

        let diff = try Self.runOnTerminal(["diff", "--threads", "1", model, model], in: directory)
        #expect(diff.status == 0)
        Self.checkFrames(diff.tty, seconds: diff.seconds, label: "diff")
        let sensitivity = try Self.runOnTerminal(
            ["inspect", "--sensitivity", "--schemes", "nf4,q8_0", "--threads", "1", model], in: directory)
        #expect(sensitivity.status == 0)
        Self.checkFrames(sensitivity.tty, seconds: sensitivity.seconds, label: "sensitivity")

        // stderr not a terminal: nothing but the result on stdout.
        let pipedDiff = try NF4KitCLI.run(["diff", "--threads", "1", model, model])
        #expect(pipedDiff.status == 0 && pipedDiff.stderr.isEmpty)
        let pipedSensitivity = try NF4KitCLI.run([
            "inspect", "--sensitivity", "--schemes", "nf4,q8_0", "--threads", "1", model,
        ])
        #expect(pipedSensitivity.status == 0 && pipedSensitivity.stderr.isEmpty)
        // --no-progress: nothing on a terminal either.
        let quiet = try Self.runOnTerminal(["diff", "--no-progress", model, model], in: directory)
        #expect(quiet.status == 0 && quiet.tty.isEmpty)
    }

    @Test func `convert draws frames on a terminal and only its summary when piped`() throws {
        let directory = TemporaryDirectory("nf4kit-progress")
        defer { directory.cleanup() }
        let model = directory.file("m.safetensors")
        try Self.writeModel(to: model)

        let convert = try Self.runOnTerminal(
            ["convert", model, "-o", directory.file("a.safetensors"), "--to", "f32", "--threads", "1"], in: directory)
        #expect(convert.status == 0)
        // The frames, the erase, then the summary line.
        let erase = try #require(convert.tty.range(of: "\r\u{1B}[K", options: .backwards))
        #expect(convert.tty[erase.upperBound...].contains(" tensors written as f32; "))
        Self.checkFrames(String(convert.tty[..<erase.upperBound]), seconds: convert.seconds, label: "convert")

        let piped = try NF4KitCLI.run([
            "convert", model, "-o", directory.file("b.safetensors"), "--to", "f32", "--threads", "1",
        ])
        #expect(piped.status == 0)
        #expect(piped.stderr.split(separator: "\n").count == 1, "\(piped.stderr)")
        #expect(piped.stderr.contains(" tensors written as f32; "), "\(piped.stderr)")
    }
}
