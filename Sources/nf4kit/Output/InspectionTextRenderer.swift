import NF4Kit

/// Renders an ``InspectionReport`` as the human-readable text of `nf4kit inspect`.
struct InspectionTextRenderer {
    var report: InspectionReport
    /// Include the per-tensor table.
    var showTensors: Bool

    typealias F = TextFormatting

    func render() -> String {
        var lines: [String] = []
        lines += summary()
        if let adapter = report.adapter { lines += [""] + self.adapter(adapter) }
        if let gguf = report.gguf { lines += [""] + ggufSection(gguf, showTensors: showTensors) }
        if showTensors { lines += [""] + tensors() }
        lines += [""] + memory()
        if let training = report.training { lines += [""] + self.training(training) }
        return lines.joined(separator: "\n") + "\n"
    }

    private func summary() -> [String] {
        let s = report.summary
        var kind = s.kind.rawValue
        if let architecture = s.architecture { kind += " (\(architecture))" }
        let files = s.files.count == 1 ? "1 file" : "\(s.files.count) files"
        var rows: [[String]] = [
            ["path", s.path],
            ["format", "\(s.format), \(files), \(F.grouped(s.fileByteCount)) bytes on disk"],
            ["kind", kind],
            ["tensors", "\(F.grouped(s.tensorCount)) (\(F.grouped(s.storedTensorCount)) stored)"],
            ["parameters", F.grouped(s.parameterCount)],
            ["tensor bytes", "\(F.grouped(s.byteCount)) (\(F.bytes(s.byteCount)))"],
        ]
        if s.quantizedTensorCount > 0 {
            let blocks = s.blockSizes.map(String.init).joined(separator: ", ")
            let dq =
                s.doubleQuantizedTensorCount == s.quantizedTensorCount
                ? "double quant"
                : (s.doubleQuantizedTensorCount == 0
                    ? "no double quant" : "double quant on \(s.doubleQuantizedTensorCount)")
            rows.append([
                "4-bit weights",
                "\(s.quantizedTensorCount) (\(s.quantTypes.joined(separator: ", ")), block \(blocks), \(dq))",
            ])
        }
        return ["Summary"] + F.table(rows)
    }

    private func adapter(_ a: AdapterSummary) -> [String] {
        var targets = a.targetModules.joined(separator: ", ")
        if a.targetModulesIsRegex { targets = "regex " + targets }
        var rows: [[String]] = [
            ["type", a.peftType ?? "(not given)"],
            [
                "rank",
                "\(a.rank)"
                    + (a.tensorRanks == [a.rank] || a.tensorRanks.isEmpty
                        ? "" : " (tensors: \(a.tensorRanks.map(String.init).joined(separator: ", ")))"),
            ],
            [
                "alpha",
                F.fixed(a.alpha, a.alpha == a.alpha.rounded() ? 0 : 3)
                    + " (scaling \(F.fixed(a.scaling, 4))\(a.usesRSLoRA ? ", rsLoRA" : ""))",
            ],
            ["targets", targets.isEmpty ? "(not given)" : targets],
            ["LoRA modules", "\(a.loraModuleCount) (\(a.loraModuleNames.joined(separator: ", ")))"],
            [
                "trainable params",
                F.grouped(a.trainableParameterCount)
                    + (a.trainableParameterCount == a.loraParameterCount
                        ? "" : " (LoRA \(F.grouped(a.loraParameterCount)))"),
            ],
            ["bytes", "\(F.grouped(a.byteCount)) (\(F.bytes(a.byteCount)))"],
        ]
        if a.usesDoRA { rows.append(["DoRA", "yes"]) }
        if let base = a.baseModel { rows.append(["base model", base]) }
        return ["Adapter"] + F.table(rows)
    }

    private func tensors() -> [String] {
        var header = ["name", "dtype", "shape", "params", "bytes"]
        let hasFourBit = report.tensors.contains { $0.fourBit != nil }
        if hasFourBit { header += ["4-bit", "block", "DQ", "codes", "absmax", "nested"] }
        var rows: [[String]] = [header]
        for t in report.tensors {
            if let q = t.fourBit {
                rows.append([
                    t.name, DType(torchName: q.weightDType)?.rawValue ?? q.weightDType, t.shape.description,
                    F.grouped(t.parameterCount), F.grouped(t.byteCount),
                    q.quantType, String(q.blockSize), q.isDoubleQuantized ? "yes" : "no", F.grouped(q.codeByteCount),
                    F.grouped(q.absmaxByteCount), F.grouped(q.nestedByteCount),
                ])
            } else {
                rows.append([
                    t.name, t.dtype.rawValue, t.shape.description, F.grouped(t.parameterCount), F.grouped(t.byteCount),
                ])
            }
        }
        let title =
            hasFourBit
            ? "Tensors (4-bit weights: logical shape, dtype before quantization; bytes include companions)" : "Tensors"
        return [title]
            + F.table(rows, rightAligned: [3, 4, 6, 8, 9, 10])
    }

