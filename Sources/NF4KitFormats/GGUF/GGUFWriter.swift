public import NF4KitCore
import Synchronization

/// One tensor to be written: name, ggml type and ggml dimensions.
public struct GGUFTensorPlan: Hashable, Sendable {
    /// The tensor name (1–63 bytes, unique in the file).
    public var name: String
    /// The ggml type of the data.
    public var type: GGMLType
    /// ggml dimensions, fastest-moving first (`ne[0]` first), 1 to 4 of them.
    public var dimensions: [Int]

    /// Creates a plan entry from ggml dimensions (`ne[0]` first).
    public init(name: String, type: GGMLType, dimensions: [Int]) {
        self.name = name
        self.type = type
        self.dimensions = dimensions
    }

    /// Creates a plan entry from a PyTorch shape (outermost first): the dimensions are reversed, the bytes stay the
    /// same. A scalar (`[]`) is written as `ne = [1]`.
    public init(name: String, type: GGMLType, shape: Shape) {
        self.init(name: name, type: type, dimensions: shape.rank == 0 ? [1] : shape.dimensions.reversed())
    }

    /// Bytes of tensor data, or `nil` when the dimensions do not fit the type (see ``GGMLType/byteCount(dimensions:)``).
    public var byteCount: Int? { type.byteCount(dimensions: dimensions) }
}

/// The complete layout of a GGUF v3 file, planned from metadata and tensor shapes before any tensor data exists.
///
/// `header` is every byte before the data section (including its zero padding); tensor `i` goes at absolute
/// offset `tensorOffsets[i]`, tensors are contiguous in plan order, and every tensor, the last one too, is followed by
/// zero padding up to the alignment (spec gguf.md §7).
public struct GGUFLayout: Sendable {
    /// Header, metadata, tensor infos and the zero padding up to ``dataStart``.
    public let header: [UInt8]
    /// The alignment (`general.alignment`, default 32).
    public let alignment: Int
    /// Absolute offset of the data section.
    public let dataStart: Int64
    /// The tensors, in file order.
    public let tensors: [GGUFTensorPlan]
    /// Absolute offset of each tensor's data.
    public let tensorOffsets: [Int64]
    /// Bytes of each tensor's data (without padding).
    public let byteCounts: [Int]
    /// Length of the finished file.
    public let fileSize: Int64

    /// Plans a file.
    ///
    /// - Parameters:
    ///   - metadata: Key/value records in the order to write (`general.architecture` first by convention). Keys must
    ///     be unique and non-empty; arrays must be non-empty and not nested; `general.alignment`, when present, must be
    ///     a UINT32 power of two.
    ///   - tensors: The tensors in the order their data will be stored.
    /// - Throws: ``CheckpointError`` `.invalidArgument` naming the key or tensor that breaks a rule.
    /// - Complexity: O(metadata size + tensor count).
    public static func plan(
        metadata: [GGUFMetadataEntry], tensors: [GGUFTensorPlan]
    ) throws(CheckpointError) -> GGUFLayout {
        var out = GGUFEncoder()
        out.bytes.append(contentsOf: GGUFFile.magic)
        out.append(UInt32(3))
        out.append(UInt64(tensors.count))
        out.append(UInt64(metadata.count))
        var alignment = GGUFFile.defaultAlignment
        var keys = Set<String>()
        for entry in metadata {
            guard !entry.key.isEmpty, entry.key.utf8.count <= GGUFFile.maxKeyByteCount else {
                throw CheckpointError(.invalidArgument, "metadata key '\(entry.key)' must be 1 to 65535 bytes")
            }
            guard keys.insert(entry.key).inserted else {
                throw CheckpointError(.invalidArgument, "metadata key '\(entry.key)' is given twice")
            }
            if entry.key == "general.alignment" {
                guard case .uint32(let value) = entry.value, value != 0, value & (value - 1) == 0 else {
                    throw CheckpointError(
                        .invalidArgument, "general.alignment must be a UINT32 power of two, got \(entry.value)")
                }
                alignment = Int(value)
            }
            out.append(string: entry.key)
            try out.append(value: entry.value, key: entry.key)
        }
        var names = Set<String>()
        var byteCounts: [Int] = []
        var relativeOffsets: [Int64] = []
        var running: Int64 = 0
        for tensor in tensors {
            let name = tensor.name
            guard !name.isEmpty, name.utf8.count <= GGUFFile.maxTensorNameByteCount else {
                throw CheckpointError(
                    .invalidArgument,
                    "tensor name '\(name)' is \(name.utf8.count) bytes; GGUF (ggml) allows 1 to "
                        + "\(GGUFFile.maxTensorNameByteCount)",
                    tensor: name)
            }
            guard names.insert(name).inserted else {
                throw CheckpointError(.invalidArgument, "tensor '\(name)' is given twice", tensor: name)
            }
            guard (1...GGUFFile.maxDimensionCount).contains(tensor.dimensions.count) else {
                throw CheckpointError(
                    .invalidArgument, "tensor '\(name)' has \(tensor.dimensions.count) dimensions; GGUF allows 1 to 4",
                    tensor: name)
            }
            guard let byteCount = tensor.byteCount else {
                throw CheckpointError(
                    .invalidArgument,
                    "tensor '\(name)' with ggml dimensions \(tensor.dimensions) cannot be stored as \(tensor.type.name) "
                        + "(ne[0] must be a multiple of \(tensor.type.blockSize) and the size must fit)",
                    tensor: name)
            }
            out.append(string: name)
            out.append(UInt32(tensor.dimensions.count))
            for dimension in tensor.dimensions { out.append(UInt64(dimension)) }
            out.append(tensor.type.id)
            out.append(UInt64(running))
            byteCounts.append(byteCount)
            relativeOffsets.append(running)
            running += alignUp(Int64(byteCount), alignment)
        }
        let dataStart = alignUp(Int64(out.bytes.count), alignment)
        out.bytes.append(contentsOf: repeatElement(0, count: Int(dataStart) - out.bytes.count))
        return GGUFLayout(
            header: out.bytes, alignment: alignment, dataStart: dataStart, tensors: tensors,
            tensorOffsets: relativeOffsets.map { dataStart + $0 }, byteCounts: byteCounts, fileSize: dataStart + running
        )
    }

