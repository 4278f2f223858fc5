/// Number formatting for the text reports (no locale: the same output everywhere).
enum TextFormatting {
    /// `1802363` -> `1,802,363`.
    static func grouped<T: BinaryInteger>(_ value: T) -> String {
        let digits = String(value.magnitude)
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return value < 0 ? "-" + out : out
    }

    /// `x` rounded half away from zero to `digits` decimals: `fixed(4.1269, 3)` -> `4.127`.
    static func fixed(_ x: Double, _ digits: Int) -> String {
        guard x.isFinite else { return x.isNaN ? "nan" : (x < 0 ? "-inf" : "inf") }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let scaled = (abs(x) * scale).rounded(.toNearestOrAwayFromZero)
        guard scaled < 9e15 else { return String(x) }
        let whole = Int64(scaled)
        let unit = Int64(scale)
        var text = String(whole / unit)
        if digits > 0 {
            let fraction = String(whole % unit)
            text += "." + String(repeating: "0", count: digits - fraction.count) + fraction
        }
        return (x < 0 && whole != 0 ? "-" : "") + text
    }

    /// Binary units with three significant digits: `512 B`, `0.98 MiB`, `1.72 MiB`, `13.5 GiB`.
    static func bytes<T: BinaryInteger>(_ value: T) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var amount = Double(value)
        var unit = 0
        // Switch units at 1000 so that no figure needs four digits ("0.98 MiB", not "1003 KiB").
        while abs(amount) >= 1000 && unit < units.count - 1 {
            amount /= 1024
            unit += 1
        }
        if unit == 0 { return "\(value) B" }
        let digits = abs(amount) >= 100 ? 0 : (abs(amount) >= 10 ? 1 : 2)
        return fixed(amount, digits) + " " + units[unit]
    }

    /// Pads `text` with spaces to `width` columns (counting Unicode scalars, which is right for our characters).
    static func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
        let count = text.unicodeScalars.count
        guard count < width else { return text }
        let fill = String(repeating: " ", count: width - count)
        return right ? fill + text : text + fill
    }

    /// Lays out rows as columns separated by two spaces; `rightAligned` holds the numeric column indices.
    static func table(_ rows: [[String]], rightAligned: Set<Int> = [], indent: String = "  ") -> [String] {
        let columns = rows.map(\.count).max() ?? 0
        var widths = [Int](repeating: 0, count: columns)
        for row in rows {
            for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.unicodeScalars.count) }
        }
        return rows.map { row in
            var line = indent
            for (i, cell) in row.enumerated() {
                let isLast = i == row.count - 1
                let cellText =
                    isLast && !rightAligned.contains(i) ? cell : pad(cell, widths[i], right: rightAligned.contains(i))
                line += cellText + (isLast ? "" : "  ")
            }
            while line.hasSuffix(" ") { line.removeLast() }
            return line
        }
    }
}

/// The short name the command files use for ``TextFormatting``.
typealias Format = TextFormatting
