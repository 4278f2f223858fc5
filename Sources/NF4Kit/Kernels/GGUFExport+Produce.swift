import NF4KitCore
import NF4KitFormats
import NF4KitQuant

// The export's per-tensor conversion over f32 buffers: widen or dequantize, scale, permute rows, round, encode.
extension GGUFExport {
    /// Converts one item to its output bytes and hands them to `write`.
    static func produce(_ item: Item, write: TensorSink) throws {
        // A tensor computed on demand (a merge's, ``MergePipeline/tensorSource(base:adapters:options:)``) is computed
        // here, so that its error stops the export.
        try item.tensor.bytes.materialize()
        let count = item.shape.reduce(1, *)
        // F16 to F16 and F32 to F32 round-trip exactly through f32, so the bytes are copied (rows moved as wholes).
        let dtype = item.tensor.dtype
        if item.quantized == nil, item.scale == nil,
            (dtype == .f16 && item.type == .f16) || (dtype == .f32 && item.type == .f32)
        {
            defer { item.tensor.bytes.releasePages() }
            guard let permutation = item.permutation else {
                try write.copy(item.tensor.bytes)
                return
            }
            let out = UnsafeMutableRawBufferPointer.allocate(byteCount: max(item.tensor.bytes.count, 1), alignment: 64)
            defer { out.deallocate() }
            let target = UnsafeMutableRawBufferPointer(rebasing: out[0..<item.tensor.bytes.count])
            item.tensor.bytes.withUnsafeBytes { raw in
                permutation.apply(raw, into: target, rowByteCount: raw.count / permutation.rows)
            }
            try write(UnsafeRawBufferPointer(target))
            return
        }
        let values = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(count, 1))
        defer { values.deallocate() }
        if let q = item.quantized {
            let bytes = q.dequantized(as: q.dtype)
            bytes.withUnsafeBytes { FloatConversion.widen($0, from: q.dtype, into: values) }
        } else {
            item.tensor.bytes.withUnsafeBytes { raw in
                // PyTorch rounds F64 to F32 once, as the converter's `.to(torch.float32)` does.
                FloatConversion.widen(raw, from: dtype, into: values)
            }
            item.tensor.bytes.releasePages()
        }
        if let scale = item.scale {
            for i in 0..<count { values[i] *= scale }
        }
        var source = UnsafeBufferPointer(rebasing: values[0..<count])
        let permuted = UnsafeMutableBufferPointer<Float>.allocate(capacity: item.permutation == nil ? 0 : count)
        defer { permuted.deallocate() }
        if let permutation = item.permutation {
            permutation.apply(
                UnsafeRawBufferPointer(source), into: UnsafeMutableRawBufferPointer(permuted),
                rowByteCount: count / permutation.rows * 4)
            source = UnsafeBufferPointer(permuted)
        }
        // Values widened from f16 without a scale are f16 values already (rounding them again changes nothing).
        let widenedFromHalf = (item.quantized?.dtype ?? dtype) == .f16 && item.scale == nil
        if item.roundsToHalf && !widenedFromHalf { roundToHalf(UnsafeMutableBufferPointer(mutating: source)) }
        let byteCount = GGUFTensorPlan(name: item.ggufName, type: item.type, shape: Shape(item.shape)).byteCount!
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: max(byteCount, 1), alignment: 64)
        defer { out.deallocate() }
        let target = UnsafeMutableRawBufferPointer(rebasing: out[0..<byteCount])
        switch item.type {
        case .q8_0: GGMLBlockCodec.quantize(source, as: .q8_0, into: target)
        case let type where type.isQuantized: GGMLBlockCodec.quantize(source, as: type, into: target)
        case .f16: FloatConversion.narrow(source, to: .f16, into: target)
        case .bf16: FloatConversion.narrow(source, to: .bf16, into: target)
        default: FloatConversion.narrow(source, to: .f32, into: target)
        }
        try write(UnsafeRawBufferPointer(target))
    }

    /// Rounds every value to the nearest f16 (ties to even), in place: 4096 values at a time through the bulk
    /// conversions, which look the f16 table up once per call (per value, the lazy global's check cost more than the
    /// rounding).
    static func roundToHalf(_ values: UnsafeMutableBufferPointer<Float>) {
        let chunk = 4096
        withUnsafeTemporaryAllocation(byteCount: chunk * 2, alignment: 16) { halves in
            var start = 0
            while start < values.count {
                let end = min(start + chunk, values.count)
                let part = UnsafeMutableBufferPointer(rebasing: values[start..<end])
                let bytes = UnsafeMutableRawBufferPointer(rebasing: halves[0..<(part.count * 2)])
                FloatConversion.narrow(UnsafeBufferPointer(part), to: .f16, into: bytes)
                FloatConversion.widen(UnsafeRawBufferPointer(bytes), from: .f16, into: part)
                start = end
            }
        }
    }
}
