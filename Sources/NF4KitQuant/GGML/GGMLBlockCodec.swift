public import NF4KitCore

/// The ggml block-quantized formats we encode or decode (llama.cpp's Q8_0, Q4_0, Q4_1).
///
/// Layouts (spec gguf.md §2.3–2.5), little-endian, blocks of 32 elements along `ne[0]`:
/// - Q8_0, 34 bytes: f16 scale `d`, then 32 int8 codes; `x = q * d`.
/// - Q4_0, 18 bytes: f16 `d`, then 16 bytes; byte `k` holds element `k` in its low nibble and element `k + 16` in its
///   high nibble; `x = (code - 8) * d`.
/// - Q4_1, 20 bytes: f16 `d`, f16 `m`, then 16 bytes as Q4_0; `x = code * d + m`.
public enum GGMLBlockFormat: String, Sendable, Hashable, CaseIterable {
    /// Q8_0 (id 8): f16 scale + 32 int8 codes, 34 bytes.
    // swift-format-ignore: AlwaysUseLowerCamelCase
    case q8_0 = "Q8_0"
    /// Q4_0 (id 2): f16 scale + 32 4-bit codes, 18 bytes.
    // swift-format-ignore: AlwaysUseLowerCamelCase
    case q4_0 = "Q4_0"
    /// Q4_1 (id 3): f16 scale, f16 minimum + 32 4-bit codes, 20 bytes.
    // swift-format-ignore: AlwaysUseLowerCamelCase
    case q4_1 = "Q4_1"

    /// Elements per block (32 for all three).
    public var blockSize: Int { 32 }

    /// Bytes per block.
    public var typeSize: Int {
        switch self {
        case .q8_0: 34
        case .q4_0: 18
        case .q4_1: 20
        }
    }

    /// The ggml type id written in GGUF files.
    public var ggmlTypeID: UInt32 {
        switch self {
        case .q8_0: 8
        case .q4_0: 2
        case .q4_1: 3
        }
    }

    /// The format with this ggml type id, or `nil`.
    public init?(ggmlTypeID: UInt32) {
        guard let format = GGMLBlockFormat.allCases.first(where: { $0.ggmlTypeID == ggmlTypeID }) else { return nil }
        self = format
    }

    /// Whether ``GGMLBlockCodec/quantize(_:as:into:)`` can produce this format (Q4_1 is decode-only).
    public var canQuantize: Bool { self != .q4_1 }

    /// Bytes for `elementCount` elements, or `nil` when the count is not a multiple of 32 (or negative).
    public func byteCount(elementCount: Int) -> Int? {
        guard elementCount >= 0, elementCount % blockSize == 0 else { return nil }
        return elementCount / blockSize * typeSize
    }
}

/// Encoders and decoders for ggml's block formats, bit-exact with ggml's reference quantizer and gguf-py.
///
/// Buffers are raw little-endian bytes; element counts are multiples of 32 (a precondition). Non-finite inputs do not
/// trap: a NaN product becomes code 0 (Q8_0) or 8 (Q4_0).
public enum GGMLBlockCodec {
    /// Quantizes f32 values into `format` blocks.
    ///
    /// - Parameters:
    ///   - source: The values, `ne[0]`-contiguous; the count must be a multiple of 32.
    ///   - format: `.q8_0` or `.q4_0`.
    ///   - destination: Exactly `source.count / 32 * format.typeSize` bytes.
    /// - Complexity: O(n), no allocation.
    public static func quantize(
        _ source: UnsafeBufferPointer<Float>, as format: GGMLBlockFormat,
        into destination: UnsafeMutableRawBufferPointer
    ) {
        precondition(format.canQuantize, "GGMLBlockCodec.quantize: \(format) is decode-only")
        precondition(
            source.count % 32 == 0 && destination.count == source.count / 32 * format.typeSize,
            "GGMLBlockCodec.quantize: \(source.count) values do not fill \(destination.count) bytes of \(format)")
        switch format {
        case .q8_0: quantizeQ8(source, into: destination)
        case .q4_0: quantizeQ4(source, into: destination)
        case .q4_1: break
        }
    }

    /// Decodes `format` blocks into f32 values.
    ///
    /// - Parameters:
    ///   - source: Exactly `destination.count / 32 * format.typeSize` bytes.
    ///   - format: Any of the three formats.
    ///   - destination: The values; the count must be a multiple of 32.
    /// - Complexity: O(n), no allocation.
    public static func dequantize(
        _ source: UnsafeRawBufferPointer, as format: GGMLBlockFormat,
        into destination: UnsafeMutableBufferPointer<Float>
    ) {
        precondition(
            destination.count % 32 == 0 && source.count == destination.count / 32 * format.typeSize,
            "GGMLBlockCodec.dequantize: \(source.count) bytes of \(format) do not fill \(destination.count) values")
        let blocks = destination.count / 32
        switch format {
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
