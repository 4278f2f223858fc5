public import NF4KitCore

// Dequantization of a QuantizedTensor over raw buffers: absmax reconstruction and the block loops (DequantizeKernel).
extension QuantizedTensor {
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
