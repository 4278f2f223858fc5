public import NF4KitCore

/// What a GGUF tensor-info record says about one tensor, validated against the file.
public struct GGUFTensorInfo: Hashable, Sendable {
    /// The tensor name (1–63 bytes of UTF-8).
    public var name: String
    /// The ggml type.
    public var type: GGMLType
    /// The ggml dimensions, fastest-moving first (`ne[0]` first). Empty for a scalar (`n_dims = 0`).
    public var dimensions: [Int]
    /// The data offset as stored: relative to the start of the data section, a multiple of the alignment.
    public var relativeOffset: Int64
    /// The absolute byte offset of the data in the file.
    public var fileOffset: Int64
    /// Bytes of tensor data (without the padding that follows it). For a type the reader does not know
    /// (`type.isKnown` false), the bytes up to the next tensor's data or the end of the file, padding included.
    public var byteCount: Int
    /// Number of elements (product of the dimensions).
    public var elementCount: Int
    /// Byte offset of the tensor-info record (its name length) in the file.
    public var recordOffset: Int64

    /// Creates a tensor info.
    public init(
        name: String, type: GGMLType, dimensions: [Int], relativeOffset: Int64, fileOffset: Int64, byteCount: Int,
        elementCount: Int, recordOffset: Int64
    ) {
        self.name = name
        self.type = type
        self.dimensions = dimensions
        self.relativeOffset = relativeOffset
        self.fileOffset = fileOffset
        self.byteCount = byteCount
        self.elementCount = elementCount
        self.recordOffset = recordOffset
    }

    /// The PyTorch (row-major, outermost first) shape: the ggml dimensions reversed. The bytes are the same.
    public var shape: Shape { Shape(dimensions.reversed()) }

    /// Byte offset of the record's type field (after the name, `n_dims` and the dimensions).
    public var typeFieldOffset: Int64 {
        recordOffset + 8 + Int64(name.utf8.count) + 4 + 8 * Int64(dimensions.count)
    }
}

/// A parsed GGUF file (versions 2 and 3, little-endian), memory-mapped; tensor data is handed out as views.
///
/// Parsing validates everything spec gguf.md §4.2 lists before anything is allocated from a file value: counts
/// against the remaining bytes, string and array lengths, nested arrays, value type ids, duplicate keys
/// and names, `general.alignment` (UINT32, power of two), dimension counts and products, block multiples, and
/// tensor offsets (aligned, in record order, not overlapping, inside the file). A missing padding after the last
/// tensor is accepted on read. A tensor type id this build does not know is kept (``GGMLType/init(unknownID:)``), so
/// the header can be listed; decoding that tensor is refused. Every failure is a ``CheckpointError`` naming the file, the byte offset of the field
/// at fault and, where there is one, the tensor.
public struct GGUFFile: Sendable {
    /// The bytes 'GGUF' at offset 0.
    public static let magic: [UInt8] = [0x47, 0x47, 0x55, 0x46]
    /// Default alignment when `general.alignment` is absent (spec §1.6).
    public static let defaultAlignment = 32
    /// Longest key, in bytes (GGUF spec key rule: at most 65535 bytes).
    public static let maxKeyByteCount = 65535
    /// Longest string value, in bytes (ggml's 2026 reader: 1 GiB; also never more than the remaining file).
    public static let maxStringByteCount = 1 << 30
    /// Most elements in one metadata array: 2^24, ours. ggml's 2026 reader allows 2^30, but every element here
    /// becomes a ``GGUFValue`` (24 bytes), so the lower cap bounds memory at about 400 MB; real tokenizer arrays
    /// (vocabularies, merges) stay below 2^19.
    public static let maxArrayCount = 1 << 24
    /// Longest tensor name, in bytes (ggml `GGML_MAX_NAME` = 64 including the terminating NUL).
    public static let maxTensorNameByteCount = 63
    /// Most dimensions per tensor (ggml `GGML_MAX_DIMS`).
    public static let maxDimensionCount = 4
    /// Smallest key/value record: 8-byte key length + 4-byte type (spec §4.2 item 2).
    static let minimumKeyValueRecordBytes = 12
    /// Smallest tensor-info record: 8-byte name length + 4-byte n_dims + 4-byte type + 8-byte offset.
    static let minimumTensorInfoRecordBytes = 24

