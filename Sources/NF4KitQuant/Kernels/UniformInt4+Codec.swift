// The uniform 4-bit code over raw buffers: whole tensors, block by block.
extension UniformInt4 {
    /// Quantizes `source` block by block.
    ///
    /// - Parameters:
    ///   - source: the values, row-major.
    ///   - blocksize: elements per block (positive and even, so that each block owns whole bytes).
    ///   - packed: `(source.count + 1) / 2` bytes.
    ///   - absmax: one float per block, `ceil(source.count / blocksize)`.
    /// - Complexity: O(n), no allocation.
    public static func quantize(
        _ source: UnsafeBufferPointer<Float>, blocksize: Int, packedInto packed: UnsafeMutableRawBufferPointer,
        absmaxInto absmax: UnsafeMutableBufferPointer<Float>
    ) {
        let n = source.count
        precondition(
            blocksize > 0 && blocksize % 2 == 0, "UniformInt4: block size \(blocksize) must be positive and even")
        precondition(
            packed.count >= BlockQuantizer.packedByteCount(elementCount: n), "UniformInt4: packed buffer too small")
        precondition(absmax.count >= (n + blocksize - 1) / blocksize, "UniformInt4: absmax buffer too small")
        var block = 0
        var start = 0
        while start < n {
            let end = min(start + blocksize, n)
            var peak: Float = 0
            for i in start..<end {
                let magnitude = abs(source[i])
                if magnitude > peak { peak = magnitude }
            }
            absmax[block] = peak
            let inverse: Float = peak > 0 && peak.isFinite ? levels / peak : 0
            var i = start
            while i < end {
                let high = code(source[i], inverse)
                let low = i + 1 < end ? code(source[i + 1], inverse) : 0
                packed[i >> 1] = (high << 4) | low
                i += 2
            }
            start = end
            block += 1
        }
    }

    /// Decodes `destination.count` values from packed codes and per-block absmax.
    ///
    /// - Complexity: O(n), no allocation.
    public static func dequantize(
        packed: UnsafeRawBufferPointer, absmax: UnsafeBufferPointer<Float>, blocksize: Int,
        into destination: UnsafeMutableBufferPointer<Float>
    ) {
        let n = destination.count
        precondition(
            blocksize > 0 && blocksize % 2 == 0, "UniformInt4: block size \(blocksize) must be positive and even")
        precondition(
            packed.count >= BlockQuantizer.packedByteCount(elementCount: n), "UniformInt4: packed codes too short")
        precondition(absmax.count >= (n + blocksize - 1) / blocksize, "UniformInt4: absmax too short")
        var block = 0
        var start = 0
        while start < n {
            let scale = absmax[block] / levels
            for i in start..<min(start + blocksize, n) {
                let byte = packed[i >> 1]
                let nibble = i & 1 == 0 ? byte >> 4 : byte & 0x0F
                let q = Int8(bitPattern: nibble << 4) >> 4  // sign-extend the nibble
                destination[i] = Float(q) * scale
            }
            start += blocksize
            block += 1
        }
    }

    /// The nibble of `value` scaled by `inverse` (`7 / absmax`), rounded half to even and clamped to -8...7.
    @inline(__always)
    private static func code(_ value: Float, _ inverse: Float) -> UInt8 {
        let scaled = (value * inverse).rounded(.toNearestOrEven)
        guard !scaled.isNaN else { return 0 }
        let q = Int8(max(-8, min(7, scaled)))
        return UInt8(bitPattern: q) & 0x0F
    }
}
