public import NF4KitCore

/// Computes merged values: applies a ``MergePlan/Action``'s updates to a tensor held as f32.
///
/// All arithmetic is f32, as PEFT's on a CPU with f32 LoRA weights (spec lora-merge.md §4.12): the delta
/// `s · B · A` is formed in f32 and added to the f32 base value; the caller rounds the result once to the output
/// dtype. DoRA (§4.6) rescales each output feature by `m / ‖W + Δ‖` after the delta is added.
public enum LoRAMerger {
    /// Updates `values` in place.
    ///
    /// - Parameters:
    ///   - action: What to do, from ``MergePlan``.
    ///   - values: The starting values (the base tensor, or the adapter's replacement) as f32, row-major, with
    ///     `action.shape.elementCount` elements.
    ///   - threadCount: How many threads may share the rank-r update (rows are split; the result does not
    ///     depend on it).
    /// - Throws: ``CheckpointError`` `.shapeMismatch` if `values` has the wrong size or a factor's bytes do not
    ///   match its shape.
    /// - Complexity: O(elements · rank) per update.
    public static func apply(
        _ action: MergePlan.Action, to values: UnsafeMutableBufferPointer<Float>, threadCount: Int = 1
    ) throws(CheckpointError) {
        guard values.count == action.shape.elementCount else {
            throw CheckpointError(
                .shapeMismatch, "tensor '\(action.name)': \(values.count) values for shape \(action.shape)",
                tensor: action.name)
        }
        for update in action.updates {
            let rows: Int
            let columns: Int
            var left: [Float]
            var right: [Float]
            let a = try floats(update.a)
            let b = try floats(update.b)
            let rank = update.rank
            switch update.layout {
            case .linear:
                // left = B [out, r], right = A [r, in].
                rows = update.b.shape.dimensions[0]
                columns = update.a.shape.dimensions[1]
                left = b
                right = a
            case .transposed:
                // Δᵀ [in, out] = Aᵀ [in, r] · Bᵀ [r, out].
                rows = update.a.shape.dimensions[1]
                columns = update.b.shape.dimensions[0]
                left = transpose(a, rows: rank, columns: rows)
                right = transpose(b, rows: columns, columns: rank)
            case .embedding:
                // Δ [V, D] = A_eᵀ [V, r] · B_eᵀ [r, D].
                rows = update.a.shape.dimensions[1]
                columns = update.b.shape.dimensions[0]
                left = transpose(a, rows: rank, columns: rows)
                right = transpose(b, rows: columns, columns: rank)
            }
            precondition(rows * columns == values.count, "plan and values disagree")
            // An all-zero B (a freshly initialised adapter) adds nothing: skip it, so that the base comes out bit for
            // bit (adding +0 would turn a -0 weight into +0).
            let isZero = b.allSatisfy { $0 == 0 }
            let scale = update.scale
            let weight = update.weight
            if !isZero {
                left.withUnsafeBufferPointer { leftBuffer in
                    right.withUnsafeBufferPointer { rightBuffer in
                        GEMMAccumulate.addScaledProduct(
                            left: leftBuffer, right: rightBuffer, rank: rank, columns: columns, scale: scale,
                            weight: weight, into: values, rows: rows, threadCount: threadCount)
                    }
                }
            }
            if let magnitude = update.magnitude {
                let m = try floats(magnitude)
                applyDoRA(magnitude: m, to: values, rows: rows, columns: columns, perRow: update.layout == .linear)
            }
        }
        for update in action.biasUpdates {
            let bias = try floats(update.bias)
            guard bias.count == values.count else {
                throw CheckpointError(
                    .shapeMismatch,
                    "lora_B bias '\(update.bias.name)' has \(bias.count) values for base bias '\(action.name)' \(action.shape)",
                    tensor: update.bias.name)
            }
            for i in 0..<bias.count {
                var delta = bias[i] * update.scale
                if update.weight != 1 { delta = delta * update.weight }
                values[i] = values[i] + delta
            }
        }
    }

    /// The index of the first NaN or infinite value, or `nil` when all are finite.
    /// - Complexity: O(n).
    public static func firstNonFiniteIndex(_ values: UnsafeBufferPointer<Float>) -> Int? {
        for i in values.indices where !values[i].isFinite { return i }
        return nil
    }

    /// The element count of a float tensor whose bytes hold its shape: what ``floats(_:threadCount:)`` and the merge's
    /// scratch loader check before widening.
    /// - Throws: ``CheckpointError`` `.unsupportedDType` for a non-float tensor, `.shapeMismatch` when the bytes do not
    ///   hold the shape.
    package static func floatElementCount(_ tensor: Tensor) throws(CheckpointError) -> Int {
        guard tensor.dtype.isConvertibleFloat else {
            throw CheckpointError(
                .unsupportedDType, "tensor '\(tensor.name)' is \(tensor.dtype), not a float type", tensor: tensor.name)
        }
        guard let count = tensor.shape.checkedElementCount,
            tensor.dtype.byteCount(elementCount: count) == tensor.bytes.count
        else {
            throw CheckpointError(
                .shapeMismatch,
                "tensor '\(tensor.name)': \(tensor.bytes.count) bytes do not hold \(tensor.shape) of \(tensor.dtype)",
                tensor: tensor.name)
        }
        return count
    }

    /// A float tensor's values as f32 (F16/BF16/F32/F64, widened exactly; F64 rounded).
    /// - Throws: ``CheckpointError`` `.unsupportedDType` / `.shapeMismatch` when the bytes do not hold the shape.
    public static func floats(_ tensor: Tensor, threadCount: Int = 1) throws(CheckpointError) -> [Float] {
        let count = try floatElementCount(tensor)
        var result = [Float](repeating: 0, count: count)
        tensor.bytes.withUnsafeBytes { raw in
            result.withUnsafeMutableBufferPointer {
                FloatConversion.widen(raw, from: tensor.dtype, into: $0, threadCount: threadCount)
            }
        }
        return result
    }

    /// DoRA: `W'[f] = (m[f] / ‖V[f]‖) · V[f]` for every output feature f, where a feature is a row
    /// (`perRow`, Linear) or a column (GPT-2 Conv1D, Embedding). Norms are summed in f64 and rounded to f32;
    /// factor and product are f32, as PEFT computes them (no epsilon, so a zero norm gives a non-finite value).
    static func applyDoRA(
        magnitude: [Float], to values: UnsafeMutableBufferPointer<Float>, rows: Int, columns: Int, perRow: Bool
    ) {
        if perRow {
            for row in 0..<rows {
                var sum = 0.0
                for column in 0..<columns {
                    let v = Double(values[row * columns + column])
                    sum += v * v
                }
                let factor = magnitude[row] / Float(sum.squareRoot())
                for column in 0..<columns { values[row * columns + column] = factor * values[row * columns + column] }
            }
        } else {
            var sums = [Double](repeating: 0, count: columns)
            for row in 0..<rows {
                for column in 0..<columns {
                    let v = Double(values[row * columns + column])
                    sums[column] += v * v
                }
            }
            let factors = (0..<columns).map { magnitude[$0] / Float(sums[$0].squareRoot()) }
            for row in 0..<rows {
                for column in 0..<columns {
                    values[row * columns + column] = factors[column] * values[row * columns + column]
                }
            }
        }
    }

    private static func transpose(_ source: [Float], rows: Int, columns: Int) -> [Float] {
        var result = [Float](repeating: 0, count: source.count)
        for row in 0..<rows {
            for column in 0..<columns { result[column * rows + row] = source[row * columns + column] }
        }
        return result
    }
}