    /// The file path (as given).
    public let path: String
    /// The format version (2 or 3).
    public let version: UInt32
    /// Metadata records in file order.
    public let metadata: [GGUFMetadataEntry]
    /// Tensor infos in record order (which is also data order).
    public let tensors: [GGUFTensorInfo]
    /// The alignment of the data section and of each tensor's data.
    public let alignment: Int
    /// Absolute offset of the data section.
    public let dataStart: Int64
    /// The mapped file.
    public let region: MappedRegion
    private let keyIndex: [String: Int]

    /// Maps and parses the file at `path`.
    ///
    /// - Throws: ``CheckpointError``: `.notFound`/`.io` when the file cannot be mapped, or a data error (see the type).
    public static func read(path: String) throws(CheckpointError) -> GGUFFile {
        try GGUFFile(region: MappedRegion(mapping: path), path: path)
    }

    /// Parses a GGUF file already mapped (or held) in `region`.
    ///
    /// - Parameters:
    ///   - region: The whole file.
    ///   - path: The name used in errors and descriptors (defaults to the region's path).
    /// - Throws: ``CheckpointError`` naming the byte offset of the first field that is wrong.
    /// - Complexity: O(header size); tensor data is not touched.
    public init(region: MappedRegion, path: String? = nil) throws(CheckpointError) {
        let path = path ?? region.path
        self.path = path
        self.region = region
        let parsed = try region.withUnsafeBytes { (raw) throws(CheckpointError) -> Parsed in
            var parser = Parser(reader: ByteReader(raw, file: path))
            return try parser.parse()
        }
        version = parsed.version
        metadata = parsed.metadata
        tensors = parsed.tensors
        alignment = parsed.alignment
        dataStart = parsed.dataStart
        keyIndex = parsed.keyIndex
    }

    /// The value of metadata key `key`, or `nil`.
    public subscript(key: String) -> GGUFValue? {
        keyIndex[key].map { metadata[$0].value }
    }

    /// The tensor named `name`, or `nil`.
    /// - Complexity: O(n).
    public func tensor(named name: String) -> GGUFTensorInfo? { tensors.first { $0.name == name } }

    /// A view of the tensor's data bytes (little-endian, `ne[0]` contiguous; blocks for quantized types).
    public func bytes(of tensor: GGUFTensorInfo) -> TensorBytes {
        let start = Int(tensor.fileOffset)
        return TensorBytes(region: region, range: start..<(start + tensor.byteCount))
    }

    /// The tensors as a shared ``Checkpoint`` (format `.gguf`) with PyTorch dimension order and the same bytes.
    ///
    /// Only plain types (F32, F16, BF16, F64, I8, I16, I32, I64) map to a ``DType``; the `GGUFBridge` of module
    /// NF4Kit dequantizes block types and decodes the NF4 companion layout. `metadata` holds every scalar key as
    /// text (strings as they are, numbers in Swift's shortest form, booleans as `true`/`false`); arrays are left out.
    ///
    /// - Parameter skippingBlockTypes: Leave out tensors of ggml block types instead of failing on them.
    /// - Throws: ``CheckpointError`` `.unsupportedDType` naming the first tensor whose ggml type has no ``DType``.
    public func checkpoint(skippingBlockTypes: Bool = false) throws(CheckpointError) -> Checkpoint {
        var result: [Tensor] = []
        result.reserveCapacity(tensors.count)
        for info in tensors {
            guard let dtype = info.type.dtype else {
                if skippingBlockTypes { continue }
                throw CheckpointError(
                    .unsupportedDType,
                    "tensor '\(info.name)' has ggml type \(info.type.name), which has no plain element type; "
                        + "dequantize it through GGUFBridge",
                    file: path, byteOffset: info.recordOffset, tensor: info.name)
            }
            result.append(Tensor(descriptor: descriptor(of: info, dtype: dtype), bytes: bytes(of: info)))
        }
        return Checkpoint(format: .gguf, files: [path], tensors: result, metadata: textMetadata)
    }

