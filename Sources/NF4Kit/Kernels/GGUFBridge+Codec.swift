import NF4KitCore
import NF4KitQuant

// GGUFBridge's whole-tensor codec calls: ggml blocks to f32, and float values to a ggml type, each filling one owned
// buffer.
extension GGUFBridge {
    /// `count` f32 values decoded from `bytes` of ggml block type `format` (whole blocks, checked by the caller).
    static func decoded(_ bytes: TensorBytes, as format: GGMLType, count: Int, description: String) -> TensorBytes {
        MappedRegion(filling: count * 4, description: description) { out in
            bytes.withUnsafeBytes { raw in
                GGMLBlockCodec.dequantize(raw, as: format, into: out.bindMemory(to: Float.self))
            }
        }.all
    }

    /// The `count` values of float tensor `tensor` encoded as `type` (a block type or a float type) into `byteCount`
    /// bytes, through an f32 scratch buffer on the stack or heap.
    static func encoded(
        _ tensor: Tensor, count: Int, as type: GGMLType, byteCount: Int, description: String
    ) -> TensorBytes {
        let format: GGMLType? = type.isQuantized ? type : nil
        return MappedRegion(filling: byteCount, description: description) { out in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: count) { values in
                tensor.bytes.withUnsafeBytes { raw in FloatConversion.widen(raw, from: tensor.dtype, into: values) }
                let source = UnsafeBufferPointer(values)
                if let format {
                    GGMLBlockCodec.quantize(source, as: format, into: out)
                } else if let dtype = type.dtype {
                    GGMLBlockCodec.encode(source, as: dtype, into: out)
                }
            }
        }.all
    }
}
