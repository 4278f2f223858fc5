import NF4Kit

/// Renders a ``WhatIfReport`` as text: per model, the memory of each inference and training use and, for each GPU
/// size of ``WhatIfReport/gpuSizesGiB``, whether it fits.
struct WhatIfTextRenderer {
    var report: WhatIfReport

    typealias F = TextFormatting

    private static let useNames: [WhatIfReport.Use: String] = [
        .inferenceFP16: "inference FP16", .inferenceInt8: "inference 8-bit (int8)",
        .inferenceNF4: "inference 4-bit (NF4+DQ)",
        .trainingFull: "full fine-tuning (mixed FP16)", .trainingLoRA: "LoRA on FP16",
        .trainingQLoRA: "QLoRA (NF4+DQ base)",
    ]

    func render() -> [String] {
        var lines = [
            "What-if memory (training: LoRA r=\(report.loraRank) on every Linear layer but lm_head, FP32 adapters, AdamW; "
                + "weights + trainable + gradients + optimizer states; no activations, KV cache or CUDA context)"
        ]
        let gpus = WhatIfReport.gpuSizesGiB
        var rows: [[String]] = [["model", "params", "use", "memory"] + gpus.map { "\($0) GB" }]
        for model in report.models {
            for (i, fit) in model.fits.enumerated() {
                var lead = ["", ""]
                if i == 0 { lead = [model.label, Self.shortCount(model.parameterCount)] }
                if i == 1, let published = model.publishedModel { lead = ["(\(published))", ""] }
                rows.append(
                    lead + [Self.useNames[fit.use] ?? fit.use.rawValue, F.bytes(fit.byteCount)]
                        + gpus.map { fit.fitsGiB.contains($0) ? "yes" : "-" })
            }
        }
        lines += F.table(rows, rightAligned: Set(3..<(4 + gpus.count)))
        lines.append(
            "  GB columns: a card of N GB taken as N GiB; \"yes\" when the memory fits (a lower bound: activations not counted)"
        )
        return lines
    }

    /// `6738415616` -> `6.74B`.
    static func shortCount(_ n: Int) -> String {
        let units: [(Double, String)] = [(1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")]
        for (scale, suffix) in units where Double(n) >= scale { return F.fixed(Double(n) / scale, 2) + suffix }
        return String(n)
    }
}
