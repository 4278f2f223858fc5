/// The type id of a GGUF metadata value (`gguf_type`), written as a 4-byte little-endian enum.
///
/// Note the order: the 64-bit types come after `array` (spec gguf.md §1.4).
public enum GGUFValueType: UInt32, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// `UINT8`, id 0.
    case uint8 = 0
    /// `INT8`, id 1.
    case int8 = 1
    /// `UINT16`, id 2.
    case uint16 = 2
    /// `INT16`, id 3.
    case int16 = 3
    /// `UINT32`, id 4.
    case uint32 = 4
    /// `INT32`, id 5.
    case int32 = 5
    /// `FLOAT32`, id 6.
    case float32 = 6
    /// `BOOL`, id 7.
    case bool = 7
    /// `STRING`, id 8.
    case string = 8
    /// `ARRAY`, id 9.
    case array = 9
    /// `UINT64`, id 10.
    case uint64 = 10
    /// `INT64`, id 11.
    case int64 = 11
    /// `FLOAT64`, id 12.
    case float64 = 12

    /// Bytes of one value for the fixed-size types; `nil` for `string` and `array`.
    public var fixedByteCount: Int? {
        switch self {
        case .uint8, .int8, .bool: 1
        case .uint16, .int16: 2
        case .uint32, .int32, .float32: 4
        case .uint64, .int64, .float64: 8
        case .string, .array: nil
        }
    }

    /// The smallest encoding of one value in bytes (a string is at least its 8-byte length; an array at least its
    /// 4-byte element type and 8-byte count).
    public var minimumByteCount: Int { fixedByteCount ?? (self == .string ? 8 : 12) }

    /// The name gguf-py prints (`UINT32`, `FLOAT32`, `STRING`, ...).
    public var description: String {
        switch self {
        case .uint8: "UINT8"
        case .int8: "INT8"
        case .uint16: "UINT16"
        case .int16: "INT16"
        case .uint32: "UINT32"
        case .int32: "INT32"
        case .float32: "FLOAT32"
        case .bool: "BOOL"
        case .string: "STRING"
        case .array: "ARRAY"
        case .uint64: "UINT64"
        case .int64: "INT64"
        case .float64: "FLOAT64"
        }
    }
}

/// A typed GGUF metadata value. Arrays hold values of one element type and are never nested.
public enum GGUFValue: Hashable, Sendable {
    /// A `UINT8` value.
    case uint8(UInt8)
    /// A `INT8` value.
    case int8(Int8)
    /// A `UINT16` value.
    case uint16(UInt16)
    /// A `INT16` value.
    case int16(Int16)
    /// A `UINT32` value.
    case uint32(UInt32)
    /// A `INT32` value.
    case int32(Int32)
    /// A `FLOAT32` value.
    case float32(Float)
    /// A `BOOL` value.
    case bool(Bool)
    /// A `STRING` value.
    case string(String)
    /// An array: the element type and the elements (all of that type; never `.array`).
    indirect case array(GGUFValueType, [GGUFValue])
    /// A `UINT64` value.
    case uint64(UInt64)
    /// A `INT64` value.
    case int64(Int64)
    /// A `FLOAT64` value.
    case float64(Double)

    /// The value's type id.
    public var type: GGUFValueType {
        switch self {
        case .uint8: .uint8
        case .int8: .int8
        case .uint16: .uint16
        case .int16: .int16
        case .uint32: .uint32
        case .int32: .int32
        case .float32: .float32
        case .bool: .bool
        case .string: .string
        case .array: .array
        case .uint64: .uint64
        case .int64: .int64
        case .float64: .float64
        }
    }

    /// The string, if this is a `.string`.
    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// The value of any integer type as `Int64`, if it is an integer that fits.
    public var integerValue: Int64? {
        switch self {
        case .uint8(let v): Int64(v)
        case .int8(let v): Int64(v)
        case .uint16(let v): Int64(v)
        case .int16(let v): Int64(v)
        case .uint32(let v): Int64(v)
        case .int32(let v): Int64(v)
        case .uint64(let v): Int64(exactly: v)
        case .int64(let v): v
        default: nil
        }
    }

    /// The elements, if this is an array.
    public var arrayElements: [GGUFValue]? {
        if case .array(_, let elements) = self { return elements }
        return nil
    }

    /// An array of UINT64 values (used for shapes).
    public static func uint64Array(_ values: [UInt64]) -> GGUFValue { .array(.uint64, values.map { .uint64($0) }) }

    /// An array of FLOAT32 values.
    public static func float32Array(_ values: [Float]) -> GGUFValue { .array(.float32, values.map { .float32($0) }) }

    /// An array of STRING values.
    public static func stringArray(_ values: [String]) -> GGUFValue { .array(.string, values.map { .string($0) }) }
}

extension GGUFValue: CustomStringConvertible {
    /// The value as gguf-dump shows it: strings quoted and cut at 60 characters, arrays with their first 6 elements.
    public var description: String {
        switch self {
        case .uint8(let v): "\(v)"
        case .int8(let v): "\(v)"
        case .uint16(let v): "\(v)"
        case .int16(let v): "\(v)"
        case .uint32(let v): "\(v)"
        case .int32(let v): "\(v)"
        case .float32(let v): "\(v)"
        case .bool(let v): "\(v)"
        case .string(let v): v.count > 60 ? "'\(v.prefix(60))'..." : "'\(v)'"
        case .uint64(let v): "\(v)"
        case .int64(let v): "\(v)"
        case .float64(let v): "\(v)"
        case .array(_, let elements):
            "[" + elements.prefix(6).map(\.description).joined(separator: ", ")
                + (elements.count > 6 ? ", ...]" : "]")
        }
    }
}

/// One metadata key/value record in file order.
public struct GGUFMetadataEntry: Hashable, Sendable {
    /// The key (`general.architecture`).
    public var key: String
    /// The typed value.
    public var value: GGUFValue
    /// Byte offset of the record (its key length) in the file; `nil` for entries not read from a file.
    public var recordOffset: Int64?

    /// Creates an entry.
    public init(key: String, value: GGUFValue, recordOffset: Int64? = nil) {
        self.key = key
        self.value = value
        self.recordOffset = recordOffset
    }
}
