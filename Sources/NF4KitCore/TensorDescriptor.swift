/// What a container says about one tensor: its name, element type, shape and where its bytes are.
public struct TensorDescriptor: Hashable, Sendable {
    /// The tensor's key in the checkpoint (`model.layers.0.self_attn.q_proj.weight`).
    public var name: String
    public var dtype: DType
    public var shape: Shape
    /// Path of the file that holds the bytes.
    public var file: String
    /// Offset of the first byte within `file`.
    public var fileOffset: Int64
    /// Length of the tensor's bytes.
    public var byteCount: Int

    public init(name: String, dtype: DType, shape: Shape, file: String, fileOffset: Int64, byteCount: Int) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.file = file
        self.fileOffset = fileOffset
        self.byteCount = byteCount
    }

    /// Number of elements.
    public var elementCount: Int { shape.elementCount }
}
