import NF4KitCore

// The one place where the inspector recognises bitsandbytes 4-bit weights (nf4-bitsandbytes.md §6).
// Kept small and internal so that it can be replaced by NF4KitQuant's group finder at integration:
// everything else in this module only uses `FourBitGroup` and `FourBitGroups.find(in:)`.

/// One bitsandbytes 4-bit weight `W`: the packed codes plus its companion tensors and the quant-state blob.
struct FourBitGroup: Sendable, Hashable {
    /// The codes tensor's name, which is also the logical weight's name (`model.layers.0.mlp.up_proj.weight`).
    var name: String
    /// `"nf4"` or `"fp4"` (from the key suffix; the blob must agree).
    var quantType: String
    /// Elements per first-level block (the blob's `blocksize`).
    var blockSize: Int
    /// The torch dtype name of the quantized weight (the blob's `dtype`, e.g. `"bfloat16"`).
    var weightDType: String
    /// The logical shape (the blob's `shape`).
    var logicalShape: Shape
    /// Elements of the logical shape.
    var parameterCount: Int
    /// Elements per nested block when double-quantized (the blob's `nested_blocksize`), else `nil`.
    var nestedBlockSize: Int?
    /// The blob's `nested_offset` when double-quantized.
    var nestedOffset: Double?

    var codes: TensorDescriptor
    /// `W.absmax`: F32 per block, or U8 codes with double quantization.
    var absmax: TensorDescriptor
    var quantMap: TensorDescriptor
    var quantState: TensorDescriptor
    var nestedAbsmax: TensorDescriptor?
    var nestedQuantMap: TensorDescriptor?

    var isDoubleQuantized: Bool { nestedBlockSize != nil }

    /// Names of every stored tensor of the group, codes first.
    var memberNames: [String] {
        [codes.name, absmax.name, quantMap.name, nestedAbsmax?.name, nestedQuantMap?.name, quantState.name]
            .compactMap { $0 }
    }
}

/// Finds and validates the 4-bit groups of a checkpoint.
enum FourBitGroups {
    /// The infix of the quant-state key: `W.quant_state.bitsandbytes__nf4`.
    static let quantStateInfix = ".quant_state.bitsandbytes__"
    /// Largest quant-state blob we parse. Real blobs are 76–172 bytes (nf4-bitsandbytes.md §6.2).
    static let maxQuantStateBytes = 65_536
    /// Largest block size we accept; bitsandbytes allows 32...4096 (nf4-bitsandbytes.md §2.2).
    static let maxBlockSize = 1 << 20
    /// Companion suffixes that make no sense without a quant-state blob.
    static let companionSuffixes = [".quant_map", ".nested_absmax", ".nested_quant_map"]

    /// The groups in `checkpoint`, in the order their codes tensors appear, plus every member name.
    ///
    /// Reads only the quant-state blobs' bytes (a few hundred bytes each); everything else comes from the headers.
    /// - Throws: `CheckpointError` naming the tensor when a group is malformed: a missing companion, a blob that
    ///   is not a JSON object with the expected fields, or sizes that disagree with the blob's shape and block size.
    static func find(in checkpoint: Checkpoint) throws(CheckpointError) -> (groups: [FourBitGroup], members: Set<String>) {
        let byName = checkpoint.tensorsByName
        var found: [String: FourBitGroup] = [:]
        for tensor in checkpoint.tensors {
            guard let range = tensor.name.firstRange(of: quantStateInfix) else { continue }
            let weightName = String(tensor.name[..<range.lowerBound])
            let quantType = String(tensor.name[range.upperBound...])
            guard quantType == "nf4" || quantType == "fp4" else {
                throw failure(tensor.descriptor, "quant state of unknown 4-bit type '\(quantType)' (expected nf4 or fp4)")
            }
            if let other = found[weightName] {
                throw failure(tensor.descriptor, "weight '\(weightName)' has two quant states ('\(other.quantState.name)' and '\(tensor.name)')")
            }
            found[weightName] = try group(weightName: weightName, quantType: quantType, blob: tensor, byName: byName)
        }
        var members = Set<String>()
        for group in found.values { members.formUnion(group.memberNames) }
        // A companion without a blob means the group lost its quant state.
        for tensor in checkpoint.tensors where !members.contains(tensor.name) {
            for suffix in companionSuffixes where tensor.name.hasSuffix(suffix) {
                let weightName = String(tensor.name.dropLast(suffix.count))
                if byName[weightName] != nil {
                    throw failure(tensor.descriptor, "'\(tensor.name)' looks like a 4-bit companion but '\(weightName)' has no quant_state.bitsandbytes__nf4|fp4 tensor")
                }
            }
        }
        let ordered = checkpoint.tensors.compactMap { found[$0.name] }
        return (ordered, members)
    }

