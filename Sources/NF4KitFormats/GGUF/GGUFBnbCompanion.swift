package import NF4KitCore

/// Our NF4-in-GGUF container convention (spec gguf.md §5.3 "Option A", documented in docs/gguf.md).
///
/// A bitsandbytes 4-bit weight `N` (as transformers serializes it: `N` packed U8 `[ceil(n/2), 1]`, `N.absmax`,
/// `N.quant_map`, optionally `N.nested_absmax` and `N.nested_quant_map`, and `N.quant_state.bitsandbytes__nf4`)
/// becomes companion tensors with unchanged bytes: `N.nf4` (I8), `N.absmax` (F32, or I8 holding the u8 codes under
/// double quantization), `N.absmax2` (F32) and `N.absmax_offset` (F32 `[1]`). The name `N` itself stays free, so
/// no runtime mistakes the codes for a weight. Code books and parameters go into `bnb.*` metadata, the quant-state
/// JSON is kept verbatim in `nf4kit.bnb.quant_state.N`, and `nf4kit.bnb.version` names this version of the
/// convention. ``encode(_:weights:metadata:)`` and ``decode(_:convertingBlockTensor:)`` are inverse: bitsandbytes
/// tensors come back with the same names, dtypes, shapes and bytes.
///
/// This type holds the container mechanics only. What a quant state means (its fields, the sizes they imply, whether
/// a group is consistent) is NF4KitQuant's single bitsandbytes model, which this module may not import: encoding
/// takes weights that model has already interpreted (``Weight``, built by `GGUFBridge.encodeCompanion` of the
/// NF4Kit module), and decoding rebuilds the stored tensors from the GGUF records alone, leaving the checks to the
/// reader of the result (`BnbQuantizedWeight.groups(in:)`), exactly as for a safetensors input.
package enum GGUFBnbCompanion {
    /// The version of our convention written to `nf4kit.bnb.version`.
    package static let version: UInt32 = 1
    /// The version of the spec's §5.3 layout written to `bnb.version`.
    package static let layoutVersion: UInt32 = 1
    /// Metadata key holding ``version``.
    package static let versionKey = "nf4kit.bnb.version"
    /// Metadata key listing the logical names of the 4-bit weights, in file order (ARRAY of STRING).
    package static let weightsKey = "nf4kit.bnb.weights"
    /// Prefix of the per-weight keys holding the verbatim quant-state JSON (STRING).
    package static let quantStatePrefix = "nf4kit.bnb.quant_state."

    /// A GGUF file's content ready for ``GGUFWriter/write(path:metadata:tensors:overwrite:inputs:)``.
    package struct Encoded: Sendable {
        /// Metadata records: the caller's first, then the `bnb.*` and `nf4kit.bnb.*` records.
        package var metadata: [GGUFMetadataEntry]
        /// Tensor plans and bytes, in file order.
        package var tensors: [(GGUFTensorPlan, TensorBytes)]
    }

    /// One bitsandbytes 4-bit weight, already interpreted by NF4KitQuant (from a `BnbQuantizedWeight`).
    package struct Weight: Sendable {
        /// The weight's name `N` (`P.weight`).
        package var name: String
        /// `"nf4"` or `"fp4"`.
        package var quantType: String
        /// First-level block size.
        package var blocksize: Int
        /// The torch name of the weight's dtype before quantization (`"bfloat16"`, ...): `bnb.compute_dtype`.
        package var dtypeName: String
        /// The logical shape.
        package var shape: [Int]
        /// Nested block size and offset with double quantization, else `nil`.
        package var nestedBlocksize: Int?
        package var nestedOffset: Float?
        /// The quant-state JSON, verbatim.
        package var quantStateJSON: String
        /// The stored tensors: packed codes, absmax, quant map, [nested absmax, nested quant map,] quant-state blob.
        package var members: [Tensor]

        /// Creates a weight record.
        package init(
            name: String, quantType: String, blocksize: Int, dtypeName: String, shape: [Int], nestedBlocksize: Int?,
            nestedOffset: Float?, quantStateJSON: String, members: [Tensor]
        ) {
            self.name = name
            self.quantType = quantType
            self.blocksize = blocksize
            self.dtypeName = dtypeName
            self.shape = shape
            self.nestedBlocksize = nestedBlocksize
            self.nestedOffset = nestedOffset
            self.quantStateJSON = quantStateJSON
            self.members = members
        }
    }

    /// Turns the tensors of a transformers 4-bit checkpoint into GGUF tensors and metadata.
    ///
    /// Tensors that are not members of one of `weights` keep their name and bytes and must have a plain GGUF type
    /// (F32, F16, BF16, F64, I8, I16, I32, I64).
    ///
    /// - Parameters:
    ///   - tensors: The checkpoint's tensors (any order; output follows it).
    ///   - weights: The checkpoint's 4-bit weights, as NF4KitQuant interprets them.
    ///   - metadata: Records to put first (e.g. `general.architecture`); `general.type = "model"` is added if absent.
    /// - Returns: Metadata and tensors; bytes are the input views except the small `absmax_offset` tensors.
    /// - Throws: ``CheckpointError``: `.unsupported` for storage layouts this version does not cover (packed codes
    ///   not U8 `[bytes, 1]`), `.unsupportedDType` for a plain tensor without a GGUF type.
    package static func encode(
        _ tensors: [Tensor], weights: [Weight], metadata: [GGUFMetadataEntry] = []
    ) throws(CheckpointError) -> Encoded {
        var groups: [String: Group] = [:]
        var consumed = Set<String>()
        for weight in weights {
            let group = try Group(weight)
            groups[weight.name] = group
            consumed.formUnion(weight.members.map(\.name))
        }

        var out: [(GGUFTensorPlan, TensorBytes)] = []
        var order: [Group] = []
        for tensor in tensors {
            if let group = groups[tensor.name] {
                order.append(group)
                out.append(contentsOf: group.companionTensors())
                continue
            }
            if consumed.contains(tensor.name) { continue }
            guard let type = GGMLType(dtype: tensor.dtype) else {
                throw CheckpointError(
                    .unsupportedDType,
                    "tensor '\(tensor.name)' has dtype \(tensor.dtype), which GGUF cannot store (and it is not part "
                        + "of a bitsandbytes 4-bit weight)",
                    file: tensor.descriptor.file, tensor: tensor.name)
            }
            out.append((GGUFTensorPlan(name: tensor.name, type: type, shape: tensor.shape), tensor.bytes))
        }

        var entries = metadata
        if !entries.contains(where: { $0.key == "general.type" }) {
            entries.append(GGUFMetadataEntry(key: "general.type", value: .string("model")))
        }
        if let first = order.first {
            entries.append(contentsOf: globalEntries(first, order))
            for group in order { entries.append(contentsOf: group.perWeightEntries(globals: first)) }
        }
        return Encoded(metadata: entries, tensors: out)
    }

    /// Whether the file uses this convention (has `nf4kit.bnb.version`).
    package static func isCompanionFile(_ file: GGUFFile) -> Bool { file[versionKey] != nil }

    /// Turns a GGUF file back into safetensors-style tensors: bitsandbytes groups for the companion tensors, views
    /// for plain tensors, and whatever `convertingBlockTensor` makes of ggml block types.
    ///
    /// - Parameters:
    ///   - file: A parsed GGUF file (with or without the convention).
    ///   - convertingBlockTensor: Called for tensors of ggml block types (Q8_0, Q4_K, ...); when `nil` such a
    ///     tensor is an `.unsupportedDType` error.
    /// - Returns: Tensors in file order; a bitsandbytes weight expands to its serialized tensors.
    /// - Throws: ``CheckpointError`` naming the file, the tensor record and what does not match the convention.
    package static func decode(
        _ file: GGUFFile,
        convertingBlockTensor: ((GGUFTensorInfo, TensorBytes) throws(CheckpointError) -> Tensor)? = nil
    ) throws(CheckpointError) -> [Tensor] {
        var groupsByNF4Name: [String: String] = [:]
        var consumed = Set<String>()
        if let versionValue = file[versionKey] {
            guard case .uint32(let found) = versionValue, found >= 1 else {
                throw CheckpointError(
                    .malformedHeader, "\(versionKey) must be a UINT32 of at least 1, found \(versionValue)",
                    file: file.path, byteOffset: recordOffset(file, versionKey))
            }
            guard found <= version else {
                throw CheckpointError(
                    .unsupported,
                    "the file uses NF4 companion convention version \(found); this reader knows \(version)",
                    file: file.path, byteOffset: recordOffset(file, versionKey))
            }
            guard case .array(.string, let names) = file[weightsKey] ?? .array(.string, []) else {
                throw CheckpointError(
                    .malformedHeader, "\(weightsKey) must be an ARRAY of STRING", file: file.path,
                    byteOffset: recordOffset(file, weightsKey))
            }
            for case .string(let name) in names {
                guard file.tensor(named: name + ".nf4") != nil else {
                    throw CheckpointError(
                        .malformedHeader, "\(weightsKey) lists '\(name)' but the file has no tensor '\(name).nf4'",
                        file: file.path, byteOffset: recordOffset(file, weightsKey), tensor: name)
                }
                groupsByNF4Name[name + ".nf4"] = name
                for suffix in [".nf4", ".absmax", ".absmax2", ".absmax_offset"] { consumed.insert(name + suffix) }
            }
        }
        var result: [Tensor] = []
        for info in file.tensors {
            if let weight = groupsByNF4Name[info.name] {
                result.append(contentsOf: try decodeGroup(weight, file: file))
                continue
            }
            if consumed.contains(info.name) { continue }
            if let dtype = info.type.dtype {
                result.append(Tensor(descriptor: file.descriptor(of: info, dtype: dtype), bytes: file.bytes(of: info)))
            } else if let convertingBlockTensor {
                result.append(try convertingBlockTensor(info, file.bytes(of: info)))
            } else {
                throw CheckpointError(
                    .unsupportedDType, "tensor '\(info.name)' has ggml type \(info.type.name); no converter was given",
                    file: file.path, byteOffset: info.recordOffset, tensor: info.name)
            }
        }
        return result
    }

    // MARK: - Encoding

    /// The parts of one bitsandbytes weight, as the companion tensors need them.
    private struct Group {
        var weight: String
        var quantType: String
        var blocksize: Int
        var dtypeName: String
        var shape: [Int]
        var nestedBlocksize: Int?
        var nestedOffset: Float?
        var stateJSON: String
        var packed: Tensor
        var absmax: Tensor
        var quantMap: [Float]
        var nestedAbsmax: Tensor?
        var nestedQuantMap: [Float]?

        var doubleQuant: Bool { nestedAbsmax != nil }

        init(_ w: Weight) throws(CheckpointError) {
            weight = w.name
            quantType = w.quantType
            blocksize = w.blocksize
            dtypeName = w.dtypeName
            shape = w.shape
            nestedBlocksize = w.nestedBlocksize
            nestedOffset = w.nestedOffset
            stateJSON = w.quantStateJSON
            func member(_ suffix: String) -> Tensor? { w.members.first { $0.name == w.name + suffix } }
            guard let packed = member(""), let absmax = member(".absmax"), let map = member(".quant_map") else {
                preconditionFailure("GGUFBnbCompanion.Weight '\(w.name)' lacks its packed, absmax or quant_map member")
            }
            guard packed.dtype == .u8, packed.shape == Shape([packed.bytes.count, 1]) else {
                throw CheckpointError(
                    .unsupported,
                    "packed weight '\(w.name)' is \(packed.dtype) \(packed.shape); convention v\(GGUFBnbCompanion.version) "
                        + "stores U8 [\(packed.bytes.count), 1] (quant_storage=uint8)",
                    file: packed.descriptor.file, tensor: w.name)
            }
            self.packed = packed
            self.absmax = absmax
            quantMap = floats(map)
            if w.nestedBlocksize != nil {
                guard let nested = member(".nested_absmax"), let nestedMap = member(".nested_quant_map") else {
                    preconditionFailure(
                        "GGUFBnbCompanion.Weight '\(w.name)' is double-quantized without nested members")
                }
                nestedAbsmax = nested
                nestedQuantMap = floats(nestedMap)
            }
        }

        /// `N.nf4` dims: `[last/2, rest reversed]` when the last logical dimension is even, else 1-D.
        var packedDimensions: [Int] {
            if let last = shape.last, last % 2 == 0, last > 0 {
                return [last / 2] + shape.dropLast().reversed()
            }
            return [packed.bytes.count]
        }

        func companionTensors() -> [(GGUFTensorPlan, TensorBytes)] {
            var out: [(GGUFTensorPlan, TensorBytes)] = [
                (GGUFTensorPlan(name: weight + ".nf4", type: .i8, dimensions: packedDimensions), packed.bytes),
                (
                    GGUFTensorPlan(
                        name: weight + ".absmax", type: doubleQuant ? .i8 : .f32,
                        dimensions: [absmax.shape.dimensions[0]]),
                    absmax.bytes
                ),
            ]
            if let nestedAbsmax, let offset = nestedOffset {
                out.append(
                    (
                        GGUFTensorPlan(
                            name: weight + ".absmax2", type: .f32, dimensions: [nestedAbsmax.shape.dimensions[0]]),
                        nestedAbsmax.bytes
                    ))
                out.append(
                    (
                        GGUFTensorPlan(name: weight + ".absmax_offset", type: .f32, dimensions: [1]),
                        TensorBytes(copyingElementsOf: [Float(offset).bitPattern.littleEndian])
                    ))
            }
            return out
        }

        /// Per-weight records: the verbatim quant state, the 1-D shape when needed, and overrides of global values.
        func perWeightEntries(globals: Group) -> [GGUFMetadataEntry] {
            var entries = [
                GGUFMetadataEntry(key: GGUFBnbCompanion.quantStatePrefix + weight, value: .string(stateJSON))
            ]
            if packedDimensions.count == 1, shape.count != 1 || shape[0] % 2 != 0 {
                entries.append(
                    GGUFMetadataEntry(
                        key: "bnb.shape." + weight, value: .uint64Array(shape.reversed().map { UInt64($0) })))
            }
            let globalFields = Dictionary(
                globals.fields.compactMap { f in f.1.map { (f.0, $0) } }, uniquingKeysWith: { a, _ in a })
            for case (let field, let value?) in fields where value != globalFields[field] {
                entries.append(GGUFMetadataEntry(key: "bnb.\(field).\(weight)", value: value))
            }
            return entries
        }

        /// The values that have a global `bnb.<field>` key.
        var fields: [(String, GGUFValue?)] {
            [
                ("quant_type", .string(quantType)),
                ("blocksize", .uint32(UInt32(clamping: blocksize))),
                ("double_quant", .bool(doubleQuant)),
                ("nested_blocksize", nestedBlocksize.map { .uint32(UInt32(clamping: $0)) }),
                ("compute_dtype", .string(dtypeName)),
                ("quant_map", .float32Array(quantMap)),
                ("nested_quant_map", nestedQuantMap.map { .float32Array($0) }),
            ]
        }
    }

    private static func globalEntries(_ first: Group, _ order: [Group]) -> [GGUFMetadataEntry] {
        var entries = [
            GGUFMetadataEntry(key: "bnb.version", value: .uint32(layoutVersion)),
            GGUFMetadataEntry(key: versionKey, value: .uint32(version)),
            GGUFMetadataEntry(key: weightsKey, value: .stringArray(order.map(\.weight))),
            GGUFMetadataEntry(key: "bnb.nibble_order", value: .string("high_first")),
            GGUFMetadataEntry(key: "bnb.qk_permuted", value: .bool(false)),
        ]
        for (field, value) in first.fields {
            if let value { entries.append(GGUFMetadataEntry(key: "bnb." + field, value: value)) }
        }
        return entries
    }

    // MARK: - Decoding

    private static func decodeGroup(_ weight: String, file: GGUFFile) throws(CheckpointError) -> [Tensor] {
        guard let codes = file.tensor(named: weight + ".nf4") else { preconditionFailure("decodeGroup without .nf4") }
        func fail(_ message: String, at info: GGUFTensorInfo? = nil, key: String? = nil) -> CheckpointError {
            let offset = key.flatMap { recordOffset(file, $0) } ?? (info ?? codes).recordOffset
            return CheckpointError(.malformedHeader, message, file: file.path, byteOffset: offset, tensor: weight)
        }
        func value(_ field: String) -> (GGUFValue, String)? {
            if let specific = file["bnb.\(field).\(weight)"] { return (specific, "bnb.\(field).\(weight)") }
            return file["bnb." + field].map { ($0, "bnb." + field) }
        }
        func floatArray(_ field: String, count: Int) throws(CheckpointError) -> [Float] {
            guard let (found, key) = value(field) else { throw fail("NF4 weight '\(weight)' has no bnb.\(field)") }
            guard case .array(.float32, let elements) = found, elements.count == count else {
                throw fail("\(key) must be an ARRAY of \(count) FLOAT32", key: key)
            }
            return elements.map { if case .float32(let v) = $0 { v } else { 0 } }
        }
        let stateKey = quantStatePrefix + weight
        guard case .string(let json) = file[stateKey] ?? .bool(false) else {
            throw fail("NF4 weight '\(weight)' has no STRING \(stateKey) (its quant-state JSON)", key: stateKey)
        }
        let doubleQuant: Bool
        if case .bool(let flag) = value("double_quant")?.0 {
            doubleQuant = flag
        } else {
            throw fail("NF4 weight '\(weight)' has no BOOL bnb.double_quant")
        }
        guard case .string(let quantType) = value("quant_type")?.0, quantType == "nf4" || quantType == "fp4" else {
            throw fail(
                "NF4 weight '\(weight)' has no bnb.quant_type of \"nf4\" or \"fp4\"", key: value("quant_type")?.1)
        }
        // The stored tensors are rebuilt from the records alone; whether their sizes agree with the quant state is
        // checked by whoever reads the result as bitsandbytes weights (BnbQuantizedWeight.groups), as for safetensors.
        guard codes.type == .i8 else {
            throw fail("'\(codes.name)' must be I8, found \(codes.type.name)", at: codes)
        }
        guard let absmax = file.tensor(named: weight + ".absmax") else { throw fail("'\(weight).absmax' is missing") }
        guard absmax.type == (doubleQuant ? .i8 : .f32), absmax.dimensions.count == 1 else {
            throw fail(
                "'\(absmax.name)' must be 1-D \(doubleQuant ? "I8" : "F32"), found \(absmax.type.name) \(absmax.dimensions)",
                at: absmax)
        }
        let source = absmax.recordOffset
        func heap(_ name: String, _ dtype: DType, _ shape: [Int], _ bytes: TensorBytes) -> Tensor {
            Tensor(
                descriptor: TensorDescriptor(
                    name: name, dtype: dtype, shape: Shape(shape), file: file.path, fileOffset: source,
                    byteCount: bytes.count),
                bytes: bytes)
        }
        func view(_ name: String, _ dtype: DType, _ shape: [Int], _ info: GGUFTensorInfo) -> Tensor {
            Tensor(
                descriptor: TensorDescriptor(
                    name: name, dtype: dtype, shape: Shape(shape), file: file.path, fileOffset: info.fileOffset,
                    byteCount: info.byteCount),
                bytes: file.bytes(of: info))
        }
        var out = [
            view(weight, .u8, [codes.byteCount, 1], codes),
            view(weight + ".absmax", doubleQuant ? .u8 : .f32, [absmax.elementCount], absmax),
            heap(weight + ".quant_map", .f32, [16], floatBytes(try floatArray("quant_map", count: 16))),
        ]
        if doubleQuant {
            guard let absmax2 = file.tensor(named: weight + ".absmax2"), absmax2.type == .f32,
                absmax2.dimensions.count == 1
            else { throw fail("'\(weight).absmax2' must be a 1-D F32 tensor") }
            out.append(view(weight + ".nested_absmax", .f32, [absmax2.elementCount], absmax2))
            out.append(
                heap(
                    weight + ".nested_quant_map", .f32, [256],
                    floatBytes(try floatArray("nested_quant_map", count: 256))))
        }
        let blob = Array(json.utf8)
        out.append(
            heap(
                weight + ".quant_state.bitsandbytes__" + quantType, .u8, [blob.count],
                TensorBytes(copyingElementsOf: blob)))
        return out
    }

    private static func recordOffset(_ file: GGUFFile, _ key: String) -> Int64? {
        file.metadata.first { $0.key == key }?.recordOffset
    }
}

private func floats(_ tensor: Tensor) -> [Float] { tensor.bytes.elements(as: UInt32.self).map(Float.init(bitPattern:)) }

private func floatBytes(_ values: [Float]) -> TensorBytes {
    TensorBytes(copyingElementsOf: values.map { $0.bitPattern.littleEndian })
}
