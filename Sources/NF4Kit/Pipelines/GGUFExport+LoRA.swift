import NF4KitCore
import NF4KitFormats
import NF4KitMerge
import NF4KitQuant

extension GGUFExport {
    /// Converts a PEFT LoRA adapter folder to a llama.cpp LoRA adapter GGUF, as convert_lora_to_gguf.py does.
    ///
    /// Each adapted weight `W` gets `W.lora_a` (PEFT's lora_A, `[r, in]`) and `W.lora_b` (lora_B, `[out, r]`, rows
    /// permuted for attn_q/attn_k). llama.cpp scales by `adapter.lora.alpha / r`; where PEFT's scaling differs
    /// (rsLoRA, `rank_pattern`, `alpha_pattern`) the ratio is folded into lora_b in f32 before narrowing, so llama.cpp
    /// computes PEFT's delta. The base model's `config.json` (``Options/base``, or the adapter's
    /// `base_model_name_or_path` when that is a local folder) gives the architecture and head counts; its weights,
    /// when present, are used to check that every target exists with matching shapes.
    ///
    /// - Throws: ``CheckpointError``: `.refused` for DoRA (merge it instead), LoRA biases, full tensors
    ///   (`modules_to_save`) or embedding LoRA; `.shapeMismatch`/`.refused` for targets the base lacks; `.notFound`
    ///   when no base config is found.
    public static func exportAdapter(adapter: String, output: String, options: Options = Options()) throws -> Summary {
        try exportAdapter(source: try ModelSource.open(adapter), output: output, options: options)
    }