    private static func group(
        weightName: String, quantType: String, blob: Tensor, byName: [String: Tensor]
    ) throws(CheckpointError) -> FourBitGroup {
        let blobDescriptor = blob.descriptor
        guard blob.dtype == .u8, blob.shape.rank == 1 else {
            throw failure(blobDescriptor, "quant state must be a 1-D U8 tensor, found \(blob.dtype) \(blob.shape)")
        }
        guard blob.bytes.count <= maxQuantStateBytes else {
            throw CheckpointError(.limitExceeded, "quant state '\(blob.name)' is \(blob.bytes.count) bytes; at most \(maxQuantStateBytes) are accepted", file: blobDescriptor.file, byteOffset: blobDescriptor.fileOffset, tensor: blob.name)
        }
        let parsed: JSONValue
        do {
            parsed = try blob.bytes.withUnsafeBytes { (raw) throws(CheckpointError) in
                try StrictJSON.parse(raw, file: blobDescriptor.file, baseOffset: blobDescriptor.fileOffset, what: "quant state JSON of '\(blob.name)'")
            }
        } catch {
            var error = error
            error.tensor = blob.name
            throw error
        }
        guard case .object(let state) = parsed else {
            throw failure(blobDescriptor, "quant state of '\(weightName)' is not a JSON object")
        }
        guard let declaredType = state["quant_type"]?.stringValue else {
            throw failure(blobDescriptor, "quant state of '\(weightName)' has no string \"quant_type\"")
        }
        guard declaredType == quantType else {
            throw failure(blobDescriptor, "quant state of '\(weightName)' says quant_type \"\(declaredType)\" but its key ends in bitsandbytes__\(quantType)")
        }
        guard let blockSize = state["blocksize"]?.intValue, blockSize > 0, blockSize <= maxBlockSize else {
            throw failure(blobDescriptor, "quant state of '\(weightName)' has no positive integer \"blocksize\" up to \(maxBlockSize)")
        }
        guard let weightDType = state["dtype"]?.stringValue, DType(torchName: weightDType)?.isFloatingPoint == true else {
            throw failure(blobDescriptor, "quant state of '\(weightName)' has no floating-point torch \"dtype\"")
        }
        guard let dimensionValues = state["shape"]?.arrayValue, !dimensionValues.isEmpty else {
            throw failure(blobDescriptor, "quant state of '\(weightName)' has no \"shape\" array")
        }
        var dimensions: [Int] = []
        for value in dimensionValues {
            guard let dimension = value.intValue, dimension >= 0 else {
                throw failure(blobDescriptor, "quant state of '\(weightName)' has a \"shape\" entry that is not a non-negative integer")
            }
            dimensions.append(dimension)
        }
        let logicalShape = Shape(dimensions)
        guard let parameterCount = logicalShape.checkedElementCount else {
            throw failure(blobDescriptor, "quant state of '\(weightName)' declares shape \(logicalShape), whose element count overflows")
        }
        var nestedBlockSize: Int?
        var nestedOffset: Double?
        if state["nested_blocksize"] != nil || state["nested_offset"] != nil {
            guard let size = state["nested_blocksize"]?.intValue, size > 0, size <= maxBlockSize,
                let offset = state["nested_offset"]?.doubleValue
            else {
                throw failure(blobDescriptor, "quant state of '\(weightName)' is double-quantized but lacks a positive \"nested_blocksize\" or a numeric \"nested_offset\"")
            }
            nestedBlockSize = size
            nestedOffset = offset
        }

        func companion(_ suffix: String) throws(CheckpointError) -> TensorDescriptor {
            guard let tensor = byName[weightName + suffix] else {
                throw failure(blobDescriptor, "4-bit weight '\(weightName)' has a quant state but no '\(weightName + suffix)' tensor")
            }
            return tensor.descriptor
        }
        let codes = try companion("")
        let absmax = try companion(".absmax")
        let quantMap = try companion(".quant_map")

        // Codes: two per byte, (n + 1) / 2 bytes (nf4-bitsandbytes.md §3), whatever the storage dtype.
        let codeBytes = parameterCount / 2 + parameterCount % 2
        let storageBytes = max(1, codes.dtype.bitWidth / 8)
        let codesFit = codes.dtype == .u8 ? codes.byteCount == codeBytes : (codes.byteCount >= codeBytes && codes.byteCount - codeBytes < storageBytes)
        guard codesFit else {
            throw failure(codes, "4-bit weight '\(weightName)' of shape \(logicalShape) needs \(codeBytes) bytes of packed codes, the tensor has \(codes.byteCount)")
        }
        let blockCount = parameterCount / blockSize + (parameterCount % blockSize == 0 ? 0 : 1)
        let absmaxDType: DType = nestedBlockSize == nil ? .f32 : .u8
        guard absmax.dtype == absmaxDType, absmax.elementCount == blockCount else {
            throw failure(absmax, "'\(absmax.name)' must be \(absmaxDType) with \(blockCount) elements (\(parameterCount) parameters in blocks of \(blockSize)), found \(absmax.dtype) \(absmax.shape)")
        }
        guard quantMap.dtype == .f32, quantMap.elementCount == 16 else {
            throw failure(quantMap, "'\(quantMap.name)' must be F32 with 16 elements, found \(quantMap.dtype) \(quantMap.shape)")
        }
        var nestedAbsmax: TensorDescriptor?
        var nestedQuantMap: TensorDescriptor?
        if let nestedBlockSize {
            let nested = try companion(".nested_absmax")
            let nestedCount = blockCount / nestedBlockSize + (blockCount % nestedBlockSize == 0 ? 0 : 1)
            guard nested.dtype == .f32, nested.elementCount == nestedCount else {
                throw failure(nested, "'\(nested.name)' must be F32 with \(nestedCount) elements (\(blockCount) blocks in nested blocks of \(nestedBlockSize)), found \(nested.dtype) \(nested.shape)")
            }
            let map = try companion(".nested_quant_map")
            guard map.dtype == .f32, map.elementCount == 256 else {
                throw failure(map, "'\(map.name)' must be F32 with 256 elements, found \(map.dtype) \(map.shape)")
            }
            nestedAbsmax = nested
            nestedQuantMap = map
        } else {
            for suffix in [".nested_absmax", ".nested_quant_map"] where byName[weightName + suffix] != nil {
                throw failure(blobDescriptor, "'\(weightName + suffix)' exists but the quant state of '\(weightName)' is not double-quantized")
            }
        }
        return FourBitGroup(
            name: weightName, quantType: quantType, blockSize: blockSize, weightDType: weightDType,
            logicalShape: logicalShape, parameterCount: parameterCount, nestedBlockSize: nestedBlockSize,
            nestedOffset: nestedOffset, codes: codes, absmax: absmax, quantMap: quantMap, quantState: blobDescriptor,
            nestedAbsmax: nestedAbsmax, nestedQuantMap: nestedQuantMap)
    }

    @inline(never)
    private static func failure(_ tensor: TensorDescriptor, _ message: String) -> CheckpointError {
        CheckpointError(.malformedHeader, message, file: tensor.file, byteOffset: tensor.fileOffset, tensor: tensor.name)
    }
}
