public import NF4KitCore

/// Encoders and decoders for ggml's block formats (keyed by ``GGMLType``), bit-exact with ggml's reference quantizers
/// and gguf-py's dequantizers.
///
/// Layouts (spec gguf.md §2.3–2.5), little-endian, blocks along `ne[0]`:
/// - Q8_0, 34 bytes per 32: f16 scale `d`, then 32 int8 codes; `x = q * d`.
/// - Q4_0, 18 bytes per 32: f16 `d`, then 16 bytes; byte `k` holds element `k` in its low nibble and element `k + 16`
///   in its high nibble; `x = (code - 8) * d`.
/// - Q4_1, 20 bytes per 32: f16 `d`, f16 `m`, then 16 bytes as Q4_0; `x = code * d + m`.
/// The other block types are encoded by ``GGMLQuantizers`` and decoded by ``GGMLDequantizers``.
///
/// Buffers are raw little-endian bytes; element counts are multiples of the type's block size (a precondition).
/// Non-finite inputs do not trap: a NaN product becomes code 0 (Q8_0) or 8 (Q4_0).
public enum GGMLBlockCodec {
    /// Whether ``quantize(_:as:into:)`` can produce `type` (a block type).
    public static func canQuantize(_ type: GGMLType) -> Bool {
        type == .q8_0 || type == .q4_0 || GGMLQuantizers.supports(type)
    }

    /// Whether ``dequantize(_:as:into:)`` can decode `type` (a block type).
    public static func canDequantize(_ type: GGMLType) -> Bool {
        type == .q8_0 || type == .q4_0 || type == .q4_1 || GGMLDequantizers.supports(type)
    }

    /// Quantizes f32 values into `format` blocks.
    ///
    /// - Parameters:
    ///   - source: The values, `ne[0]`-contiguous; the count must be a multiple of the block size.
    ///   - type: A type for which ``canQuantize(_:)`` is true.
    ///   - destination: Exactly `source.count / type.blockSize * type.typeSize` bytes.
    ///   - kernel: `.automatic` (default) runs Q4_K, Q5_K and Q6_K on the AVX2 kernel when the CPU has it;
    ///     `.portable` runs the Swift kernels only. Both give the same bytes.
    /// - Complexity: O(n), no allocation.
    public static func quantize(
        _ source: UnsafeBufferPointer<Float>, as type: GGMLType,
        into destination: UnsafeMutableRawBufferPointer, kernel: BlockQuantizer.Kernel = .automatic
    ) {
        precondition(canQuantize(type), "GGMLBlockCodec.quantize: nf4kit cannot encode \(type)")
        precondition(
            source.count % type.blockSize == 0 && destination.count == source.count / type.blockSize * type.typeSize,
            "GGMLBlockCodec.quantize: \(source.count) values do not fill \(destination.count) bytes of \(type)")
        switch type {
        case .q8_0: quantizeQ8(source, into: destination)
        case .q4_0: quantizeQ4(source, into: destination)
        default: GGMLQuantizers.quantize(source, as: type, into: destination, native: kernel == .automatic)
        }
    }

    /// Decodes `format` blocks into f32 values.
    ///
    /// - Parameters:
    ///   - source: Exactly `destination.count / type.blockSize * type.typeSize` bytes.
    ///   - type: A type for which ``canDequantize(_:)`` is true.
    ///   - destination: The values; the count must be a multiple of the block size.
    /// - Complexity: O(n), no allocation.
    public static func dequantize(
        _ source: UnsafeRawBufferPointer, as type: GGMLType,
        into destination: UnsafeMutableBufferPointer<Float>
    ) {
        precondition(canDequantize(type), "GGMLBlockCodec.dequantize: nf4kit cannot decode \(type)")
        precondition(
            destination.count % type.blockSize == 0
                && source.count == destination.count / type.blockSize * type.typeSize,
            "GGMLBlockCodec.dequantize: \(source.count) bytes of \(type) do not fill \(destination.count) values")
        let blocks = destination.count / 32
        switch type {
        case .q8_0:
            for block in 0..<blocks {
                let base = block * 34
                let d = half(source, base)
                for j in 0..<32 {
                    destination[block * 32 + j] = Float(Int8(bitPattern: source[base + 2 + j])) * d
                }
            }
        case .q4_0:
            for block in 0..<blocks {
                let base = block * 18
                let d = half(source, base)
                for k in 0..<16 {
                    let byte = source[base + 2 + k]
                    destination[block * 32 + k] = Float(Int(byte & 0x0F) - 8) * d
                    destination[block * 32 + k + 16] = Float(Int(byte >> 4) - 8) * d
                }
            }
        case .q4_1:
            for block in 0..<blocks {
                let base = block * 20
                let d = half(source, base)
                let m = half(source, base + 2)
                for k in 0..<16 {
                    let byte = source[base + 4 + k]
                    destination[block * 32 + k] = Float(byte & 0x0F) * d + m
                    destination[block * 32 + k + 16] = Float(byte >> 4) * d + m
                }
            }
        default:
            GGMLDequantizers.dequantize(source, as: type, into: destination)
        }
    }

