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
    /// The stored tensors of the group as the checkpoint holds them: the packed weight first, then the companions
    /// in state-dict order, the quant-state blob last (their descriptors give each one's file, offset and bytes).
    public var members: [Tensor]

    /// Creates a group record.
    public init(weightName: String, tensor: QuantizedTensor, members: [Tensor]) {
        self.weightName = weightName
        self.tensor = tensor
        self.members = members
    }

    /// Every tensor name of the group (weight first, then the companions in state-dict order).
    public var memberNames: [String] { members.map(\.name) }

    /// The stored member whose name is the weight's name plus `suffix` (`""`, `".absmax"`, `".nested_absmax"`, ...).
    public func member(_ suffix: String) -> Tensor? { members.first { $0.name == weightName + suffix } }

    /// The quant-state blob tensor.
    public var quantStateTensor: Tensor { members[members.count - 1] }

    /// The suffixes (after `P.weight`) that belong to a 4-bit group, besides the quant-state blob.
    public static let companionSuffixes = [".absmax", ".quant_map", ".nested_absmax", ".nested_quant_map"]
    static let stateMarker = ".quant_state.bitsandbytes__"

    /// The module prefix `P` of `P.weight` (the weight name without `.weight`).
    public var modulePrefix: String {
        weightName.hasSuffix(".weight") ? String(weightName.dropLast(7)) : weightName
    }

    /// The weight name a quant-state blob name belongs to, or `nil` if `name` is not a blob name.
    public static func weightName(ofQuantState name: String) -> String? {
        for type in QuantType.allCases where name.hasSuffix(type.rawValue) {
            // Checked after the short suffix: most names are not blobs, and the concatenation allocates.
            let suffix = stateMarker + type.rawValue
            if name.hasSuffix(suffix) { return String(name.dropLast(suffix.count)) }
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
                throw error(
                    .malformedHeader, tensors[name]!,
                    "weight '\(weight)' has two quant states ('\(other)' and this one)")
            }
            blobsByWeight[weight] = name
        }
        // Statistics without a blob mean the group lost its quant state: loaders would build a broken layer.
        for name in tensors.keys.sorted() {
            for suffix in [".quant_map", ".nested_absmax", ".nested_quant_map"] where name.hasSuffix(".weight" + suffix)
            {
                let weight = String(name.dropLast(suffix.count))
                if blobsByWeight[weight] == nil {
                    throw error(
                        .malformedHeader, tensors[name]!,
                        "bitsandbytes statistics without a quant_state blob for '\(weight)'")
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
        // Only blobs, companions and the weights of blobs take part: a dictionary of every tensor would cost a
        // hash entry per tensor (millions in a hostile header) for names that are never looked up.
        var names = Set<String>(minimumCapacity: tensors.count)
        var weights = Set<String>()
        for t in tensors {
            guard names.insert(t.name).inserted else {
                throw error(.malformedHeader, t, "tensor name '\(t.name)' appears twice")
            }
            if let weight = weightName(ofQuantState: t.name) { weights.insert(weight) }
        }
        names = []
        var byName: [String: Tensor] = [:]
        func takesPart(_ name: String) -> Bool {
            if weights.contains(name) || isCompanionName(name) { return true }
            // Companions of a weight whose name does not end in `.weight`.
            return companionSuffixes.contains { suffix in
                name.hasSuffix(suffix) && weights.contains(String(name.dropLast(suffix.count)))
            }
        }
        for t in tensors where takesPart(t.name) { byName[t.name] = t }
        let found = try groups(in: byName)
        var position: [String: Int] = [:]
        for (i, t) in tensors.enumerated() where weights.contains(t.name) && position[t.name] == nil {
            position[t.name] = i
        }
        return found.sorted { (position[$0.weightName] ?? 0) < (position[$1.weightName] ?? 0) }
    }

    /// Whether `name` is any member of a 4-bit group's companions (not the packed weight itself).
    public static func isCompanionName(_ name: String) -> Bool {
        if weightName(ofQuantState: name) != nil { return true }
        return companionSuffixes.contains { name.hasSuffix($0) && name.hasSuffix(".weight" + $0) }
    }

    private static func group(
        weight: String, blobName: String, in tensors: [String: Tensor]
    ) throws(CheckpointError)
        -> BnbQuantizedWeight
    {
        let blobTensor = tensors[blobName]!
        guard blobTensor.dtype == .u8, blobTensor.shape.rank == 1 else {
            throw error(
                .malformedHeader, blobTensor,
                "quant state must be a 1-D U8 tensor, found \(blobTensor.dtype) \(blobTensor.shape)")
        }
        guard blobTensor.bytes.count <= BnbQuantState.maxJSONBytes else {
            throw error(
                .limitExceeded, blobTensor,
                "quant state is \(blobTensor.bytes.count) bytes; at most \(BnbQuantState.maxJSONBytes) are accepted")
        }
        var state: BnbQuantState
        do {
            state = try BnbQuantState(
                parsing: blobTensor.bytes.array, tensor: blobName, file: blobTensor.descriptor.file,
                baseOffset: blobTensor.descriptor.fileOffset)
        } catch {
            throw located(error, blobTensor)
        }
        guard blobName.hasSuffix(state.keySuffix) else {
            throw error(
                .malformedHeader, blobTensor,
                "blob says quant_type \"\(state.quantType.rawValue)\" but its name ends in another type")
        }

        // Every member must be where, and the size, the one layout derived from the state says.
        var members: [Tensor] = []
        for expected in state.storedTensors.dropLast() {
            let name = weight + expected.suffix
            guard let t = tensors[name] else {
                throw error(
                    .malformedHeader, blobTensor, "4-bit weight '\(weight)' has a quant state but no '\(name)' tensor")
            }
            if expected.suffix.isEmpty {
                // The packed codes: bitsandbytes may store them in another dtype (quant_storage); the bytes count.
                guard t.descriptor.byteCount == expected.byteCount, t.bytes.count == expected.byteCount else {
                    throw error(
                        .shapeMismatch, t,
                        "4-bit weight of shape \(state.shape) needs \(expected.byteCount) bytes of packed codes, the tensor has \(t.descriptor.byteCount)"
                    )
                }
            } else {
                guard t.dtype == expected.dtype, t.shape.checkedElementCount == expected.shape.elementCount else {
                    throw error(
                        .shapeMismatch, t,
                        "must be \(expected.dtype) with \(expected.shape.elementCount) elements for shape \(state.shape), blocksize \(state.blocksize); found \(t.dtype) \(t.shape)"
                    )
                }
            }
            members.append(t)
        }
        if state.nested == nil {
            for suffix in [".nested_absmax", ".nested_quant_map"] where tensors[weight + suffix] != nil {
                throw error(
                    .malformedHeader, tensors[weight + suffix]!,
                    "double-quantization tensor present but the quant state has no nested fields")
            }
        }
        members.append(blobTensor)
        func floats(_ t: Tensor) -> [Float] { t.bytes.elements(as: UInt32.self).map(Float.init(bitPattern:)) }
        let packed = members[0]
        let absmax = members[1]
        let quantMap = members[2]
        let statistics: QuantizedTensor.Statistics
        if let nested = state.nested {
            statistics = .double(
                .init(
                    codes: absmax.bytes, nestedAbsmax: members[3].bytes, offset: nested.offset,
                    nestedBlocksize: nested.blocksize,
                    nestedCodebook: floats(members[4])))
        } else {
            statistics = .plain(absmax: absmax.bytes)
        }
        do {
            let tensor = try QuantizedTensor(
                quantType: state.quantType, blocksize: state.blocksize, shape: state.shape, dtype: state.dtype,
                packed: packed.bytes, statistics: statistics, codebook: floats(quantMap), name: weight)
            return BnbQuantizedWeight(weightName: weight, tensor: tensor, members: members)
        } catch {
            throw located(error, packed)
        }
    }

    private static func error(_ code: CheckpointError.Code, _ tensor: Tensor, _ message: String) -> CheckpointError {
        CheckpointError(
            code, "tensor '\(tensor.name)': \(message)", file: tensor.descriptor.file,
            byteOffset: tensor.descriptor.fileOffset,
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
    /// - Throws: ``CheckpointError`` `.refused` when the double-quantization offset is NaN or infinite: bitsandbytes
    ///   would write `"nested_offset": Infinity`, which is not JSON, so nothing could read the file back.
    public func bnbTensors(weightName: String) throws(CheckpointError) -> [Tensor] {
        if case .double(let dq) = statistics { try BlockQuantizer.checkOffset(dq.offset, name: weightName) }
        func make(_ suffix: String, _ dtype: DType, _ shape: Shape, _ bytes: TensorBytes) -> Tensor {
            Tensor(
                descriptor: TensorDescriptor(
                    name: weightName + suffix, dtype: dtype, shape: shape, file: bytes.region.path,
                    fileOffset: Int64(bytes.range.lowerBound), byteCount: bytes.count),
                bytes: bytes)
        }
        let state = BnbQuantState(self)
        let blob = state.jsonBytes
        var bytesBySuffix: [String: TensorBytes] = [
            "": packed, "." + state.keySuffix: TensorBytes(copyingElementsOf: blob, description: "quant state"),
        ]
        bytesBySuffix[".quant_map"] = littleEndianBytes(codebook)
        switch statistics {
        case .plain(let absmax):
            bytesBySuffix[".absmax"] = absmax
        case .double(let dq):
            bytesBySuffix[".absmax"] = dq.codes
            bytesBySuffix[".nested_absmax"] = dq.nestedAbsmax
            bytesBySuffix[".nested_quant_map"] = littleEndianBytes(dq.nestedCodebook)
        }
        let result = state.storedTensors.map { stored in
            make(stored.suffix, stored.dtype, stored.shape, bytesBySuffix[stored.suffix]!)
        }
        return result
    }
}
