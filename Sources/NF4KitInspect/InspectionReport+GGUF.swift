public import NF4KitCore
public import NF4KitFormats

extension InspectionReport {
    /// What a GGUF file holds beyond its tensors' values: header, metadata and the ggml storage type of each tensor.
    ///
    /// The shared tensor model sees quantized ggml tensors dequantized to F32; this section reports how they are
    /// actually stored.
    public struct GGUFSection: Sendable, Hashable {
        /// One metadata record, in file order.
        public struct MetadataRow: Sendable, Hashable {
            public var key: String
            /// The GGUF value type (`u32`, `string`, `array[string]`, ...).
            public var type: String
            /// The value as gguf-dump shows it (long strings cut, arrays with their first 6 elements).
            public var display: String
            public var value: GGUFValue
        }
        /// One tensor as stored.
        public struct TensorRow: Sendable, Hashable {
            public var name: String
            public var ggmlType: String
            /// ggml dimensions, fastest-varying first (`ne`).
            public var dimensions: [Int]
            public var byteCount: Int
            public var fileOffset: Int64
        }
        public var version: Int
        public var alignment: Int
        public var metadata: [MetadataRow]
        public var tensors: [TensorRow]
        /// Stored bytes of one ggml type.
        public struct TypeTotal: Sendable, Hashable {
            public var type: String
            public var tensorCount: Int
            public var byteCount: Int
        }
        /// Stored bytes per ggml type, in type-name order.
        public var bytesByType: [TypeTotal]

        /// The section of an already parsed GGUF file (``ModelSource/gguf``; tensor data is not touched).
        public init(file: GGUFFile) {
            version = Int(file.version)
            alignment = file.alignment
            metadata = file.metadata.map { entry in
                let type: String
                if case .array(let elementType, _) = entry.value { type = "array[\(elementType)]" } else { type = "\(entry.value.type)" }
                return MetadataRow(key: entry.key, type: type, display: entry.value.description, value: entry.value)
            }
            tensors = file.tensors.map {
                TensorRow(name: $0.name, ggmlType: $0.type.name, dimensions: $0.dimensions, byteCount: $0.byteCount, fileOffset: $0.fileOffset)
            }
            var byType: [String: (Int, Int)] = [:]
            for tensor in tensors {
                let current = byType[tensor.ggmlType] ?? (0, 0)
                byType[tensor.ggmlType] = (current.0 + 1, current.1 + tensor.byteCount)
            }
            bytesByType = byType.keys.sorted().map { TypeTotal(type: $0, tensorCount: byType[$0]!.0, byteCount: byType[$0]!.1) }
        }

        /// The section as JSON (raw values; metadata values keep their GGUF types as JSON numbers, strings, arrays).
        public var jsonValue: JSONValue {
            .object(JSONObject([
                ("alignment", .integer(alignment)),
                ("bytesByType", .array(bytesByType.map { .object(JSONObject([("byteCount", .integer($0.byteCount)), ("tensorCount", .integer($0.tensorCount)), ("type", .string($0.type))])) })),
                ("metadata", .array(metadata.map { .object(JSONObject([("key", .string($0.key)), ("type", .string($0.type)), ("value", Self.json($0.value))])) })),
                ("tensors", .array(tensors.map { .object(JSONObject([("byteCount", .integer($0.byteCount)), ("dimensions", .array($0.dimensions.map { .integer($0) })), ("fileOffset", .integer($0.fileOffset)), ("name", .string($0.name)), ("type", .string($0.ggmlType))])) })),
                ("version", .integer(version)),
            ]))
        }

        private static func json(_ value: GGUFValue) -> JSONValue {
            switch value {
            case .uint8(let v): .integer(v)
            case .int8(let v): .integer(v)
            case .uint16(let v): .integer(v)
            case .int16(let v): .integer(v)
            case .uint32(let v): .integer(v)
            case .int32(let v): .integer(v)
            case .uint64(let v): .integer(v)
            case .int64(let v): .integer(v)
            case .float32(let v): v.isFinite ? .double(Double(v)) : .string("\(v)")
            case .float64(let v): v.isFinite ? .double(v) : .string("\(v)")
            case .bool(let v): .bool(v)
            case .string(let v): .string(v)
            case .array(_, let elements): .array(elements.map(json))
            }
        }
    }
}
