package import NF4KitCore

/// Computes merged values: applies a ``MergePlan/Action``'s updates to a tensor held as f32.
///
/// All arithmetic is f32, as PEFT's on a CPU with f32 LoRA weights (spec lora-merge.md §4.12): the delta
/// `s · B · A` is formed in f32 and added to the f32 base value; the caller rounds the result once to the output
/// dtype. DoRA (§4.6) rescales each output feature by `m / ‖W + Δ‖` after the delta is added.
public enum LoRAMerger {
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

    /// One update's rank-r product as f32 matrices, `values[rows × columns] += scale · weight · left · right`.
    struct Product {
        var rows: Int
        var columns: Int
        var left: [Float]
        var right: [Float]
        /// An all-zero B (a freshly initialised adapter) adds nothing and is skipped, so that the base comes out bit
        /// for bit (adding +0 would turn a -0 weight into +0).
        var isZero: Bool
    }

    /// The factors of `update` in the row-major orientation of the merged tensor.
    static func product(of update: MergePlan.Update) throws(CheckpointError) -> Product {
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
        return Product(rows: rows, columns: columns, left: left, right: right, isZero: b.allSatisfy { $0 == 0 })
    }

    /// The values of a bias update, checked against the `count` values of the base bias of `action`.
    static func biasValues(
        _ update: MergePlan.BiasUpdate, of action: MergePlan.Action, count: Int
    ) throws(CheckpointError) -> [Float] {
        let bias = try floats(update.bias)
        guard bias.count == count else {
            throw CheckpointError(
                .shapeMismatch,
                "lora_B bias '\(update.bias.name)' has \(bias.count) values for base bias '\(action.name)' \(action.shape)",
                tensor: update.bias.name)
        }
        return bias
    }

    static func transpose(_ source: [Float], rows: Int, columns: Int) -> [Float] {
        var result = [Float](repeating: 0, count: source.count)
        for row in 0..<rows {
            for column in 0..<columns { result[column * rows + row] = source[row * columns + column] }
        }
        return result
    }
}
