import NF4KitCore
import NF4KitFormats
import NF4KitMerge

/// What a merge decides before it writes anything: the opened inputs, the base as logical tensors (untied when
/// the adapter changes a tied embedding or head), the output form, the plan and the warnings.
struct MergeSetup {
    let baseSource: ModelSource
    let adapterSources: [ModelSource]
    let baseModel: BaseModel
    let target: OutputForm
    let plan: MergePlan
    /// Whether `lm_head.weight` is written as its own tensor and `tie_word_embeddings` set to false.
    let untie: Bool
    let warnings: [MergeWarning]

    /// Opens and checks the inputs and plans the merge (see ``MergePipeline/run(base:adapters:output:options:progress:)``
    /// for the errors).
    init(base: String, adapters: [String], options: MergeOptions) throws {
        guard !adapters.isEmpty else { throw CheckpointError(.invalidArgument, "give at least one adapter") }
        let weights = options.weights ?? Array(repeating: 1, count: adapters.count)
        guard weights.count == adapters.count else {
            throw CheckpointError(
                .invalidArgument, "--weights has \(weights.count) values for \(adapters.count) adapters")
        }
        guard weights.allSatisfy(\.isFinite) else {
            throw CheckpointError(.invalidArgument, "--weights must be finite numbers")
        }

        let baseSource = try ModelSource.open(base)
        guard !baseSource.isAdapter else {
            throw CheckpointError(
                .invalidArgument, "the base is a PEFT adapter folder; give the base model first, then the adapter(s)",
                file: base)
        }
        if let file = baseSource.gguf, GGUFImport.isLlamaLayout(file) {
            // PEFT adapters name Hugging Face modules; llama.cpp's names and row order would match none of them.
            throw CheckpointError(
                .unsupported,
                "the base is a GGUF in llama.cpp's layout, and PEFT adapters name Hugging Face modules; "
                    + "convert it first (`nf4kit convert \(base) -o base-folder`), then merge into that folder",
                file: base)
        }
        var loaded: [LoRAAdapter] = []
        var adapterSources: [ModelSource] = []
        for path in adapters {
            let source = try ModelSource.open(path)
            guard let json = source.adapterConfig else {
                if case .string("adapter")? = source.gguf?["general.type"] {
                    throw CheckpointError(
                        .unsupported,
                        "this is a llama.cpp LoRA GGUF; merge takes PEFT adapter folders (adapter_config.json): "
                            + "give the PEFT folder it was converted from, or apply it in llama.cpp with --lora",
                        file: path)
                }
                throw CheckpointError(
                    .invalidArgument, "not a PEFT adapter folder (no adapter_config.json)", file: path)
            }
            let config = try AdapterConfig(json: json, file: source.path + "/adapter_config.json")
            loaded.append(try LoRAAdapter(config: config, tensors: source.checkpoint.tensors, source: source.path))
            adapterSources.append(source)
        }

        var baseModel = try BaseModel(source: baseSource)
        let baseDType =
            baseModel.entries.compactMap { entry -> DType? in
                if case .plain(let t) = entry.storage, t.dtype.isConvertibleFloat { return t.dtype } else { return nil }
            }.first ?? .f32
        let target = try OutputForm(options: options, base: baseModel, baseDType: baseDType)
        var firstPlan = try? MergePlan(
            base: baseModel.logicalTensors, adapters: loaded, weights: weights.map { Float($0) })
        var warnings: [MergeWarning] = []
        // Tied embeddings (spec §4.11): when the checkpoint stores only the embedding and the adapter changes the
        // embedding or the head, the two stop being equal; write `lm_head.weight` as its own tensor and untie.
        var untie = false
        if baseSource.config?["tie_word_embeddings"]?.boolValue == true,
            !baseModel.entries.contains(where: { $0.name == "lm_head.weight" }),
            let embedding = baseModel.entries.first(where: {
                $0.name.hasSuffix("embed_tokens.weight") || $0.name.hasSuffix("wte.weight")
            }),
            case .plain = embedding.storage
        {
            var tied = baseModel
            tied.entries.append(
                BaseModel.Entry(name: "lm_head.weight", shape: embedding.shape, storage: embedding.storage))
            if let candidate = try? MergePlan(
                base: tied.logicalTensors, adapters: loaded, weights: weights.map { Float($0) }),
                candidate.actions["lm_head.weight"] != nil || candidate.actions[embedding.name] != nil
            {
                baseModel = tied
                firstPlan = candidate
                untie = true
                warnings.append(
                    MergeWarning(
                        "the base ties lm_head to '\(embedding.name)' and the adapter changes one of them; both are written as separate tensors and tie_word_embeddings is set to false"
                    ))
            }
        }
        // Without a plan by now, planning again reports the real error.
        let plan =
            try firstPlan
            ?? MergePlan(base: baseModel.logicalTensors, adapters: loaded, weights: weights.map { Float($0) })
        for (adapter, source) in zip(loaded, adapterSources) {
            if let claimed = adapter.config.baseModelNameOrPath,
                let warning = BaseModelIdentity.mismatch(claimed: claimed, adapterPath: source.path, base: baseSource)
            {
                warnings.append(MergeWarning(warning))
            }
        }
        warnings += plan.warnings
        if baseModel.quantization != nil && !plan.actions.isEmpty && target.plainDType == nil {
            warnings.append(
                MergeWarning(
                    "merging into a 4-bit base re-quantizes the merged weights, which adds a second rounding error (as PEFT warns: generations may differ); merging into the 16-bit base and quantizing once is more accurate"
                ))
        }

        self.baseSource = baseSource
        self.adapterSources = adapterSources
        self.baseModel = baseModel
        self.target = target
        self.plan = plan
        self.untie = untie
        self.warnings = warnings
    }
}
