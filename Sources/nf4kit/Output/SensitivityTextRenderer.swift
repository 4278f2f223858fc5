import NF4Kit

/// Renders a ``SensitivityReport`` as text: per-group error tables and a bar chart of error against bytes.
struct SensitivityTextRenderer {
    var report: SensitivityReport
    /// Include the per-tensor rows.
    var showTensors: Bool

    typealias F = TextFormatting

    func render() -> [String] {
        let m = report.model
        guard m.tensorCount > 0 else {
            return [
                "Quantization sensitivity",
                "  no tensor would be quantized (nothing `convert` selects: 2-D float Linear weights; already 4-bit weights are not re-quantized)",
            ]
        }
        var lines = [
            "Quantization sensitivity (\(m.tensorCount) weights that convert quantizes, \(F.grouped(m.parameterCount)) parameters, "
                + "block \(report.blocksize) for NF4/FP4/INT4, 32 for Q4_0/Q8_0/IQ4_NL, 256 for Q4_K/Q5_K/Q6_K/IQ4_XS; error of the decoded float32 values)"
        ]
        lines += table(m, title: nil)
        for r in m.schemes where r.tensorCount < m.tensorCount {
            lines.append(
                "  \(r.scheme.rawValue): \(r.tensorCount) of \(m.tensorCount) tensors (the others have rows that are not a multiple of \(r.scheme.ggmlType?.blockSize ?? 32); "
                    + "bytes and errors cover those \(r.tensorCount) only)")
        }
        lines += [""] + chart(m)
        lines += [""] + ["By layer type"] + groups(report.byLayerType)
        lines += [""] + ["By component"] + groups(report.byComponent)
        if showTensors {
            lines += [""] + ["Per tensor (RMSE / SNR dB)"] + tensorTable()
        }
        lines.append("")
        lines.append(
            "  bytes: codes + per-block constants (code tables and quant-state JSON not counted); SNR = 10·log10(Σx²/Σe²)"
        )
        return lines
    }

    private static let header = ["scheme", "bytes", "bits/param", "RMSE", "max |err|", "SNR dB", "rel. Frobenius"]

    private func row(_ r: SensitivityReport.SchemeResult) -> [String] {
        let e = r.error
        return [
            r.scheme.rawValue, F.bytes(r.byteCount), F.fixed(r.bitsPerParameter, 3),
            Self.scientific(e.rootMeanSquaredError),
            Self.scientific(e.maxAbsoluteError), Self.decibels(e.signalToNoiseDecibels),
            Self.scientific(e.relativeFrobeniusError),
        ]
    }

    private func table(_ aggregate: SensitivityReport.Aggregate, title: String?) -> [String] {
        let rows = [Self.header] + aggregate.schemes.map(row)
        return (title.map { [$0] } ?? []) + F.table(rows, rightAligned: Set(1...6))
    }

    private func groups(_ aggregates: [SensitivityReport.Aggregate]) -> [String] {
        var rows: [[String]] = [["group", "tensors", "params"] + Self.header]
        for aggregate in aggregates {
            for (i, result) in aggregate.schemes.enumerated() {
                let lead =
                    i == 0
                    ? [aggregate.label, String(aggregate.tensorCount), F.grouped(aggregate.parameterCount)]
                    : ["", "", ""]
                rows.append(lead + row(result))
            }
        }
        return F.table(rows, rightAligned: [1, 2, 4, 5, 6, 7, 8, 9])
    }

    private func chart(_ m: SensitivityReport.Aggregate) -> [String] {
        let errorRows = m.schemes.map { r in
            (
                label: r.scheme.rawValue, value: r.error.relativeFrobeniusError,
                annotation: F.pad(Self.scientific(r.error.relativeFrobeniusError), 9, right: true)
            )
        }
        let byteRows = m.schemes.map { r in
            (
                label: r.scheme.rawValue, value: Double(r.byteCount),
                annotation: F.pad(F.bytes(r.byteCount), 9, right: true) + "  " + F.fixed(r.bitsPerParameter, 3)
                    + " bits/param"
            )
        }
        return ["  Relative error (‖decoded − original‖ / ‖original‖)"] + BarChart.render(errorRows)
            + ["", "  Bytes of the quantized weights"] + BarChart.render(byteRows)
    }

    private func tensorTable() -> [String] {
        var rows: [[String]] = [["name", "shape", "type"] + report.schemes.map(\.rawValue)]
        for t in report.tensors {
            let cells = report.schemes.map { scheme -> String in
                guard let r = t.schemes.first(where: { $0.scheme == scheme }) else { return "-" }
                return Self.scientific(r.error.rootMeanSquaredError) + " / "
                    + Self.decibels(r.error.signalToNoiseDecibels)
            }
            rows.append([t.name, t.shape.description, t.layerType] + cells)
        }
        return F.table(rows, rightAligned: Set(3..<(3 + report.schemes.count)))
    }

    /// `0.000123` -> `1.23e-4`; 0 -> `0`.
    static func scientific(_ x: Double) -> String {
        guard x.isFinite else { return x.isNaN ? "nan" : (x < 0 ? "-inf" : "inf") }
        if x == 0 { return "0" }
        var exponent = 0
        var mantissa = abs(x)
        while mantissa >= 10 { mantissa /= 10; exponent += 1 }
        while mantissa < 1 { mantissa *= 10; exponent -= 1 }
        if F.fixed(mantissa, 2) == "10.00" { mantissa /= 10; exponent += 1 }
        return (x < 0 ? "-" : "") + F.fixed(mantissa, 2) + "e" + String(exponent)
    }

    /// SNR in dB with one decimal; infinite (no error) as `∞`.
    static func decibels(_ x: Double) -> String { x.isInfinite && x > 0 ? "∞" : F.fixed(x, 1) }
}
