import NF4Kit

extension InspectionTextRenderer {
    /// The GGUF header and metadata (as gguf-dump shows them) and, with `--tensors`, the ggml storage of each tensor.
    func ggufSection(_ gguf: InspectionReport.GGUFSection, showTensors: Bool) -> [String] {
        var lines = [
            "GGUF v\(gguf.version), alignment \(gguf.alignment), \(gguf.metadata.count) metadata keys, \(gguf.tensors.count) tensors"
        ]
        if let architecture = gguf.architecture, !gguf.hyperparameters.isEmpty {
            let values = gguf.hyperparameters.map { "\($0.key) \(F.grouped($0.value))" }.joined(separator: ", ")
            lines.append("  architecture \(architecture): \(values)")
            if let count = gguf.parameterCountFromHyperparameters {
                lines.append("  parameters from the \(architecture).* keys: \(F.grouped(count))")
            }
        }
        lines += F.table([["key", "type", "value"]] + gguf.metadata.map { [$0.key, $0.type, $0.display] })
        lines.append("")
        lines.append("Stored as")
        lines += F.table(
            [["ggml type", "tensors", "weights", "bytes", "bits/weight"]]
                + gguf.bytesByType.map {
                    [
                        $0.type, F.grouped($0.tensorCount), F.grouped($0.elementCount), F.grouped($0.byteCount),
                        $0.bitsPerWeight.map { F.fixed($0, 4) } ?? "unknown type",
                    ]
                })
        if let bits = gguf.bitsPerWeight { lines.append("all tensors: \(F.fixed(bits, 4)) bits per weight") }
        if showTensors {
            lines.append("")
            lines.append("GGUF tensors (ne = ggml dimensions, fastest first)")
            lines += F.table(
                [["name", "type", "ne", "bytes", "offset"]]
                    + gguf.tensors.map {
                        [
                            $0.name, $0.ggmlType, "[" + $0.dimensions.map(String.init).joined(separator: ", ") + "]",
                            F.grouped($0.byteCount), String($0.fileOffset),
                        ]
                    })
        }
        return lines
    }
}
