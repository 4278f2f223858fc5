import ArgumentParser
import NF4Kit

struct Diff: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare two checkpoints tensor by tensor: what quantization or a merge changed.",
        discussion: """
            A and B are files or folders in any container nf4kit reads. Tensors are matched by name; a bitsandbytes \
            4-bit weight is one tensor (dequantized to float32), so a 16-bit model can be compared with its NF4 \
            version. For each tensor: max abs error, RMSE, relative (Frobenius) error, SNR in dB and the share of \
            bit-identical values, with A as the reference; tensors only in one side and shape or dtype mismatches \
            are listed. Progress is drawn on stderr when it is a terminal. Exit 0 whatever the differences (the \
            report says them).
            """ + "\n\n" + ExitCodes.helpText
    )

    @Argument(help: "The reference checkpoint.")
    var a: String

    @Argument(help: "The checkpoint compared with it.")
    var b: String

    @Flag(
        help: "Write one JSON document (sorted keys, raw numbers, schemaVersion; SNR is null when there is no error).")
    var json = false

    @Option(help: "Tensors compared at once (default: all cores).")
    var threads: Int?

    @Flag(help: "Draw no progress line (none is drawn anyway when stderr is not a terminal).")
    var noProgress = false

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1.") }
    }

    func run() async throws {
        let diff = try await reportingErrors {
            let left = try ModelSource.open(a, gguf: .huggingFace)
            let right = try ModelSource.open(b, gguf: .huggingFace)
            let renderer = ProgressRenderer(enabled: !noProgress, label: "diff")
            return try CheckpointDiff.compare(
                left.checkpoint, right.checkpoint, threads: threads ?? FileAccess.processorCount,
                progress: renderer.analysisCallback)
        }
        let text =
            json
            ? JSONWriter(indent: 2, sortKeys: true, itemSeparator: ",", keySeparator: ": ").string(
                diff.jsonValue(a: a, b: b)) + "\n" : render(diff)
        print(text, terminator: "")
    }

    private typealias F = TextFormatting

    private func render(_ diff: CheckpointDiff) -> String {
        var lines = ["Comparing \(b) against \(a)"]
        var rows = [["tensor", "dtype A", "dtype B", "shape", "max |err|", "RMSE", "rel. err", "SNR dB", "equal"]]
        for row in diff.rows {
            let shape = row.shapeA == row.shapeB ? "\(row.shapeA)" : "\(row.shapeA) vs \(row.shapeB)"
            switch row.status {
            case .compared:
                let s = row.statistics!
                rows.append([
                    row.name, row.dtypeA, row.dtypeB, shape, Self.scientific(s.maxAbsoluteError),
                    Self.scientific(s.rootMeanSquaredError),
                    Self.scientific(s.relativeFrobeniusError),
                    s.signalToNoiseDecibels.isInfinite ? "inf" : F.fixed(s.signalToNoiseDecibels, 1),
                    F.fixed(100 * row.equalShare, 2) + "%",
                ])
            case .comparedBytes:
                rows.append([
                    row.name, row.dtypeA, row.dtypeB, shape, "", "", "", "", F.fixed(100 * row.equalShare, 2) + "%",
                ])
            case .shapeMismatch:
                rows.append([row.name, row.dtypeA, row.dtypeB, shape, "shape mismatch", "", "", "", ""])
            case .notComparable:
                rows.append([row.name, row.dtypeA, row.dtypeB, shape, "not comparable", "", "", "", ""])
            }
        }
        lines += F.table(rows, rightAligned: [4, 5, 6, 7, 8])
        if !diff.onlyInA.isEmpty { lines.append("  only in A: " + diff.onlyInA.joined(separator: ", ")) }
        if !diff.onlyInB.isEmpty { lines.append("  only in B: " + diff.onlyInB.joined(separator: ", ")) }
        lines.append(summary(diff))
        return lines.joined(separator: "\n") + "\n"
    }

    private func summary(_ diff: CheckpointDiff) -> String {
        let identical = diff.rows.filter(\.isIdentical).count
        let mismatched = diff.rows.filter { $0.status == .shapeMismatch || $0.status == .notComparable }.count
        let dtypes = diff.rows.filter { $0.dtypeA != $0.dtypeB }.count
        let overall = diff.overall
        var text =
            "\(diff.rows.count) tensors in both, \(identical) identical, \(diff.rows.count - identical - mismatched) differ"
        text +=
            ", \(mismatched) not comparable, \(dtypes) with other dtypes; \(diff.onlyInA.count) only in A, \(diff.onlyInB.count) only in B"
        if overall.elementCount > 0 {
            text +=
                "; overall max |err| \(Self.scientific(overall.maxAbsoluteError)), RMSE \(Self.scientific(overall.rootMeanSquaredError))"
            text +=
                ", SNR "
                + (overall.signalToNoiseDecibels.isInfinite ? "inf" : F.fixed(overall.signalToNoiseDecibels, 1)) + " dB"
        }
        return text
    }

    /// `1.23e-3`, or `0` for zero.
    static func scientific(_ x: Double) -> String {
        guard x != 0, x.isFinite else { return x == 0 ? "0" : "\(x)" }
        var exponent = 0
        var mantissa = abs(x)
        while mantissa >= 10 { mantissa /= 10; exponent += 1 }
        while mantissa < 1 { mantissa *= 10; exponent -= 1 }
        if Double(F.fixed(mantissa, 2)) ?? 0 >= 10 { mantissa /= 10; exponent += 1 }
        return (x < 0 ? "-" : "") + F.fixed(mantissa, 2) + "e" + String(exponent)
    }
}