    private static func alignUp(_ value: Int64, _ alignment: Int) -> Int64 {
        let a = Int64(alignment)
        return value + (a - value % a) % a
    }

    /// The index of the tensor named `name`, or `nil`.
    /// - Complexity: O(n).
    public func index(of name: String) -> Int? { tensors.firstIndex { $0.name == name } }
}

/// Writes a planned GGUF file: the header first, then tensor data in any order, atomically.
///
/// The file is `PATH.partial` until ``finish()``, which checks that every tensor was written, fsyncs and renames it.
/// It is sized up front, so the padding between tensors and after the last one reads as zeros. Writes may come
/// from several tasks at once.
public final class GGUFWriter: Sendable {
    /// The layout being written.
    public let layout: GGUFLayout
    private let output: OutputFile
    private let written: Mutex<[Bool]>

    /// Creates the partial output and writes the header.
    ///
    /// - Parameters:
    ///   - path: The final path.
    ///   - layout: The plan from ``GGUFLayout/plan(metadata:tensors:)``.
    ///   - overwrite: Whether an existing file at `path` may be replaced.
    ///   - inputs: Files this run reads; `path` may never be one of them.
    /// - Throws: ``CheckpointError`` `.outputExists` or `.io`.
    public convenience init(
        path: String, layout: GGUFLayout, overwrite: Bool, inputs: [String] = []
    ) throws(CheckpointError) {
        try self.init(file: try OutputFile(path: path, overwrite: overwrite, inputs: inputs), layout: layout)
    }

    /// Writes the header of `layout` into a created output file (see ``OutputFile``).
    package init(file: OutputFile, layout: GGUFLayout) throws(CheckpointError) {
        self.layout = layout
        output = file
        written = Mutex(Array(repeating: false, count: layout.tensors.count))
        try output.setLength(layout.fileSize)
        let failure: CheckpointError? = layout.header.withUnsafeBytes { raw in
            do throws(CheckpointError) { try output.write(raw, at: 0) } catch { return error }
            return nil
        }
        if let failure { throw failure }
    }

    /// Writes the data of tensor `index` (exactly its planned byte count) at its planned offset.
    ///
    /// - Throws: ``CheckpointError`` `.invalidArgument` for a wrong size or a tensor written twice, `.io` on failure.
    public func write(tensorAt index: Int, _ bytes: UnsafeRawBufferPointer) throws(CheckpointError) {
        try claim(index, byteCount: bytes.count)
        try output.write(bytes, at: layout.tensorOffsets[index])
    }

    /// Checks that `byteCount` is tensor `index`'s planned size and that it is written once, and marks it written.
    private func claim(_ index: Int, byteCount: Int) throws(CheckpointError) {
        precondition(layout.tensors.indices.contains(index), "GGUFWriter.write: no tensor \(index)")
        let name = layout.tensors[index].name
        guard byteCount == layout.byteCounts[index] else {
            throw CheckpointError(
                .invalidArgument,
                "tensor '\(name)' needs \(layout.byteCounts[index]) bytes of \(layout.tensors[index].type.name) data, "
                    + "got \(byteCount)",
                file: output.path, tensor: name)
        }
        let fresh = written.withLock { flags in
            defer { flags[index] = true }
            return !flags[index]
        }
        guard fresh else {
            throw CheckpointError(
                .invalidArgument, "tensor '\(name)' was written twice", file: output.path, tensor: name)
        }
    }

