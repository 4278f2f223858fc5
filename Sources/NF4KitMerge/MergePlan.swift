public import NF4KitCore

/// Something the caller should tell the user about a merge that still goes ahead.
public struct MergeWarning: Sendable, Hashable, CustomStringConvertible {
    /// A complete sentence.
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// What a merge does to each base tensor, worked out from names and shapes before any value is read.
///
/// Every adapter tensor is resolved to a base tensor here; anything that does not resolve is an error naming
/// the adapter key and the shapes involved (spec lora-merge.md §3.3, §10 steps 2–4).
public struct MergePlan: Sendable {
    /// How the low-rank factors map onto the base tensor's layout.
    public enum Layout: String, Sendable, Hashable {
        /// `W [out, in]`, `Δ = s · B · A`.
        case linear
        /// `W [in, out]` (GPT-2 `Conv1D`, fan_in_fan_out), `Δ = (s · B · A)ᵀ`.
        case transposed
        /// `W [num_embeddings, dim]`, `Δ = s · (B_e · A_e)ᵀ`.
        case embedding
    }

    /// One adapter's low-rank update of one base tensor.
    public struct Update: Sendable {
        /// Position of the adapter in the list given to ``init(base:adapters:weights:)``.
        public var adapterIndex: Int
        /// The module path in the adapter.
        public var modulePath: String
        public var layout: Layout
        /// `lora_A.weight` or `lora_embedding_A`.
        public var a: Tensor
        /// `lora_B.weight` or `lora_embedding_B`.
        public var b: Tensor
        /// The module's rank (rows of A).
        public var rank: Int
        /// The LoRA scaling `s` (f32, as PEFT applies it).
        public var scale: Float
        /// The adapter's weight in the weighted sum (`--weights`).
        public var weight: Float
        /// The DoRA magnitude vector, when the adapter uses DoRA.
        public var magnitude: Tensor?
    }

    /// One adapter's `lora_B.bias` added to a base bias: `bias += weight · s · lora_B.bias`.
    public struct BiasUpdate: Sendable {
        public var adapterIndex: Int
        public var modulePath: String
        public var bias: Tensor
        public var scale: Float
        public var weight: Float
    }

    /// Everything that happens to one base tensor.
    public struct Action: Sendable {
        /// The base tensor's name (also the output name).
        public var name: String
        /// The logical shape of the result (differs from the base only after a vocabulary resize).
        public var shape: Shape
        /// Full values from an adapter that replace the base values before any update.
        public var replacement: Tensor?
        /// Low-rank updates, in adapter order.
        public var updates: [Update] = []
        /// `lora_B.bias` additions, in adapter order.
        public var biasUpdates: [BiasUpdate] = []

        /// Whether values must be computed (as opposed to copied from the replacement or the base).
        public var needsArithmetic: Bool { !updates.isEmpty || !biasUpdates.isEmpty }
    }

    /// Actions by base tensor name; base tensors not listed are copied unchanged.
    public var actions: [String: Action]
    /// Number of LoRA modules merged, over all adapters.
    public var moduleCount: Int
    /// Number of full-value tensors that replace base tensors.
    public var replacementCount: Int
    /// Things the user should know (unused pattern keys, ...).
    public var warnings: [MergeWarning]

