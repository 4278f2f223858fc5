public import NF4KitCore

/// The `quant_state.bitsandbytes__nf4|fp4` blob: the per-weight metadata bitsandbytes stores as JSON bytes.
///
/// Written exactly as Python's `json.dumps` writes bitsandbytes' dict (spec 6.2): keys in the order
/// `quant_type`, `blocksize`, `dtype`, `shape` and, with double quantization, `nested_blocksize`,
/// `nested_dtype`, `nested_offset`; `", "` and `": "` separators; the offset printed like `repr(float)`.
public struct BnbQuantState: Sendable, Hashable {
    /// NF4 or FP4.
    public var quantType: QuantType
    /// First-level block size.
    public var blocksize: Int
    /// The weight's dtype before quantization (`"bfloat16"`, `"float16"`, `"float32"`).
    public var dtype: DType
    /// The logical shape.
    public var shape: Shape
    /// Double-quantization fields, or `nil` without double quantization.
    public var nested: Nested?

    /// The double-quantization fields of the blob.
    public struct Nested: Sendable, Hashable {
        /// Codes per nested block (256).
        public var blocksize: Int
        /// The offset added back after scaling (`nested_offset`).
        public var offset: Float

        /// Creates the nested fields.
        public init(blocksize: Int = 256, offset: Float) {
            self.blocksize = blocksize
            self.offset = offset
        }
    }

    /// Creates a quant state from its fields.
    public init(quantType: QuantType, blocksize: Int, dtype: DType, shape: Shape, nested: Nested?) {
        self.quantType = quantType
        self.blocksize = blocksize
        self.dtype = dtype
        self.shape = shape
        self.nested = nested
    }

    /// The quant state that describes `tensor`.
    public init(_ tensor: QuantizedTensor) {
        var nested: Nested? = nil
        if case .double(let dq) = tensor.statistics {
            nested = Nested(blocksize: dq.nestedBlocksize, offset: dq.offset)
        }
        self.init(
            quantType: tensor.quantType, blocksize: tensor.blocksize, dtype: tensor.dtype, shape: tensor.shape,
            nested: nested)
    }

    /// The blob's tensor-name suffix: `quant_state.bitsandbytes__nf4` or `__fp4`.
    public var keySuffix: String { "quant_state.bitsandbytes__" + quantType.rawValue }

    /// The exact bytes bitsandbytes writes (ASCII, no trailing newline).
    public var jsonBytes: [UInt8] { Array(jsonText.utf8) }

    /// The JSON text, e.g. `{"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [2, 64]}`.
    public var jsonText: String {
        let dims = shape.dimensions.map(String.init).joined(separator: ", ")
        var text = "{\"quant_type\": \"\(quantType.rawValue)\", \"blocksize\": \(blocksize), "
        text += "\"dtype\": \"\(dtype.torchName ?? dtype.rawValue)\", \"shape\": [\(dims)]"
        if let nested {
            text += ", \"nested_blocksize\": \(nested.blocksize), \"nested_dtype\": \"float32\", "
            text += "\"nested_offset\": \(PythonFloat.repr(Double(nested.offset)))"
        }
        return text + "}"
    }

    /// Largest quant-state blob accepted. Real blobs are 76-172 bytes (spec 6.2); the limit keeps a crafted file from
    /// making us parse megabytes per weight.
    public static let maxJSONBytes = 65_536

