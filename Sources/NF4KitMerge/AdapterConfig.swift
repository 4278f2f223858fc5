public import NF4KitCore

/// The settings of a PEFT LoRA adapter that decide how it merges, read from `adapter_config.json`.
///
/// Unknown keys are ignored (PEFT does the same); missing keys take PEFT's defaults (`r` 8, `lora_alpha` 8).
/// Everything that cannot be merged into the original base weights, or that this package does not implement,
/// is refused by ``init(json:file:)`` with a message that says why (spec lora-merge.md §2.1, §4.10).
public struct AdapterConfig: Sendable, Hashable {
    /// `peft_type`; always `"LORA"` once the config is accepted.
    public var peftType: String
    /// `r`, the default rank.
    public var rank: Int
    /// `lora_alpha`, the default alpha (a float in some files).
    public var alpha: Double
    /// `use_rslora`: scaling is alpha / sqrt(r) instead of alpha / r.
    public var useRSLoRA: Bool
    /// `rank_pattern` members in file order.
    public var rankPattern: [PatternEntry<Int>] { didSet { rankMatchers = AdapterConfig.compiled(rankPattern) } }
    /// `alpha_pattern` members in file order.
    public var alphaPattern: [PatternEntry<Double>] { didSet { alphaMatchers = AdapterConfig.compiled(alphaPattern) } }
    /// The keys of ``rankPattern`` and ``alphaPattern`` compiled once (a key that does not compile matches nothing).
    private var rankMatchers: [ModulePattern?]
    private var alphaMatchers: [ModulePattern?]
    /// `fan_in_fan_out` as written (the merger decides by the base tensor's shape, as PEFT effectively does).
    public var fanInFanOut: Bool
    /// `use_dora`.
    public var useDoRA: Bool
    /// `lora_bias`: `lora_B` carries a bias that is merged into the base bias.
    public var loraBias: Bool
    /// `bias` (`"none"`, `"all"`, `"lora_only"`): which trained base biases the adapter holds.
    public var bias: String
    /// `modules_to_save`: modules trained in full, whose tensors replace the base's.
    public var modulesToSave: [String]
    /// `target_modules` as a list (`nil` when the file has a regex string or null).
    public var targetModules: [String]?
    /// `target_modules` when it is a single regex string.
    public var targetModulesRegex: String?
    /// `base_model_name_or_path`.
    public var baseModelNameOrPath: String?
    /// `peft_version`, written since PEFT 0.18.
    public var peftVersion: String?

    /// One member of `rank_pattern` or `alpha_pattern`.
    public struct PatternEntry<Value: Sendable & Hashable>: Sendable, Hashable {
        /// The key as written: a Python regular expression matched against a module path (PEFT's rule, see
        /// ``AdapterConfig/patternMatches(_:module:)``).
        public var pattern: String
        public var value: Value
    }