    /// Resolves every tensor of `adapters` against the base tensors.
    ///
    /// - Parameters:
    ///   - base: The base checkpoint's tensors as logical float tensors: name and shape (for a 4-bit base, the
    ///     shape recorded in its quant state, not the packed bytes).
    ///   - adapters: The adapters, merged as the weighted sum of their deltas.
    ///   - weights: One weight per adapter.
    /// - Throws: ``CheckpointError`` naming the adapter key and the shapes when a module or tensor has no base
    ///   tensor, a shape does not fit, a rank disagrees with the config, DoRA is combined with another update of
    ///   the same tensor, or two adapters replace the same tensor.
    /// - Complexity: O(adapter tensors · base tensors) in the worst case (fallback name search).
    public init(base: [(name: String, shape: Shape)], adapters: [LoRAAdapter], weights: [Float]) throws(CheckpointError)
    {
        precondition(weights.count == adapters.count, "MergePlan: one weight per adapter")
        var shapes: [String: Shape] = [:]
        for entry in base { shapes[entry.name] = entry.shape }
        let names = base.map(\.name)
        var actions: [String: Action] = [:]
        var warnings: [MergeWarning] = []
        var moduleCount = 0
        var replacementCount = 0

        for adapter in adapters {
            func fail(_ code: CheckpointError.Code, _ message: String, _ key: String) -> CheckpointError {
                CheckpointError(code, message, file: adapter.source, tensor: key)
            }
            for full in adapter.fullTensors {
                let key = full.tensor.name
                let candidates = MergePlan.resolve(full.baseName, shapes: shapes, names: names)
                guard candidates.count == 1 else {
                    throw fail(
                        .refused,
                        MergePlan.unresolvedMessage(
                            key: key, shape: full.tensor.shape, wanted: full.baseName, candidates: candidates), key)
                }
                let target = candidates[0]
                let baseShape = shapes[target]!
                let shape = full.tensor.shape
                let resized =
                    shape.rank == 2 && baseShape.rank == 2 && shape.dimensions[1] == baseShape.dimensions[1]
                    && shape.dimensions[0] != baseShape.dimensions[0]
                guard shape == baseShape || resized else {
                    throw fail(
                        .shapeMismatch,
                        "adapter tensor '\(key)' \(shape) cannot replace base tensor '\(target)' \(baseShape)", key)
                }
                guard full.tensor.dtype.isConvertibleFloat || shape == baseShape else {
                    throw fail(.unsupportedDType, "adapter tensor '\(key)' is \(full.tensor.dtype)", key)
                }
                if actions[target]?.replacement != nil {
                    throw fail(
                        .malformedHeader,
                        "adapter tensor '\(key)' replaces base tensor '\(target)', which another adapter replaces too",
                        key)
                }
                actions[target, default: Action(name: target, shape: shape)].replacement = full.tensor
                actions[target]!.shape = shape
                replacementCount += 1
            }
        }

        for (adapterIndex, adapter) in adapters.enumerated() {
            func fail(_ code: CheckpointError.Code, _ message: String, _ key: String) -> CheckpointError {
                CheckpointError(code, message, file: adapter.source, tensor: key)
            }
            let config = adapter.config
            for key in config.patternsMatchingNone(of: adapter.modules.map(\.path)) {
                warnings.append(
                    MergeWarning(
                        "\(adapter.source): rank/alpha pattern '\(key)' matches no module of the adapter (PEFT ignores it too)"
                    ))
            }
            for module in adapter.modules {
                let a = module.a!
                let b = module.b!
                let rank = LoRAAdapter.rank(of: module)
                let expectedRank = config.patternRank(forModule: module.path) ?? config.rank
                guard rank == expectedRank else {
                    throw fail(
                        .shapeMismatch,
                        "module '\(module.path)': '\(a.name)' \(a.shape) and '\(b.name)' \(b.shape) have rank \(rank), but the config gives rank \(expectedRank) (r / rank_pattern)",
                        a.name)
                }
                let wanted = module.path + ".weight"
                let candidates = MergePlan.resolve(wanted, shapes: shapes, names: names)
                guard candidates.count == 1 else {
                    throw fail(
                        .refused,
                        MergePlan.unresolvedMessage(
                            key: a.name, shape: a.shape, wanted: wanted, candidates: candidates), a.name)
                }
                let target = candidates[0]
                let shape = actions[target]?.shape ?? shapes[target]!
                let layout: Layout
                let outFeatures: Int
                if module.isEmbedding {
                    // lora_embedding_A [r, V], lora_embedding_B [D, r], W [V, D].
                    guard shape.rank == 2, a.shape.dimensions[1] == shape.dimensions[0],
                        b.shape.dimensions[0] == shape.dimensions[1]
                    else {
                        throw fail(
                            .shapeMismatch,
                            "module '\(module.path)': lora_embedding_A '\(a.name)' \(a.shape) and lora_embedding_B '\(b.name)' \(b.shape) do not fit base tensor '\(target)' \(shape) (expected A [r, \(shape.rank == 2 ? shape.dimensions[0] : 0)], B [\(shape.rank == 2 ? shape.dimensions[1] : 0), r])",
                            a.name)
                    }
                    layout = .embedding
                    outFeatures = shape.dimensions[1]
                } else {
                    let out = b.shape.dimensions[0]
                    let input = a.shape.dimensions[1]
                    guard shape.rank == 2 else {
                        throw fail(
                            .unsupported,
                            "module '\(module.path)': base tensor '\(target)' \(shape) is not 2-D; only Linear, GPT-2 Conv1D and Embedding LoRA can be merged",
                            a.name)
                    }
                    if shape == Shape([out, input]) && (out != input || !config.fanInFanOut) {
                        layout = .linear
                    } else if shape == Shape([input, out]) {
                        layout = .transposed
                    } else {
                        throw fail(
                            .shapeMismatch,
                            "module '\(module.path)': lora_A '\(a.name)' \(a.shape) and lora_B '\(b.name)' \(b.shape) give a [\(out), \(input)] update, which does not fit base tensor '\(target)' \(shape)",
                            a.name)
                    }
                    outFeatures = out
                }
                if let magnitude = module.magnitude {
                    guard magnitude.shape.checkedElementCount == outFeatures else {
                        throw fail(
                            .shapeMismatch,
                            "module '\(module.path)': DoRA magnitude '\(magnitude.name)' \(magnitude.shape) should have \(outFeatures) values for base tensor '\(target)' \(shape)",
                            magnitude.name)
                    }
                }
                let scale = config.scaling(forModule: module.path, rank: rank)
                let update = Update(
                    adapterIndex: adapterIndex, modulePath: module.path, layout: layout, a: a, b: b, rank: rank,
                    scale: scale, weight: weights[adapterIndex], magnitude: module.magnitude)
                actions[target, default: Action(name: target, shape: shape)].updates.append(update)
                moduleCount += 1

                if let bias = module.bBias {
                    let biasName = String(target.dropLast(".weight".count)) + ".bias"
                    guard target.hasSuffix(".weight"), let biasShape = shapes[biasName] else {
                        throw fail(
                            .refused,
                            "module '\(module.path)' has a lora_B bias '\(bias.name)' \(bias.shape) but the base has no bias tensor '\(biasName)' to merge it into (PEFT refuses this too)",
                            bias.name)
                    }
                    guard layout != .embedding, bias.shape.checkedElementCount == outFeatures,
                        biasShape.checkedElementCount == outFeatures
                    else {
                        throw fail(
                            .shapeMismatch,
                            "module '\(module.path)': lora_B bias '\(bias.name)' \(bias.shape) does not fit base bias '\(biasName)' \(biasShape)",
                            bias.name)
                    }
                    actions[biasName, default: Action(name: biasName, shape: biasShape)].biasUpdates.append(
                        BiasUpdate(
                            adapterIndex: adapterIndex, modulePath: module.path, bias: bias, scale: scale,
                            weight: weights[adapterIndex]))
                }
            }
        }

        for action in actions.values
        where action.updates.count > 1 && action.updates.contains(where: { $0.magnitude != nil }) {
            let dora = action.updates.first { $0.magnitude != nil }!
            throw CheckpointError(
                .unsupported,
                "base tensor '\(action.name)' gets updates from \(action.updates.count) adapters and one of them is DoRA ('\(dora.modulePath)' in adapter \(dora.adapterIndex + 1)); DoRA merges do not commute, so merge DoRA adapters one at a time",
                tensor: action.name)
        }
        self.actions = actions
        self.moduleCount = moduleCount
        self.replacementCount = replacementCount
        self.warnings = warnings
    }

