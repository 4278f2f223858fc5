import NF4KitCore

/// The element type of trainable LoRA parameters (and of their gradients).
public enum LoRAParameterDType: String, Sendable, Hashable, CaseIterable {
    /// FP32, PEFT's default (it up-casts adapters of 16-bit models).
    case f32
    /// BF16.
    case bf16

    /// Bytes per element.
    public var byteWidth: Int { self == .f32 ? 4 : 2 }
}

/// What to estimate training memory for: a LoRA rank, the modules that get LoRA, the adapter dtype.
public struct TrainingMemoryOptions: Sendable, Hashable {
    /// LoRA rank `r` (at least 1).
    public var rank: Int
    /// Module names that get LoRA (`q_proj`, `model.layers.0.mlp.up_proj`); `nil` means every quantizable Linear
    /// layer (what QLoRA does; `lm_head` and embeddings excluded).
    public var targets: [String]?
    /// Element type of the LoRA parameters and their gradients.
    public var adapterDType: LoRAParameterDType

    /// Largest rank accepted (keeps every product well inside `Int`).
    public static let maxRank = 65_536

    /// Creates options; `targets == nil` means every quantizable Linear layer.
    public init(rank: Int, targets: [String]? = nil, adapterDType: LoRAParameterDType = .f32) {
        self.rank = rank
        self.targets = targets
        self.adapterDType = adapterDType
    }
}

/// Estimated training memory for a model: model state only (weights, trainable parameters, gradients, optimizer
/// states); activations, temporary buffers and framework overhead are not included.
///
/// See docs/inspect.md for every formula and assumption.
public struct TrainingMemory: Sendable, Hashable {
    /// How the model is trained.
    public enum Method: String, Sendable, Hashable, CaseIterable {
        /// Every floating-point parameter trained in FP32 with AdamW.
        case fullFP32
        /// Every floating-point parameter trained in mixed precision: FP16 weights and gradients, FP32 master weights.
        case fullMixedFP16
        /// LoRA adapters on a frozen FP16/BF16 base.
        case loraFP16Base
        /// LoRA adapters on a frozen 4-bit base (QLoRA).
        case qlora
    }

    /// One row of the table, in bytes.
    public struct Row: Sendable, Hashable {
        /// Which training method this row is.
        public var method: Method
        /// Parameters that receive gradients.
        public var trainableParameterCount: Int
        /// The model weights kept in memory (the frozen base for LoRA; the 16-bit copy for mixed precision).
        public var weightByteCount: Int
        /// Trainable parameters held in addition to ``weightByteCount``: LoRA A/B matrices, or FP32 master weights.
        public var trainableByteCount: Int
        /// Gradients, in the dtype of the trainable parameters.
        public var gradientByteCount: Int
        /// AdamW states (two FP32 moments per trainable parameter).
        public var optimizerStateByteCount: Int
        /// AdamW states with bitsandbytes' 8-bit (or paged 8-bit) AdamW: two U8 moments + two F32 constants per
        /// 2048-element block; tensors under 4096 elements keep FP32 states.
        public var optimizerState8BitByteCount: Int

        /// Total with 32-bit AdamW.
        public var totalByteCount: Int {
            weightByteCount + trainableByteCount + gradientByteCount + optimizerStateByteCount
        }
        /// Total with 8-bit AdamW.
        public var total8BitByteCount: Int {
            weightByteCount + trainableByteCount + gradientByteCount + optimizerState8BitByteCount
        }
    }

    /// One module that gets LoRA.
    public struct Target: Sendable, Hashable {
        /// The base weight's name.
        public var name: String
        /// Rows of the base weight (`out`).
        public var outFeatures: Int
        /// Columns of the base weight (`in`).
        public var inFeatures: Int
        /// `r * (in + out)`.
        public var loraParameterCount: Int
    }

    /// The options the estimate was made for.
    public var options: TrainingMemoryOptions
    /// The modules that get LoRA, in checkpoint order.
    public var targets: [Target]
    /// Sum of `r * (in + out)` over ``targets``.
    public var loraParameterCount: Int
    /// Floating-point parameters of the model (what full fine-tuning trains).
    public var fullParameterCount: Int
    /// One row per ``Method``, in declaration order.
    public var rows: [Row]

    /// The row for `method`.
    public func row(_ method: Method) -> Row? { rows.first { $0.method == method } }

    /// Largest LoRA parameter count (per target and in total) that we compute with: 2^48, far beyond any real model.
    static let maxLoRAParameters = 1 << 48
    /// bitsandbytes' 8-bit optimizers keep FP32 states for tensors smaller than this (`min_8bit_size`).
    static let min8BitElements = 4096
    /// bitsandbytes' blockwise 8-bit optimizer state block (one F32 absmax per state per block).
    static let optimizer8BitBlock = 2048

    /// Bytes of AdamW's two states for a tensor of `n` elements with bitsandbytes' 8-bit AdamW.
    static func adamW8BitStateBytes(elements n: Int) -> Int {
        if n < min8BitElements { return 8 * n }
        let blocks = (n + optimizer8BitBlock - 1) / optimizer8BitBlock
        return 2 * n + 2 * 4 * blocks
    }

