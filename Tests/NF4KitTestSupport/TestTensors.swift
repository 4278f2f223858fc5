public import NF4KitCore

/// An in-memory tensor of `dtype` holding `values` (row-major).
public func makeTensor(_ name: String, _ shape: [Int], _ values: [Float], dtype: DType = .f32) -> Tensor {
    precondition(Shape(shape).elementCount == values.count, "test tensor \(name): shape and values disagree")
    let bytes: TensorBytes
    switch dtype {
    case .f16: bytes = TensorBytes(copyingElementsOf: values.map { Float16($0).bitPattern.littleEndian })
    case .bf16:
        bytes = TensorBytes(
            copyingElementsOf: values.map { FloatConversion.bfloat16Bits(fromFloatBits: $0.bitPattern).littleEndian })
    default: bytes = TensorBytes(copyingElementsOf: values.map { $0.bitPattern.littleEndian })
    }
    let descriptor = TensorDescriptor(
        name: name, dtype: dtype, shape: Shape(shape), file: "memory", fileOffset: 0, byteCount: bytes.count)
    return Tensor(descriptor: descriptor, bytes: bytes)
}