    static func exportAdapter(source: ModelSource, output: String, options: Options) throws -> Summary {
        let start = FileAccess.monotonicSeconds
        guard let adapterJSON = source.adapterConfig else {
            throw CheckpointError(
                .invalidArgument, "not a PEFT adapter folder (no adapter_config.json)", file: source.path)
        }
        let configPath = source.path + "/adapter_config.json"
        let adapterConfig = try AdapterConfig(json: adapterJSON, file: configPath)
        let refuseMerge =
            "llama.cpp LoRA adapters cannot hold it; merge the adapter into the base instead "
            + "(nf4kit merge BASE ADAPTER -o merged.gguf)"
        guard !adapterConfig.useDoRA else {
            throw CheckpointError(.refused, "the adapter uses DoRA (use_dora), which \(refuseMerge)", file: configPath)
        }
        guard adapterConfig.peftType.uppercased() == "LORA" else {
            throw CheckpointError(
                .refused, "the adapter is \(adapterConfig.peftType), not LORA; \(refuseMerge)", file: configPath)
        }
        let lora = try LoRAAdapter(config: adapterConfig, tensors: source.checkpoint.tensors, source: source.path)
        if let full = lora.fullTensors.first {
            throw CheckpointError(
                .refused, "the adapter replaces the whole tensor '\(full.baseName)' (modules_to_save); \(refuseMerge)",
                file: source.path, tensor: full.tensor.name)
        }

        let basePath = try resolveBase(adapter: source.path, adapterConfig: adapterConfig, given: options.base)
        let baseConfigPath = basePath + "/config.json"
        let config = try LlamaModelConfig.read(path: baseConfigPath)
        let baseSource = try? ModelSource.open(basePath)
        let baseTensors = baseSource.map { source -> [String: Shape] in
            var shapes: [String: Shape] = [:]
            for t in source.checkpoint.tensors { shapes[t.name] = t.shape }
            for group in (try? BnbQuantizedWeight.groups(in: source.checkpoint.tensors)) ?? [] {
                shapes[group.weightName] = group.tensor.shape
            }
            return shapes
        }

        var modules = lora.modules
        modules.sort { ($0.a?.name ?? $0.path) < ($1.a?.name ?? $1.path) }
        let alpha = adapterConfig.alpha
        var items: [Item] = []
        let outType = options.outType ?? .f32
        for module in modules {
            guard let a = module.a, let b = module.b else {
                throw CheckpointError(
                    .malformedHeader, "module '\(module.path)' has only one of lora_A and lora_B", file: source.path)
            }
            if module.magnitude != nil {
                throw CheckpointError(
                    .refused, "module '\(module.path)' has a DoRA magnitude vector, which \(refuseMerge)",
                    file: source.path, tensor: module.magnitude?.name)
            }
            if module.bBias != nil {
                throw CheckpointError(
                    .refused, "module '\(module.path)' has a lora_B bias, which \(refuseMerge)", file: source.path,
                    tensor: module.bBias?.name)
            }
            if module.isEmbedding {
                throw CheckpointError(
                    .refused,
                    "module '\(module.path)' is an embedding LoRA, which nf4kit does not export; merge instead",
                    file: source.path, tensor: a.name)
            }
            let weightName = module.path + ".weight"
            guard let ggufName = LlamaTensorNames.ggufName(hfName: weightName),
                let expected = config.expectedShape(ggufName: ggufName)
            else {
                throw CheckpointError(
                    .refused,
                    "the adapter targets '\(module.path)', which the \(config.architecture) base (\(config.blockCount) "
                        + "layers) does not have", file: source.path, tensor: a.name)
            }
            let baseShape = baseTensors.map { $0[weightName]?.dimensions }
            if let baseShape, baseShape == nil {
                throw CheckpointError(
                    .refused, "the adapter targets '\(module.path)', but the base has no '\(weightName)'",
                    file: source.path, tensor: a.name)
            }
            let target = (baseShape ?? nil) ?? expected
            let rank = LoRAAdapter.rank(of: module)
            guard a.shape.dimensions == [rank, target[1]], b.shape.dimensions == [target[0], rank] else {
                throw CheckpointError(
                    .shapeMismatch,
                    "module '\(module.path)': lora_A \(a.shape) and lora_B \(b.shape) do not fit the base weight "
                        + "\(Shape(target)) with rank \(rank) (the base is \(basePath)"
                        + (options.base == nil ? ", from base_model_name_or_path; give --base BASE for another" : "")
                        + ")", file: source.path, tensor: a.name)
            }
            // llama.cpp applies alpha / r (or 1 when alpha is 0); PEFT applies its own scaling: fold the ratio.
            let peft = Double(adapterConfig.scaling(forModule: module.path, rank: rank))
            let llama = alpha == 0 ? 1 : alpha / Double(rank)
            let fold: Float? = peft == llama ? nil : Float(peft / llama)
            var permutation: LlamaRowPermutation?
            if let heads = config.heads(for: LlamaTensorNames.permutation(ggufName: ggufName)) {
                permutation = try LlamaRowPermutation(
                    rows: target[0], heads: heads, tensor: b.name, file: baseConfigPath)
            }
            let aType: GGMLType = outType.fileType.matrixType(rowLength: target[1])
            let bType: GGMLType = outType.fileType.matrixType(rowLength: rank)
            items.append(
                Item(
                    ggufName: ggufName + ".lora_a", shape: a.shape.dimensions, tensor: a, quantized: nil,
                    permutation: nil, scale: nil, type: aType))
            items.append(
                Item(
                    ggufName: ggufName + ".lora_b", shape: b.shape.dimensions, tensor: b, quantized: nil,
                    permutation: permutation, scale: fold, type: bType))
        }
        guard !items.isEmpty else {
            throw CheckpointError(.malformedHeader, "the adapter holds no LoRA tensors", file: source.path)
        }
        let metadata: [GGUFMetadataEntry] = [
            GGUFMetadataEntry(key: "general.architecture", value: .string("llama")),
            GGUFMetadataEntry(key: "general.type", value: .string("adapter")),
            GGUFMetadataEntry(key: "adapter.type", value: .string("lora")),
            GGUFMetadataEntry(key: "general.name", value: .string(options.name ?? lastComponent(source.path))),
            GGUFMetadataEntry(key: "adapter.lora.alpha", value: .float32(Float(alpha))),
            GGUFMetadataEntry(key: "general.quantization_version", value: .uint32(2)),
        ]
        let planned = items
        let layout = try writeFile(
            path: output, metadata: metadata,
            tensors: items.map { GGUFTensorPlan(name: $0.ggufName, type: $0.type, shape: Shape($0.shape)) },
            overwrite: options.overwrite, inputs: source.inputPaths, threads: options.threads
        ) { index, write in try produce(planned[index], write: write) }
        return Summary(
            outputPath: output, outType: outType, tensorCount: items.count, fileByteCount: layout.fileSize,
            tensorsDequantized: 0, seconds: FileAccess.monotonicSeconds - start)
    }

    /// The base folder: `given`, else `base_model_name_or_path` as a path (as given, then beside the adapter's
    /// ancestors), which must hold a config.json.
    static func resolveBase(adapter: String, adapterConfig: AdapterConfig, given: String?) throws -> String {
        if let given {
            guard FileAccess.exists(given + "/config.json") else {
                throw CheckpointError(.notFound, "the base model folder has no config.json", file: given)
            }
            return given
        }
        if let named = adapterConfig.baseModelNameOrPath, !named.isEmpty {
            var candidates = [named]
            if !named.hasPrefix("/") {
                var dir = adapter
                for _ in 0..<3 {
                    candidates.append(dir + "/" + named)
                    guard let slash = dir.lastIndex(of: "/") else {
                        candidates.append(named)
                        break
                    }
                    dir = String(dir[..<slash])
                    if dir.isEmpty { break }
                }
            }
            if let found = candidates.first(where: { FileAccess.exists($0 + "/config.json") }) { return found }
        }
        throw CheckpointError(
            .notFound,
            "the base model's config.json is needed for the llama.cpp layout (architecture and head counts); "
                + "give the base model folder (--base)"
                + (adapterConfig.baseModelNameOrPath.map { "; base_model_name_or_path '\($0)' is not a local folder" }
                    ?? ""),
            file: adapter)
    }
}
