import NF4KitCore
import NF4KitQuant

/// A checkpoint seen as logical tensors: each 4-bit group is one tensor of its logical shape, companions vanish.
///
/// Built from headers plus the quant-state blobs; shared by the memory breakdown, the training estimate and the
/// tensor table so that they all count the same things.
struct CheckpointAnalysis: Sendable {
    /// One logical tensor.
    struct Entry: Sendable {
        var name: String
        /// The stored dtype; for a 4-bit group the dtype the weight had before quantization.
        var dtype: DType
        var shape: Shape
        var parameterCount: Int
        /// Bytes stored for this tensor, companions included.
        var storedByteCount: Int
        /// The 4-bit group, boxed: stored inline it would make every entry (millions in a hostile header) about
        /// 250 bytes larger.
        var group: BnbQuantizedWeight? { groupBox?.group }
        private var groupBox: GroupBox?
        /// The ggml block type a GGUF file stores it in (`Q8_0`, `Q4_K`; ``dtype`` is then `U8`), `nil` otherwise.
        var ggmlType: String? = nil
        /// Whether the memory comparison quantizes it (a 4-bit group, or a Linear weight of a plain checkpoint).
        var isQuantizable: Bool
        /// Floating-point tensors are converted by the comparison; others (ints, bool, complex) keep their bytes.
        var isFloatingPoint: Bool { ggmlType != nil || (dtype.isFloatingPoint && dtype != .c64) }
        /// The module path: the name without its final `.weight`.
        var modulePath: String { name.hasSuffix(".weight") ? String(name.dropLast(".weight".count)) : name }

        init(
            name: String, dtype: DType, shape: Shape, parameterCount: Int, storedByteCount: Int,
            group: BnbQuantizedWeight?, ggmlType: String? = nil, isQuantizable: Bool
        ) {
            self.name = name
            self.dtype = dtype
            self.shape = shape
            self.parameterCount = parameterCount
            self.storedByteCount = storedByteCount
            self.groupBox = group.map(GroupBox.init)
            self.ggmlType = ggmlType
            self.isQuantizable = isQuantizable
        }
    }

    final class GroupBox: Sendable {
        let group: BnbQuantizedWeight
        init(_ group: BnbQuantizedWeight) { self.group = group }
    }

    var entries: [Entry]
    var groups: [BnbQuantizedWeight]
    /// Whether the quantizable set comes from the checkpoint's own 4-bit groups (else from the name rule).
    var hasFourBitGroups: Bool { !groups.isEmpty }

    /// - Parameters:
    ///   - isAdapter: adapters are never quantized, so nothing is quantizable in them.
    ///   - ggmlBlockTypes: the tensors a GGUF file stores in ggml block types (name -> type name), read as stored
    ///     (`U8` bytes, logical shape): they count as floating-point weights of the model.
    init(checkpoint: Checkpoint, isAdapter: Bool, ggmlBlockTypes: [String: String] = [:]) throws(CheckpointError) {
        let groups = try BnbQuantizedWeight.groups(in: checkpoint.tensors)
        self.groups = groups
        let members = Set(groups.flatMap(\.memberNames))
        let groupByName = Dictionary(groups.map { ($0.weightName, $0) }, uniquingKeysWith: { first, _ in first })
        var entries: [Entry] = []
        entries.reserveCapacity(checkpoint.tensors.count)
        for tensor in checkpoint.tensors {
            if let group = groupByName[tensor.name] {
                let stored = group.members.reduce(0) { $0 + $1.descriptor.byteCount }
                entries.append(
                    Entry(
                        name: group.weightName, dtype: group.tensor.dtype, shape: group.tensor.shape,
                        parameterCount: group.tensor.elementCount, storedByteCount: stored, group: group,
                        isQuantizable: !isAdapter))
            } else if !members.contains(tensor.name) {
                let ggmlType = ggmlBlockTypes[tensor.name]
                let ruleDType = ggmlType != nil ? DType.f16 : tensor.dtype
                let quantizable =
                    !isAdapter && groups.isEmpty
                    && BnbQuantizationPlan().shouldQuantize(name: tensor.name, dtype: ruleDType, shape: tensor.shape)
                // llama.cpp's rope_freqs (Llama 3 rope scaling) is a constant computed from config.json, not a weight.
                let isConstant = checkpoint.format == .gguf && tensor.name == "rope_freqs.weight"
                entries.append(
                    Entry(
                        name: tensor.name, dtype: tensor.dtype, shape: tensor.shape,
                        parameterCount: isConstant ? 0 : tensor.descriptor.elementCount,
                        storedByteCount: tensor.descriptor.byteCount,
                        group: nil, ggmlType: ggmlType, isQuantizable: quantizable))
            }
        }
        self.entries = entries
    }

    var parameterCount: Int { entries.reduce(0) { $0 + $1.parameterCount } }
}