    /// A descriptor for `info` with element type `dtype` and PyTorch shape.
    public func descriptor(of info: GGUFTensorInfo, dtype: DType) -> TensorDescriptor {
        TensorDescriptor(
            name: info.name, dtype: dtype, shape: info.shape, file: path, fileOffset: info.fileOffset,
            byteCount: info.byteCount)
    }

    /// Every scalar metadata value as text, keyed by metadata key.
    public var textMetadata: [String: String] {
        var text: [String: String] = [:]
        for entry in metadata {
            switch entry.value {
            case .array: continue
            case .string(let value): text[entry.key] = value
            default: text[entry.key] = entry.value.description
            }
        }
        return text
    }
}

private struct Parsed {
    var version: UInt32 = 0
    var metadata: [GGUFMetadataEntry] = []
    var keyIndex: [String: Int] = [:]
    var tensors: [GGUFTensorInfo] = []
    var alignment = GGUFFile.defaultAlignment
    var dataStart: Int64 = 0
}

private struct Parser {
    var reader: ByteReader
    /// What the parsed header may make us allocate: the file's ``AllocationBudget`` (a one-byte UINT8 element
    /// becomes a 24-byte value).
    var budget: AllocationBudget

    init(reader: ByteReader) {
        self.reader = reader
        budget = AllocationBudget(file: reader.file, fileByteCount: reader.remaining)
    }

    /// Charges `bytes` of memory for metadata parsed at `offset`, refusing the file once the budget is spent.
    private mutating func charge(_ bytes: Int, key: String, at offset: Int64) throws(CheckpointError) {
        try budget.charge(bytes, for: "the metadata value of '\(key)'", at: offset)
    }

    private func fail(
        _ code: CheckpointError.Code, _ message: String, at offset: Int64, tensor: String? = nil
    ) -> CheckpointError {
        CheckpointError(code, message, file: reader.file, byteOffset: offset, tensor: tensor)
    }