    /// Reads and validates a parsed `adapter_config.json`.
    ///
    /// - Parameters:
    ///   - json: The parsed object (Core's strict JSON keeps member order, which the pattern rule needs).
    ///   - file: The config's path, for error messages.
    /// - Throws: ``CheckpointError`` `.refused` for adapters that cannot be merged into the original weights
    ///   (non-LoRA types, layer replication, activated LoRA, QALoRA, Arrow, residual-base initialisations),
    ///   `.unsupported` for LoRA features not implemented here, `.malformedHeader` for wrong JSON types.
    public init(json: JSONObject, file: String? = nil) throws(CheckpointError) {
        func bad(_ key: String, _ expected: String) -> CheckpointError {
            CheckpointError(.malformedHeader, "adapter_config.json: '\(key)' must be \(expected)", file: file)
        }
        func refuse(_ message: String) -> CheckpointError { CheckpointError(.refused, message, file: file) }
        func unsupported(_ message: String) -> CheckpointError { CheckpointError(.unsupported, message, file: file) }
        func isSet(_ key: String) -> Bool {
            guard let value = json[key] else { return false }
            switch value {
            case .null: return false
            case .bool(let flag): return flag
            case .array(let items): return !items.isEmpty
            case .object(let members): return members.count > 0
            case .string(let text): return !text.isEmpty
            case .number: return true
            }
        }

        guard let type = json["peft_type"] else { throw bad("peft_type", "present (\"LORA\")") }
        guard let typeName = type.stringValue else { throw bad("peft_type", "a string") }
        guard typeName == "LORA" else {
            throw refuse(
                "peft_type is '\(typeName)'; only LORA adapters can be merged (other PEFT types use different "
                    + "tensors and mathematics)")
        }
        peftType = typeName

        if isSet("layer_replication") {
            throw refuse(
                "layer_replication is set: the adapter was trained on replicated base layers, which cannot be merged into the original weights (PEFT refuses too)"
            )
        }
        if isSet("alora_invocation_tokens") {
            throw refuse(
                "alora_invocation_tokens is set: an activated LoRA only applies after its invocation tokens, so merging it into the weights is not possible"
            )
        }
        if isSet("use_qalora") {
            throw refuse("use_qalora is true: QALoRA adapters cannot be merged (PEFT cannot merge them either)")
        }
        if isSet("arrow_config") {
            throw refuse(
                "arrow_config is set: Arrow routes between adapters per token and cannot be merged into the weights")
        }
        for key in ["kasa_config", "monteclora_config", "use_bdlora"] where isSet(key) {
            throw unsupported(
                "\(key) is set: this LoRA variant has extra tensors or block-diagonal factors that nf4kit does not merge"
            )
        }
        if isSet("enable_lora") {
            throw unsupported("enable_lora is set: legacy MergedLinear adapters (PEFT <= 0.3) are not supported")
        }
        if isSet("target_parameters") {
            throw unsupported(
                "target_parameters is set: LoRA on raw parameters (MoE experts) is not supported by nf4kit merge")
        }
        if isSet("trainable_token_indices") {
            throw unsupported("trainable_token_indices is set: trainable-token rows are not supported by nf4kit merge")
        }
        if isSet("megatron_config") {
            throw unsupported("megatron_config is set: Megatron parallel layers are not supported")
        }
        if let initMode = json["init_lora_weights"]?.stringValue {
            let lowered = initMode.lowercased()
            let residual = ["pissa", "olora", "corda", "lora_ga", "loftq"]
            if residual.contains(where: { lowered.hasPrefix($0) }) {
                throw refuse(
                    "init_lora_weights is '\(initMode)': training with this initialisation changed the base weights "
                        + "(a residual base), so merging into the original checkpoint would be wrong; save the adapter "
                        + "converted to plain LoRA (PEFT's path_initial_model_for_weight_conversion) and merge that")
            }
        }

        func integer(_ key: String, default value: Int) throws(CheckpointError) -> Int {
            guard let item = json[key], !item.isNull else { return value }
            guard
                let number = item.intValue
                    ?? item.doubleValue.flatMap({ $0 == $0.rounded() && abs($0) < 1e15 ? Int($0) : nil })
            else {
                throw bad(key, "an integer")
            }
            return number
        }
        func flag(_ key: String) throws(CheckpointError) -> Bool {
            guard let item = json[key], !item.isNull else { return false }
            guard let value = item.boolValue else { throw bad(key, "true or false") }
            return value
        }
        func string(_ key: String) throws(CheckpointError) -> String? {
            guard let item = json[key], !item.isNull else { return nil }
            guard let value = item.stringValue else { throw bad(key, "a string") }
            return value
        }
        func strings(_ key: String) throws(CheckpointError) -> [String]? {
            guard let item = json[key], !item.isNull else { return nil }
            guard let items = item.arrayValue else { return nil }
            var result: [String] = []
            for element in items {
                guard let text = element.stringValue else { throw bad(key, "a list of strings") }
                result.append(text)
            }
            return result
        }

        rank = try integer("r", default: 8)
        guard rank > 0 else { throw bad("r", "a positive integer") }
        if let alphaValue = json["lora_alpha"] {
            guard let number = alphaValue.doubleValue, number.isFinite else {
                throw bad("lora_alpha", "a finite number (null alpha from PEFT <= 0.3 is not supported)")
            }
            alpha = number
        } else {
            alpha = 8
        }
        useRSLoRA = try flag("use_rslora")
        fanInFanOut = try flag("fan_in_fan_out")
        useDoRA = try flag("use_dora")
        loraBias = try flag("lora_bias")
        bias = try string("bias") ?? "none"
        guard ["none", "all", "lora_only"].contains(bias) else {
            throw bad("bias", "\"none\", \"all\" or \"lora_only\"")
        }
        modulesToSave = try strings("modules_to_save") ?? []
        if let text = json["target_modules"]?.stringValue {
            targetModules = nil
            targetModulesRegex = text
        } else {
            targetModules = try strings("target_modules")
            targetModulesRegex = nil
        }
        baseModelNameOrPath = try string("base_model_name_or_path")
        peftVersion = try string("peft_version")

        var ranks: [PatternEntry<Int>] = []
        if let item = json["rank_pattern"], !item.isNull {
            guard let members = item.objectValue else { throw bad("rank_pattern", "an object") }
            for (key, value) in members {
                guard let number = value.intValue, number > 0 else {
                    throw bad("rank_pattern.\(key)", "a positive integer")
                }
                ranks.append(PatternEntry(pattern: key, value: number))
            }
        }
        var alphas: [PatternEntry<Double>] = []
        if let item = json["alpha_pattern"], !item.isNull {
            guard let members = item.objectValue else { throw bad("alpha_pattern", "an object") }
            for (key, value) in members {
                guard let number = value.doubleValue, number.isFinite else {
                    throw bad("alpha_pattern.\(key)", "a finite number")
                }
                alphas.append(PatternEntry(pattern: key, value: number))
            }
        }
        // Compiled once here (an invalid or unsupported key is refused, naming it); matching is bounded-time.
        var states = 0
        func compile(_ key: String) throws(CheckpointError) -> ModulePattern {
            let pattern = try ModulePattern(key, file: file)
            states += pattern.instructionCount
            guard states <= ModulePattern.totalInstructionLimit else {
                throw unsupported(
                    "rank_pattern and alpha_pattern compile to more than \(ModulePattern.totalInstructionLimit) "
                        + "matcher states together (reached at '\(key)'); nf4kit refuses such a config")
            }
            return pattern
        }
        var rankMatchers: [ModulePattern?] = []
        for entry in ranks { rankMatchers.append(try compile(entry.pattern)) }
        var alphaMatchers: [ModulePattern?] = []
        for entry in alphas { alphaMatchers.append(try compile(entry.pattern)) }
        rankPattern = ranks
        alphaPattern = alphas
        self.rankMatchers = rankMatchers
        self.alphaMatchers = alphaMatchers
    }

