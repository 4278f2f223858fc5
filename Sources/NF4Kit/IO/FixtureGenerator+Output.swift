import NF4KitCore
import NF4KitFormats

// Generated tensors go through a per-thread scratch buffer straight into the output.
extension FixtureGenerator {
    /// Generates tensor `name` (``fill(name:elementCount:as:into:)``) and writes it to `writer`.
    func write(
        _ name: String, elementCount: Int, as dtype: DType, to writer: CheckpointOutput
    ) throws(CheckpointError) {
        try ScratchBuffer().withBytes(elementCount * dtype.bitWidth / 8) { (buffer) throws(CheckpointError) in
            fill(name: name, elementCount: elementCount, as: dtype, into: buffer)
            try writer.write(name, bytes: UnsafeRawBufferPointer(buffer))
        }
    }

    /// Generates adapter tensor `name` (``fillAdapter(name:shape:into:)``, F32) and writes it to `writer`.
    func writeAdapter(_ name: String, shape: Shape, to writer: CheckpointOutput) throws(CheckpointError) {
        try ScratchBuffer().withBytes(shape.elementCount * 4) { (buffer) throws(CheckpointError) in
            fillAdapter(name: name, shape: shape, into: buffer)
            try writer.write(name, bytes: UnsafeRawBufferPointer(buffer))
        }
    }
}
