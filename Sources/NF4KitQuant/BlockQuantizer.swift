public import NF4KitCore

/// Quantizes float weights to bitsandbytes NF4/FP4 blocks, byte-identical to bitsandbytes 0.50.2 on CPU.
///
/// Quantizing a tensor has two phases, so a pipeline can split one large tensor across threads and still get
/// the same bytes for any thread count:
/// 1. ``quantizeBlocks(_:of:dtype:elementCount:packedInto:absmaxInto:)`` for disjoint block ranges (parallel):
///    codes and float32 absmax per block.
/// 2. ``finish(shape:dtype:packed:absmax:doubleQuantization:offsetThreadCount:name:)`` once all absmax are known:
///    the double-quantization offset and 8-bit codes (serial, O(blocks)).
/// ``quantize(_:dtype:shape:doubleQuantization:name:threads:)`` does both, phase 1 on one or more threads.
public struct BlockQuantizer: Sendable {
    /// Block sizes bitsandbytes accepts for 4-bit quantization (32 since 0.50.0).
    public static let supportedBlocksizes = [32, 64, 128, 256, 512, 1024, 2048, 4096]

    /// NF4 or FP4.
    public let quantType: QuantType
    /// Elements per block.
    public let blocksize: Int
    /// Which implementation's rounding rules to reproduce.
    public let profile: QuantizationProfile
    /// Which first-level kernel runs (both give the same bytes).
    public let kernel: Kernel
    let rule: CodeRule

    /// The implementations of the first-level block kernel.
    public enum Kernel: Sendable, Hashable {
        /// The AVX2 + F16C kernel for full f16/bf16/f32 blocks when the CPU has it (``nativeKernelAvailable``),
        /// the Swift kernel otherwise.
        case automatic
        /// The Swift kernel only (the reference the native kernel is tested against).
        case portable
    }

    /// Creates a quantizer.
    ///
    /// - Parameters:
    ///   - quantType: NF4 (default) or FP4.
    ///   - blocksize: one of ``supportedBlocksizes``; transformers always uses 64.
    ///   - profile: `.cpu` (default) reproduces bitsandbytes on CPU and the golden files; `.cuda` the GPU rules.
    ///   - kernel: `.automatic` (default) or `.portable` (the Swift kernel only; same bytes).
    /// - Throws: ``CheckpointError`` `.invalidArgument` for any other block size.
    public init(
        quantType: QuantType = .nf4, blocksize: Int = 64, profile: QuantizationProfile = .cpu,
        kernel: Kernel = .automatic
    ) throws(CheckpointError) {
        guard Self.supportedBlocksizes.contains(blocksize) else {
            throw CheckpointError(
                .invalidArgument,
                "block size \(blocksize) is not supported; bitsandbytes accepts \(Self.supportedBlocksizes.map(String.init).joined(separator: ", "))"
            )
        }
        self.quantType = quantType
        self.blocksize = blocksize
        self.profile = profile
        self.kernel = kernel
        self.rule = CodeRule(quantType: quantType, profile: profile)
    }

    /// `ceil(elementCount / blocksize)`.
    public func blockCount(elementCount: Int) -> Int { (elementCount + blocksize - 1) / blocksize }

    /// Bytes of packed codes for `elementCount` values: `(elementCount + 1) / 2`.
    public static func packedByteCount(elementCount: Int) -> Int { elementCount / 2 + (elementCount & 1) }

    /// The dtype recorded in the quant state for an input of `dtype` (f64 is quantized as f32).
    public static func recordedDType(forInput dtype: DType) -> DType { dtype == .f64 ? .f32 : dtype }

