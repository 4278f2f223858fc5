import NF4KitCore
import NF4KitFormats

// The export's writer: each tensor's bytes go from `produce` straight into the GGUF output.
extension GGUFExport {
    /// Plans and writes a GGUF file through the one output layer (``CheckpointOutput/init(gguf:metadata:tensors:overwrite:inputs:)``):
    /// a fresh temporary name, the output safety rules, removal on failure or interrupt, then an atomic rename.
    @discardableResult
    static func writeFile(
        path: String, metadata: [GGUFMetadataEntry], tensors: [GGUFTensorPlan], overwrite: Bool, inputs: [String],
        threads: Int = 1, produce: @Sendable (Int, TensorSink) throws -> Void
    ) throws -> GGUFLayout {
        let layout = try GGUFLayout.plan(metadata: metadata, tensors: tensors)
        try CheckpointOutput.checkDestination(path, form: .gguf, overwrite: overwrite, inputs: inputs)
        let output = try CheckpointOutput(
            gguf: path, metadata: metadata, tensors: tensors, overwrite: overwrite, inputs: inputs)
        try ParallelRunner.map(count: tensors.count, threads: threads) { index in
            let name = tensors[index].name
            try produce(
                index,
                TensorSink(
                    write: { bytes in try output.write(name, bytes: bytes) },
                    copy: { view in try output.write(name, bytes: view) }))
        }
        try output.finish()
        return layout
    }
}

extension GGUFExport {
    /// Where `produce` puts one tensor's output bytes: bytes in memory, or a view of the input that is written
    /// unchanged (which the output copies file to file inside the kernel when it can).
    struct TensorSink {
        let write: (UnsafeRawBufferPointer) throws -> Void
        let copy: (TensorBytes) throws -> Void

        func callAsFunction(_ bytes: UnsafeRawBufferPointer) throws { try write(bytes) }
    }
}
