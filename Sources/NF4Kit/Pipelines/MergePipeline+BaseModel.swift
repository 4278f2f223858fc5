import NF4KitCore
import NF4KitFormats
import NF4KitQuant

/// bitsandbytes 4-bit settings of a base checkpoint or of the requested output.
struct QuantizationSettings: Sendable, Hashable {
    var quantType: QuantType
    var blocksize: Int
    var doubleQuantization: Bool
    /// `bnb_4bit_compute_dtype` for config.json.
    var computeDType: DType

    /// The `quantization_config` object transformers 5 writes into config.json (merge quantizes with the default
    /// plan, so `llm_int8_skip_modules` is `null`).
    var configJSON: JSONObject {
        BnbQuantizationConfig(
            quantType: quantType, doubleQuantization: doubleQuantization, computeDType: computeDType, skipModules: nil
        ).jsonObject
    }

    /// Whether `tensor` is stored with exactly these settings.
    func matches(_ tensor: QuantizedTensor) -> Bool {
        tensor.quantType == quantType && tensor.blocksize == blocksize && tensor.isDoubleQuantized == doubleQuantization
    }
}

/// The base checkpoint as logical tensors: one entry per tensor, a 4-bit weight and its companion tensors folded
/// into one entry with the shape recorded in its quant state.
struct BaseModel {
    enum Storage {
        case plain(Tensor)
        /// A bitsandbytes weight and all its member tensors in checkpoint order.
        case quantized(BnbQuantizedWeight, members: [Tensor])
    }
    struct Entry {
        var name: String
        var shape: Shape
        var storage: Storage
    }
    var entries: [Entry]
    /// The base's 4-bit settings (from its first quantized weight and config.json), `nil` for a plain base.
    var quantization: QuantizationSettings?

    var logicalTensors: [(name: String, shape: Shape)] { entries.map { ($0.name, $0.shape) } }

    init(source: ModelSource) throws(CheckpointError) {
        let tensors = source.checkpoint.tensors
        let groups = try BnbQuantizedWeight.groups(in: tensors)
        guard let first = groups.first else {
            entries = tensors.map { Entry(name: $0.name, shape: $0.shape, storage: .plain($0)) }
            quantization = nil
            return
        }
        let byName = source.checkpoint.tensorsByName
        var byWeight: [String: BnbQuantizedWeight] = [:]
        var companions = Set<String>()
        for group in groups {
            byWeight[group.weightName] = group
            companions.formUnion(group.memberNames.filter { $0 != group.weightName })
        }
        var entries: [Entry] = []
        for tensor in tensors {
            if let group = byWeight[tensor.name] {
                entries.append(
                    Entry(
                        name: tensor.name, shape: group.tensor.shape,
                        storage: .quantized(group, members: group.memberNames.map { byName[$0]! })))
            } else if !companions.contains(tensor.name) {
                entries.append(Entry(name: tensor.name, shape: tensor.shape, storage: .plain(tensor)))
            }
        }
        self.entries = entries
        let computeName = source.config?["quantization_config"]?["bnb_4bit_compute_dtype"]?.stringValue
        quantization = QuantizationSettings(
            quantType: first.tensor.quantType, blocksize: first.tensor.blocksize,
            doubleQuantization: first.tensor.isDoubleQuantized,
            computeDType: computeName.flatMap { DType(torchName: $0) } ?? first.tensor.dtype)
    }
}
