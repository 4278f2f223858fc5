public import NF4KitCore

/// The planned layout of a safetensors file: header bytes and each tensor's place, computed from shapes alone.
///
/// Ordering, padding and JSON text follow the reference writer (`safetensors.numpy.save_file`, 0.8.0): tensors
/// sorted by dtype rank descending then name (byte-wise), packed back to back from offset 0, compact JSON with
/// `__metadata__` first, padded with spaces to a multiple of 8.
public struct SafetensorsLayout: Sendable {
    /// One planned tensor.
    public struct Entry: Sendable, Hashable {
        public var name: String
        public var dtype: DType
        public var shape: Shape
        public var byteCount: Int
        /// Offset of the tensor's first byte within the file.
        public var fileOffset: Int64
    }

    /// Tensors in file order.
    public let entries: [Entry]
    /// The 8-byte length followed by the padded header JSON.
    public let headerBytes: [UInt8]
    /// Total file size.
    public let fileSize: Int64
    private let index: [String: Int]

    /// Plans a file for `tensors` and string `metadata` (`nil` omits `__metadata__`; pairs keep their order).
    ///
    /// - Throws: ``CheckpointError`` `.invalidArgument` for a duplicate or reserved name, a shape whose size
    ///   overflows or is not whole bytes, or a header over the 100 MB limit.
    public init(
        tensors: [(name: String, dtype: DType, shape: Shape)], metadata: [(String, String)]?
    ) throws(CheckpointError) {
        var seen = Set<String>()
        for tensor in tensors {
            guard tensor.name != "__metadata__" else {
                throw CheckpointError(.invalidArgument, "a tensor may not be named __metadata__", tensor: tensor.name)
            }
            guard seen.insert(tensor.name).inserted else {
                throw CheckpointError(
                    .invalidArgument, "tensor name '\(tensor.name)' appears twice", tensor: tensor.name)
            }
        }
        let sorted = tensors.sorted { a, b in
            if a.dtype.safetensorsRank != b.dtype.safetensorsRank {
                return a.dtype.safetensorsRank > b.dtype.safetensorsRank
            }
            return a.name.utf8.lexicographicallyPrecedes(b.name.utf8)
        }
        var members: [(key: String, value: JSONValue)] = []
        if let metadata {
            members.append(("__metadata__", .object(JSONObject(metadata.map { ($0.0, JSONValue.string($0.1)) }))))
        }
        var offset = 0
        var planned: [(String, DType, Shape, Int, Int)] = []
        for tensor in sorted {
            guard let count = tensor.shape.checkedElementCount, let bytes = tensor.dtype.byteCount(elementCount: count)
            else {
                throw CheckpointError(
                    .invalidArgument,
                    "tensor '\(tensor.name)': shape \(tensor.shape) of \(tensor.dtype) is not a whole number of bytes or overflows",
                    tensor: tensor.name)
            }
            let info = JSONObject([
                ("dtype", .string(tensor.dtype.safetensorsName)),
                ("shape", .array(tensor.shape.dimensions.map { JSONValue.integer($0) })),
                ("data_offsets", .array([.integer(offset), .integer(offset + bytes)])),
            ])
            members.append((tensor.name, .object(info)))
            planned.append((tensor.name, tensor.dtype, tensor.shape, bytes, offset))
            offset += bytes
        }
        var json = JSONWriter.compact.bytes(.object(JSONObject(members)))
        while json.count % 8 != 0 { json.append(0x20) }
        guard UInt64(json.count) <= SafetensorsReader.maxHeaderBytes else {
            throw CheckpointError(
                .invalidArgument, "the header would be \(json.count) bytes, over the 100 MB limit of safetensors")
        }
        var header = withUnsafeBytes(of: UInt64(json.count).littleEndian) { Array($0) }
        header += json
        headerBytes = header
        let dataStart = header.count
        entries = planned.map {
            Entry(name: $0.0, dtype: $0.1, shape: $0.2, byteCount: $0.3, fileOffset: Int64(dataStart + $0.4))
        }
        fileSize = Int64(dataStart + offset)
        index = Dictionary(uniqueKeysWithValues: entries.enumerated().map { ($1.name, $0) })
    }

    /// The planned entry for `name`.
    public func entry(named name: String) -> Entry? { index[name].map { entries[$0] } }
}

