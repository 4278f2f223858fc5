/// Horizontal bars drawn with block characters, one eighth of a column per step.
enum BarChart {
    /// Partial blocks for 1/8 ... 7/8 of a column.
    private static let eighths: [Character] = ["▏", "▎", "▍", "▌", "▋", "▊", "▉"]

    /// A bar of `value / maximum * width` columns, padded with spaces to `width`.
    ///
    /// A non-zero value always gets at least one eighth, so tiny entries stay visible. Values come from files
    /// (errors of huge weights can be infinite): an infinite value draws a full bar, a finite one beside an
    /// infinite maximum the shortest bar, and NaN nothing; the step count is clamped before it becomes an `Int`.
    static func bar(_ value: Double, maximum: Double, width: Int) -> String {
        guard maximum > 0, value > 0, width > 0 else { return String(repeating: " ", count: max(width, 0)) }
        var ratio = value.isInfinite ? 1 : value / maximum
        if !ratio.isFinite { ratio = 0 }
        let steps = max(1, Int((min(max(ratio, 0), 1) * Double(width * 8)).rounded()))
        var bar = String(repeating: "█", count: steps / 8)
        if steps % 8 > 0 { bar.append(eighths[steps % 8 - 1]) }
        return TextFormatting.pad(bar, width)
    }

    /// Lines `label  bar  annotation`, with bars scaled to the largest value.
    static func render(_ rows: [(label: String, value: Double, annotation: String)], width: Int = 32) -> [String] {
        let maximum = rows.map(\.value).max() ?? 0
        let labelWidth = rows.map { $0.label.unicodeScalars.count }.max() ?? 0
        return rows.map { row in
            "  " + TextFormatting.pad(row.label, labelWidth) + "  " + bar(row.value, maximum: maximum, width: width)
                + "  "
                + row.annotation
        }
    }
}
