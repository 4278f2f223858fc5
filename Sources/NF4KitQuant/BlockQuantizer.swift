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

    /// Whether full f16/bf16/f32 blocks run on the AVX2 + F16C kernel on this machine (same bytes as the Swift
    /// kernel).
    public static var nativeKernelAvailable: Bool { QuantizeKernel.hasNativeKernel }

    /// The element count of an input of `byteCount` bytes, checked against `dtype` and `shape`.
    func checkedInput(byteCount: Int, dtype: DType, shape: Shape, name: String?) throws(CheckpointError) -> Int {
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
        guard byteCount == n * dtype.bitWidth / 8 else {
            throw CheckpointError(
                .shapeMismatch,
                "\(byteCount) bytes do not hold shape \(shape) of \(dtype) (\(n * dtype.bitWidth / 8) bytes)",
                tensor: name)
        }
        return n
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

    /// The quant state of a checkpoint tensor (see
    /// ``plannedQuantState(_:dtype:shape:doubleQuantization:name:offsetThreadCount:)``).
    public func plannedQuantState(
        _ tensor: Tensor, doubleQuantization: Bool, offsetThreadCount: Int = 1
    ) throws(CheckpointError) -> BnbQuantState {
        try plannedQuantState(
            tensor.bytes, dtype: tensor.dtype, shape: tensor.shape, doubleQuantization: doubleQuantization,
            name: tensor.name, offsetThreadCount: offsetThreadCount)
    }

    /// Quantizes a checkpoint tensor (see ``quantize(_:dtype:shape:doubleQuantization:name:threads:)``).
    public func quantize(
        _ tensor: Tensor, doubleQuantization: Bool, threads: Int = 1
    ) throws(CheckpointError) -> QuantizedTensor {
        try quantize(
            tensor.bytes, dtype: tensor.dtype, shape: tensor.shape, doubleQuantization: doubleQuantization,
            name: tensor.name, threads: threads)
    }
}
