import NF4KitCore
import NF4KitFormats

/// Where a unit's output tensors go: the planned output files, the spill file of freshly quantized tensors
/// (whose sizes are known only after computing them), or the storage of a tensor computed on demand
/// (``OutputUnit/onDemandBytes(byteCount:form:options:pool:)``). Only the planned files take write-behind buffers.
enum TensorSink {
    case planned(WriterSink)
    case spill(SpillSink)
    /// Exactly the bytes of the unit's one output tensor.
    case memory(UnsafeMutableRawBufferPointer)

    func put(name: String, dtype: DType, shape: Shape, bytes: UnsafeRawBufferPointer) throws {
        switch self {
        case .planned(let writers): try writers.put(name: name, dtype: dtype, shape: shape, bytes: bytes)
        case .spill(let file): try file.put(name: name, dtype: dtype, shape: shape, bytes: bytes)
        case .memory(let destination):
            precondition(destination.count == bytes.count, "tensor '\(name)' does not fill its computed bytes")
            destination.copyMemory(from: bytes)
        }
    }

    /// The storage of a `.memory` sink, which a conversion writes straight into.
    var memory: UnsafeMutableRawBufferPointer? {
        if case .memory(let destination) = self { destination } else { nil }
    }
}

/// Writes each tensor into the planned output.
struct WriterSink: Sendable {
    let output: CheckpointOutput
    func put(name: String, dtype: DType, shape: Shape, bytes: UnsafeRawBufferPointer) throws {
        try output.write(name, bytes: bytes)
    }
}

/// A scratch file for freshly quantized tensors, appended in order and copied into the planned output later.
/// It is an unfinished ``OutputFile``, so it is removed when the pipeline ends, whatever happens.
final class SpillSink {
    struct Record {
        var name: String
        var dtype: DType
        var shape: Shape
        var offset: Int
        var byteCount: Int
    }
    private let file: OutputFile
    private(set) var records: [Record] = []
    private var end = 0

    init(path: String, inputs: [String]) throws(CheckpointError) {
        file = try OutputFile(path: path, overwrite: true, inputs: inputs)
    }

    func put(name: String, dtype: DType, shape: Shape, bytes: UnsafeRawBufferPointer) throws {
        try file.write(bytes, at: Int64(end))
        records.append(Record(name: name, dtype: dtype, shape: shape, offset: end, byteCount: bytes.count))
        end += bytes.count
    }

    /// Maps what was written, for copying into the final files.
    func mapped() throws(CheckpointError) -> MappedRegion? {
        end == 0 ? nil : try MappedRegion(mapping: file.partialPath)
    }
}

extension SpillSink {
    /// Copies every spilled tensor, in the order it was written, into `sink`.
    func copyAll(into sink: TensorSink) throws {
        guard let region = try mapped() else { return }
        for record in records {
            try region.withUnsafeBytes { raw in
                try sink.put(
                    name: record.name, dtype: record.dtype, shape: record.shape,
                    bytes: UnsafeRawBufferPointer(
                        rebasing: raw[record.offset..<(record.offset + record.byteCount)]))
            }
        }
    }
}
