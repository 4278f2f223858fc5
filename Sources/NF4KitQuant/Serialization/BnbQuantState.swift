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
        if case .double(let dq) = tensor.statistics { nested = Nested(blocksize: dq.nestedBlocksize, offset: dq.offset) }
        self.init(quantType: tensor.quantType, blocksize: tensor.blocksize, dtype: tensor.dtype, shape: tensor.shape, nested: nested)
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

    /// Parses a blob with the strict JSON parser of Core.
    ///
    /// Accepts the keys in any order and ignores unknown keys; requires `quant_type`, `blocksize`, `dtype`,
    /// `shape`, and either all or none of the nested keys (`nested_dtype` must be `"float32"`).
    /// - Parameter tensor: the blob tensor's name, used in errors.
    /// - Throws: ``CheckpointError`` `.malformedHeader` naming the tensor and the problem.
    public init(parsing bytes: [UInt8], tensor: String? = nil) throws(CheckpointError) {
        func fail(_ message: String) -> CheckpointError {
            CheckpointError(.malformedHeader, "quant state \(tensor.map { "'\($0)' " } ?? ""): \(message)", tensor: tensor)
        }
        let value: JSONValue
        do { value = try StrictJSON.parse(bytes, what: "quant state") } catch { throw fail(error.message) }
        guard let object = value.objectValue else { throw fail("expected a JSON object") }
        guard let typeName = object["quant_type"]?.stringValue, let type = QuantType(rawValue: typeName) else {
            throw fail("\"quant_type\" must be \"nf4\" or \"fp4\"")
        }
        guard let blocksize = object["blocksize"]?.intValue else { throw fail("\"blocksize\" must be an integer") }
        guard let dtypeName = object["dtype"]?.stringValue, let dtype = DType(torchName: dtypeName), dtype.isConvertibleFloat
        else {
            throw fail("\"dtype\" must name a float dtype (float16, bfloat16, float32)")
        }
        guard let dimValues = object["shape"]?.arrayValue else { throw fail("\"shape\" must be an array of integers") }
        var dims: [Int] = []
        for d in dimValues {
            guard let dim = d.intValue, dim >= 0 else { throw fail("\"shape\" entries must be non-negative integers") }
            dims.append(dim)
        }
        let nestedKeys = ["nested_blocksize", "nested_dtype", "nested_offset"].filter { object[$0] != nil }
        var nested: Nested? = nil
        if nestedKeys.count == 3 {
            guard let nb = object["nested_blocksize"]?.intValue, nb > 0 else {
                throw fail("\"nested_blocksize\" must be a positive integer")
            }
            guard object["nested_dtype"]?.stringValue == "float32" else { throw fail("\"nested_dtype\" must be \"float32\"") }
            guard let offset = object["nested_offset"]?.doubleValue else { throw fail("\"nested_offset\" must be a number") }
            nested = Nested(blocksize: nb, offset: Float(offset))
        } else if !nestedKeys.isEmpty {
            throw fail("has \(nestedKeys.joined(separator: ", ")) but not all of nested_blocksize, nested_dtype, nested_offset")
        }
        self.init(quantType: type, blocksize: blocksize, dtype: dtype, shape: Shape(dims), nested: nested)
    }
}
