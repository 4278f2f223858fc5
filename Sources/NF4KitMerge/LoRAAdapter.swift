public import NF4KitCore

/// A PEFT LoRA adapter: its config and its tensors grouped by the module they belong to.
///
/// Building one reads names and shapes only; tensor bytes stay memory-mapped views until the merge needs them.
/// Every tensor of the adapter file lands in exactly one place, a ``Module`` or ``fullTensors``; a key that fits
/// no known form is an error, never skipped (spec lora-merge.md §3).
public struct LoRAAdapter: Sendable {
    /// The adapter's config.
    public var config: AdapterConfig
    /// Where the adapter came from (folder or file), for messages.
    public var source: String
    /// LoRA modules by module path (`model.layers.0.self_attn.q_proj`), in the order first seen in the file.
    public var modules: [Module]
    /// Tensors that hold full values (`modules_to_save`, saved embeddings, biases, norms): each replaces the base
    /// tensor named ``FullTensor/baseName``.
    public var fullTensors: [FullTensor]

    /// The tensors of one LoRA-wrapped module.
    public struct Module: Sendable {
        /// The module path inside the trained model, `base_layer` segments removed.
        public var path: String
        /// `lora_A.weight` (`[r, in]`) or, for an embedding, `lora_embedding_A` (`[r, num_embeddings]`).
        public var a: Tensor?
        /// `lora_B.weight` (`[out, r]`) or, for an embedding, `lora_embedding_B` (`[embedding_dim, r]`).
        public var b: Tensor?
        /// `lora_B.bias` (`[out]`), present with `lora_bias`.
        public var bBias: Tensor?
        /// `lora_magnitude_vector` (DoRA).
        public var magnitude: Tensor?
        /// Whether the factors are the embedding kind (`lora_embedding_A/B`).
        public var isEmbedding: Bool
    }

    /// A full-value tensor of the adapter.
    public struct FullTensor: Sendable {
        /// The base key it replaces (prefix, `base_layer` and `modules_to_save.<name>` segments removed).
        public var baseName: String
        public var tensor: Tensor
    }

    private static let prefix = "base_model.model."
    private static let markers: Set<String> = [
        "lora_A", "lora_B", "lora_embedding_A", "lora_embedding_B", "lora_magnitude_vector",
    ]

