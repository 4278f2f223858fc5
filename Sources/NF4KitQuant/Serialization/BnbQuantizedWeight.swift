public import NF4KitCore

/// One bitsandbytes 4-bit weight as stored in a checkpoint: `P.weight` plus its companion tensors (spec 6.1).
///
/// | key | dtype | shape |
/// |---|---|---|
/// | `P.weight` | U8 | `[(n+1)/2, 1]` packed codes |
/// | `P.weight.absmax` | F32 `[blocks]`, or U8 `[blocks]` with double quantization |
/// | `P.weight.quant_map` | F32 | `[16]` |
/// | `P.weight.nested_absmax` (double quantization only) | F32 | `[ceil(blocks/256)]` |
/// | `P.weight.nested_quant_map` (double quantization only) | F32 | `[256]` |
/// | `P.weight.quant_state.bitsandbytes__nf4` (or `__fp4`) | U8 | `[json byte count]` |
public struct BnbQuantizedWeight: Sendable {
    /// The packed weight's name, `P.weight`.
    public var weightName: String
    /// The rebuilt tensor; its buffers are views of the checkpoint's bytes.
    public var tensor: QuantizedTensor
    /// Every tensor name of the group (weight first, then the companions in state-dict order).
    public var memberNames: [String]

    /// Creates a group record.
    public init(weightName: String, tensor: QuantizedTensor, memberNames: [String]) {
        self.weightName = weightName
        self.tensor = tensor
        self.memberNames = memberNames
    }

    /// The suffixes (after `P.weight`) that belong to a 4-bit group, besides the quant-state blob.
    public static let companionSuffixes = [".absmax", ".quant_map", ".nested_absmax", ".nested_quant_map"]
    static let stateMarker = ".quant_state.bitsandbytes__"

    /// The module prefix `P` of `P.weight` (the weight name without `.weight`).
    public var modulePrefix: String {
        weightName.hasSuffix(".weight") ? String(weightName.dropLast(7)) : weightName
    }

    /// The weight name a quant-state blob name belongs to, or `nil` if `name` is not a blob name.
    public static func weightName(ofQuantState name: String) -> String? {
        for type in QuantType.allCases where name.hasSuffix(stateMarker + type.rawValue) {
            return String(name.dropLast((stateMarker + type.rawValue).count))
        }
        return nil
    }

    /// Every 4-bit group in a checkpoint, sorted by weight name.
    ///
    /// - Throws: ``CheckpointError`` naming the tensor (file and byte offset from its descriptor) when a group is
    ///   incomplete or inconsistent: a companion missing, sizes that disagree with the blob's shape and block size,
    ///   wrong dtypes, an unparsable blob, two blobs for one weight, or statistics without a blob.
    /// - Complexity: O(number of tensors) plus O(16 + 256) per group.
    public static func groups(in tensors: [String: Tensor]) throws(CheckpointError) -> [BnbQuantizedWeight] {
        var blobsByWeight: [String: String] = [:]
        for name in tensors.keys.sorted() {
            guard let weight = weightName(ofQuantState: name) else { continue }
            if let other = blobsByWeight[weight] {
                throw error(.malformedHeader, tensors[name]!, "weight '\(weight)' has two quant states ('\(other)' and this one)")
            }
            blobsByWeight[weight] = name
        }
        // Statistics without a blob mean the group lost its quant state: loaders would build a broken layer.
        for name in tensors.keys.sorted() {
            for suffix in [".quant_map", ".nested_absmax", ".nested_quant_map"] where name.hasSuffix(".weight" + suffix) {
                let weight = String(name.dropLast(suffix.count))
                if blobsByWeight[weight] == nil {
                    throw error(.malformedHeader, tensors[name]!, "bitsandbytes statistics without a quant_state blob for '\(weight)'")
                }
            }
        }
        var result: [BnbQuantizedWeight] = []
        for (weight, blob) in blobsByWeight.sorted(by: { $0.key < $1.key }) {
            result.append(try group(weight: weight, blobName: blob, in: tensors))
        }
        return result
    }

