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
            /// Elements (weights) stored in this type.
            public var elementCount: Int
            /// Whether nf4kit knows the type id (an unknown id is listed, never decoded).
            public var isKnown: Bool
            /// Bits per weight of the type itself (`8 * typeSize / blockSize`: 4.5 for Q4_K, 6.5625 for Q6_K), `nil`
            /// for an unknown type.
            public var bitsPerWeight: Double?
        }
        /// Stored bytes per ggml type, in type-name order.
        public var bytesByType: [TypeTotal]
        /// `general.architecture` (`llama`), if present.
        public var architecture: String?
        /// The model's hyperparameters from the `<architecture>.*` keys, in a fixed order (`block_count`,
        /// `embedding_length`, `feed_forward_length`, `attention.head_count`, `attention.head_count_kv`,
        /// `context_length`, `vocab_size`): those present as integers.
        public var hyperparameters: [Hyperparameter]
        /// One `<architecture>.*` count.
        public struct Hyperparameter: Sendable, Hashable {
            public var key: String
            public var value: Int
        }
        /// The parameter count a Llama model with these hyperparameters has (tied embeddings when the file has no
        /// `output.weight`), `nil` for other architectures or missing keys. Compare with the stored shapes' count.
        public var parameterCountFromHyperparameters: Int?

        /// The section of an already parsed GGUF file (``ModelSource/gguf``; tensor data is not touched).
        public init(file: GGUFFile) {
            version = Int(file.version)
            alignment = file.alignment
            metadata = file.metadata.map { entry in
                let type: String
                if case .array(let elementType, _) = entry.value {
                    type = "array[\(elementType)]"
                } else {
                    type = "\(entry.value.type)"
                }
                return MetadataRow(key: entry.key, type: type, display: entry.value.description, value: entry.value)
            }
            tensors = file.tensors.map {
                TensorRow(
                    name: $0.name, ggmlType: $0.type.name, dimensions: $0.dimensions, byteCount: $0.byteCount,
                    fileOffset: $0.fileOffset)
            }
            var byType: [String: TypeTotal] = [:]
            for info in file.tensors {
                let type = info.type
                var total =
                    byType[type.name]
                    ?? TypeTotal(
                        type: type.name, tensorCount: 0, byteCount: 0, elementCount: 0, isKnown: type.isKnown,
                        bitsPerWeight: type.isKnown ? Double(8 * type.typeSize) / Double(type.blockSize) : nil)
                total.tensorCount += 1
                total.byteCount += info.byteCount
                total.elementCount += info.elementCount
                byType[type.name] = total
            }
            bytesByType = byType.keys.sorted().map { byType[$0]! }

            if case .string(let name)? = file["general.architecture"] { architecture = name }
            hyperparameters = []
            var counts: [String: Int] = [:]
            if let architecture {
                for key in [
                    "block_count", "embedding_length", "feed_forward_length", "attention.head_count",
                    "attention.head_count_kv", "context_length", "vocab_size",
                ] {
                    guard let value = file["\(architecture).\(key)"].flatMap(Self.integer) else { continue }
                    hyperparameters.append(Hyperparameter(key: key, value: value))
                    counts[key] = value
                }
            }
            if architecture == "llama", let layers = counts["block_count"], let hidden = counts["embedding_length"],
                let ffn = counts["feed_forward_length"], let heads = counts["attention.head_count"], heads > 0,
                let vocab = counts["vocab_size"]
                    ?? file.tensors.first(where: { $0.name == "token_embd.weight" })?.dimensions.last
            {
                let kvHeads = counts["attention.head_count_kv"] ?? heads
                let headDim = file["llama.attention.key_length"].flatMap(Self.integer) ?? hidden / heads
                let tied = !file.tensors.contains { $0.name == "output.weight" }
                let (perLayer, o1) =
                    (hidden * headDim * heads * 2 + hidden * headDim * kvHeads * 2 + 3 * hidden * ffn
                    + 2 * hidden).multipliedReportingOverflow(by: 1)
                let (blocks, o2) = perLayer.multipliedReportingOverflow(by: layers)
                let (embeddings, o3) = (vocab * hidden).multipliedReportingOverflow(by: tied ? 1 : 2)
                if !o1 && !o2 && !o3, layers < 1 << 20, hidden < 1 << 24, ffn < 1 << 24, heads < 1 << 16,
                    kvHeads < 1 << 16, headDim < 1 << 16, vocab < 1 << 24
                {
                    parameterCountFromHyperparameters = blocks + embeddings + hidden
                }
            }
        }

        private static func integer(_ value: GGUFValue) -> Int? {
            switch value {
            case .uint8(let v): Int(v)
            case .int8(let v): Int(v)
            case .uint16(let v): Int(v)
            case .int16(let v): Int(v)
            case .uint32(let v): Int(v)
            case .int32(let v): Int(v)
            case .uint64(let v): v <= UInt64(Int.max) ? Int(v) : nil
            case .int64(let v): Int(v)
            default: nil
            }
        }

        /// Bits per weight of the whole file's tensor data (`8 * bytes / elements` over every tensor of a known type).
        public var bitsPerWeight: Double? {
            let known = bytesByType.filter(\.isKnown)
            let elements = known.reduce(0) { $0 + $1.elementCount }
            return elements == 0 ? nil : 8 * Double(known.reduce(0) { $0 + $1.byteCount }) / Double(elements)
        }

        /// The section as JSON (raw values; metadata values keep their GGUF types as JSON numbers, strings, arrays).
        public var jsonValue: JSONValue {
            .object(
                JSONObject([
                    ("alignment", .integer(alignment)),
                    ("architecture", architecture.map(JSONValue.string) ?? .null),
                    (
                        "hyperparameters",
                        .object(JSONObject(hyperparameters.map { ($0.key, JSONValue.integer($0.value)) }))
                    ),
                    (
                        "parameterCountFromHyperparameters",
                        parameterCountFromHyperparameters.map(JSONValue.integer) ?? .null
                    ),
                    ("bitsPerWeight", bitsPerWeight.map(JSONValue.double) ?? .null),
                    (
                        "bytesByType",
                        .array(
                            bytesByType.map {
                                .object(
                                    JSONObject([
                                        ("bitsPerWeight", $0.bitsPerWeight.map(JSONValue.double) ?? .null),
                                        ("byteCount", .integer($0.byteCount)),
                                        ("elementCount", .integer($0.elementCount)), ("known", .bool($0.isKnown)),
                                        ("tensorCount", .integer($0.tensorCount)), ("type", .string($0.type)),
                                    ]))
                            })
                    ),
                    (
                        "metadata",
                        .array(
                            metadata.map {
                                .object(
                                    JSONObject([
                                        ("key", .string($0.key)), ("type", .string($0.type)),
                                        ("value", Self.json($0.value)),
                                    ]))
                            })
                    ),
                    (
                        "tensors",
                        .array(
                            tensors.map {
                                .object(
                                    JSONObject([
                                        ("byteCount", .integer($0.byteCount)),
                                        ("dimensions", .array($0.dimensions.map { .integer($0) })),
                                        ("fileOffset", .integer($0.fileOffset)), ("name", .string($0.name)),
                                        ("type", .string($0.ggmlType)),
                                    ]))
                            })
                    ),
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
