public import NF4KitCore
import NF4KitQuant

/// A storage scheme that the sensitivity report quantizes each weight with (docs/sensitivity.md).
public enum QuantizationScheme: String, Sendable, Hashable, CaseIterable {
    /// bitsandbytes NF4, float32 absmax per block.
    case nf4
    /// bitsandbytes NF4 with double quantization (8-bit absmax codes, nested block 256).
    case nf4DoubleQuant = "nf4-dq"
    /// bitsandbytes FP4, float32 absmax per block.
    case fp4
    /// bitsandbytes FP4 with double quantization.
    case fp4DoubleQuant = "fp4-dq"
    /// Uniform 4-bit levels scaled by the block absmax (``UniformInt4``), float32 absmax per block.
    case int4
    /// ggml Q4_0: blocks of 32, f16 scale (block size fixed by the format).
    // swift-format-ignore: AlwaysUseLowerCamelCase
    case q4_0
    /// ggml Q8_0: blocks of 32, f16 scale, int8 codes (block size fixed by the format).
    // swift-format-ignore: AlwaysUseLowerCamelCase
    case q8_0
    /// ggml k-quant Q4_K (the bulk of Q4_K_M): super-blocks of 256, 144 bytes, llama.cpp's reference quantizer.
    // swift-format-ignore: AlwaysUseLowerCamelCase
    case q4_K = "q4_k"
    /// ggml Q5_K: super-blocks of 256, 176 bytes.
    // swift-format-ignore: AlwaysUseLowerCamelCase
    case q5_K = "q5_k"
    /// ggml Q6_K: super-blocks of 256, 210 bytes (Q4_K_M's output and some attn_v / ffn_down).
    // swift-format-ignore: AlwaysUseLowerCamelCase
    case q6_K = "q6_k"
    /// ggml IQ4_NL: blocks of 32, 18 bytes, a non-uniform 4-bit grid.
    // swift-format-ignore: AlwaysUseLowerCamelCase
    case iq4_nl
    /// ggml IQ4_XS: super-blocks of 256, 136 bytes.
    // swift-format-ignore: AlwaysUseLowerCamelCase
    case iq4_xs
    /// Rounding to bfloat16 (round to nearest even).
    case bf16

    /// The schemes `nf4kit inspect --sensitivity` uses by default (every case).
    public static let defaultSchemes = allCases

    /// Whether ``byteCount(elementCount:blocksize:)`` and quantization use the caller's block size (NF4, FP4, INT4).
    public var usesBlocksize: Bool {
        switch self {
        case .nf4, .nf4DoubleQuant, .fp4, .fp4DoubleQuant, .int4: true
        default: false
        }
    }

    /// The ggml block type of a ggml scheme (Q4_0, Q8_0, the k-quants, IQ4_NL, IQ4_XS), else `nil`.
    public var ggmlType: GGMLType? {
        switch self {
        case .q4_0: .q4_0
        case .q8_0: .q8_0
        case .q4_K: .q4_K
        case .q5_K: .q5_K
        case .q6_K: .q6_K
        case .iq4_nl: .iq4_nl
        case .iq4_xs: .iq4_xs
        default: nil
        }
    }

    /// Whether a tensor of `shape` can be stored in this scheme: ggml's formats need the innermost dimension (the row)
    /// to be a multiple of their block (32, or 256 for the k-quants and IQ4_XS); the others take any non-empty shape.
    /// A tensor a scheme does not accept is left out of that scheme's totals (llama-quantize would store it in a
    /// fallback type instead).
    public func accepts(_ shape: Shape) -> Bool {
        guard let type = ggmlType else { return shape.elementCount > 0 }
        return (shape.dimensions.last ?? 0) % type.blockSize == 0 && shape.elementCount > 0
    }

    /// Bytes of a tensor of `elementCount` values in this scheme: codes plus per-block constants. Code tables and
    /// bitsandbytes' quant-state JSON (which holds the double-quantization offset) are not counted.
    ///
    /// NF4/FP4: `(n + 1) / 2 + 4 · blocks`; with double quantization `(n + 1) / 2 + blocks + 4 · ceil(blocks / 256)`;
    /// INT4: as NF4; Q4_0: `18 · n / 32`; Q8_0: `34 · n / 32`; BF16: `2 · n` (`blocks = ceil(n / blocksize)`).
    public func byteCount(elementCount n: Int, blocksize: Int) -> Int {
        let blocks = (n + blocksize - 1) / blocksize
        let packed = BlockQuantizer.packedByteCount(elementCount: n)
        switch self {
        case .nf4, .fp4: return packed + 4 * blocks
        case .nf4DoubleQuant, .fp4DoubleQuant:
            return packed + blocks + 4 * DoubleQuantization.nestedBlockCount(blockCount: blocks)
        case .int4: return UniformInt4.byteCount(elementCount: n, blocksize: blocksize)
        case .q4_0: return (n + 31) / 32 * GGMLType.q4_0.typeSize
        case .q8_0: return (n + 31) / 32 * GGMLType.q8_0.typeSize
        case .q4_K, .q5_K, .q6_K, .iq4_nl, .iq4_xs:
            let type = ggmlType!
            return (n + type.blockSize - 1) / type.blockSize * type.typeSize
        case .bf16: return 2 * n
        }
    }

    /// Parses a comma-separated list such as `nf4,fp4,int4,q4_0,q8_0,bf16`.
    ///
    /// `nf4` and `fp4` stand for both the plain and the double-quantized variant (`nf4-dq`, `fp4-dq` name one
    /// variant alone). The result keeps ``allCases`` order without duplicates.
    /// - Throws: ``CheckpointError`` `.invalidArgument` naming an unknown scheme or an empty list.
    public static func parseList(_ text: String) throws(CheckpointError) -> [QuantizationScheme] {
        var chosen = Set<QuantizationScheme>()
        for item in text.split(separator: ",") {
            let name = item.filter { $0 != " " }.lowercased()
            if name.isEmpty { continue }
            switch name {
            case "nf4": chosen.formUnion([.nf4, .nf4DoubleQuant])
            case "fp4": chosen.formUnion([.fp4, .fp4DoubleQuant])
            default:
                guard let scheme = QuantizationScheme(rawValue: name) else {
                    let known = ["nf4", "fp4"] + allCases.map(\.rawValue).filter { $0 != "nf4" && $0 != "fp4" }
                    throw CheckpointError(
                        .invalidArgument, "unknown scheme '\(name)'; expected one of \(known.joined(separator: ", "))")
                }
                chosen.insert(scheme)
            }
        }
        guard !chosen.isEmpty else { throw CheckpointError(.invalidArgument, "the scheme list names no scheme") }
        return allCases.filter(chosen.contains)
    }
}