    /// Every 4-bit group among `tensors` (see ``groups(in:)-swift.type.method``), in the order their weights appear.
    public static func groups(in tensors: [Tensor]) throws(CheckpointError) -> [BnbQuantizedWeight] {
        var byName: [String: Tensor] = [:]
        for t in tensors {
            if byName[t.name] != nil { throw error(.malformedHeader, t, "tensor name '\(t.name)' appears twice") }
            byName[t.name] = t
        }
        let found = try groups(in: byName)
        var position: [String: Int] = [:]
        for (i, t) in tensors.enumerated() where position[t.name] == nil { position[t.name] = i }
        return found.sorted { (position[$0.weightName] ?? 0) < (position[$1.weightName] ?? 0) }
    }

    /// Whether `name` is any member of a 4-bit group's companions (not the packed weight itself).
    public static func isCompanionName(_ name: String) -> Bool {
        if weightName(ofQuantState: name) != nil { return true }
        return companionSuffixes.contains { name.hasSuffix(".weight" + $0) }
    }

    private static func group(weight: String, blobName: String, in tensors: [String: Tensor]) throws(CheckpointError)
        -> BnbQuantizedWeight
    {
        let blobTensor = tensors[blobName]!
        guard blobTensor.dtype == .u8, blobTensor.shape.rank == 1 else {
            throw error(.malformedHeader, blobTensor, "quant state must be a 1-D U8 tensor, found \(blobTensor.dtype) \(blobTensor.shape)")
        }
        var state: BnbQuantState
        do { state = try BnbQuantState(parsing: blobTensor.bytes.array, tensor: blobName) } catch {
            throw located(error, blobTensor)
        }
        guard blobName.hasSuffix(state.keySuffix) else {
            throw error(.malformedHeader, blobTensor, "blob says quant_type \"\(state.quantType.rawValue)\" but its name ends in another type")
        }
        guard BlockQuantizer.supportedBlocksizes.contains(state.blocksize) else {
            throw error(.malformedHeader, blobTensor, "blocksize \(state.blocksize) is not one bitsandbytes writes")
        }
        guard let n = state.shape.checkedElementCount else {
            throw error(.malformedHeader, blobTensor, "shape \(state.shape) overflows")
        }
        let blocks = (n + state.blocksize - 1) / state.blocksize

        func member(_ suffix: String) throws(CheckpointError) -> Tensor {
            guard let t = tensors[weight + suffix] else {
                throw CheckpointError(
                    .malformedHeader, "4-bit weight '\(weight)' has a quant state but no '\(weight + suffix)' tensor",
                    file: blobTensor.descriptor.file, byteOffset: blobTensor.descriptor.fileOffset, tensor: weight + suffix)
            }
            return t
        }
        func require(_ t: Tensor, _ dtype: DType, count: Int, _ what: String) throws(CheckpointError) {
            guard t.dtype == dtype, t.shape.checkedElementCount == count else {
                throw error(
                    .shapeMismatch, t,
                    "\(what) must be \(dtype) with \(count) elements for shape \(state.shape), blocksize \(state.blocksize); found \(t.dtype) \(t.shape)")
            }
        }
        func floats(_ t: Tensor) -> [Float] { t.bytes.elements(as: UInt32.self).map(Float.init(bitPattern:)) }

        let packed = try member("")
        let packedBytes = BlockQuantizer.packedByteCount(elementCount: n)
        guard packed.descriptor.byteCount == packedBytes, packed.bytes.count == packedBytes else {
            throw error(
                .shapeMismatch, packed,
                "packed weight is \(packed.bytes.count) bytes, expected \(packedBytes) for shape \(state.shape)")
        }
        let quantMap = try member(".quant_map")
        try require(quantMap, .f32, count: 16, "quant_map")
        let absmax = try member(".absmax")
        var names = [weight, weight + ".absmax", weight + ".quant_map"]
        let statistics: QuantizedTensor.Statistics
        if let nested = state.nested {
            try require(absmax, .u8, count: blocks, "absmax (8-bit codes)")
            let nestedAbsmax = try member(".nested_absmax")
            try require(nestedAbsmax, .f32, count: (blocks + nested.blocksize - 1) / nested.blocksize, "nested_absmax")
            let nestedMap = try member(".nested_quant_map")
            try require(nestedMap, .f32, count: 256, "nested_quant_map")
            names += [weight + ".nested_absmax", weight + ".nested_quant_map"]
            statistics = .double(
                .init(
                    codes: absmax.bytes, nestedAbsmax: nestedAbsmax.bytes, offset: nested.offset, nestedBlocksize: nested.blocksize,
                    nestedCodebook: floats(nestedMap)))
        } else {
            try require(absmax, .f32, count: blocks, "absmax")
            for suffix in [".nested_absmax", ".nested_quant_map"] where tensors[weight + suffix] != nil {
                throw error(.malformedHeader, tensors[weight + suffix]!, "double-quantization tensor present but the quant state has no nested fields")
            }
            statistics = .plain(absmax: absmax.bytes)
        }
        names.append(blobName)
        do {
            let tensor = try QuantizedTensor(
                quantType: state.quantType, blocksize: state.blocksize, shape: state.shape, dtype: state.dtype,
                packed: packed.bytes, statistics: statistics, codebook: floats(quantMap), name: weight)
            return BnbQuantizedWeight(weightName: weight, tensor: tensor, memberNames: names)
        } catch {
            throw located(error, packed)
        }
    }

