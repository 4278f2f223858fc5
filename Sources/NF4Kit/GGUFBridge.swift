package import NF4KitCore
package import NF4KitFormats
import NF4KitQuant

/// Connects GGUF files to the shared tensor model, using the ggml codecs of NF4KitQuant (which NF4KitFormats may not
/// import).
package enum GGUFBridge {
    /// Reads a GGUF file as a ``Checkpoint`` (format `.gguf`, PyTorch dimension order).
    ///
    /// Plain tensors are views of the mapped file; tensors of every ggml block type gguf-py dequantizes (Q4_0 ...
    /// Q8_0, the k-quants, IQ1-IQ4, TQ1_0/TQ2_0, MXFP4, NVFP4) are dequantized into heap F32 tensors with gguf-py's
    /// values; NF4 companion tensors (``GGUFBnbCompanion``) come back as the bitsandbytes tensors they were made from.
    ///
    /// - Throws: ``CheckpointError`` from parsing; `.unsupportedDType` naming the tensor and its type field for a type
    ///   nf4kit cannot decode (an unknown id, Q8_1, Q8_K, Q1_0).
    package static func readCheckpoint(path: String) throws(CheckpointError) -> Checkpoint {
        try checkpoint(from: GGUFFile.read(path: path))
    }

    /// The ``Checkpoint`` of an already parsed GGUF file; see ``readCheckpoint(path:)``.
    package static func checkpoint(from file: GGUFFile) throws(CheckpointError) -> Checkpoint {
        try ModelSource.checkpoint(of: file, ggmlBlocks: decodeBlocks)
    }

    /// The ggml block codecs of NF4KitQuant in the form the Formats readers take (``ModelSource/GGMLBlockDecoder``).
    static func decodeBlocks(
        _ info: GGUFTensorInfo, _ bytes: TensorBytes, _ file: String
    ) throws(CheckpointError)
        -> Tensor
    {
        try dequantize(info, bytes: bytes, file: file)
    }

    /// Turns the tensors of a transformers 4-bit checkpoint into a GGUF file's content in the NF4 companion convention
    /// (``GGUFBnbCompanion``): NF4KitQuant's bitsandbytes model finds and checks the 4-bit weights, the Formats
    /// module lays them out.
    ///
    /// - Throws: ``CheckpointError`` from ``BnbQuantizedWeight/groups(in:)-swift.type.method`` for an inconsistent
    ///   group (`.malformedHeader`, `.shapeMismatch`), and from
    ///   ``GGUFBnbCompanion/encode(_:weights:metadata:)``.
    package static func encodeCompanion(
        _ tensors: [Tensor], metadata: [GGUFMetadataEntry] = []
    ) throws(CheckpointError) -> GGUFBnbCompanion.Encoded {
        let weights = try BnbQuantizedWeight.groups(in: tensors).map { group in
            let q = group.tensor
            let state = BnbQuantState(q)
            return GGUFBnbCompanion.Weight(
                name: group.weightName, quantType: q.quantType.rawValue, blocksize: q.blocksize,
                dtypeName: q.dtype.torchName ?? "float32", shape: q.shape.dimensions,
                nestedBlocksize: state.nested?.blocksize, nestedOffset: state.nested?.offset,
                quantStateJSON: String(decoding: group.quantStateTensor.bytes.array, as: UTF8.self),
                members: group.members)
        }
        return try GGUFBnbCompanion.encode(tensors, weights: weights, metadata: metadata)
    }

    /// Whether ``dequantize(_:bytes:file:)`` decodes tensors of `type` (a ggml block type).
    package static func canDequantize(_ type: GGMLType) -> Bool {
        type.isKnown && type.isQuantized && GGMLBlockCodec.canDequantize(type)
    }

    /// Dequantizes a tensor of a ggml block type to a heap F32 tensor with the PyTorch shape, with gguf-py's values.
    ///
    /// The F32 result has `elementCount * 4` bytes, at most `bytes.count * blockSize * 4 / typeSize` (21 times the
    /// stored bytes for IQ1_S, the densest type), so the allocation is bounded by the file's size; it is checked
    /// against the stored bytes before anything is allocated.
    ///
    /// - Throws: ``CheckpointError`` `.unsupportedDType` (at the record's type field) for a type nf4kit cannot decode
    ///   (unknown ids, Q8_1, Q8_K, Q1_0); `.truncated` when `bytes` is not the size the type and shape need.
    /// - Complexity: O(elements); allocates the F32 result only.
    package static func dequantize(
        _ info: GGUFTensorInfo, bytes: TensorBytes, file: String
    ) throws(CheckpointError) -> Tensor {
        let format = info.type
        guard canDequantize(format) else {
            let what = format.isKnown ? "ggml type \(format.name)" : "unknown ggml type id \(format.id)"
            throw CheckpointError(
                .unsupportedDType,
                "tensor '\(info.name)' has \(what), which nf4kit cannot dequantize (it decodes every type gguf-py "
                    + "does: Q4_0 ... Q8_0, Q2_K ... Q6_K, IQ1_S ... IQ4_XS, TQ1_0, TQ2_0, MXFP4, NVFP4)",
                file: file, byteOffset: info.typeFieldOffset, tensor: info.name)
        }
        let count = info.elementCount
        guard let needed = format.byteCount(dimensions: info.dimensions), needed == bytes.count,
            count % format.blockSize == 0, count / format.blockSize * format.typeSize == needed
        else {
            throw CheckpointError(
                .truncated,
                "tensor '\(info.name)' of type \(format.name) and ggml shape \(info.dimensions) needs "
                    + "\(format.byteCount(dimensions: info.dimensions).map(String.init) ?? "too many") bytes of whole "
                    + "\(format.typeSize)-byte blocks, but \(bytes.count) bytes are there",
                file: file, byteOffset: info.fileOffset, tensor: info.name)
        }
        let values = decoded(
            bytes, as: format, count: count, description: "\(info.name) dequantized from \(format.name)")
        return Tensor(
            descriptor: TensorDescriptor(
                name: info.name, dtype: .f32, shape: info.shape, file: file, fileOffset: info.fileOffset,
                byteCount: count * 4),
            bytes: values)
    }

    /// Encodes a float tensor (F16, BF16, F32, F64) as ggml type `type` (F32, F16, BF16, F64, Q8_0 or Q4_0).
    ///
    /// The GGUF dimensions are the reverse of the tensor's shape; the bytes of a tensor already of `type` are passed
    /// through unchanged.
    /// - Returns: The plan entry and the encoded bytes (heap, or the input view).
    /// - Throws: ``CheckpointError`` `.invalidArgument` when the innermost dimension is not a multiple of 32 for a
    ///   block type, `.unsupportedDType` when the input is not a float tensor or `type` cannot be produced.
    package static func encode(
        _ tensor: Tensor, as type: GGMLType
    ) throws(CheckpointError) -> (
        GGUFTensorPlan, TensorBytes
    ) {
        let plan = GGUFTensorPlan(name: tensor.name, type: type, shape: tensor.shape)
        if type.dtype == tensor.dtype { return (plan, tensor.bytes) }
        guard tensor.dtype.isConvertibleFloat else {
            throw CheckpointError(
                .unsupportedDType, "tensor '\(tensor.name)' of dtype \(tensor.dtype) cannot be encoded as \(type.name)",
                file: tensor.descriptor.file, tensor: tensor.name)
        }
        let format: GGMLType? = type.isQuantized ? type : nil
        guard type.dtype?.isConvertibleFloat == true || (format.map(GGMLBlockCodec.canQuantize) ?? false) else {
            throw CheckpointError(
                .unsupportedDType, "nf4kit cannot encode ggml type \(type.name) (tensor '\(tensor.name)')",
                tensor: tensor.name)
        }
        guard let byteCount = plan.byteCount else {
            throw CheckpointError(
                .invalidArgument,
                "tensor '\(tensor.name)' of shape \(tensor.shape) cannot be stored as \(type.name): its innermost "
                    + "dimension must be a multiple of \(type.blockSize)",
                file: tensor.descriptor.file, tensor: tensor.name)
        }
        return (
            plan,
            encoded(
                tensor, count: tensor.shape.elementCount, as: type, byteCount: byteCount,
                description: "\(tensor.name) encoded as \(type.name)")
        )
    }

    /// The ggml type a tensor gets when a whole checkpoint is exported as `requested` (llama.cpp's conventions).
    ///
    /// Float tensors of rank 2 or more whose innermost dimension is a multiple of the block size get `requested`;
    /// 1-D float tensors (norms, biases) stay F32 when a block type is requested; float tensors whose rows are not
    /// whole blocks fall back to F16. Integer tensors keep their own type. `nil` for dtypes GGUF cannot store (U8,
    /// BOOL, FP8, ...): the caller decides (for bitsandbytes checkpoints use ``GGUFBnbCompanion``).
    package static func exportType(for tensor: Tensor, requested: GGMLType) -> GGMLType? {
        guard tensor.dtype.isConvertibleFloat else { return GGMLType(dtype: tensor.dtype) }
        guard requested.isQuantized else { return requested }
        guard tensor.shape.rank >= 2 else { return .f32 }
        let innermost = tensor.shape.dimensions.last ?? 0
        return innermost > 0 && innermost % requested.blockSize == 0 ? requested : .f16
    }

    /// The `general.file_type` value (llama.cpp `llama_ftype`) for a file whose weights are mostly `type`, or `nil`
    /// when llama.cpp has none for it. Write it as UINT32; with Q8_0/Q4_0 also write
    /// `general.quantization_version` = UINT32 2.
    package static func llamaFileType(for type: GGMLType) -> UInt32? {
        switch type {
        case .f32: 0
        case .f16: 1
        case .q4_0: 2
        case .q4_1: 3
        case .q8_0: 7
        case .bf16: 32
        default: nil
        }
    }
}