    private static func compiled<V>(_ entries: [PatternEntry<V>]) -> [ModulePattern?] {
        entries.map { try? ModulePattern($0.pattern) }
    }

    /// Whether a `rank_pattern` / `alpha_pattern` key selects `module` under PEFT >= 0.14's rule.
    ///
    /// PEFT uses `re.match(rf"(.*\.)?({key})$", name)`: anchored at the start, the key must end the name, and
    /// whatever comes before it must end with a dot. So `q_proj` matches every `...q_proj`, and
    /// `^model.layers.0.self_attn.q_proj` matches only that module.
    ///
    /// This compiles `key` on every call; a config's own keys are compiled once (``patternRank(forModule:)``).
    public static func patternMatches(_ key: String, module: String) -> Bool {
        (try? ModulePattern(key))?.matches(module) ?? false
    }

    /// The rank `rank_pattern` gives `module`, or `nil` when no key matches (then ``rank`` applies).
    public func patternRank(forModule module: String) -> Int? {
        let name = Array(module.unicodeScalars)
        guard let index = rankMatchers.firstIndex(where: { $0?.matches(scalars: name) ?? false }) else { return nil }
        return rankPattern[index].value
    }

    /// The alpha of `module`: the first matching `alpha_pattern` key, else ``alpha``.
    public func alpha(forModule module: String) -> Double {
        let name = Array(module.unicodeScalars)
        guard let index = alphaMatchers.firstIndex(where: { $0?.matches(scalars: name) ?? false }) else { return alpha }
        return alphaPattern[index].value
    }

    /// The `rank_pattern` and `alpha_pattern` keys (in that order) that select none of `modules`.
    public func patternsMatchingNone(of modules: [String]) -> [String] {
        let names = modules.map { Array($0.unicodeScalars) }
        var unused: [String] = []
        for (entries, matchers) in [
            (rankPattern.map(\.pattern), rankMatchers), (alphaPattern.map(\.pattern), alphaMatchers),
        ] {
            for (key, matcher) in zip(entries, matchers)
            where !names.contains(where: { matcher?.matches(scalars: $0) ?? false }) {
                unused.append(key)
            }
        }
        return unused
    }

    /// The scaling `s` of a module with rank `rank`: alpha / r, or alpha / sqrt(r) with rsLoRA.
    ///
    /// Computed in double precision and then rounded to `Float`, as PyTorch does when it multiplies an f32
    /// tensor by a Python float.
    public func scaling(forModule module: String, rank: Int) -> Float {
        let alpha = alpha(forModule: module)
        let divisor = useRSLoRA ? Double(rank).squareRoot() : Double(rank)
        return Float(alpha / divisor)
    }
}
