import NF4KitCore
import NF4KitFormats

/// What `nf4kit convert` does with a PEFT adapter: adapters stay adapters.
///
/// An adapter folder (`adapter_config.json` + `adapter_model.safetensors` or `adapter_model.bin`) converted to a
/// folder gives an adapter folder: `adapter_model.safetensors` (never sharded: PEFT loads one file) plus the input's
/// other files unchanged, `adapter_config.json` included, so PEFT and `nf4kit merge` load it. Only float targets
/// apply; quantizing the LoRA factors is refused. A `.gguf` output of an adapter is not handled here.
extension QuantizePipeline {
    /// The weight file's stem in an adapter folder output (`adapter_model.safetensors`).
    static let adapterFilePrefix = "adapter_model"
    /// Weight files of an adapter folder never copied as side files (the one read is converted; a second one would
    /// be stale).
    static let adapterWeightFileNames: Set<String> = ["adapter_model.safetensors", "adapter_model.bin"]

    /// Whether `source`, written in `form`, is converted as a PEFT adapter (a GGUF output of one is not).
    static func convertsAdapter(_ source: ModelSource, form: CheckpointOutput.Form) -> Bool {
        source.isAdapter && form != .gguf
    }

    /// Refuses to quantize a PEFT adapter, or a file of LoRA factors, to NF4/FP4.
    ///
    /// QLoRA trains the adapter in 16/32-bit on top of a 4-bit base; PEFT and the merge read float factors only,
    /// and a 4-bit `lora_A`/`lora_B` would be loaded by neither.
    /// - Throws: ``CheckpointError`` `.refused` (exit 65) naming the adapter and what to do instead.
    static func refuseQuantizingAdapter(_ source: ModelSource, target: Target) throws(CheckpointError) {
        guard target.quantType != nil else { return }
        let what: String
        var tensor: String?
        if source.isAdapter {
            what = "a PEFT LoRA adapter (adapter_config.json)"
        } else if let factor = source.checkpoint.tensors.first(where: { isLoRATensor($0.name) }) {
            what = "PEFT LoRA adapter weights (tensor '\(factor.name)')"
            tensor = factor.name
        } else {
            return
        }
        throw CheckpointError(
            .refused,
            "the input is \(what), and --to \(target.rawValue) would quantize its LoRA factors: adapters are trained "
                + "in 16/32-bit on top of a 4-bit base, and neither PEFT nor nf4kit merge loads 4-bit factors; "
                + "quantize the base model instead (nf4kit convert BASE --to \(target.rawValue)), or convert the adapter "
                + "with --to f16, bf16 or f32",
            file: source.path, tensor: tensor)
    }

    /// Whether `name` is a PEFT LoRA/DoRA tensor (`...lora_A.weight`, `...lora_embedding_B`, `...lora_magnitude_vector`).
    static func isLoRATensor(_ name: String) -> Bool {
        name.split(separator: ".").contains {
            $0 == "lora_A" || $0 == "lora_B" || $0 == "lora_embedding_A" || $0 == "lora_embedding_B"
                || $0 == "lora_magnitude_vector"
        }
    }
}
