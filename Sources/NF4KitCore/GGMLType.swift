/// A ggml tensor type as stored in a GGUF tensor-info record (`ggml_type`), with its block geometry.
///
/// The set of ids stays open (new ids appear upstream), so this is a struct around the raw id; the known ids are
/// described by a table (spec gguf.md §2.1). Removed ids (4, 5, 31–33, 36–38) and ids past the table are unknown:
/// ``init(id:)`` returns `nil` for them; ``init(unknownID:)`` keeps them for listing (the GGUF reader does, and
/// refuses such a tensor only when it must be decoded).
public struct GGMLType: Hashable, Sendable, CustomStringConvertible {
    /// The id written in the file (4-byte little-endian enum).
    public let id: UInt32
    /// The ggml name (`"F32"`, `"Q4_0"`, `"IQ4_NL"`).
    public let name: String
    /// Elements per block (1 for the plain types).
    public let blockSize: Int
    /// Bytes per block.
    public let typeSize: Int

    private init(_ id: UInt32, _ name: String, _ blockSize: Int, _ typeSize: Int) {
        self.id = id
        self.name = name
        self.blockSize = blockSize
        self.typeSize = typeSize
    }

    /// The type with this id, or `nil` if the id is unknown or was removed from ggml.
    public init?(id: UInt32) {
        guard id < UInt32(GGMLType.table.count), let known = GGMLType.table[Int(id)] else { return nil }
        self = known
    }

    /// A type id this build does not know, or one ggml removed, kept so that a file's header can still be listed.
    ///
    /// Its block geometry is unknown: ``isKnown`` is false, ``name`` is `"unknown(ID)"`, ``blockSize`` is 1 and
    /// ``typeSize`` 0 (so ``byteCount(dimensions:)`` says nothing true about it; the GGUF reader takes an unknown
    /// tensor's extent from the data layout instead). Nothing can decode or encode it.
    public init(unknownID id: UInt32) {
        if let known = GGMLType(id: id) {
            self = known
        } else {
            self.init(id, "unknown(\(id))", 1, 0)
        }
    }

    /// Whether the id is one of ggml's current types (false for ``init(unknownID:)`` of an unknown id).
    public var isKnown: Bool { GGMLType(id: id) != nil }

    /// The type with this ggml name (`"Q8_0"`, case-sensitive), or `nil`.
    public init?(name: String) {
        guard let known = GGMLType.allKnown.first(where: { $0.name == name }) else { return nil }
        self = known
    }

    /// The ggml name.
    public var description: String { name }

    /// Whether elements are stored in blocks of more than one (a ggml-quantized type).
    public var isQuantized: Bool { blockSize > 1 }

    /// The shared element type for the plain types (F32, F16, BF16, F64, I8, I16, I32, I64), `nil` for block types.
    public var dtype: DType? {
        switch id {
        case 0: .f32
        case 1: .f16
        case 24: .i8
        case 25: .i16
        case 26: .i32
        case 27: .i64
        case 28: .f64
        case 30: .bf16
        default: nil
        }
    }

    /// The plain ggml type for a shared element type, or `nil` when GGUF has none (U8, BOOL, U16, U32, U64, FP8...).
    public init?(dtype: DType) {
        switch dtype {
        case .f32: self = .f32
        case .f16: self = .f16
        case .bf16: self = .bf16
        case .f64: self = .f64
        case .i8: self = .i8
        case .i16: self = .i16
        case .i32: self = .i32
        case .i64: self = .i64
        default: return nil
        }
    }

    /// Bytes of one row of `elementCount` elements, or `nil` when the count is not a whole number of blocks
    /// or the product overflows.
    public func rowByteCount(elementCount: Int) -> Int? {
        guard elementCount >= 0, elementCount % blockSize == 0 else { return nil }
        let (bytes, overflow) = (elementCount / blockSize).multipliedReportingOverflow(by: typeSize)
        return overflow ? nil : bytes
    }

    /// Bytes of a tensor with ggml dimensions `dimensions` (`ne[0]` first), or `nil` when `ne[0]` is not a multiple
    /// of ``blockSize``, a dimension is negative, or the size overflows.
    public func byteCount(dimensions: [Int]) -> Int? {
        // No dimensions is a scalar: ggml reads it as ne = [1, 1, 1, 1].
        guard var bytes = rowByteCount(elementCount: dimensions.first ?? 1) else { return nil }
        for dimension in dimensions.dropFirst() {
            guard dimension >= 0 else { return nil }
            let (next, overflow) = bytes.multipliedReportingOverflow(by: dimension)
            if overflow { return nil }
            bytes = next
        }
        return bytes
    }

