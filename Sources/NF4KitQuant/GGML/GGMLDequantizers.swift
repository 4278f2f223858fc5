public import NF4KitCore

/// Dequantizers for the ggml block types beyond Q8_0, Q4_0 and Q4_1 (``GGMLBlockCodec`` dispatches here), equal to
/// gguf-py's `quants.dequantize`.
enum GGMLDequantizers {
    /// Whether ``dequantize(_:as:into:)`` decodes `type`.
    static func supports(_ type: GGMLType) -> Bool {
        false
    }

    /// Decodes whole blocks of `type`; sizes are checked by ``GGMLBlockCodec/dequantize(_:as:into:)``.
    static func dequantize(
        _ source: UnsafeRawBufferPointer, as type: GGMLType, into destination: UnsafeMutableBufferPointer<Float>
    ) {
        preconditionFailure("GGMLDequantizers: no dequantizer for \(type)")
    }
}