    /// Phase 1: quantizes blocks `blocks` of a whole tensor.
    ///
    /// Reads the blocks' values from `input` and writes their packed bytes into `packed` (the whole tensor's
    /// buffer, `packedByteCount(elementCount:)` bytes) and their absmax into `absmax` (one float per block of the
    /// tensor). Calls on disjoint ranges touch disjoint bytes and may run concurrently. Allocation-free apart from
    /// a stack scratch buffer of `blocksize` floats.
    ///
    /// Preconditions (caller's misuse, not file data): `dtype` is F16, BF16, F32 or F64, `input` holds
    /// `elementCount` values, the buffers are large enough, `blocks` lies within the tensor.
    /// - Complexity: O(blocks.count × blocksize).
    public func quantizeBlocks(
        _ blocks: Range<Int>, of input: UnsafeRawBufferPointer, dtype: DType, elementCount: Int,
        packedInto packed: UnsafeMutableRawBufferPointer, absmaxInto absmax: UnsafeMutableBufferPointer<Float>
    ) {
        precondition(dtype.isConvertibleFloat, "quantizeBlocks: \(dtype) is not a float type")
        precondition(input.count >= elementCount * dtype.bitWidth / 8, "quantizeBlocks: input too short")
        precondition(
            packed.count >= Self.packedByteCount(elementCount: elementCount), "quantizeBlocks: packed buffer too small")
        precondition(
            blocks.lowerBound >= 0 && blocks.upperBound <= blockCount(elementCount: elementCount),
            "quantizeBlocks: blocks out of range")
        precondition(absmax.count >= blocks.upperBound, "quantizeBlocks: absmax buffer too small")
        QuantizeKernel.run(
            blocks: blocks, input: input, dtype: dtype, elementCount: elementCount, blocksize: blocksize, rule: rule,
            profile: profile, native: kernel == .automatic, packed: packed, absmax: absmax)
    }

    /// Whether full f16/bf16/f32 blocks run on the AVX2 + F16C kernel on this machine (same bytes as the Swift
    /// kernel).
    public static var nativeKernelAvailable: Bool { QuantizeKernel.hasNativeKernel }

    /// The absmax ``quantizeBlocks(_:of:dtype:elementCount:packedInto:absmaxInto:)`` would write, without coding.
    ///
    /// For planning: with double quantization the quant-state JSON (whose length a safetensors header needs)
    /// contains the offset, the mean of every absmax. About a quarter of the cost of quantizing.
    public func blockAbsmax(
        _ blocks: Range<Int>, of input: UnsafeRawBufferPointer, dtype: DType, elementCount: Int,
        into absmax: UnsafeMutableBufferPointer<Float>
    ) {
        precondition(dtype.isConvertibleFloat, "blockAbsmax: \(dtype) is not a float type")
        precondition(input.count >= elementCount * dtype.bitWidth / 8, "blockAbsmax: input too short")
        precondition(
            blocks.lowerBound >= 0 && blocks.upperBound <= blockCount(elementCount: elementCount),
            "blockAbsmax: blocks out of range")
        precondition(absmax.count >= blocks.upperBound, "blockAbsmax: absmax buffer too small")
        QuantizeKernel.absmaxOnly(
            blocks: blocks, input: input, dtype: dtype, elementCount: elementCount, blocksize: blocksize,
            profile: profile,
            absmax: absmax)
    }

    /// The quant state a tensor of `shape` and `dtype` will get, computed from its raw values (planning pass).
    ///
    /// Equal to `BnbQuantState(quantize(...))` (tested), at the cost of one absmax pass.
    /// - Throws: as ``quantize(_:dtype:shape:doubleQuantization:name:)``.
    public func plannedQuantState(
        _ input: UnsafeRawBufferPointer, dtype: DType, shape: Shape, doubleQuantization: Bool, name: String? = nil,
        offsetThreadCount: Int = 1
    ) throws(CheckpointError) -> BnbQuantState {
        let n = try checkedInput(input, dtype: dtype, shape: shape, name: name)
        var nested: BnbQuantState.Nested? = nil
        if doubleQuantization {
            let blocks = blockCount(elementCount: n)
            var absmax = [Float](repeating: 0, count: blocks)
            absmax.withUnsafeMutableBufferPointer {
                blockAbsmax(0..<blocks, of: input, dtype: dtype, elementCount: n, into: $0)
            }
            let offset = absmax.withUnsafeBufferPointer {
                DoubleQuantization.offset(of: $0, threadCount: offsetThreadCount)
            }
            try Self.checkOffset(offset, name: name)
            nested = .init(blocksize: DoubleQuantization.nestedBlocksize, offset: offset)
        }
        return BnbQuantState(
            quantType: quantType, blocksize: blocksize, dtype: Self.recordedDType(forInput: dtype), shape: shape,
            nested: nested)
    }

