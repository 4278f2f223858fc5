import NF4KitCore
import NF4KitFormats
import NF4KitQuant

// Requantizing one tensor: ggml blocks decoded to f32 and encoded again, row chunks on several threads writing
// disjoint ranges of one output buffer.
extension GGUFRequantize {
    /// Decodes `info` to f32 and encodes it as `type`, in row chunks on `threads` threads.
    static func convert(
        _ info: GGUFTensorInfo, _ bytes: TensorBytes, to type: GGMLType, file: String, threads: Int
    ) throws(CheckpointError) -> TensorBytes {
        let source = info.type
        guard source.dtype != nil || GGMLBlockCodec.canDequantize(source) else {
            throw CheckpointError(
                .unsupportedDType,
                "tensor '\(info.name)' has ggml type \(source.name), which nf4kit cannot decode to requantize it "
                    + "as \(type.name)",
                file: file, byteOffset: info.recordOffset, tensor: info.name)
        }
        let rowLength = info.dimensions.first ?? 1
        guard
            let sourceRowBytes = source.rowByteCount(elementCount: rowLength),
            let targetRowBytes = type.rowByteCount(elementCount: rowLength),
            let totalBytes = type.byteCount(dimensions: info.dimensions)
        else {
            throw CheckpointError(
                .shapeMismatch, "tensor '\(info.name)' rows of \(rowLength) cannot be stored as \(type.name)",
                file: file, byteOffset: info.recordOffset, tensor: info.name)
        }
        let rows = rowLength == 0 ? 0 : info.elementCount / rowLength
        let rowsPerChunk = max(1, chunkElementCount / max(1, rowLength))
        let chunks = (rows + rowsPerChunk - 1) / rowsPerChunk
        return MappedRegion(filling: totalBytes, description: "\(info.name) as \(type.name)") { outRaw in
            outRaw.initializeMemory(as: UInt8.self, repeating: 0)
            let target = SharedOutput(base: outRaw)
            _ = ParallelRunner.map(count: chunks, threads: threads) { chunk in
                let firstRow = chunk * rowsPerChunk
                let rowCount = min(rowsPerChunk, rows - firstRow)
                let count = rowCount * rowLength
                var values = [Float](repeating: 0, count: count)
                bytes.withUnsafeBytes { raw in
                    let slice = UnsafeRawBufferPointer(
                        rebasing: raw[(firstRow * sourceRowBytes)..<((firstRow + rowCount) * sourceRowBytes)])
                    values.withUnsafeMutableBufferPointer { decoded in
                        if let dtype = source.dtype {
                            GGMLBlockCodec.decode(slice, as: dtype, into: decoded)
                        } else {
                            GGMLBlockCodec.dequantize(slice, as: source, into: decoded)
                        }
                    }
                }
                let destination = UnsafeMutableRawBufferPointer(
                    rebasing: target.base[(firstRow * targetRowBytes)..<((firstRow + rowCount) * targetRowBytes)])
                values.withUnsafeBufferPointer { decoded in
                    if let dtype = type.dtype {
                        GGMLBlockCodec.encode(decoded, as: dtype, into: destination)
                    } else {
                        GGMLBlockCodec.quantize(decoded, as: type, into: destination)
                    }
                }
            }
        }.all
    }
}

// @unchecked Sendable because chunk jobs write disjoint byte ranges of one buffer that outlives the parallel run.
private struct SharedOutput: @unchecked Sendable {
    let base: UnsafeMutableRawBufferPointer
}
