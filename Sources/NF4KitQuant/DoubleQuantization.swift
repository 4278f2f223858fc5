/// Double quantization of the per-block absmax vector (bitsandbytes "compress_statistics", spec section 4).
///
/// The absmax values A are centred on their float32 mean (the `nested_offset`), split into nested blocks of
/// 256, and each centred value is stored as an 8-bit code into ``NF4Codebook/dynamic8Bit`` scaled by its nested
/// block's float32 absmax. This is phase 2 of quantizing a tensor: it needs every first-level absmax.
public enum DoubleQuantization {
    /// The nested block size bitsandbytes always uses.
    public static let nestedBlocksize = 256

    /// The number of nested blocks for `blockCount` first-level blocks.
    public static func nestedBlockCount(blockCount: Int) -> Int { (blockCount + nestedBlocksize - 1) / nestedBlocksize }
}