    /// Converts f32 values to a plain element type (F32, F16, BF16, F64), rounding to nearest even.
    ///
    /// - Parameter destination: Exactly `source.count` elements of `dtype`.
    public static func encode(
        _ source: UnsafeBufferPointer<Float>, as dtype: DType, into destination: UnsafeMutableRawBufferPointer
    ) {
        FloatConversion.narrow(source, to: dtype, into: destination)
    }

    /// Converts a plain float element type (F32, F16, BF16, F64) to f32.
    public static func decode(
        _ source: UnsafeRawBufferPointer, as dtype: DType, into destination: UnsafeMutableBufferPointer<Float>
    ) {
        FloatConversion.widen(source, from: dtype, into: destination)
    }

    @inline(__always)
    private static func half(_ raw: UnsafeRawBufferPointer, _ offset: Int) -> Float {
        FloatConversion.float(
            fromHalfBits: UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
    }

    // Reference: amax = max|x|; d = amax / 127 (f32); id = 1/d (from the f32 d, 0 when d = 0);
    // q = round-half-away-from-zero(x * id); d stored as f16 (round to nearest even).
    private static func quantizeQ8(
        _ source: UnsafeBufferPointer<Float>, into destination: UnsafeMutableRawBufferPointer
    ) {
        for block in 0..<(source.count / 32) {
            let x = UnsafeBufferPointer(rebasing: source[(block * 32)..<(block * 32 + 32)])
            var amax: Float = 0
            for value in x { amax = max(amax, abs(value)) }
            let d = amax / 127
            let id: Float = d != 0 ? 1 / d : 0
            let base = block * 34
            destination.storeBytes(
                of: FloatConversion.halfBits(from: d).littleEndian, toByteOffset: base, as: UInt16.self)
            for j in 0..<32 {
                let scaled = (x[j] * id).rounded(.toNearestOrAwayFromZero)
                let code: Int8 = scaled.isNaN ? 0 : Int8(max(-128, min(127, scaled)))
                destination[base + 2 + j] = UInt8(bitPattern: code)
            }
        }
    }

    // Reference: the first element of largest |x| gives max (signed); d = max / -8; id = 1/d (0 when d = 0);
    // code = min(15, trunc(x * id + 8.5)) with a separate multiply and add; qs[k] = code[k] | code[k+16] << 4.
    private static func quantizeQ4(
        _ source: UnsafeBufferPointer<Float>, into destination: UnsafeMutableRawBufferPointer
    ) {
        for block in 0..<(source.count / 32) {
            let x = UnsafeBufferPointer(rebasing: source[(block * 32)..<(block * 32 + 32)])
            // Start from element 0 (not from +0) so an all-zero block keeps the sign of x[0], as numpy's argmax does.
            var amax = abs(x[0])
            var maxValue = x[0]
            for value in x.dropFirst() where abs(value) > amax {
                amax = abs(value)
                maxValue = value
            }
            let d = maxValue / -8
            let id: Float = d != 0 ? 1 / d : 0
            let base = block * 18
            destination.storeBytes(
                of: FloatConversion.halfBits(from: d).littleEndian, toByteOffset: base, as: UInt16.self)
            for k in 0..<16 {
                let low = code4(x[k], id)
                let high = code4(x[k + 16], id)
                destination[base + 2 + k] = low | (high << 4)
            }
        }
    }

    @inline(__always)
    private static func code4(_ value: Float, _ id: Float) -> UInt8 {
        let product = value * id
        let t = product + 8.5
        if t.isNaN { return 8 }
        if t >= 15 { return 15 }
        if t <= 0 { return 0 }
        return UInt8(t)  // truncation toward zero, as C's (int8_t) cast
    }
}
