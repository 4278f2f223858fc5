import NF4KitCore

/// ggml's reference quantizers for the block types beyond Q8_0 and Q4_0 (``GGMLBlockCodec`` dispatches here).
///
/// Each produces the bytes llama-quantize writes for that type without an importance matrix (ggml-quants.c:
/// `quantize_row_*_ref`; for IQ4_NL / IQ4_XS the `quantize_iq4_*` path with `ntry = 7`).
enum GGMLQuantizers {
    /// Whether ``quantize(_:as:into:)`` produces `type`.
    static func supports(_ type: GGMLType) -> Bool {
        switch type {
        case .q4_1, .q5_0, .q5_1, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .iq4_nl, .iq4_xs: true
        default: false
        }
    }

    /// Quantizes whole blocks of `type`; sizes are checked by ``GGMLBlockCodec/quantize(_:as:into:)``.
    ///
    /// `native` lets Q4_K, Q5_K and Q6_K use the native kernel (same bytes); false runs the Swift reference only.
    static func quantize(
        _ source: UnsafeBufferPointer<Float>, as type: GGMLType, into destination: UnsafeMutableRawBufferPointer,
        native: Bool = true
    ) {
        switch type {
        case .q4_1: GGMLLegacyQuantizers.quantizeQ4_1(source, into: destination)
        case .q5_0: GGMLLegacyQuantizers.quantizeQ5_0(source, into: destination)
        case .q5_1: GGMLLegacyQuantizers.quantizeQ5_1(source, into: destination)
        case .q2_K: GGMLKQuantizers.quantize(source, q: 2, into: destination)
        case .q3_K: GGMLKQuantizers.quantize(source, q: 3, into: destination)
        case .q4_K: GGMLKQuantizers.quantize(source, q: 4, into: destination, native: native)
        case .q5_K: GGMLKQuantizers.quantize(source, q: 5, into: destination, native: native)
        case .q6_K: GGMLKQuantizers.quantize(source, q: 6, into: destination, native: native)
        case .iq4_nl: GGMLIQ4Quantizers.quantize(source, superBlock: 32, into: destination)
        case .iq4_xs: GGMLIQ4Quantizers.quantize(source, superBlock: 256, into: destination)
        default: preconditionFailure("GGMLQuantizers: no quantizer for \(type)")
        }
    }
}
