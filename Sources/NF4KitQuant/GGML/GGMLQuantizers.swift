public import NF4KitCore

/// ggml's reference quantizers for the block types beyond Q8_0 and Q4_0 (``GGMLBlockCodec`` dispatches here).
enum GGMLQuantizers {
    /// Whether ``quantize(_:as:into:)`` produces `type`.
    static func supports(_ type: GGMLType) -> Bool {
        false
    }

    /// Quantizes whole blocks of `type`; sizes are checked by ``GGMLBlockCodec/quantize(_:as:into:)``.
    static func quantize(
        _ source: UnsafeBufferPointer<Float>, as type: GGMLType, into destination: UnsafeMutableRawBufferPointer
    ) {
        preconditionFailure("GGMLQuantizers: no quantizer for \(type)")
    }
}
