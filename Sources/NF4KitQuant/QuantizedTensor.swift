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

    /// The float32 absmax of every block: the stored values, or the double-quantized ones reconstructed (spec 4.6).
    /// - Complexity: O(blockCount).
    public func absmaxValues() -> [Float] {
        var result = [Float](repeating: 0, count: blockCount)
        result.withUnsafeMutableBufferPointer { writeAbsmax(into: $0) }
        return result
    }

    private func writeAbsmax(into out: UnsafeMutableBufferPointer<Float>) {
        switch statistics {
        case .plain(let absmax):
            absmax.withUnsafeBytes { raw in
                for i in 0..<out.count {
                    out[i] = Float(
                        bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)))
                }
            }
        case .double(let dq):
            let nestedCount = dq.nestedAbsmax.count / 4
            let nested = dq.nestedAbsmax.withUnsafeBytes { raw in
                (0..<nestedCount).map {
                    Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self)))
                }
            }
            dq.codes.withUnsafeBytes { codes in
                nested.withUnsafeBufferPointer { nestedBuffer in
                    dq.nestedCodebook.withUnsafeBufferPointer { table in
                        DoubleQuantization.reconstruct(
                            codes: codes.assumingMemoryBound(to: UInt8.self), nestedAbsmax: nestedBuffer,
                            offset: dq.offset,
                            nestedBlocksize: dq.nestedBlocksize, table: table, into: out)
                    }
                }
            }
        }
    }

    /// Dequantizes blocks `blocks` into `output`, which holds the whole tensor as `dtype` (little-endian).
    ///
    /// Values are `fl32(code value × absmax)` rounded once to `dtype` (spec section 5); bit-exact with
    /// bitsandbytes. Disjoint block ranges may run on different threads.
    /// - Parameter absmax: ``absmaxValues()`` of this tensor (compute it once per tensor).
    public func dequantizeBlocks(
        _ blocks: Range<Int>, absmax: UnsafeBufferPointer<Float>, as dtype: DType,
        into output: UnsafeMutableRawBufferPointer
    ) {
        precondition(output.count >= elementCount * dtype.bitWidth / 8, "dequantize: output buffer too small")
        let offset = min(blocks.lowerBound * blocksize, elementCount) * (dtype.bitWidth / 8)
        dequantizeBlocks(
            blocks, absmax: absmax, as: dtype, intoSlice: UnsafeMutableRawBufferPointer(rebasing: output[offset...]))
    }

    /// Dequantizes blocks `blocks` into `output`, which holds only those blocks' elements as `dtype`
    /// (little-endian), so a tensor can be streamed through a small buffer. Same values as
    /// ``dequantizeBlocks(_:absmax:as:into:)``.
    public func dequantizeBlocks(
        _ blocks: Range<Int>, absmax: UnsafeBufferPointer<Float>, as dtype: DType,
        intoSlice output: UnsafeMutableRawBufferPointer
    ) {
        precondition(dtype.isConvertibleFloat, "dequantize: \(dtype) is not a float type")
        precondition(
            absmax.count == blockCount && blocks.upperBound <= blockCount, "dequantize: block range out of bounds")
        guard !blocks.isEmpty else { return }
        let start = blocks.lowerBound * blocksize
        let end = min(blocks.upperBound * blocksize, elementCount)
        precondition(output.count >= (end - start) * dtype.bitWidth / 8, "dequantize: output buffer too small")
        packed.withUnsafeBytes { packedBytes in
            codebook.withUnsafeBufferPointer { table in
                DequantizeKernel.run(
                    blocks: blocks, packed: packedBytes, absmax: absmax, elementCount: elementCount,
                    blocksize: blocksize,
                    table: table, output: output, dtype: dtype, outputStart: start)
            }
        }
    }

    /// The dequantized weight as little-endian bytes of `dtype` (default: the original ``dtype``), row-major.
    /// - Complexity: O(elementCount).
    public func dequantized(as dtype: DType? = nil) -> TensorBytes {
        let target = dtype ?? self.dtype
        let absmax = absmaxValues()
        let byteCount = elementCount * target.bitWidth / 8
        let region = MappedRegion(filling: byteCount, description: "dequantized") {
            (out: UnsafeMutableRawBufferPointer) in
            absmax.withUnsafeBufferPointer { dequantizeBlocks(0..<blockCount, absmax: $0, as: target, into: out) }
        }
        return region.all
    }
}
