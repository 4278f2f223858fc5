/// A uniform 4-bit block code, the baseline that shows what NF4's non-uniform levels buy (docs/sensitivity.md).
///
/// Per block of `blocksize` consecutive elements (the last block may be shorter):
/// - `absmax = max |x|` in float32, stored as one float32 per block (as NF4 without double quantization);
/// - `scale = absmax / 7` (float32), so the block's largest magnitude is exactly a level;
/// - `q = clamp(round-half-to-even(x / scale), -8, 7)`, computed as `x * (7 / absmax)` in float32; a block whose
///   absmax is 0 (or not finite) gets all codes 0;
/// - decoding: `x' = Float(q) * scale`.
/// Codes are two's-complement nibbles packed like NF4: element 2j in the high nibble of byte j, 2j+1 in the low
/// nibble, an odd count padded with code 0. Level -8 is representable but never chosen, because `|x| ≤ absmax`
/// keeps `x / scale` within [-7, 7]: this is the symmetric absmax quantizer (`round(x · (2^(k-1) − 1) / absmax)`)
/// that the QLoRA paper compares NF4 with.
public enum UniformInt4 {
    /// The largest code magnitude the scale maps the block's absmax to.
    public static let levels: Float = 7

    /// Bytes of packed codes plus float32 absmax for `elementCount` values in blocks of `blocksize`.
    public static func byteCount(elementCount: Int, blocksize: Int) -> Int {
        BlockQuantizer.packedByteCount(elementCount: elementCount) + 4 * ((elementCount + blocksize - 1) / blocksize)
    }
}
