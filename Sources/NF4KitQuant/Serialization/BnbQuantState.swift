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
            text += "\"nested_offset\": \(Self.pythonRepr(nested.offset))"
        }
        return text + "}"
    }

    /// A float32 widened to double and printed as Python's `json.dumps` prints a float.
    ///
    /// Swift's shortest round-trip `Double.description` uses the same digits and the same switch between plain
    /// and exponent notation (`0.9375`, `2.0`, `5e-05`, `1e+16`) as Python's `repr`; only the non-finite
    /// spellings differ.
    static func pythonRepr(_ value: Float) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value < 0 ? "-Infinity" : "Infinity" }
        return Double(value).description
    }

    /// Parses a blob.
    ///
    /// Accepts the keys in any order and ignores unknown keys; requires `quant_type`, `blocksize`, `dtype`,
    /// `shape`, and either all or none of the nested keys (`nested_dtype` must be `"float32"`).
    /// - Parameter tensor: the blob tensor's name, used in errors.
    /// - Throws: ``CheckpointError`` `.malformedHeader` naming the tensor and the problem.
    public init(parsing bytes: [UInt8], tensor: String? = nil) throws(CheckpointError) {
        func fail(_ message: String) -> CheckpointError {
            CheckpointError(.malformedHeader, "quant state \(tensor.map { "'\($0)' " } ?? ""): \(message)", tensor: tensor)
        }
        let object: [String: FlatJSON.Value]
        do { object = try FlatJSON.parseObject(bytes) } catch { throw fail(error.message) }
        guard case .string(let typeName)? = object["quant_type"], let type = QuantType(rawValue: typeName) else {
            throw fail("\"quant_type\" must be \"nf4\" or \"fp4\"")
        }
        guard case .number(let blockText)? = object["blocksize"], let blocksize = Int(blockText) else {
            throw fail("\"blocksize\" must be an integer")
        }
        guard case .string(let dtypeName)? = object["dtype"], let dtype = DType(torchName: dtypeName), dtype.isConvertibleFloat
        else {
            throw fail("\"dtype\" must name a float dtype (float16, bfloat16, float32)")
        }
        guard case .array(let dimTexts)? = object["shape"] else { throw fail("\"shape\" must be an array of integers") }
        var dims: [Int] = []
        for text in dimTexts {
            guard let d = Int(text), d >= 0 else { throw fail("\"shape\" entry \(text) is not a non-negative integer") }
            dims.append(d)
        }
        let nestedKeys = ["nested_blocksize", "nested_dtype", "nested_offset"].filter { object[$0] != nil }
        var nested: Nested? = nil
        if nestedKeys.count == 3 {
            guard case .number(let nbText)? = object["nested_blocksize"], let nb = Int(nbText), nb > 0 else {
                throw fail("\"nested_blocksize\" must be a positive integer")
            }
            guard case .string("float32")? = object["nested_dtype"] else { throw fail("\"nested_dtype\" must be \"float32\"") }
            guard case .number(let offsetText)? = object["nested_offset"], let offset = Double(offsetText) else {
                throw fail("\"nested_offset\" must be a number")
            }
            nested = Nested(blocksize: nb, offset: Float(offset))
        } else if !nestedKeys.isEmpty {
            throw fail("has \(nestedKeys.joined(separator: ", ")) but not all of nested_blocksize, nested_dtype, nested_offset")
        }
        self.init(quantType: type, blocksize: blocksize, dtype: dtype, shape: Shape(dims), nested: nested)
    }
}

/// A parser for one flat JSON object whose values are strings, numbers, literals or arrays of numbers.
///
/// Enough for the quant-state blob; numbers are kept as their text so integers and floats parse exactly.
enum FlatJSON {
    enum Value: Equatable {
        case string(String)
        case number(String)
        case array([String])
        case literal(String)
    }

    struct Failure: Error {
        let message: String
    }