    /// Writes `bytes` at byte `offset` inside tensor `index`, for tensors produced in pieces. The tensor counts as
    /// written when `completes` is true (the caller's last piece); pieces may come in any order before that.
    ///
    /// - Throws: ``CheckpointError`` `.invalidArgument` for a piece outside the tensor, `.io` on failure.
    public func write(
        tensorAt index: Int, part bytes: UnsafeRawBufferPointer, at offset: Int, completes: Bool
    ) throws(CheckpointError) {
        precondition(layout.tensors.indices.contains(index), "GGUFWriter.write: no tensor \(index)")
        let name = layout.tensors[index].name
        guard offset >= 0, offset <= layout.byteCounts[index] - bytes.count else {
            throw CheckpointError(
                .invalidArgument,
                "tensor '\(name)': bytes \(offset)..<\(offset + bytes.count) outside its \(layout.byteCounts[index])",
                file: output.path, tensor: name)
        }
        try output.write(bytes, at: layout.tensorOffsets[index] + Int64(offset))
        if completes { written.withLock { $0[index] = true } }
    }

    /// Writes the data of tensor `index` from a view; a view of a mapped file is copied inside the kernel when the
    /// system can (see ``OutputFile``).
    public func write(tensorAt index: Int, _ bytes: TensorBytes) throws(CheckpointError) {
        try claim(index, byteCount: bytes.count)
        try output.write(bytes, at: layout.tensorOffsets[index])
    }

    /// Checks that every tensor was written, then fsyncs and renames the file to its final name.
    ///
    /// - Throws: ``CheckpointError`` `.invalidArgument` naming a tensor that was never written, or `.io`.
    public func finish() throws(CheckpointError) {
        let missing = written.withLock { flags in flags.firstIndex(of: false) }
        if let missing {
            let name = layout.tensors[missing].name
            throw CheckpointError(
                .invalidArgument, "tensor '\(name)' was never written", file: output.path, tensor: name)
        }
        try output.finish()
    }

    /// Plans and writes a whole file from tensors already in memory (or mapped).
    ///
    /// - Parameters:
    ///   - path: The final path.
    ///   - metadata: Key/value records (see ``GGUFLayout/plan(metadata:tensors:)``).
    ///   - tensors: Each tensor's plan and data, in file order.
    ///   - overwrite: Whether an existing file may be replaced.
    ///   - inputs: Files this run reads.
    /// - Returns: The layout written.
    /// - Throws: ``CheckpointError`` from planning or writing.
    @discardableResult
    public static func write(
        path: String, metadata: [GGUFMetadataEntry], tensors: [(GGUFTensorPlan, TensorBytes)], overwrite: Bool,
        inputs: [String] = []
    ) throws(CheckpointError) -> GGUFLayout {
        let layout = try GGUFLayout.plan(metadata: metadata, tensors: tensors.map(\.0))
        let writer = try GGUFWriter(path: path, layout: layout, overwrite: overwrite, inputs: inputs)
        for (index, tensor) in tensors.enumerated() { try writer.write(tensorAt: index, tensor.1) }
        try writer.finish()
        return layout
    }
}

/// Little-endian encoding of GGUF header fields.
struct GGUFEncoder {
    var bytes: [UInt8] = []

    mutating func append<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func append(string: String) {
        append(UInt64(string.utf8.count))
        bytes.append(contentsOf: string.utf8)
    }

    mutating func append(value: GGUFValue, key: String) throws(CheckpointError) {
        append(value.type.rawValue)
        try appendPayload(value, key: key)
    }

    private mutating func appendPayload(_ value: GGUFValue, key: String) throws(CheckpointError) {
        switch value {
        case .uint8(let v): append(v)
        case .int8(let v): append(v)
        case .uint16(let v): append(v)
        case .int16(let v): append(v)
        case .uint32(let v): append(v)
        case .int32(let v): append(v)
        case .float32(let v): append(v.bitPattern)
        case .bool(let v): append(UInt8(v ? 1 : 0))
        case .string(let v): append(string: v)
        case .uint64(let v): append(v)
        case .int64(let v): append(v)
        case .float64(let v): append(v.bitPattern)
        case .array(let elementType, let elements):
            guard elementType != .array else {
                throw CheckpointError(.invalidArgument, "metadata key '\(key)' holds a nested array; ggml rejects them")
            }
            guard !elements.isEmpty else {
                throw CheckpointError(
                    .invalidArgument, "metadata key '\(key)' holds an empty array; omit the key instead")
            }
            append(elementType.rawValue)
            append(UInt64(elements.count))
            for element in elements {
                guard element.type == elementType else {
                    throw CheckpointError(
                        .invalidArgument,
                        "metadata array '\(key)' is declared \(elementType) but holds a \(element.type) element")
                }
                try appendPayload(element, key: key)
            }
        }
    }
}