    /// Every type with a known id, in id order.
    public static var allKnown: [GGMLType] { table.compactMap { $0 } }

    // Named after ggml (`Q4_0` is `.q4_0`).
    /// ggml `F32`: id 0, 1 element in 4 bytes.
    public static let f32 = GGMLType(0, "F32", 1, 4)
    /// ggml `F16`: id 1, 1 element in 2 bytes.
    public static let f16 = GGMLType(1, "F16", 1, 2)
    /// ggml `Q4_0`: id 2, 32 elements in 18 bytes.
    // swift-format-ignore: AlwaysUseLowerCamelCase
    public static let q4_0 = GGMLType(2, "Q4_0", 32, 18)
    /// ggml `Q4_1`: id 3, 32 elements in 20 bytes.
    // swift-format-ignore: AlwaysUseLowerCamelCase
    public static let q4_1 = GGMLType(3, "Q4_1", 32, 20)
    /// ggml `Q5_0`: id 6, 32 elements in 22 bytes.
    // swift-format-ignore: AlwaysUseLowerCamelCase
    public static let q5_0 = GGMLType(6, "Q5_0", 32, 22)
    /// ggml `Q5_1`: id 7, 32 elements in 24 bytes.
    // swift-format-ignore: AlwaysUseLowerCamelCase
    public static let q5_1 = GGMLType(7, "Q5_1", 32, 24)
    /// ggml `Q8_0`: id 8, 32 elements in 34 bytes.
    // swift-format-ignore: AlwaysUseLowerCamelCase
    public static let q8_0 = GGMLType(8, "Q8_0", 32, 34)
    /// ggml `Q8_1`: id 9, 32 elements in 36 bytes.
    // swift-format-ignore: AlwaysUseLowerCamelCase
    public static let q8_1 = GGMLType(9, "Q8_1", 32, 36)
    /// ggml `I8`: id 24, 1 element in 1 bytes.
    public static let i8 = GGMLType(24, "I8", 1, 1)
    /// ggml `I16`: id 25, 1 element in 2 bytes.
    public static let i16 = GGMLType(25, "I16", 1, 2)
    /// ggml `I32`: id 26, 1 element in 4 bytes.
    public static let i32 = GGMLType(26, "I32", 1, 4)
    /// ggml `I64`: id 27, 1 element in 8 bytes.
    public static let i64 = GGMLType(27, "I64", 1, 8)
    /// ggml `F64`: id 28, 1 element in 8 bytes.
    public static let f64 = GGMLType(28, "F64", 1, 8)
    /// ggml `BF16`: id 30, 1 element in 2 bytes.
    public static let bf16 = GGMLType(30, "BF16", 1, 2)

