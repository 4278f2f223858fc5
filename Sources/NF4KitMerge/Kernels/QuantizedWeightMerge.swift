package import NF4KitCore
package import NF4KitQuant

/// The 4-bit side of a merge (spec lora-merge.md §5): a bitsandbytes weight dequantized to f32 the way PEFT does it,
/// and merged f32 values quantized again.
///
/// A merge into a 4-bit weight is `dequantize`, ``LoRAMerger/apply(_:to:threadCount:)``, `quantize`;
/// the pipeline only decides which output form asks for which step.
package enum QuantizedWeightMerge {
    /// Dequantizes `tensor` into `values` (`tensor.elementCount` floats).
    ///
    /// - Parameter dtype: `.f32` dequantizes straight to f32 (a plain output: one rounding less); any other dtype
    ///   rounds each value to it first, as bitsandbytes' `dequantize_4bit` returns the weight to PEFT before a
    ///   merge that is re-quantized.
    package static func dequantize(
        _ tensor: QuantizedTensor, roundingThrough dtype: DType, into values: UnsafeMutableBufferPointer<Float>
    ) {
        precondition(
            values.count == tensor.elementCount, "dequantize: \(values.count) floats for \(tensor.elementCount)")
        let absmax = tensor.absmaxValues()
        if dtype == .f32 {
            absmax.withUnsafeBufferPointer {
                tensor.dequantizeBlocks(
                    0..<tensor.blockCount, absmax: $0, as: .f32, into: UnsafeMutableRawBufferPointer(values))
            }
        } else {
            let rounded = tensor.dequantized(as: dtype)
            rounded.withUnsafeBytes { raw in FloatConversion.widen(raw, from: dtype, into: values) }
        }
    }

    /// Quantizes merged f32 `values` of `shape` with `quantizer`, recording `recordedDType` in the quant state.
    ///
    /// - Parameters:
    ///   - recordedDType: The quant state's `"dtype"`: PEFT's `merge_and_unload` re-quantizes the f32 sum, so
    ///     bitsandbytes records float32 for a merged weight; a fresh conversion records the weight's own dtype.
    ///   - threads: Threads for the block kernel (same bytes for any count).
    /// - Throws: ``CheckpointError`` `.invalidArgument` for an empty tensor, `.shapeMismatch` when `values` does
    ///   not hold `shape`.
    package static func quantize(
        _ values: UnsafeBufferPointer<Float>, shape: Shape, with quantizer: BlockQuantizer, doubleQuantization: Bool,
        recordedDType: DType, name: String, threads: Int
    ) throws(CheckpointError) -> QuantizedTensor {
        guard !values.isEmpty else {
            throw CheckpointError(.invalidArgument, "cannot quantize the empty tensor '\(name)'", tensor: name)
        }
        var quantized = try quantizer.quantize(
            UnsafeRawBufferPointer(values), dtype: .f32, shape: shape, doubleQuantization: doubleQuantization,
            name: name, threads: threads)
        quantized.dtype = recordedDType
        return quantized
    }
}