/// Writes a planned safetensors file, tensor by tensor, in any order and from any thread.
///
/// The header is written first; each ``write(_:bytes:)`` puts one tensor at its planned offset; ``finish()``
/// checks that every tensor was written, fsyncs and renames the temporary file (see ``OutputFile``) to `NAME`. Peak memory is the
/// caller's tensor buffers only.
// @unchecked Sendable: the set of written tensors is guarded by a lock; OutputFile writes with pwrite.
public final class SafetensorsWriter: @unchecked Sendable {
    public let layout: SafetensorsLayout
    private let file: OutputFile
    private let written: LockedSet

    /// Creates the partial file and writes the header.
    /// - Parameters:
    ///   - overwrite: Replace an existing `path` (never an input).
    ///   - inputs: Paths read by this run, which the output may not be.
    public convenience init(
        path: String, layout: SafetensorsLayout, overwrite: Bool, inputs: [String] = []
    ) throws(CheckpointError) {
        try self.init(file: try OutputFile(path: path, overwrite: overwrite, inputs: inputs), layout: layout)
    }

    /// Writes the header of `layout` into a created output file (see ``OutputFile``, ``OutputDirectory/createFile(_:)``).
    package init(file: OutputFile, layout: SafetensorsLayout) throws(CheckpointError) {
        self.layout = layout
        self.file = file
        written = LockedSet()
        try file.setLength(layout.fileSize)
        let header = layout.headerBytes
        let failure: CheckpointError? = header.withUnsafeBytes { raw in
            do throws(CheckpointError) { try file.write(raw, at: 0) } catch { return error }
            return nil
        }
        if let failure { throw failure }
    }

    /// The final path.
    public var path: String { file.path }

    /// Writes the bytes of tensor `name` (exactly its planned size, little-endian, row-major).
    public func write(_ name: String, bytes: UnsafeRawBufferPointer) throws(CheckpointError) {
        guard let entry = layout.entry(named: name) else {
            throw CheckpointError(
                .invalidArgument, "tensor '\(name)' is not in the planned layout", file: file.path, tensor: name)
        }
        guard bytes.count == entry.byteCount else {
            throw CheckpointError(
                .invalidArgument, "tensor '\(name)': got \(bytes.count) bytes, planned \(entry.byteCount)",
                file: file.path, tensor: name)
        }
        try file.write(bytes, at: entry.fileOffset)
        written.insert(name)
    }

    /// Writes `bytes` at byte `offset` inside tensor `name`, for tensors produced in pieces. The tensor counts as
    /// written when `completes` is true (the caller's last piece); pieces may come in any order before that.
    public func write(
        _ name: String, part bytes: UnsafeRawBufferPointer, at offset: Int, completes: Bool
    ) throws(CheckpointError) {
        guard let entry = layout.entry(named: name) else {
            throw CheckpointError(
                .invalidArgument, "tensor '\(name)' is not in the planned layout", file: file.path, tensor: name)
        }
        guard offset >= 0, offset + bytes.count <= entry.byteCount else {
            throw CheckpointError(
                .invalidArgument,
                "tensor '\(name)': bytes \(offset)..<\(offset + bytes.count) outside its \(entry.byteCount)",
                file: file.path, tensor: name)
        }
        try file.write(bytes, at: entry.fileOffset + Int64(offset))
        if completes { written.insert(name) }
    }

    /// Writes a tensor from a byte view.
    public func write(_ name: String, bytes: TensorBytes) throws(CheckpointError) {
        try bytes.withUnsafeBytes { (raw) throws(CheckpointError) in try write(name, bytes: raw) }
    }

    /// Checks that every planned tensor was written, then fsyncs and renames the file into place.
    public func finish() throws(CheckpointError) {
        let missing = layout.entries.map(\.name).filter { !written.contains($0) }
        guard missing.isEmpty else {
            throw CheckpointError(
                .invalidArgument, "\(missing.count) planned tensors were not written (first: '\(missing[0])')",
                file: file.path, tensor: missing[0])
        }
        try file.finish()
    }

    /// Writes a whole checkpoint's tensors unchanged (a plain copy in reference order).
    public static func write(
        _ tensors: [Tensor], metadata: [(String, String)]?, to path: String, overwrite: Bool, inputs: [String] = []
    ) throws(CheckpointError) {
        let layout = try SafetensorsLayout(tensors: tensors.map { ($0.name, $0.dtype, $0.shape) }, metadata: metadata)
        let writer = try SafetensorsWriter(path: path, layout: layout, overwrite: overwrite, inputs: inputs)
        for tensor in tensors { try writer.write(tensor.name, bytes: tensor.bytes) }
        try writer.finish()
    }
}