    /// Groups the adapter's tensors.
    ///
    /// - Parameters:
    ///   - config: The parsed `adapter_config.json`.
    ///   - tensors: All tensors of `adapter_model.safetensors`.
    ///   - source: Path of the adapter, used in messages.
    /// - Throws: ``CheckpointError`` naming the key for a key of no known form, a duplicate, a half pair, a
    ///   non-float factor, a factor that is not 2-D, or A/B ranks that disagree with each other.
    /// - Complexity: O(n) in the number of tensors.
    public init(config: AdapterConfig, tensors: [Tensor], source: String) throws(CheckpointError) {
        self.config = config
        self.source = source
        var modules: [Module] = []
        var moduleIndex: [String: Int] = [:]
        var full: [FullTensor] = []
        var fullNames: Set<String> = []
        func fail(_ code: CheckpointError.Code, _ message: String, _ key: String) -> CheckpointError {
            CheckpointError(code, message, file: source, tensor: key)
        }

        for tensor in tensors {
            let key = tensor.name
            var name = key.hasPrefix(LoRAAdapter.prefix) ? String(key.dropFirst(LoRAAdapter.prefix.count)) : key
            if name.contains(".token_adapter.") || name.hasSuffix("trainable_tokens_delta") {
                throw fail(
                    .unsupported,
                    "adapter tensor '\(key)' holds trainable-token rows, which nf4kit merge does not support", key)
            }
            var parts = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            guard let markerIndex = parts.lastIndex(where: { LoRAAdapter.markers.contains($0) }) else {
                // A full-value tensor. Drop `modules_to_save.<adapter>` (third-party files keep it) and `base_layer`.
                if let m = parts.firstIndex(of: "modules_to_save"), m + 1 < parts.count {
                    parts.removeSubrange(m...(m + 1))
                }
                parts.removeAll { $0 == "base_layer" }
                name = parts.joined(separator: ".")
                guard !name.isEmpty, parts.allSatisfy({ !$0.isEmpty }) else {
                    throw fail(.malformedHeader, "adapter tensor '\(key)' has an empty name segment", key)
                }
                guard fullNames.insert(name).inserted else {
                    throw fail(
                        .malformedHeader, "adapter tensors '\(key)' and another key both replace base tensor '\(name)'",
                        key)
                }
                full.append(FullTensor(baseName: name, tensor: tensor))
                continue
            }
            let marker = parts[markerIndex]
            var tail = Array(parts[(markerIndex + 1)...])
            // A third-party file may keep the adapter name between the marker and `weight`/`bias`.
            if let first = tail.first, first != "weight", first != "bias" { tail.removeFirst() }
            let modulePath = parts[..<markerIndex].filter { $0 != "base_layer" }.joined(separator: ".")
            guard !modulePath.isEmpty else {
                throw fail(.malformedHeader, "adapter tensor '\(key)' has no module path before '\(marker)'", key)
            }
            enum Role { case a, b, bBias, magnitude }
            let role: Role
            let embedding: Bool
            switch (marker, tail) {
            case ("lora_A", ["weight"]): (role, embedding) = (.a, false)
            case ("lora_B", ["weight"]): (role, embedding) = (.b, false)
            case ("lora_B", ["bias"]): (role, embedding) = (.bBias, false)
            case ("lora_embedding_A", []), ("lora_embedding_A", ["weight"]): (role, embedding) = (.a, true)
            case ("lora_embedding_B", []), ("lora_embedding_B", ["weight"]): (role, embedding) = (.b, true)
            case ("lora_magnitude_vector", []), ("lora_magnitude_vector", ["weight"]):
                (role, embedding) = (.magnitude, false)
            default:
                throw fail(
                    .malformedHeader, "adapter tensor '\(key)' does not have a known LoRA suffix after '\(marker)'", key
                )
            }
            guard tensor.dtype.isConvertibleFloat else {
                throw fail(
                    .unsupportedDType,
                    "adapter tensor '\(key)' is \(tensor.dtype); LoRA tensors must be F16, BF16, F32 or F64", key)
            }
            let index: Int
            if let existing = moduleIndex[modulePath] {
                index = existing
            } else {
                index = modules.count
                moduleIndex[modulePath] = index
                modules.append(Module(path: modulePath, a: nil, b: nil, bBias: nil, magnitude: nil, isEmbedding: false))
            }
            func duplicate() -> CheckpointError {
                fail(.malformedHeader, "adapter tensor '\(key)' gives module '\(modulePath)' a second \(marker)", key)
            }
            switch role {
            case .a:
                if modules[index].a != nil { throw duplicate() }
                modules[index].a = tensor
            case .b:
                if modules[index].b != nil { throw duplicate() }
                modules[index].b = tensor
            case .bBias:
                if modules[index].bBias != nil { throw duplicate() }
                modules[index].bBias = tensor
            case .magnitude:
                if modules[index].magnitude != nil { throw duplicate() }
                modules[index].magnitude = tensor
            }
            if role == .a || role == .b {
                if modules[index].a != nil && modules[index].b != nil && modules[index].isEmbedding != embedding {
                    throw fail(.malformedHeader, "module '\(modulePath)' mixes lora_A/B with lora_embedding_A/B", key)
                }
                modules[index].isEmbedding = embedding
            }
        }

        for module in modules {
            guard let a = module.a, let b = module.b else {
                let have =
                    module.a != nil ? "A" : module.b != nil ? "B" : (module.magnitude != nil ? "magnitude" : "bias")
                let missing =
                    module.a == nil
                    ? (module.isEmbedding ? "lora_embedding_A" : "lora_A")
                    : (module.isEmbedding ? "lora_embedding_B" : "lora_B")
                let present = [module.a, module.b, module.bBias, module.magnitude].compactMap { $0 }.first!
                throw fail(
                    .malformedHeader,
                    "module '\(module.path)' has its LoRA \(have) tensor ('\(present.name)' \(present.shape)) but no \(missing)",
                    present.name)
            }
            guard a.shape.rank == 2, b.shape.rank == 2 else {
                throw fail(
                    .unsupported,
                    "module '\(module.path)': factors '\(a.name)' \(a.shape) and '\(b.name)' \(b.shape) are not 2-D; "
                        + "only Linear, GPT-2 Conv1D and Embedding LoRA can be merged (Conv layers are not supported)",
                    a.name)
            }
            if module.isEmbedding == false {
                guard a.shape.dimensions[0] == b.shape.dimensions[1] else {
                    throw fail(
                        .shapeMismatch,
                        "module '\(module.path)': lora_A '\(a.name)' \(a.shape) has rank \(a.shape.dimensions[0]) but lora_B '\(b.name)' \(b.shape) has rank \(b.shape.dimensions[1])",
                        a.name)
                }
            } else {
                guard a.shape.dimensions[0] == b.shape.dimensions[1] else {
                    throw fail(
                        .shapeMismatch,
                        "module '\(module.path)': lora_embedding_A '\(a.name)' \(a.shape) has rank \(a.shape.dimensions[0]) but lora_embedding_B '\(b.name)' \(b.shape) has rank \(b.shape.dimensions[1])",
                        a.name)
                }
            }
            guard a.shape.dimensions[0] > 0 else {
                throw fail(.shapeMismatch, "module '\(module.path)': '\(a.name)' \(a.shape) has rank 0", a.name)
            }
            if module.magnitude != nil && !config.useDoRA {
                throw fail(
                    .malformedHeader,
                    "module '\(module.path)' has a DoRA magnitude vector but use_dora is false in the config",
                    module.magnitude!.name)
            }
            if config.useDoRA && module.magnitude == nil {
                throw fail(
                    .malformedHeader, "use_dora is true but module '\(module.path)' has no lora_magnitude_vector",
                    a.name)
            }
            if module.bBias != nil && !config.loraBias {
                throw fail(
                    .malformedHeader, "module '\(module.path)' has a lora_B bias but lora_bias is false in the config",
                    module.bBias!.name)
            }
            for extra in [module.bBias, module.magnitude].compactMap({ $0 }) where !extra.dtype.isConvertibleFloat {
                throw fail(
                    .unsupportedDType, "adapter tensor '\(extra.name)' is \(extra.dtype); expected a float type",
                    extra.name)
            }
        }
        self.modules = modules
        self.fullTensors = full
    }

    /// The rank of a module, from its factor shapes (the ground truth PEFT uses as well).
    public static func rank(of module: Module) -> Int { module.a?.shape.dimensions[0] ?? 0 }
}
