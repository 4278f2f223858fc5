import NF4KitCore

/// What a PEFT LoRA adapter folder holds: its configuration (lora-merge.md §2) and its tensors (§3).
public struct AdapterSummary: Sendable, Hashable {
    /// `peft_type` (`"LORA"`), if given.
    public var peftType: String?
    /// `r`, default 8.
    public var rank: Int
    /// `lora_alpha`, default 8.
    public var alpha: Double
    /// `use_rslora`: scaling is `alpha / sqrt(r)` instead of `alpha / r`.
    public var usesRSLoRA: Bool
    /// `use_dora`.
    public var usesDoRA: Bool
    /// `alpha / r` (or `alpha / sqrt(r)` with rsLoRA).
    public var scaling: Double
    /// `target_modules` as written (sorted); a single string is a regular expression.
    public var targetModules: [String]
    /// Whether `target_modules` is one regular-expression string.
    public var targetModulesIsRegex: Bool
    /// `base_model_name_or_path`.
    public var baseModel: String?
    /// `task_type`.
    public var taskType: String?
    /// Distinct ranks found in the tensors (`lora_A.shape[0]`, `lora_embedding_A.shape[0]`).
    public var tensorRanks: [Int]
    /// Number of modules with a LoRA pair.
    public var loraModuleCount: Int
    /// Distinct last module names that carry LoRA (`q_proj`, `v_proj`), sorted.
    public var loraModuleNames: [String]
    /// Elements of the LoRA matrices (`lora_A`, `lora_B`, `lora_embedding_*`, `lora_magnitude_vector`, biases).
    public var loraParameterCount: Int
    /// Elements of every tensor of the adapter (LoRA plus full tensors such as `modules_to_save`): all trainable.
    public var trainableParameterCount: Int
    /// Bytes of all adapter tensors.
    public var byteCount: Int

    static let loraMarkers = [
        ".lora_A.", ".lora_B.", ".lora_embedding_A", ".lora_embedding_B", ".lora_magnitude_vector",
    ]

    /// - Throws: `.malformedHeader` naming `configPath` when `r` or `lora_alpha` has the wrong type.
    init(config: JSONObject, configPath: String, checkpoint: Checkpoint) throws(CheckpointError) {
        func bad(_ message: String) -> CheckpointError {
            CheckpointError(.malformedHeader, message, file: configPath, byteOffset: 0)
        }
        peftType = config["peft_type"]?.stringValue
        if let value = config["r"], !value.isNull {
            guard let r = value.intValue, r > 0 else {
                throw bad("adapter_config.json: \"r\" must be a positive integer")
            }
            rank = r
        } else {
            rank = 8
        }
        if let value = config["lora_alpha"], !value.isNull {
            guard let a = value.doubleValue, a.isFinite else {
                throw bad("adapter_config.json: \"lora_alpha\" must be a number")
            }
            alpha = a
        } else {
            alpha = 8
        }
        usesRSLoRA = config["use_rslora"]?.boolValue ?? false
        usesDoRA = config["use_dora"]?.boolValue ?? false
        scaling = usesRSLoRA ? alpha / Double(rank).squareRoot() : alpha / Double(rank)
        switch config["target_modules"] {
        case .string(let regex)?:
            targetModules = [regex]
            targetModulesIsRegex = true
        case .array(let items)?:
            targetModules = items.compactMap(\.stringValue).sorted()
            targetModulesIsRegex = false
        default:
            targetModules = []
            targetModulesIsRegex = false
        }
        baseModel = config["base_model_name_or_path"]?.stringValue
        taskType = config["task_type"]?.stringValue

        var ranks = Set<Int>(), modules = Set<String>(), shortNames = Set<String>()
        var lora = 0, all = 0, bytes = 0
        for tensor in checkpoint.tensors {
            let elements = tensor.descriptor.elementCount
            all += elements
            bytes += tensor.descriptor.byteCount
            guard let marker = AdapterSummary.loraMarkers.first(where: { tensor.name.contains($0) }),
                let range = tensor.name.firstRange(of: marker)
            else { continue }
            lora += elements
            let module = String(tensor.name[..<range.lowerBound])
            modules.insert(module)
            if let last = module.split(separator: ".").last { shortNames.insert(String(last)) }
            if marker == ".lora_A." || marker == ".lora_embedding_A", tensor.shape.rank >= 1 {
                ranks.insert(tensor.shape.dimensions[0])
            }
        }
        tensorRanks = ranks.sorted()
        loraModuleCount = modules.count
        loraModuleNames = shortNames.sorted()
        loraParameterCount = lora
        trainableParameterCount = all
        byteCount = bytes
    }
}
