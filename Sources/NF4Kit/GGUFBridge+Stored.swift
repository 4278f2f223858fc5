package import NF4KitCore
import NF4KitFormats

extension GGUFBridge {
    /// Reads a GGUF file's header as a ``Checkpoint`` without decoding anything: what `inspect` needs.
    ///
    /// Plain tensors are views of the mapped file, as in ``readCheckpoint(path:)``. A tensor of a ggml block type,
    /// known or not (Q4_K, IQ2_XS, an id this build has never seen), is described as stored: dtype `U8`, its logical
    /// PyTorch shape (so parameter counts are right) and its stored byte count (so sizes are the file's); its bytes
    /// are the raw blocks. Such tensors are not values: use ``readCheckpoint(path:)`` to compute with them. NF4
    /// companion tensors are left as stored too.
    ///
    /// - Throws: ``CheckpointError`` from parsing only.
    /// - Complexity: O(header size); tensor data is not touched.
    package static func readStoredCheckpoint(path: String) throws(CheckpointError) -> Checkpoint {
        let file = try GGUFFile.read(path: path)
        let tensors = file.tensors.map { info in storedTensor(info, bytes: file.bytes(of: info), file: path) }
        return Checkpoint(format: .gguf, files: [path], tensors: tensors, metadata: file.textMetadata)
    }

    /// One tensor as stored: plain types as views, block types (known or not) as `U8` bytes with the logical shape.
    static func storedTensor(_ info: GGUFTensorInfo, bytes: TensorBytes, file: String) -> Tensor {
        Tensor(
            descriptor: TensorDescriptor(
                name: info.name, dtype: info.type.dtype ?? .u8, shape: info.shape, file: file,
                fileOffset: info.fileOffset, byteCount: info.byteCount),
            bytes: bytes)
    }
}