    mutating func parse() throws(CheckpointError) -> Parsed {
        var parsed = Parsed()
        try reader.require(4, for: "the GGUF magic")
        let magic = try reader.readBytes(4, "the GGUF magic")
        guard magic.elementsEqual(GGUFFile.magic) else {
            throw fail(
                .malformedHeader,
                "not a GGUF file: the first bytes are \(hex(magic)), expected 47 47 55 46 ('GGUF')", at: 0)
        }
        let version = try reader.read(UInt32.self, "the GGUF version")
        if version != 0, version & 0xFFFF == 0 {
            throw fail(
                .unsupported,
                "this is a big-endian GGUF file (version bytes \(hex(version))); only little-endian files are read",
                at: 4)
        }
        guard version == 2 || version == 3 else {
            let reason = version == 1 ? "GGUF v1 is no longer supported" : "unknown GGUF version \(version)"
            throw fail(.unsupported, "\(reason); versions 2 and 3 are read", at: 4)
        }
        parsed.version = version
        let tensorCount = try readCount("tensor_count")
        let keyValueCount = try readCount("metadata_kv_count")
        let (kvBytes, o1) = keyValueCount.multipliedReportingOverflow(by: GGUFFile.minimumKeyValueRecordBytes)
        let (tensorBytes, o2) = tensorCount.multipliedReportingOverflow(by: GGUFFile.minimumTensorInfoRecordBytes)
        let (needed, o3) = kvBytes.addingReportingOverflow(tensorBytes)
        guard !o1, !o2, !o3, needed <= reader.remaining else {
            throw fail(
                .truncated,
                "the header declares \(tensorCount) tensors and \(keyValueCount) metadata records, which need at "
                    + "least \(o1 || o2 || o3 ? "more than \(Int.max)" : "\(needed)") bytes, but only "
                    + "\(reader.remaining) bytes follow",
                at: 8)
        }

        for _ in 0..<keyValueCount {
            let recordOffset = reader.fileOffset
            let key = try readString(what: "metadata key", limit: GGUFFile.maxKeyByteCount)
            guard !key.isEmpty else { throw fail(.malformedHeader, "a metadata key is empty", at: recordOffset) }
            guard parsed.keyIndex[key] == nil else {
                throw fail(.malformedHeader, "metadata key '\(key)' appears twice", at: recordOffset)
            }
            let value = try readValue(of: readType(key: key), key: key)
            if key == "general.alignment" {
                guard case .uint32(let alignment) = value else {
                    throw fail(
                        .malformedHeader, "general.alignment must be UINT32, found \(value.type)", at: recordOffset)
                }
                guard alignment != 0, alignment & (alignment - 1) == 0 else {
                    throw fail(
                        .malformedHeader, "general.alignment is \(alignment), which is not a power of two",
                        at: recordOffset)
                }
                parsed.alignment = Int(alignment)
            }
            // The record and its key, twice while the array grows, plus the key index.
            let keyBytes = AllocationBudget.stringByteCount(utf8Count: key.utf8.count)
            try budget.charge(
                2 * (MemoryLayout<GGUFMetadataEntry>.stride + keyBytes), for: "the metadata record '\(key)'",
                at: recordOffset)
            parsed.keyIndex[key] = parsed.metadata.count
            parsed.metadata.append(GGUFMetadataEntry(key: key, value: value, recordOffset: recordOffset))
        }

        var names = Set<String>()
        var offsetFields: [Int64] = []
        for _ in 0..<tensorCount {
            let recordOffset = reader.fileOffset
            let name = try readString(what: "tensor name", limit: Int.max)
            guard !name.isEmpty else { throw fail(.malformedHeader, "a tensor name is empty", at: recordOffset) }
            guard name.utf8.count <= GGUFFile.maxTensorNameByteCount else {
                throw fail(
                    .limitExceeded,
                    "tensor name '\(name)' is \(name.utf8.count) bytes; ggml allows at most "
                        + "\(GGUFFile.maxTensorNameByteCount)",
                    at: recordOffset, tensor: name)
            }
            guard names.insert(name).inserted else {
                throw fail(.malformedHeader, "tensor name '\(name)' appears twice", at: recordOffset, tensor: name)
            }
            let dimsOffset = reader.fileOffset
            let dimensionCount = try reader.read(UInt32.self, "n_dims of tensor '\(name)'")
            guard dimensionCount <= GGUFFile.maxDimensionCount else {
                throw fail(
                    .limitExceeded,
                    "tensor '\(name)' has \(dimensionCount) dimensions; at most \(GGUFFile.maxDimensionCount) allowed",
                    at: dimsOffset, tensor: name)
            }
            var dimensions: [Int] = []
            for index in 0..<Int(dimensionCount) {
                let fieldOffset = reader.fileOffset
                let raw = try reader.read(UInt64.self, "dimension \(index) of tensor '\(name)'")
                guard let dimension = Int(exactly: raw), raw <= UInt64(Int64.max) else {
                    throw fail(
                        .limitExceeded, "dimension \(index) of tensor '\(name)' is \(raw), larger than 2^63 - 1",
                        at: fieldOffset, tensor: name)
                }
                dimensions.append(dimension)
            }
            let typeID = try reader.read(UInt32.self, "type of tensor '\(name)'")
            // An unknown or removed id is kept (inspect lists it); decoding such a tensor fails (GGUFBridge).
            let type = GGMLType(unknownID: typeID)
            guard let elementCount = Shape(dimensions).checkedElementCount else {
                throw fail(
                    .limitExceeded,
                    "tensor '\(name)' dimensions \(dimensions) multiply to more than \(Int.max) elements",
                    at: dimsOffset, tensor: name)
            }
            guard (dimensions.first ?? 1) % type.blockSize == 0 else {
                throw fail(
                    .malformedHeader,
                    "tensor '\(name)' of type \(type.name) has ne[0] = \(dimensions.first ?? 1), not a multiple of "
                        + "its block size \(type.blockSize)",
                    at: dimsOffset, tensor: name)
            }
            // An unknown type's size is not known from its shape: 0 here, its extent in the layout below.
            guard let byteCount = type.isKnown ? type.byteCount(dimensions: dimensions) : 0 else {
                throw fail(
                    .limitExceeded,
                    "tensor '\(name)' dimensions \(dimensions) of type \(type.name) need more than \(Int.max) bytes",
                    at: dimsOffset, tensor: name)
            }
            let offsetField = reader.fileOffset
            let rawOffset = try reader.read(UInt64.self, "data offset of tensor '\(name)'")
            guard let relativeOffset = Int64(exactly: rawOffset) else {
                throw fail(
                    .truncated, "tensor '\(name)' has data offset \(rawOffset), past the end of the file",
                    at: offsetField, tensor: name)
            }
            guard relativeOffset % Int64(parsed.alignment) == 0 else {
                throw fail(
                    .malformedHeader,
                    "tensor '\(name)' has data offset \(relativeOffset), not a multiple of the alignment "
                        + "\(parsed.alignment)",
                    at: offsetField, tensor: name)
            }
            try budget.charge(
                MemoryLayout<GGUFTensorInfo>.stride + 2 * AllocationBudget.stringByteCount(utf8Count: name.utf8.count)
                    + AllocationBudget.arrayByteCount(count: dimensions.count, stride: 8) + 24,
                for: "the info of tensor '\(name)'", at: recordOffset)
            offsetFields.append(offsetField)
            parsed.tensors.append(
                GGUFTensorInfo(
                    name: name, type: type, dimensions: dimensions, relativeOffset: relativeOffset, fileOffset: 0,
                    byteCount: byteCount, elementCount: elementCount, recordOffset: recordOffset))
        }

        // Data section: align_up(end of the last record), then tensors in record order.
        let alignment = Int64(parsed.alignment)
        let headerEnd = reader.fileOffset
        let (padded, padOverflow) = headerEnd.addingReportingOverflow((alignment - headerEnd % alignment) % alignment)
        let fileSize = Int64(reader.bytes.count)
        guard !padOverflow else {
            throw fail(.limitExceeded, "the data section start overflows", at: headerEnd)
        }
        parsed.dataStart = padded
        if !parsed.tensors.isEmpty, padded > fileSize {
            throw fail(
                .truncated,
                "the data section starts at \(padded) (alignment \(alignment)) but the file has \(fileSize) bytes",
                at: headerEnd)
        }
        var previousEnd: Int64 = 0
        var previousName: String?
        for index in parsed.tensors.indices {
            let info = parsed.tensors[index]
            let field = offsetFields[index]
            guard info.relativeOffset >= previousEnd else {
                let what = previousName.map { "overlaps or precedes tensor '\($0)', which ends at \(previousEnd)" }
                throw fail(
                    .malformedHeader,
                    "tensor '\(info.name)' has data offset \(info.relativeOffset), which \(what ?? "")",
                    at: field, tensor: info.name)
            }
            let (start, o4) = padded.addingReportingOverflow(info.relativeOffset)
            let (end, o5) = start.addingReportingOverflow(Int64(info.byteCount))
            guard !o4, !o5, end <= fileSize else {
                throw fail(
                    .truncated,
                    "tensor '\(info.name)' data (\(info.byteCount) bytes at data offset \(info.relativeOffset), "
                        + "absolute \(o4 ? "overflow" : "\(start)")) ends past the end of the file (\(fileSize) bytes)",
                    at: field, tensor: info.name)
            }
            parsed.tensors[index].fileOffset = start
            if !info.type.isKnown {
                // The bytes up to the next tensor's data (or the end of the file), padding included.
                let next =
                    index + 1 < parsed.tensors.count ? parsed.tensors[index + 1].relativeOffset : fileSize - padded
                parsed.tensors[index].byteCount = Int(max(0, next - info.relativeOffset))
            }
            previousEnd = info.relativeOffset + Int64(info.byteCount)
            previousName = info.name
        }
        return parsed
    }