    /// The deepest nesting the blob can have is one array inside the object; anything else is rejected.
    static func parseObject(_ bytes: [UInt8]) throws(Failure) -> [String: Value] {
        var i = 0
        func skipSpace() {
            while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
        }
        func expect(_ byte: UInt8) throws(Failure) {
            skipSpace()
            guard i < bytes.count, bytes[i] == byte else {
                throw Failure(message: "expected '\(Character(Unicode.Scalar(byte)))' at byte \(i)")
            }
            i += 1
        }
        func string() throws(Failure) -> String {
            try expect(0x22)
            var scalars: [UInt8] = []
            while i < bytes.count, bytes[i] != 0x22 {
                if bytes[i] == 0x5C {  // escapes: only the simple ones appear in these blobs
                    i += 1
                    guard i < bytes.count else { break }
                    switch bytes[i] {
                    case 0x22, 0x5C, 0x2F: scalars.append(bytes[i])
                    case 0x6E: scalars.append(0x0A)
                    case 0x74: scalars.append(0x09)
                    default: throw Failure(message: "unsupported escape at byte \(i)")
                    }
                } else {
                    scalars.append(bytes[i])
                }
                i += 1
            }
            guard i < bytes.count else { throw Failure(message: "unterminated string") }
            i += 1
            return String(decoding: scalars, as: UTF8.self)
        }
        func token() throws(Failure) -> String {
            skipSpace()
            let start = i
            while i < bytes.count, bytes[i] == 0x2D || bytes[i] == 0x2B || bytes[i] == 0x2E || (bytes[i] >= 0x30 && bytes[i] <= 0x39)
                || (bytes[i] | 0x20 >= 0x61 && bytes[i] | 0x20 <= 0x7A)
            {
                i += 1
            }
            guard i > start else { throw Failure(message: "expected a value at byte \(start)") }
            return String(decoding: bytes[start..<i], as: UTF8.self)
        }
        func isNumber(_ text: String) -> Bool { Double(text) != nil && text != "nan" && text != "inf" }

        var result: [String: Value] = [:]
        try expect(0x7B)
        skipSpace()
        if i < bytes.count, bytes[i] == 0x7D {
            i += 1
        } else {
            while true {
                let key = try string()
                guard result[key] == nil else { throw Failure(message: "duplicate key \"\(key)\"") }
                try expect(0x3A)
                skipSpace()
                guard i < bytes.count else { throw Failure(message: "unexpected end") }
                switch bytes[i] {
                case 0x22: result[key] = .string(try string())
                case 0x5B:
                    i += 1
                    var items: [String] = []
                    skipSpace()
                    if i < bytes.count, bytes[i] == 0x5D {
                        i += 1
                    } else {
                        while true {
                            let item = try token()
                            guard isNumber(item) else { throw Failure(message: "array item \(item) is not a number") }
                            items.append(item)
                            skipSpace()
                            guard i < bytes.count else { throw Failure(message: "unterminated array") }
                            if bytes[i] == 0x2C { i += 1; continue }
                            try expect(0x5D)
                            break
                        }
                    }
                    result[key] = .array(items)
                default:
                    let text = try token()
                    if ["true", "false", "null"].contains(text) {
                        result[key] = .literal(text)
                    } else if ["NaN", "Infinity", "-Infinity"].contains(text) {
                        result[key] = .number(text == "NaN" ? "nan" : text == "Infinity" ? "inf" : "-inf")
                    } else if isNumber(text) {
                        result[key] = .number(text)
                    } else {
                        throw Failure(message: "value \(text) of \"\(key)\" is not valid here")
                    }
                }
                skipSpace()
                guard i < bytes.count else { throw Failure(message: "unterminated object") }
                if bytes[i] == 0x2C { i += 1; continue }
                try expect(0x7D)
                break
            }
        }
        skipSpace()
        guard i == bytes.count else { throw Failure(message: "trailing bytes after the object at byte \(i)") }
        return result
    }
}