    private static func error(_ code: CheckpointError.Code, _ tensor: Tensor, _ message: String) -> CheckpointError {
        CheckpointError(
            code, "tensor '\(tensor.name)': \(message)", file: tensor.descriptor.file, byteOffset: tensor.descriptor.fileOffset,
            tensor: tensor.name)
    }

    private static func located(_ error: CheckpointError, _ tensor: Tensor) -> CheckpointError {
        var copy = error
        if copy.file == nil { copy.file = tensor.descriptor.file }
        if copy.byteOffset == nil { copy.byteOffset = tensor.descriptor.fileOffset }
        if copy.tensor == nil { copy.tensor = tensor.name }
        return copy
    }
}

extension QuantizedTensor {
    /// The tensors bitsandbytes + transformers save for this weight under `weightName` (`P.weight`), in
    /// state-dict order: weight, absmax, quant_map, [nested_absmax, nested_quant_map,] quant_state blob (spec 6.1).
    ///
    /// Byte views are shared, not copied. Descriptors carry `file` = the in-memory buffer's description and
    /// `fileOffset` 0; a writer lays them out itself.
    public func bnbTensors(weightName: String) -> [Tensor] {
        func make(_ suffix: String, _ dtype: DType, _ shape: Shape, _ bytes: TensorBytes) -> Tensor {
            Tensor(
                descriptor: TensorDescriptor(
                    name: weightName + suffix, dtype: dtype, shape: shape, file: bytes.region.path,
                    fileOffset: Int64(bytes.range.lowerBound), byteCount: bytes.count),
                bytes: bytes)
        }
        let state = BnbQuantState(self)
        var result = [make("", .u8, [packed.count, 1], packed)]
        switch statistics {
        case .plain(let absmax):
            result.append(make(".absmax", .f32, [blockCount], absmax))
            result.append(make(".quant_map", .f32, [16], littleEndianBytes(codebook)))
        case .double(let dq):
            result.append(make(".absmax", .u8, [blockCount], dq.codes))
            result.append(make(".quant_map", .f32, [16], littleEndianBytes(codebook)))
            result.append(make(".nested_absmax", .f32, [dq.nestedAbsmax.count / 4], dq.nestedAbsmax))
            result.append(make(".nested_quant_map", .f32, [256], littleEndianBytes(dq.nestedCodebook)))
        }
        let blob = state.jsonBytes
        result.append(make("." + state.keySuffix, .u8, [blob.count], TensorBytes(copyingElementsOf: blob, description: "quant state")))
        return result
    }
}
