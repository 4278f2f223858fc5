import NF4Kit

/// Renders a ``WhatIfReport`` as text: one table of weight and training memory per model and setup, with the
/// smallest GPU of ``WhatIfReport/gpuSizesGiB`` that holds each.
struct WhatIfTextRenderer {
    var report: WhatIfReport

    typealias F = TextFormatting

    private static let setupNames: [WhatIfReport.Setup: String] = [
        .fp32: "FP32", .fp16: "FP16", .loraFP16: "LoRA on FP16", .qlora: "QLoRA (NF4+DQ)",
    ]

    func render() -> [String] {
        var lines = [
            "What-if memory (LoRA r=\(report.loraRank) on every Linear layer but lm_head, FP32 adapters; training with AdamW: "
                + "weights + trainable + gradients + optimizer states, no activations)"
        ]
        var rows: [[String]] = [["model", "params", "setup", "weights", "fits (GB)", "training", "fits (GB)"]]
        for model in report.models {
            for (i, s) in model.scenarios.enumerated() {
                let lead = i == 0 ? [model.label, Self.shortCount(model.parameterCount)] : ["", ""]
                rows.append(
                    lead + [
                        Self.setupNames[s.setup] ?? s.setup.rawValue, F.bytes(s.weightByteCount), Self.fit(s.weightsFitGiB),
                        F.bytes(s.trainingByteCount), Self.fit(s.trainingFitsGiB),
                    ])
            }
        }
        lines += F.table(rows, rightAligned: [1, 3, 5])
        lines.append(
            "  fits: the smallest of \(WhatIfReport.gpuSizesGiB.map(String.init).joined(separator: ", ")) GB (GiB) cards that holds it, "
                + "\"-\" for none; FP16 training is mixed precision (FP32 master weights)")
        return lines
    }

    private static func fit(_ sizes: [Int]) -> String { sizes.first.map { "\($0)+" } ?? "-" }

    /// `6738415616` -> `6.74B`.
    static func shortCount(_ n: Int) -> String {
        let units: [(Double, String)] = [(1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")]
        for (scale, suffix) in units where Double(n) >= scale { return F.fixed(Double(n) / scale, 2) + suffix }
        return String(n)
    }
}