    /// Base tensor names that `wanted` may refer to: the exact name, else every base name that ends with
    /// `"." + wanted`, or that equals it once leading wrapper segments (`model`, `base_model`, `module`) are
    /// stripped from both (spec lora-merge.md §3.3 step 5). The caller accepts only a unique candidate.
    static func resolve(_ wanted: String, shapes: [String: Shape], names: [String]) -> [String] {
        if shapes[wanted] != nil { return [wanted] }
        let stripped = strippingWrappers(wanted)
        return names.filter { $0.hasSuffix("." + wanted) || strippingWrappers($0) == stripped }
    }

    private static func strippingWrappers(_ name: String) -> Substring {
        var rest = Substring(name)
        while let dot = rest.firstIndex(of: "."), ["model", "base_model", "module"].contains(rest[..<dot]) {
            rest = rest[rest.index(after: dot)...]
        }
        return rest
    }

    private static func unresolvedMessage(key: String, shape: Shape, wanted: String, candidates: [String]) -> String {
        if candidates.isEmpty {
            return
                "adapter tensor '\(key)' \(shape) belongs to base tensor '\(wanted)', which the base checkpoint does not have (is this adapter for another model?)"
        }
        return
            "adapter tensor '\(key)' \(shape) could belong to several base tensors (\(candidates.prefix(4).joined(separator: ", "))); refusing to guess"
    }
}
