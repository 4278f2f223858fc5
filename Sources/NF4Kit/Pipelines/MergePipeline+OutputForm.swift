import NF4KitCore
import NF4KitQuant

/// The output form after resolving `--to` against the base.
struct OutputForm {
    var target: MergeOptions.Target
    /// Plain dtype for every float tensor (`--to f16|bf16|f32`), or `nil` to keep each tensor's dtype.
    var plainDType: DType?
    /// Settings for weights quantized by `--to nf4|fp4`, or `nil`.
    var quantization: QuantizationSettings?
    /// Which plain weights `--to nf4|fp4` quantizes (transformers' choice: Linear weights, not head/embeddings).
    var selection = BnbQuantizationPlan()

    init(options: MergeOptions, base: BaseModel, baseDType: DType) throws(CheckpointError) {
        target = options.target
        plainDType = options.target.plainDType
        switch options.target {
        case .same, .f16, .bf16, .f32:
            quantization = nil
            if options.target == .same, base.quantization == nil,
                options.blocksize != nil || !options.doubleQuantization
            {
                throw CheckpointError(
                    .invalidArgument,
                    "--blocksize and --no-double-quant need a 4-bit output; the base is not 4-bit (use --to nf4|fp4)")
            }
        case .nf4, .fp4:
            let blocksize = options.blocksize ?? 64
            guard BlockQuantizer.supportedBlocksizes.contains(blocksize) else {
                throw CheckpointError(
                    .invalidArgument, "--blocksize \(blocksize) is not one of \(BlockQuantizer.supportedBlocksizes)")
            }
            quantization = QuantizationSettings(
                quantType: options.target == .nf4 ? .nf4 : .fp4, blocksize: blocksize,
                doubleQuantization: options.doubleQuantization,
                computeDType: base.quantization?.computeDType
                    ?? (baseDType == .bf16 || baseDType == .f16 ? baseDType : .f32))
        }
    }
}
