/// The element type of a tensor.
///
/// The set is the union of what safetensors 0.8.0 can name and what the other containers we read need.
/// Raw values are the safetensors dtype strings, matched exactly (case-sensitive), as the reference reader does.
public enum DType: String, CaseIterable, Hashable, Sendable, Codable {
    case bool = "BOOL"
    case f4 = "F4"
    case f6e2m3 = "F6_E2M3"
    case f6e3m2 = "F6_E3M2"
    case u8 = "U8"
    case i8 = "I8"
    case f8e5m2 = "F8_E5M2"
    case f8e4m3 = "F8_E4M3"
    case f8e8m0 = "F8_E8M0"
    case f8e4m3fnuz = "F8_E4M3FNUZ"
    case f8e5m2fnuz = "F8_E5M2FNUZ"
    case i16 = "I16"
    case u16 = "U16"
    case f16 = "F16"
    case bf16 = "BF16"
    case i32 = "I32"
    case u32 = "U32"
    case f32 = "F32"
    case c64 = "C64"
    case f64 = "F64"
    case i64 = "I64"
    case u64 = "U64"

    /// The dtype string of the safetensors header (`"F16"`, `"BF16"`, ...).
    public var safetensorsName: String { rawValue }

    /// Creates a dtype from its exact safetensors name; `nil` for anything else (`"f32"`, `"F128"`).
    public init?(safetensorsName: String) { self.init(rawValue: safetensorsName) }

    /// Bits per element (4 for `F4`, 6 for the `F6_*` formats).
    public var bitWidth: Int {
        switch self {
        case .f4: 4
        case .f6e2m3, .f6e3m2: 6
        case .bool, .u8, .i8, .f8e5m2, .f8e4m3, .f8e8m0, .f8e4m3fnuz, .f8e5m2fnuz: 8
        case .i16, .u16, .f16, .bf16: 16
        case .i32, .u32, .f32: 32
        case .c64, .f64, .i64, .u64: 64
        }
    }

    /// Position in the reference safetensors crate's dtype enumeration (release 0.8.0).
    ///
    /// The reference writer sorts tensors by this rank, descending, then by name; reproducing its bytes needs it.
    public var safetensorsRank: Int { DType.allCases.firstIndex(of: self)! }

    /// Whether the dtype is one of the floating-point types we convert between (F16, BF16, F32, F64).
    public var isConvertibleFloat: Bool {
        switch self {
        case .f16, .bf16, .f32, .f64: true
        default: false
        }
    }

    /// Whether the dtype holds floating-point values of any width (including FP8/FP6/FP4 and complex).
    public var isFloatingPoint: Bool {
        switch self {
        case .f4, .f6e2m3, .f6e3m2, .f8e5m2, .f8e4m3, .f8e8m0, .f8e4m3fnuz, .f8e5m2fnuz, .f16, .bf16, .f32, .c64, .f64:
            true
        default: false
        }
    }

    /// The PyTorch name of the dtype as transformers writes it into JSON (`"float16"`, `"bfloat16"`, ...).
    public var torchName: String? {
        switch self {
        case .bool: "bool"
        case .u8: "uint8"
        case .i8: "int8"
        case .i16: "int16"
        case .u16: "uint16"
        case .f16: "float16"
        case .bf16: "bfloat16"
        case .i32: "int32"
        case .u32: "uint32"
        case .f32: "float32"
        case .c64: "complex64"
        case .f64: "float64"
        case .i64: "int64"
        case .u64: "uint64"
        case .f8e5m2: "float8_e5m2"
        case .f8e4m3: "float8_e4m3fn"
        case .f8e8m0: "float8_e8m0fnu"
        case .f8e4m3fnuz: "float8_e4m3fnuz"
        case .f8e5m2fnuz: "float8_e5m2fnuz"
        case .f4: "float4_e2m1fn_x2"
        case .f6e2m3, .f6e3m2: nil
        }
    }

    /// Creates a dtype from a PyTorch dtype name (`"float16"`, `"torch.bfloat16"`, `"half"`).
    public init?(torchName: String) {
        let name = torchName.hasPrefix("torch.") ? String(torchName.dropFirst(6)) : torchName
        switch name {
        case "half": self = .f16
        case "float": self = .f32
        case "double": self = .f64
        case "long": self = .i64
        case "int": self = .i32
        case "short": self = .i16
        default:
            guard let match = DType.allCases.first(where: { $0.torchName == name }) else { return nil }
            self = match
        }
    }

    /// Number of bytes that `elementCount` elements occupy, or `nil` if that is not a whole number of bytes
    /// or the product overflows.
    public func byteCount(elementCount: Int) -> Int? {
        let (bits, overflow) = elementCount.multipliedReportingOverflow(by: bitWidth)
        guard !overflow, bits % 8 == 0 else { return nil }
        return bits / 8
    }
}

extension DType: CustomStringConvertible {
    public var description: String { rawValue }
}
