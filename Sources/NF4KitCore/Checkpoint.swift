/// The container a checkpoint was read from.
public enum CheckpointFormat: String, Sendable, Hashable, Codable {
    case safetensors
    case gguf
    case torch
}

/// One tensor of a checkpoint: its descriptor plus a view of its bytes.
public struct Tensor: Sendable {
    public var descriptor: TensorDescriptor
    /// The bytes, little-endian, row-major and contiguous. The view keeps its storage alive.
    public var bytes: TensorBytes

    public init(descriptor: TensorDescriptor, bytes: TensorBytes) {
        self.descriptor = descriptor
        self.bytes = bytes
    }

    public var name: String { descriptor.name }
    public var dtype: DType { descriptor.dtype }
    public var shape: Shape { descriptor.shape }
}

/// A set of named tensors read from one file or one model folder, in a stable order.
///
/// Readers produce it; nothing in it is format specific except ``format`` and the string metadata.
/// Tensor bytes are views into memory-mapped files: building a `Checkpoint` reads headers only.
public struct Checkpoint: Sendable {
    public var format: CheckpointFormat
    /// The files the tensors come from, in the order they were read.
    public var files: [String]
    /// Tensors in file order (for a sharded folder: shard by shard, each in data order).
    public var tensors: [Tensor]
    /// File-level string metadata (safetensors `__metadata__`; for shards, the first shard's).
    public var metadata: [String: String]

    public init(format: CheckpointFormat, files: [String], tensors: [Tensor], metadata: [String: String] = [:]) {
        self.format = format
        self.files = files
        self.tensors = tensors
        self.metadata = metadata
    }

    /// The tensor named `name`, or `nil`.
    /// - Complexity: O(n); build a dictionary with ``tensorsByName`` for repeated look-ups.
    public func tensor(named name: String) -> Tensor? { tensors.first { $0.name == name } }

    /// A name-to-tensor dictionary (names are unique in every checkpoint a reader returns).
    public var tensorsByName: [String: Tensor] {
        Dictionary(tensors.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// Total bytes of tensor data.
    public var totalByteCount: Int { tensors.reduce(0) { $0 + $1.descriptor.byteCount } }
}
