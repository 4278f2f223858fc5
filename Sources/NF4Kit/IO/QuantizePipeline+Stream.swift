import NF4KitCore
import NF4KitFormats
import NF4KitQuant

// Dequantize and cast jobs stream to the output in pieces of `streamElements` through one reused scratch buffer,
// never a tensor-sized copy.
extension QuantizePipeline.Job {
    /// Dequantizes `q` to `dtype` piece by piece into tensor `name` of `output`.
    func writeDequantized(
        _ q: QuantizedTensor, as dtype: DType, name: String, to output: CheckpointOutput
    ) throws(CheckpointError) {
        let writer = output
        let width = dtype.bitWidth / 8
        let blocksPerPiece = max(1, Self.streamElements / q.blocksize)
        let absmax = q.absmaxValues()
        let scratch = ScratchBuffer()
        try scratch.withBytes(blocksPerPiece * q.blocksize * width) { (buffer) throws(CheckpointError) in
            try absmax.withUnsafeBufferPointer { (table) throws(CheckpointError) in
                var block = 0
                repeat {
                    let blocks = block..<min(block + blocksPerPiece, q.blockCount)
                    let start = blocks.lowerBound * q.blocksize
                    let count = min(blocks.upperBound * q.blocksize, q.elementCount) - start
                    q.dequantizeBlocks(blocks, absmax: table, as: dtype, intoSlice: buffer)
                    try writer.write(
                        name, part: UnsafeRawBufferPointer(rebasing: buffer[0..<(count * width)]),
                        at: start * width,
                        completes: blocks.upperBound == q.blockCount)
                    block = blocks.upperBound
                } while block < q.blockCount
            }
        }
    }

    /// Converts float tensor `t` to `dtype` piece by piece into `output`.
    func writeCast(_ t: Tensor, as dtype: DType, to output: CheckpointOutput) throws(CheckpointError) {
        let writer = output
        let n = t.shape.elementCount
        let inWidth = t.dtype.bitWidth / 8
        let outWidth = dtype.bitWidth / 8
        let scratch = ScratchBuffer()
        try scratch.withBytes(min(n, Self.streamElements) * outWidth) { (buffer) throws(CheckpointError) in
            try t.bytes.withUnsafeBytes { (raw) throws(CheckpointError) in
                var start = 0
                repeat {
                    let count = min(Self.streamElements, n - start)
                    let piece = UnsafeRawBufferPointer(
                        rebasing: raw[(start * inWidth)..<((start + count) * inWidth)])
                    FloatConversion.convert(piece, from: t.dtype, to: dtype, count: count, into: buffer)
                    try writer.write(
                        t.name, part: UnsafeRawBufferPointer(rebasing: buffer[0..<(count * outWidth)]),
                        at: start * outWidth, completes: start + count == n)
                    start += count
                } while start < n
            }
        }
    }
}