    private func checkedInput(
        _ input: UnsafeRawBufferPointer, dtype: DType, shape: Shape, name: String?
    ) throws(CheckpointError) -> Int {
        guard dtype.isConvertibleFloat else {
            throw CheckpointError(
                .unsupportedDType, "cannot quantize dtype \(dtype); expected F16, BF16, F32 or F64", tensor: name)
        }
        guard let n = shape.checkedElementCount else {
            throw CheckpointError(.shapeMismatch, "shape \(shape) overflows", tensor: name)
        }
        guard n > 0 else {
            throw CheckpointError(
                .refused,
                "tensor '\(name ?? "?")' has no elements (shape \(shape)); an empty weight cannot be quantized",
                tensor: name)
        }
        guard input.count == n * dtype.bitWidth / 8 else {
            throw CheckpointError(
                .shapeMismatch,
                "\(input.count) bytes do not hold shape \(shape) of \(dtype) (\(n * dtype.bitWidth / 8) bytes)",
                tensor: name)
        }
        return n
    }

    /// Phase 2: wraps phase 1's output into a ``QuantizedTensor``, double-quantizing the absmax if asked.
    ///
    /// - Parameters:
    ///   - dtype: the input dtype (recorded as the quant-state `"dtype"`; f64 is recorded as f32).
    ///   - packed: the packed codes of the whole tensor.
    ///   - absmax: the first-level absmax of every block.
    ///   - offsetThreadCount: PyTorch's intra-op thread count to mimic for the mean (1 matches the golden files).
    public func finish(
        shape: Shape, dtype: DType, packed: TensorBytes, absmax: UnsafeBufferPointer<Float>, doubleQuantization: Bool,
        offsetThreadCount: Int = 1, name: String? = nil
    ) throws(CheckpointError) -> QuantizedTensor {
        let statistics: QuantizedTensor.Statistics
        if doubleQuantization {
            let offset = DoubleQuantization.offset(of: absmax, threadCount: offsetThreadCount)
            let nestedCount = DoubleQuantization.nestedBlockCount(blockCount: absmax.count)
            var nested = [Float](repeating: 0, count: nestedCount)
            let codes = MappedRegion(filling: absmax.count, description: "absmax codes") {
                (raw: UnsafeMutableRawBufferPointer) in
                nested.withUnsafeMutableBufferPointer { nestedBuffer in
                    DoubleQuantization.quantize(
                        absmax: absmax, offset: offset, profile: profile,
                        codes: raw.bindMemory(to: UInt8.self), nestedAbsmax: nestedBuffer)
                }
            }
            statistics = .double(
                .init(codes: codes.all, nestedAbsmax: littleEndianBytes(nested), offset: offset))
        } else {
            statistics = .plain(absmax: littleEndianBytes(Array(absmax)))
        }
        return try QuantizedTensor(
            quantType: quantType, blocksize: blocksize, shape: shape, dtype: Self.recordedDType(forInput: dtype),
            packed: packed, statistics: statistics)
    }

