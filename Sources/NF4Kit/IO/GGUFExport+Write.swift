import NF4KitCore
import NF4KitFormats

// The export's writer: each tensor's bytes go from `produce` straight into the GGUF output.
extension GGUFExport {
    /// Plans and writes a GGUF file through the one output layer (``CheckpointOutput/init(gguf:metadata:tensors:overwrite:inputs:)``):
    /// a fresh temporary name, the output safety rules, removal on failure or interrupt, then an atomic rename.
    @discardableResult
    static func writeFile(
        path: String, metadata: [GGUFMetadataEntry], tensors: [GGUFTensorPlan], overwrite: Bool, inputs: [String],
        threads: Int = 1, produce: @Sendable (Int, (UnsafeRawBufferPointer) throws -> Void) throws -> Void
    ) throws -> GGUFLayout {
        let layout = try GGUFLayout.plan(metadata: metadata, tensors: tensors)
        try CheckpointOutput.checkDestination(path, form: .gguf, overwrite: overwrite, inputs: inputs)
        let output = try CheckpointOutput(
            gguf: path, metadata: metadata, tensors: tensors, overwrite: overwrite, inputs: inputs)
        try ParallelRunner.map(count: tensors.count, threads: threads) { index in
            try produce(index) { bytes in try output.write(tensors[index].name, bytes: bytes) }
        }
        try output.finish()
        return layout
    }
}