    /// - Throws: `.invalidArgument` for a rank out of range, targets that match nothing, or no target at all.
    init(
        analysis: CheckpointAnalysis, breakdown: MemoryBreakdown, options: TrainingMemoryOptions
    ) throws(CheckpointError) {
        guard options.rank >= 1, options.rank <= TrainingMemoryOptions.maxRank else {
            throw CheckpointError(
                .invalidArgument,
                "the LoRA rank must be between 1 and \(TrainingMemoryOptions.maxRank), got \(options.rank)")
        }
        let r = options.rank
        var targets: [Target] = []
        var matched = Set<String>()
        for entry in analysis.entries where entry.shape.rank == 2 && entry.isFloatingPoint {
            let isTarget: Bool
            if let wanted = options.targets {
                let path = entry.modulePath
                let hits = wanted.filter { path == $0 || path.hasSuffix("." + $0) }
                matched.formUnion(hits)
                isTarget = entry.name.hasSuffix(".weight") && !hits.isEmpty
            } else {
                isTarget = entry.isQuantizable
            }
            guard isTarget else { continue }
            let out = entry.shape.dimensions[0], inFeatures = entry.shape.dimensions[1]
            // Dimensions of an empty tensor are not bounded by the file size, so the product is checked.
            let (sum, sumOverflow) = inFeatures.addingReportingOverflow(out)
            let (count, countOverflow) = sum.multipliedReportingOverflow(by: r)
            guard !sumOverflow, !countOverflow, count <= TrainingMemory.maxLoRAParameters else {
                throw CheckpointError(
                    .limitExceeded,
                    "LoRA of rank \(r) on '\(entry.name)' \(entry.shape) would have more than \(TrainingMemory.maxLoRAParameters) parameters",
                    tensor: entry.name)
            }
            targets.append(
                Target(name: entry.name, outFeatures: out, inFeatures: inFeatures, loraParameterCount: count))
        }
        if let wanted = options.targets {
            let missing = wanted.filter { !matched.contains($0) }
            guard missing.isEmpty else {
                throw CheckpointError(
                    .invalidArgument,
                    "LoRA target(s) \(missing.map { "'\($0)'" }.joined(separator: ", ")) match no 2-D weight of the model"
                )
            }
        }
        guard !targets.isEmpty else {
            throw CheckpointError(
                .invalidArgument, "the model has no Linear weight to put LoRA on; name targets with --lora-targets")
        }
        self.options = options
        self.targets = targets

        // Full fine-tuning trains every floating-point tensor.
        var full = 0, full8Bit = 0
        for entry in analysis.entries where entry.isFloatingPoint {
            full += entry.parameterCount
            full8Bit += TrainingMemory.adamW8BitStateBytes(elements: entry.parameterCount)
        }
        let nonFloat = breakdown.costBasis.nonFloatByteCount
        // LoRA trains A [r, in] and B [out, r] per target.
        var lora = 0, lora8Bit = 0
        for target in targets {
            lora += target.loraParameterCount
            guard lora <= TrainingMemory.maxLoRAParameters else {
                throw CheckpointError(
                    .limitExceeded,
                    "the LoRA targets would have more than \(TrainingMemory.maxLoRAParameters) parameters in total",
                    tensor: target.name)
            }
            lora8Bit +=
                TrainingMemory.adamW8BitStateBytes(elements: r * target.inFeatures)
                + TrainingMemory.adamW8BitStateBytes(elements: target.outFeatures * r)
        }
        loraParameterCount = lora
        fullParameterCount = full
        let width = options.adapterDType.byteWidth
        let fp16Base = breakdown.cost(.fp16)?.byteCount ?? 0
        // QLoRA loads the checkpoint as it is when it is already 4-bit, else the NF4 + DQ size.
        let fourBitBase =
            analysis.hasFourBitGroups ? breakdown.totalByteCount : (breakdown.cost(.nf4DoubleQuant)?.byteCount ?? 0)
        rows = [
            Row(
                method: .fullFP32, trainableParameterCount: full, weightByteCount: 4 * full + nonFloat,
                trainableByteCount: 0, gradientByteCount: 4 * full, optimizerStateByteCount: 8 * full,
                optimizerState8BitByteCount: full8Bit),
            Row(
                method: .fullMixedFP16, trainableParameterCount: full, weightByteCount: 2 * full + nonFloat,
                trainableByteCount: 4 * full, gradientByteCount: 2 * full, optimizerStateByteCount: 8 * full,
                optimizerState8BitByteCount: full8Bit),
            Row(
                method: .loraFP16Base, trainableParameterCount: lora, weightByteCount: fp16Base,
                trainableByteCount: width * lora, gradientByteCount: width * lora, optimizerStateByteCount: 8 * lora,
                optimizerState8BitByteCount: lora8Bit),
            Row(
                method: .qlora, trainableParameterCount: lora, weightByteCount: fourBitBase,
                trainableByteCount: width * lora, gradientByteCount: width * lora, optimizerStateByteCount: 8 * lora,
                optimizerState8BitByteCount: lora8Bit),
        ]
    }
}
