import NF4KitCore
import NF4KitFormats

// The import's f32 value buffers: widened from the file, copied out of a dequantized tensor, un-permuted, and
// encoded as the output dtype.
extension GGUFImport {
    /// `count` values of float `dtype` from `bytes`, widened to f32.
    static func widened(_ bytes: TensorBytes, from dtype: DType, count: Int) -> [Float] {
        var values = [Float](repeating: 0, count: count)
        values.withUnsafeMutableBufferPointer { out in
            bytes.withUnsafeBytes { FloatConversion.widen($0, from: dtype, into: out) }
        }
        return values
    }

    /// The f32 values of heap bytes we wrote ourselves (aligned, native order).
    static func floats(of bytes: TensorBytes) -> [Float] {
        bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    /// `values` of `rows` rows with llama.cpp's q/k row permutation undone.
    static func unpermuted(_ values: [Float], by permutation: LlamaRowPermutation, rows: Int) -> [Float] {
        var unpermuted = [Float](repeating: 0, count: values.count)
        values.withUnsafeBytes { source in
            unpermuted.withUnsafeMutableBytes { target in
                permutation.apply(source, into: target, rowByteCount: source.count / rows, toGGUF: false)
            }
        }
        return unpermuted
    }

    /// `values` as little-endian `dtype` bytes (f32 copied; f16/bf16 rounded to nearest even), in heap memory.
    static func encoded(_ values: [Float], as dtype: DType, description: String) -> TensorBytes {
        if dtype == .f32 {
            return values.withUnsafeBytes { TensorBytes(copying: $0, description: description) }
        }
        return MappedRegion(filling: values.count * 2, description: description) { out in
            _ = values.withUnsafeBufferPointer { FloatConversion.narrow($0, to: dtype, into: out) }
        }.all
    }
}