    /// ggml `Q2_K`: id 10, 256 elements in 84 bytes.
    // swift-format-ignore: AlwaysUseLowerCamelCase
    public static let q2_K = GGMLType(10, "Q2_K", 256, 84)
    /// ggml `Q3_K`: id 11, 256 elements in 110 bytes.
    // swift-format-ignore: AlwaysUseLowerCamelCase
    public static let q3_K = GGMLType(11, "Q3_K", 256, 110)
    /// ggml `Q4_K`: id 12, 256 elements in 144 bytes.
    // swift-format-ignore: AlwaysUseLowerCamelCase
    public static let q4_K = GGMLType(12, "Q4_K", 256, 144)
    /// ggml `Q5_K`: id 13, 256 elements in 176 bytes.
    // swift-format-ignore: AlwaysUseLowerCamelCase
    public static let q5_K = GGMLType(13, "Q5_K", 256, 176)
    /// ggml `Q6_K`: id 14, 256 elements in 210 bytes.
    // swift-format-ignore: AlwaysUseLowerCamelCase
    public static let q6_K = GGMLType(14, "Q6_K", 256, 210)
    /// ggml `Q8_K`: id 15, 256 elements in 292 bytes.
    // swift-format-ignore: AlwaysUseLowerCamelCase
    public static let q8_K = GGMLType(15, "Q8_K", 256, 292)
    /// ggml `IQ2_XXS`: id 16, 256 elements in 66 bytes.
    // swift-format-ignore: AlwaysUseLowerCamelCase
    public static let iq2_xxs = GGMLType(16, "IQ2_XXS", 256, 66)
    /// ggml `IQ2_XS`: id 17, 256 elements in 74 bytes.
    // swift-format-ignore: AlwaysUseLowerCamelCase
    public static let iq2_xs = GGMLType(17, "IQ2_XS", 256, 74)
    /// ggml `IQ3_XXS`: id 18, 256 elements in 98 bytes.
    // swift-format-ignore: AlwaysUseLowerCamelCase
    public static let iq3_xxs = GGMLType(18, "IQ3_XXS", 256, 98)
    /// ggml `IQ1_S`: id 19, 256 elements in 50 bytes.
    // swift-format-ignore: AlwaysUseLowerCamelCase
    public static let iq1_s = GGMLType(19, "IQ1_S", 256, 50)
    /// ggml `IQ4_NL`: id 20, 32 elements in 18 bytes.
    // swift-format-ignore: AlwaysUseLowerCamelCase
    public static let iq4_nl = GGMLType(20, "IQ4_NL", 32, 18)
    /// ggml `IQ3_S`: id 21, 256 elements in 110 bytes.
    // swift-format-ignore: AlwaysUseLowerCamelCase
    public static let iq3_s = GGMLType(21, "IQ3_S", 256, 110)
    /// ggml `IQ2_S`: id 22, 256 elements in 82 bytes.
    // swift-format-ignore: AlwaysUseLowerCamelCase
    public static let iq2_s = GGMLType(22, "IQ2_S", 256, 82)
    /// ggml `IQ4_XS`: id 23, 256 elements in 136 bytes.
    // swift-format-ignore: AlwaysUseLowerCamelCase
    public static let iq4_xs = GGMLType(23, "IQ4_XS", 256, 136)
    /// ggml `IQ1_M`: id 29, 256 elements in 56 bytes.
    // swift-format-ignore: AlwaysUseLowerCamelCase
    public static let iq1_m = GGMLType(29, "IQ1_M", 256, 56)
    /// ggml `TQ1_0`: id 34, 256 elements in 54 bytes.
    // swift-format-ignore: AlwaysUseLowerCamelCase
    public static let tq1_0 = GGMLType(34, "TQ1_0", 256, 54)
    /// ggml `TQ2_0`: id 35, 256 elements in 66 bytes.
    // swift-format-ignore: AlwaysUseLowerCamelCase
    public static let tq2_0 = GGMLType(35, "TQ2_0", 256, 66)
    /// ggml `MXFP4`: id 39, 32 elements in 17 bytes.
    // swift-format-ignore: AlwaysUseLowerCamelCase
    public static let mxfp4 = GGMLType(39, "MXFP4", 32, 17)
    /// ggml `NVFP4`: id 40, 64 elements in 36 bytes.
    // swift-format-ignore: AlwaysUseLowerCamelCase
    public static let nvfp4 = GGMLType(40, "NVFP4", 64, 36)
    /// ggml `Q1_0`: id 41, 128 elements in 18 bytes.
    // swift-format-ignore: AlwaysUseLowerCamelCase
    public static let q1_0 = GGMLType(41, "Q1_0", 128, 18)

    // Spec gguf.md §2.1 (ggml type traits, Feb 2025, and gguf-py 0.19.0 for ids 39-41). Q8_1 uses ggml's 36 bytes;
    // gguf-py's table says 40 (stale). nil = removed id.
    private static let table: [GGMLType?] = [
        f32, f16, q4_0, q4_1, nil, nil, q5_0, q5_1, q8_0, q8_1,
        q2_K, q3_K, q4_K,
        q5_K, q6_K, q8_K,
        iq2_xxs, iq2_xs, iq3_xxs,
        iq1_s, iq4_nl, iq3_s,
        iq2_s, iq4_xs,
        i8, i16, i32, i64, f64, iq1_m, bf16,
        nil, nil, nil,
        tq1_0, tq2_0,
        nil, nil, nil,
        mxfp4, nvfp4, q1_0,
    ]
}
