import NF4KitCore

extension QuantizePipeline {
    /// NaN and infinite values among the elements of `bytes`, a tensor of `dtype`.
    static func countNonFinite(_ bytes: TensorBytes, dtype: DType) -> Int {
        bytes.withUnsafeBytes { countNonFinite($0, dtype: dtype) }
    }

    /// NaN and infinite values among a tensor's elements.
    static func countNonFinite(_ raw: UnsafeRawBufferPointer, dtype: DType) -> Int {
        var count = 0
        switch dtype {
        case .f16, .bf16:
            let exponentMask: UInt16 = dtype == .f16 ? 0x7C00 : 0x7F80
            for i in 0..<(raw.count / 2)
            where UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)) & exponentMask
                == exponentMask
            {
                count += 1
            }
        case .f32:
            for i in 0..<(raw.count / 4)
            where UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)) & 0x7F80_0000
                == 0x7F80_0000
            {
                count += 1
            }
        case .f64:
            for i in 0..<(raw.count / 8)
            where !Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)))
                .isFinite
            {
                count += 1
            }
        default: break
        }
        return count
    }
}