    private mutating func readCount(_ what: String) throws(CheckpointError) -> Int {
        let offset = reader.fileOffset
        let raw = try reader.read(UInt64.self, what)
        guard let count = Int(exactly: raw), raw <= UInt64(Int64.max) else {
            throw fail(.limitExceeded, "\(what) is \(raw), larger than 2^63 - 1", at: offset)
        }
        return count
    }

    private mutating func readString(what: String, limit: Int) throws(CheckpointError) -> String {
        let offset = reader.fileOffset
        let raw = try reader.read(UInt64.self, "the length of a \(what)")
        guard raw <= UInt64(reader.remaining) else {
            throw fail(
                .truncated,
                "a \(what) of \(raw) bytes runs past the end of the file (\(reader.remaining) bytes remain)",
                at: offset)
        }
        let length = Int(raw)
        guard length <= limit, length <= GGUFFile.maxStringByteCount else {
            throw fail(
                .limitExceeded,
                "a \(what) of \(length) bytes exceeds the limit of \(min(limit, GGUFFile.maxStringByteCount))",
                at: offset)
        }
        let bytes = try reader.readBytes(length, what)
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw fail(.malformedHeader, "a \(what) is not valid UTF-8", at: offset + 8)
        }
        return text
    }

    private mutating func readType(key: String) throws(CheckpointError) -> GGUFValueType {
        let offset = reader.fileOffset
        let raw = try reader.read(UInt32.self, "the value type of '\(key)'")
        guard let type = GGUFValueType(rawValue: raw) else {
            throw fail(.malformedHeader, "metadata key '\(key)' has unknown value type id \(raw)", at: offset)
        }
        return type
    }

    private mutating func readValue(of type: GGUFValueType, key: String) throws(CheckpointError) -> GGUFValue {
        let what = "the value of '\(key)'"
        switch type {
        case .uint8: return .uint8(try reader.read(UInt8.self, what))
        case .int8: return .int8(try reader.read(Int8.self, what))
        case .uint16: return .uint16(try reader.read(UInt16.self, what))
        case .int16: return .int16(try reader.read(Int16.self, what))
        case .uint32: return .uint32(try reader.read(UInt32.self, what))
        case .int32: return .int32(try reader.read(Int32.self, what))
        case .float32: return .float32(try reader.readFloat(what))
        // Any non-zero byte is true, as both reference readers do (writers emit 0 or 1).
        case .bool: return .bool(try reader.read(UInt8.self, what) != 0)
        case .string:
            let offset = reader.fileOffset
            let text = try readString(what: "string value of '\(key)'", limit: Int.max)
            // Strings longer than 15 bytes are on the heap.
            if text.utf8.count > 15 { try charge(text.utf8.count + 32, key: key, at: offset) }
            return .string(text)
        case .uint64: return .uint64(try reader.read(UInt64.self, what))
        case .int64: return .int64(try reader.read(Int64.self, what))
        case .float64: return .float64(try reader.readDouble(what))
        case .array:
            let typeOffset = reader.fileOffset
            let elementType = try readType(key: key)
            guard elementType != .array else {
                throw fail(
                    .malformedHeader, "metadata key '\(key)' holds a nested array, which ggml rejects",
                    at: typeOffset)
            }
            let countOffset = reader.fileOffset
            let raw = try reader.read(UInt64.self, "the element count of '\(key)'")
            let minimum = UInt64(elementType.minimumByteCount)
            guard raw <= UInt64(reader.remaining) / minimum else {
                throw fail(
                    .truncated,
                    "array '\(key)' declares \(raw) \(elementType) elements, more than the \(reader.remaining) "
                        + "remaining bytes can hold",
                    at: countOffset)
            }
            guard raw <= UInt64(GGUFFile.maxArrayCount) else {
                throw fail(
                    .limitExceeded, "array '\(key)' has \(raw) elements; at most \(GGUFFile.maxArrayCount) allowed",
                    at: countOffset)
            }
            try charge(Int(raw) * MemoryLayout<GGUFValue>.stride, key: key, at: countOffset)
            var elements: [GGUFValue] = []
            elements.reserveCapacity(Int(raw))
            for _ in 0..<Int(raw) { elements.append(try readValue(of: elementType, key: key)) }
            return .array(elementType, elements)
        }
    }
}

private func hex(_ bytes: UnsafeRawBufferPointer) -> String {
    bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }
        .joined(separator: " ")
}

private func hex(_ value: UInt32) -> String {
    withUnsafeBytes(of: value.littleEndian) { hex($0) }
}
