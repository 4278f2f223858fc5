public import NF4KitCore
import NF4KitQuant

/// A tensor-by-tensor comparison of two checkpoints of any kind: what quantization or a merge changed.
///
/// Tensors are matched by name. A bitsandbytes 4-bit weight counts as one tensor under its weight name and is
/// dequantized to f32 for the comparison, so a 16-bit checkpoint can be compared with its NF4 version. Float
/// tensors of any width are compared as f32 values with ``ErrorStatistics`` (side A is the reference); other
/// tensors are compared element by element as bytes.
public struct CheckpointDiff: Sendable {
    /// How a pair of same-named tensors was compared.
    public enum Status: String, Sendable, Hashable {
        /// Both are float-valued with the same shape: error statistics are filled in.
        case compared
        /// Both are non-float with the same shape and dtype: only ``Row/equalCount`` is meaningful.
        case comparedBytes
        /// The (logical) shapes differ.
        case shapeMismatch
        /// One side is float-valued and the other is not, or two non-float dtypes differ.
        case notComparable
    }

    /// One tensor present on both sides.
    public struct Row: Sendable, Hashable {
        public var name: String
        /// `F16`, `BF16`, ... or `NF4`/`FP4` for a bitsandbytes 4-bit weight.
        public var dtypeA: String
        public var dtypeB: String
        public var shapeA: Shape
        public var shapeB: Shape
        public var status: Status
        /// Elements compared (0 unless compared).
        public var elementCount: Int
        /// Elements whose values are bit-identical (f32 after widening; NaN equals NaN), or whose bytes are equal.
        public var equalCount: Int
        /// Error statistics of B against A (present when ``status`` is `.compared`).
        public var statistics: ErrorStatistics?

        /// Share of equal elements, 1 for an empty tensor.
        public var equalShare: Double { elementCount > 0 ? Double(equalCount) / Double(elementCount) : 1 }
        /// Whether every element is equal.
        public var isIdentical: Bool { (status == .compared || status == .comparedBytes) && equalCount == elementCount }
    }

    /// Tensors on both sides, in side A's order.
    public var rows: [Row]
    /// Names only in A, and only in B (sorted).
    public var onlyInA: [String]
    public var onlyInB: [String]

    /// All compared float values together.
    public var overall: ErrorStatistics {
        var total = ErrorStatistics()
        for row in rows { if let s = row.statistics { total.merge(s) } }
        return total
    }

    /// Compares `b` against `a`.
    ///
    /// - Parameters:
    ///   - threads: Tensors compared at once; each holds two f32 copies of one tensor.
    ///   - progress: Called after each pair with the pairs and stored bytes (both sides) done so far, from any thread.
    /// - Throws: `CheckpointError` for a malformed 4-bit group on either side.
    /// - Complexity: O(n) in the total element count; the result does not depend on `threads`.
    public static func compare(
        _ a: Checkpoint, _ b: Checkpoint, threads: Int = 1, progress: (@Sendable (AnalysisProgress) -> Void)? = nil
    ) throws(CheckpointError) -> CheckpointDiff {
        let left = try LogicalTensor.list(a)
        let right = try LogicalTensor.list(b)
        let rightByName = Dictionary(right.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let leftNames = Set(left.map(\.name))
        let pairs = left.compactMap { l in rightByName[l.name].map { (l, $0) } }
        let counter = AnalysisProgressCounter(
            tensorsTotal: pairs.count, bytesTotal: pairs.reduce(0) { $0 + $1.0.storedByteCount + $1.1.storedByteCount },
            report: progress)
        let rows = ParallelRunner.map(count: pairs.count, threads: threads) { index in
            let row = compareOne(pairs[index].0, pairs[index].1)
            counter.finished(bytes: pairs[index].0.storedByteCount + pairs[index].1.storedByteCount)
            return row
        }
        return CheckpointDiff(
            rows: rows, onlyInA: left.map(\.name).filter { rightByName[$0] == nil }.sorted(),
            onlyInB: right.map(\.name).filter { !leftNames.contains($0) }.sorted())
    }

    private static func compareOne(_ l: LogicalTensor, _ r: LogicalTensor) -> Row {
        var row = Row(
            name: l.name, dtypeA: l.dtypeName, dtypeB: r.dtypeName, shapeA: l.shape, shapeB: r.shape, status: .compared,
            elementCount: 0, equalCount: 0, statistics: nil)
        guard l.shape == r.shape else {
            row.status = .shapeMismatch
            return row
        }
        let count = l.shape.elementCount
        if l.isFloatValued && r.isFloatValued {
            let (equal, statistics) = compareValues(l, r, count: count)
            row.elementCount = count
            row.equalCount = equal
            row.statistics = statistics
            return row
        }
        guard case .plain(let lt) = l.source, case .plain(let rt) = r.source, lt.dtype == rt.dtype, !l.isFloatValued
        else {
            row.status = .notComparable
            return row
        }
        row.status = .comparedBytes
        let width = max(1, lt.dtype.bitWidth / 8)
        let units = lt.dtype.bitWidth >= 8 ? count : lt.bytes.count
        row.elementCount = units
        row.equalCount = equalUnitCount(lt.bytes, rt.bytes, units: units, width: width)
        return row
    }
}

/// A tensor as a user thinks of it: a plain tensor, or a bitsandbytes 4-bit weight with its companions.
struct LogicalTensor: Sendable {
    enum Source: Sendable {
        case plain(Tensor)
        case quantized(QuantizedTensor)
    }
    var name: String
    var source: Source

    /// The logical tensors of a checkpoint in its order; companions of 4-bit weights are folded into the weight.
    static func list(_ checkpoint: Checkpoint) throws(CheckpointError) -> [LogicalTensor] {
        let groups = try BnbQuantizedWeight.groups(in: checkpoint.tensors)
        let byWeight = Dictionary(groups.map { ($0.weightName, $0) }, uniquingKeysWith: { first, _ in first })
        let members = Set(groups.flatMap(\.memberNames))
        return checkpoint.tensors.compactMap { tensor in
            if let group = byWeight[tensor.name] {
                return LogicalTensor(name: tensor.name, source: .quantized(group.tensor))
            }
            if members.contains(tensor.name) { return nil }
            return LogicalTensor(name: tensor.name, source: .plain(tensor))
        }
    }

    var shape: Shape {
        switch source {
        case .plain(let t): t.shape
        case .quantized(let q): q.shape
        }
    }

    /// Bytes read to compare it: the stored bytes of a plain tensor, the packed codes of a 4-bit weight.
    var storedByteCount: Int {
        switch source {
        case .plain(let t): t.descriptor.byteCount
        case .quantized(let q): (q.shape.elementCount + 1) / 2
        }
    }

    var dtypeName: String {
        switch source {
        case .plain(let t): t.dtype.rawValue
        case .quantized(let q): q.quantType.rawValue.uppercased()
        }
    }

    var isFloatValued: Bool {
        switch source {
        case .plain(let t): t.dtype.isConvertibleFloat
        case .quantized: true
        }
    }
}