    /// Quantizes a whole tensor; phase 1 runs on up to `threads` threads over disjoint block ranges, so the bytes
    /// do not depend on `threads`.
    ///
    /// - Parameters:
    ///   - input: `shape.elementCount` little-endian values of `dtype`, row-major.
    ///   - dtype: F16, BF16, F32 or F64 (F64 is rounded to F32 first).
    ///   - shape: the logical shape (recorded in the quant state).
    ///   - doubleQuantization: store the absmax as 8-bit codes (`bnb_4bit_use_double_quant`).
    ///   - threads: 1 (default) quantizes on the calling thread.
    /// - Throws: ``CheckpointError`` `.unsupportedDType` for non-float input, `.shapeMismatch` when the byte count
    ///   does not match the shape, `.invalidArgument` for an empty tensor.
    /// - Complexity: O(n).
    public func quantize(
        _ input: UnsafeRawBufferPointer, dtype: DType, shape: Shape, doubleQuantization: Bool, name: String? = nil,
        threads: Int = 1
    ) throws(CheckpointError) -> QuantizedTensor {
        let n = try checkedInput(input, dtype: dtype, shape: shape, name: name)
        let blocks = blockCount(elementCount: n)
        var absmax = [Float](repeating: 0, count: blocks)
        let packed = MappedRegion(filling: Self.packedByteCount(elementCount: n), description: "packed codes") {
            (raw: UnsafeMutableRawBufferPointer) in
            absmax.withUnsafeMutableBufferPointer { absmaxBuffer in
                QuantizeKernel.runParallel(
                    blocks: blocks, threads: threads, input: input, dtype: dtype, elementCount: n, blocksize: blocksize,
                    rule: rule, profile: profile, native: kernel == .automatic, packed: raw, absmax: absmaxBuffer)
            }
        }
        return try absmax.withUnsafeBufferPointer { (buffer) throws(CheckpointError) in
            try finish(
                shape: shape, dtype: dtype, packed: packed.all, absmax: buffer, doubleQuantization: doubleQuantization,
                name: name)
        }
    }

    /// Refuses a double-quantization offset that is not finite (planning here, writing in
    /// ``QuantizedTensor/bnbTensors(weightName:)``; in memory such a tensor is fine).
    ///
    /// The offset is the mean of the block absmax values; it is NaN or infinite when the weight holds NaN or infinite
    /// values (CPU rules) or absmax values whose float32 sum overflows. bitsandbytes would write
    /// `"nested_offset": Infinity` (or `NaN`), which is not JSON: no reader, ours included, could load the file.
    @inline(never)
    static func checkOffset(_ offset: Float, name: String?) throws(CheckpointError) {
        guard !offset.isFinite else { return }
        throw CheckpointError(
            .refused,
            "tensor \(name.map { "'\($0)'" } ?? "") cannot be double-quantized: the mean of its block absmax values (the "
                + "nested_offset) is \(offset), because the weight holds NaN or infinite values or values whose float32 "
                + "sum overflows, and a quant state cannot store it; quantize without double quantization "
                + "(--no-double-quant) or leave the tensor unquantized (--skip)",
            tensor: name)
    }

    /// Quantizes a checkpoint tensor (see ``quantize(_:dtype:shape:doubleQuantization:name:threads:)``).
    public func quantize(
        _ tensor: Tensor, doubleQuantization: Bool, threads: Int = 1
    ) throws(CheckpointError) -> QuantizedTensor {
        try tensor.bytes.withUnsafeBytes { (raw) throws(CheckpointError) in
            try quantize(
                raw, dtype: tensor.dtype, shape: tensor.shape, doubleQuantization: doubleQuantization,
                name: tensor.name,
                threads: threads)
        }
    }
}

/// Float32 values as an owned little-endian byte view.
func littleEndianBytes(_ values: [Float]) -> TensorBytes {
    MappedRegion(filling: values.count * 4, description: "float32 values") { (raw: UnsafeMutableRawBufferPointer) in
        for (i, v) in values.enumerated() {
            raw.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: i * 4, as: UInt32.self)
        }
    }.all
}
