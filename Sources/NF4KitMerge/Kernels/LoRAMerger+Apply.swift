public import NF4KitCore

// LoRAMerger over f32 buffers: the in-place update of a whole tensor (GEMMAccumulate does the rank-r product),
// the DoRA rescaling and the f32 widening of factors.
extension LoRAMerger {
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
            let product = try product(of: update)
            let rows = product.rows
            let columns = product.columns
            precondition(rows * columns == values.count, "plan and values disagree")
            if !product.isZero {
                product.left.withUnsafeBufferPointer { leftBuffer in
                    product.right.withUnsafeBufferPointer { rightBuffer in
                        GEMMAccumulate.addScaledProduct(
                            left: leftBuffer, right: rightBuffer, rank: update.rank, columns: columns,
                            scale: update.scale, weight: update.weight, into: values, rows: rows,
                            threadCount: threadCount)
                    }
                }
            }
            if let magnitude = update.magnitude {
                let m = try floats(magnitude)
                applyDoRA(magnitude: m, to: values, rows: rows, columns: columns, perRow: update.layout == .linear)
            }
        }
        for update in action.biasUpdates {
            let bias = try biasValues(update, of: action, count: values.count)
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
}