    /// Parses a blob with the strict JSON parser of Core.
    ///
    /// Accepts the keys in any order and ignores unknown keys; requires `quant_type`, `blocksize` (one of
    /// ``BlockQuantizer/supportedBlocksizes``), `dtype`, `shape` (whose element count must fit in `Int`), and either
    /// all or none of the nested keys (`nested_dtype` must be `"float32"`, `nested_blocksize` one of the supported
    /// block sizes, `nested_offset` a number that is finite as a float32). Every size derived from an accepted state
    /// (``storedTensors``) is then free of overflow.
    /// - Parameters:
    ///   - tensor: the blob tensor's name, used in errors.
    ///   - file: the file holding the blob, and `baseOffset` where the blob starts in it, so that a JSON syntax error
    ///     names the byte where it starts.
    /// - Throws: ``CheckpointError`` `.malformedHeader` naming the tensor and the problem, `.limitExceeded` for a blob
    ///   over ``maxJSONBytes``.
    public init(
        parsing bytes: [UInt8], tensor: String? = nil, file: String? = nil, baseOffset: Int64? = nil
    )
        throws(CheckpointError)
    {
        func fail(_ message: String, _ code: CheckpointError.Code = .malformedHeader) -> CheckpointError {
            CheckpointError(
                code, "quant state \(tensor.map { "'\($0)' " } ?? "")\(message)", file: file, byteOffset: baseOffset,
                tensor: tensor)
        }
        guard bytes.count <= Self.maxJSONBytes else {
            throw fail("is \(bytes.count) bytes; at most \(Self.maxJSONBytes) are accepted", .limitExceeded)
        }
        let parsed: Result<JSONValue, CheckpointError> = bytes.withUnsafeBytes { raw in
            do throws(CheckpointError) {
                return .success(
                    try StrictJSON.parse(
                        raw, file: file, baseOffset: baseOffset ?? 0,
                        what: "quant state" + (tensor.map { " '\($0)'" } ?? "")))
            } catch {
                return .failure(error)
            }
        }
        let value: JSONValue
        switch parsed {
        case .success(let v): value = v
        case .failure(var error):
            error.tensor = tensor
            if baseOffset == nil { error.byteOffset = nil }
            throw error
        }
        guard let object = value.objectValue else { throw fail("is not a JSON object") }
        guard let typeName = object["quant_type"]?.stringValue, let type = QuantType(rawValue: typeName) else {
            throw fail("has no \"quant_type\" of \"nf4\" or \"fp4\"")
        }
        guard let blocksize = object["blocksize"]?.intValue, BlockQuantizer.supportedBlocksizes.contains(blocksize)
        else {
            throw fail(
                "has no \"blocksize\" that bitsandbytes writes (\(BlockQuantizer.supportedBlocksizes.map(String.init).joined(separator: ", ")))"
            )
        }
        guard let dtypeName = object["dtype"]?.stringValue, let dtype = DType(torchName: dtypeName),
            dtype.isConvertibleFloat
        else {
            throw fail("has no \"dtype\" naming a float dtype (float16, bfloat16, float32)")
        }
        guard let dimValues = object["shape"]?.arrayValue else { throw fail("has no \"shape\" array of integers") }
        var dims: [Int] = []
        for d in dimValues {
            guard let dim = d.intValue, dim >= 0 else {
                throw fail("has a \"shape\" entry that is not a non-negative integer")
            }
            dims.append(dim)
        }
        guard Shape(dims).checkedElementCount != nil else {
            throw fail("declares shape \(Shape(dims)), whose element count overflows")
        }
        let nestedKeys = ["nested_blocksize", "nested_dtype", "nested_offset"].filter { object[$0] != nil }
        var nested: Nested? = nil
        if nestedKeys.count == 3 {
            guard let nb = object["nested_blocksize"]?.intValue, BlockQuantizer.supportedBlocksizes.contains(nb) else {
                throw fail(
                    "has a \"nested_blocksize\" that is not one of \(BlockQuantizer.supportedBlocksizes.map(String.init).joined(separator: ", "))"
                )
            }
            guard object["nested_dtype"]?.stringValue == "float32" else {
                throw fail("has a \"nested_dtype\" other than \"float32\"")
            }
            guard let offset = object["nested_offset"]?.doubleValue, Float(offset).isFinite else {
                throw fail("has a \"nested_offset\" that is not a finite float32 number")
            }
            nested = Nested(blocksize: nb, offset: Float(offset))
        } else if !nestedKeys.isEmpty {
            throw fail(
                "has \(nestedKeys.joined(separator: ", ")) but not all of nested_blocksize, nested_dtype, nested_offset"
            )
        }
        self.init(quantType: type, blocksize: blocksize, dtype: dtype, shape: Shape(dims), nested: nested)
    }

    /// One tensor a bitsandbytes weight is stored as.
    public struct StoredTensor: Sendable, Hashable {
        /// What follows the weight's name (`""` for the packed codes, `".absmax"`, ..., `".quant_state.bitsandbytes__nf4"`).
        public var suffix: String
        public var dtype: DType
        public var shape: Shape
        public var byteCount: Int
    }

    /// The tensors bitsandbytes + transformers store for a weight with this state, in state-dict order (spec 6.1):
    /// packed codes U8 `[(n+1)/2, 1]`, absmax (F32, or U8 codes with double quantization) `[blocks]`, quant_map F32
    /// `[16]`, with double quantization nested_absmax F32 `[ceil(blocks/nested)]` and nested_quant_map F32 `[256]`,
    /// and the quant-state blob U8 `[json bytes]`.
    ///
    /// The one place the output layout of a quantized weight is derived: writers plan with it, readers check a stored
    /// group against it.
    public var storedTensors: [StoredTensor] {
        precondition(blocksize > 0 && (nested?.blocksize ?? 1) > 0, "BnbQuantState: block sizes must be positive")
        let n = shape.checkedElementCount ?? 0
        let packed = n / 2 + n % 2
        let blocks = n / blocksize + (n % blocksize == 0 ? 0 : 1)
        var list = [StoredTensor(suffix: "", dtype: .u8, shape: [packed, 1], byteCount: packed)]
        if let nested {
            let nestedCount = blocks / nested.blocksize + (blocks % nested.blocksize == 0 ? 0 : 1)
            list.append(StoredTensor(suffix: ".absmax", dtype: .u8, shape: [blocks], byteCount: blocks))
            list.append(StoredTensor(suffix: ".quant_map", dtype: .f32, shape: [16], byteCount: 64))
            list.append(
                StoredTensor(suffix: ".nested_absmax", dtype: .f32, shape: [nestedCount], byteCount: nestedCount * 4))
            list.append(StoredTensor(suffix: ".nested_quant_map", dtype: .f32, shape: [256], byteCount: 1024))
        } else {
            list.append(StoredTensor(suffix: ".absmax", dtype: .f32, shape: [blocks], byteCount: blocks * 4))
            list.append(StoredTensor(suffix: ".quant_map", dtype: .f32, shape: [16], byteCount: 64))
        }
        let blob = jsonBytes.count
        list.append(StoredTensor(suffix: "." + keySuffix, dtype: .u8, shape: [blob], byteCount: blob))
        return list
    }
}