    private func memory() -> [String] {
        let m = report.memory
        let total = max(m.totalByteCount, 1)
        func share(_ bytes: Int) -> String { F.fixed(Double(bytes) * 100 / Double(total), 1) + "%" }
        var rows: [[String]] = [["role", "bytes", "", "share"]]
        if m.quantizedTensorCount > 0 {
            rows.append(["4-bit codes", F.grouped(m.codeByteCount), F.bytes(m.codeByteCount), share(m.codeByteCount)])
            rows.append([
                "first-level constants (absmax)", F.grouped(m.absmaxByteCount), F.bytes(m.absmaxByteCount),
                share(m.absmaxByteCount),
            ])
            rows.append([
                "nested constants and code maps", F.grouped(m.nestedConstantByteCount),
                F.bytes(m.nestedConstantByteCount),
                share(m.nestedConstantByteCount),
            ])
        }
        for usage in m.unquantized {
            let kind = usage.ggmlType.map { "ggml \($0)" } ?? "unquantized \(usage.dtype)"
            let label = "\(kind) (\(usage.tensorCount) tensor\(usage.tensorCount == 1 ? "" : "s"))"
            rows.append([label, F.grouped(usage.byteCount), F.bytes(usage.byteCount), share(usage.byteCount)])
        }
        rows.append(["total", F.grouped(m.totalByteCount), F.bytes(m.totalByteCount), "100.0%"])
        var lines = ["Memory breakdown"] + F.table(rows, rightAligned: [1, 2, 3])
        if let bits = m.bitsPerQuantizedParameter, let all = m.bitsPerQuantizedParameterWithTables {
            lines.append("")
            lines.append(
                "  bits per quantized parameter: \(F.fixed(bits, 3)) (codes + absmax + nested absmax); \(F.fixed(all, 3)) with code maps and quant-state JSON"
            )
        }
        lines.append("")
        let basis = m.costBasis
        var shown = m.costs
        if basis.quantizableTensorCount == 0 {
            shown.removeAll { $0.representation == .nf4 || $0.representation == .nf4DoubleQuant }
            lines.append("  Same tensors stored as (nothing here is quantized)")
        } else {
            let what =
                basis.fromFourBitWeights
                ? "the \(basis.quantizableTensorCount) 4-bit weights"
                : "\(basis.quantizableTensorCount) Linear weights (not embeddings, norms or lm_head)"
            lines.append(
                "  Same model stored as (NF4 rows quantize \(what), \(F.grouped(basis.quantizableParameterCount)) parameters; other tensors 16-bit)"
            )
        }
        let names: [MemoryBreakdown.Representation: String] = [
            .checkpoint: "this checkpoint", .fp32: "FP32", .fp16: "FP16/BF16", .nf4: "NF4 (block \(basis.blockSize))",
            .nf4DoubleQuant: "NF4 + double quant",
        ]
        let chartRows = shown.map { cost -> (label: String, value: Double, annotation: String) in
            var note = F.pad(F.bytes(cost.byteCount), 9, right: true)
            if let percent = cost.savingsVersusFP16Percent, let factor = cost.factorVersusFP16 {
                let change: String
                if abs(percent) < 0.05 {
                    change = "same as FP16"
                } else if percent > 0 {
                    change = F.fixed(percent, 1) + "% smaller than FP16"
                } else {
                    change = F.fixed(-percent, 1) + "% larger than FP16"
                }
                note += "  " + F.pad(F.fixed(factor, 2) + "x", 6, right: true) + "  " + change
            }
            return (names[cost.representation] ?? cost.representation.rawValue, Double(cost.byteCount), note)
        }
        lines += BarChart.render(chartRows)
        lines.append(
            "  (Nx: how many times smaller than FP16; NF4 rows count code maps, not the ~80-170 B quant-state JSON)")
        return lines
    }

    private func training(_ t: TrainingMemory) -> [String] {
        let options = t.options
        let targets = options.targets?.joined(separator: ",") ?? "all Linear"
        var lines = [
            "Training memory (LoRA r=\(options.rank) on \(t.targets.count) modules [\(targets)], adapter \(options.adapterDType.rawValue.uppercased()); "
                + "model state only, activations not included)"
        ]
        let names: [TrainingMemory.Method: String] = [
            .fullFP32: "full fine-tuning, FP32", .fullMixedFP16: "full fine-tuning, mixed FP16",
            .loraFP16Base: "LoRA, FP16 base", .qlora: "QLoRA, 4-bit base",
        ]
        var rows: [[String]] = [
            [
                "method", "trainable", "weights", "extra", "gradients", "AdamW", "total", "8-bit AdamW",
                "total (8-bit/paged)",
            ]
        ]
        for row in t.rows {
            rows.append([
                names[row.method] ?? row.method.rawValue, F.grouped(row.trainableParameterCount),
                F.bytes(row.weightByteCount),
                F.bytes(row.trainableByteCount), F.bytes(row.gradientByteCount), F.bytes(row.optimizerStateByteCount),
                F.bytes(row.totalByteCount), F.bytes(row.optimizerState8BitByteCount), F.bytes(row.total8BitByteCount),
            ])
        }
        lines += F.table(rows, rightAligned: Set(1...8))
        lines.append("  extra = LoRA A/B weights, or FP32 master weights for mixed precision; see docs/inspect.md")
        return lines
    }
}
