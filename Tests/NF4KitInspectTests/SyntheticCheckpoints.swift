import Foundation
import NF4KitCore
import NF4KitFormats
import NF4KitTestSupport

/// Small checkpoints written at test time.
enum SyntheticCheckpoint {
    /// A tensor of zeros with the given dtype and shape.
    static func zeros(_ name: String, _ dtype: DType, _ shape: Shape) -> Tensor {
        let count = dtype.byteCount(elementCount: shape.elementCount)!
        let bytes = TensorBytes(copyingElementsOf: [UInt8](repeating: 0, count: count))
        return Tensor(
            descriptor: TensorDescriptor(
                name: name, dtype: dtype, shape: shape, file: "", fileOffset: 0, byteCount: count), bytes: bytes)
    }

    /// A 1-D U8 tensor holding `bytes`.
    static func bytes(_ name: String, _ bytes: [UInt8]) -> Tensor {
        Tensor(
            descriptor: TensorDescriptor(
                name: name, dtype: .u8, shape: [bytes.count], file: "", fileOffset: 0, byteCount: bytes.count),
            bytes: TensorBytes(copyingElementsOf: bytes))
    }

    /// A bitsandbytes NF4 weight of shape [2, 64] without double quantization (nf4-bitsandbytes.md §10 A's layout).
    static func nf4Group(_ weight: String, blob: String? = nil) -> [Tensor] {
        let text = blob ?? #"{"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [2, 64]}"#
        return [
            zeros(weight, .u8, [64, 1]),
            zeros(weight + ".absmax", .f32, [2]),
            zeros(weight + ".quant_map", .f32, [16]),
            bytes(weight + ".quant_state.bitsandbytes__nf4", Array(text.utf8)),
        ]
    }

    /// Writes `tensors` to `name` in `directory` and returns the path.
    static func write(
        _ tensors: [Tensor], in directory: TemporaryDirectory, name: String = "model.safetensors"
    ) throws -> String {
        let path = directory.file(name)
        try SafetensorsWriter.write(tensors, metadata: [("format", "pt")], to: path, overwrite: true)
        return path
    }
}
