public import NF4KitCore

/// A weight quantized to 4 bits the way bitsandbytes stores it: packed codes plus per-block scale factors.
///
/// The byte buffers are ``TensorBytes`` views, so a tensor rebuilt from a checkpoint points into the mapped
/// file without copying. Packed codes: element 2j in the high nibble of byte j, element 2j+1 in the low
/// nibble, `(n + 1) / 2` bytes, an odd n padded with the code of 0.0.
public struct QuantizedTensor: Sendable {
    /// The double-quantized form of the per-block absmax (spec section 4).
    public struct DoubleQuantizedAbsmax: Sendable {
        /// One 8-bit code per block into ``nestedCodebook``.
        public var codes: TensorBytes
        /// Float32 (little-endian) scale per nested block.
        public var nestedAbsmax: TensorBytes
        /// The float32 mean subtracted before nested quantization (`nested_offset`).
        public var offset: Float
        /// Codes per nested block (256 in every file bitsandbytes writes).
        public var nestedBlocksize: Int
        /// The 256-entry table the codes index (``NF4Codebook/dynamic8Bit`` unless a file says otherwise).
        public var nestedCodebook: [Float]

        /// Creates the double-quantized statistics from their parts; sizes are checked by ``QuantizedTensor``.
        public init(
            codes: TensorBytes, nestedAbsmax: TensorBytes, offset: Float, nestedBlocksize: Int = 256,
            nestedCodebook: [Float] = NF4Codebook.dynamic8Bit
        ) {
            self.codes = codes
            self.nestedAbsmax = nestedAbsmax
            self.offset = offset
            self.nestedBlocksize = nestedBlocksize
            self.nestedCodebook = nestedCodebook
        }
    }

    /// How the per-block absmax is stored.
    public enum Statistics: Sendable {
        /// One float32 (little-endian) per block.
        case plain(absmax: TensorBytes)
        /// 8-bit codes plus nested float32 scales and an offset.
        case double(DoubleQuantizedAbsmax)
    }

    /// NF4 or FP4.
    public var quantType: QuantType
    /// Elements per block (32...4096, a power of two).
    public var blocksize: Int
    /// The logical shape of the weight (`[out, in]` for a Linear layer).
    public var shape: Shape
    /// The dtype of the weight before quantization; dequantization returns it by default (quant-state `"dtype"`).
    public var dtype: DType
    /// The packed 4-bit codes, `(elementCount + 1) / 2` bytes.
    public var packed: TensorBytes
    /// The per-block scales.
    public var statistics: Statistics
    /// The 16 values the codes index (``NF4Codebook/nf4`` or ``NF4Codebook/fp4`` unless a file says otherwise).
    public var codebook: [Float]

    /// Creates a tensor from its parts after checking that every size agrees with `shape` and `blocksize`.
    ///
    /// - Throws: ``CheckpointError`` with code `.shapeMismatch` or `.invalidArgument` naming `name`.
    public init(
        quantType: QuantType, blocksize: Int, shape: Shape, dtype: DType, packed: TensorBytes, statistics: Statistics,
        codebook: [Float]? = nil, name: String? = nil
    ) throws(CheckpointError) {
        self.quantType = quantType
        self.blocksize = blocksize
        self.shape = shape
        self.dtype = dtype
        self.packed = packed
        self.statistics = statistics
        self.codebook = codebook ?? NF4Codebook.table(for: quantType)
        try validate(name: name)
    }

    /// The number of weights.
    public var elementCount: Int { shape.elementCount }

    /// The number of first-level blocks, `ceil(elementCount / blocksize)`.
    public var blockCount: Int { (elementCount + blocksize - 1) / blocksize }

    /// Whether the absmax is double-quantized.
    public var isDoubleQuantized: Bool {
        if case .double = statistics { return true }
        return false
    }

    private func validate(name: String?) throws(CheckpointError) {
        let label = name.map { "'\($0)'" } ?? "the quantized tensor"
        func fail(_ code: CheckpointError.Code, _ message: String) -> CheckpointError {
            CheckpointError(code, "\(label): \(message)", tensor: name)
        }
        guard BlockQuantizer.supportedBlocksizes.contains(blocksize) else {
            throw fail(.invalidArgument, "block size \(blocksize) is not one of \(BlockQuantizer.supportedBlocksizes)")
        }
        guard let n = shape.checkedElementCount else { throw fail(.shapeMismatch, "shape \(shape) overflows") }
        guard dtype.isConvertibleFloat else { throw fail(.unsupportedDType, "dtype \(dtype) is not a float type") }
        guard codebook.count == 16 else {
            throw fail(.shapeMismatch, "code table has \(codebook.count) entries, expected 16")
        }
        let expectedPacked = BlockQuantizer.packedByteCount(elementCount: n)
        guard packed.count == expectedPacked else {
            throw fail(
                .shapeMismatch, "packed codes are \(packed.count) bytes, expected \(expectedPacked) for shape \(shape)")
        }
        let blocks = (n + blocksize - 1) / blocksize
        switch statistics {
        case .plain(let absmax):
            guard absmax.count == blocks * 4 else {
                throw fail(
                    .shapeMismatch,
                    "absmax is \(absmax.count) bytes, expected \(blocks) float32 values (\(blocks * 4) bytes)")
            }
        case .double(let dq):
            guard dq.codes.count == blocks else {
                throw fail(
                    .shapeMismatch, "absmax codes are \(dq.codes.count) bytes, expected \(blocks) (one per block)")
            }
            guard dq.nestedBlocksize > 0 else {
                throw fail(.invalidArgument, "nested block size \(dq.nestedBlocksize) is not positive")
            }
            let nested = (blocks + dq.nestedBlocksize - 1) / dq.nestedBlocksize
            guard dq.nestedAbsmax.count == nested * 4 else {
                throw fail(
                    .shapeMismatch, "nested absmax is \(dq.nestedAbsmax.count) bytes, expected \(nested) float32 values"
                )
            }
            guard dq.nestedCodebook.count == 256 else {
                throw fail(.shapeMismatch, "nested code table has \(dq.nestedCodebook.count) entries, expected 256")
            }
        }
    }
}
