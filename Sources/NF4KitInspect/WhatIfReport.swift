public import NF4KitCore
import NF4KitQuant

/// Memory of models for inference (FP16, 8-bit, 4-bit) and for AdamW training (full, LoRA, QLoRA), and which common
/// GPU memory sizes each fits (docs/sensitivity.md §5).
///
/// Every number comes from tensor shapes through the same ``MemoryBreakdown`` and ``TrainingMemory`` computation as
/// `nf4kit inspect --lora-rank`, applied either to an inspected checkpoint or to a Llama-style shape model.
public struct WhatIfReport: Sendable, Hashable {
    /// Version of the JSON document's layout (2: inference in FP16, 8-bit and 4-bit, presets of today's models).
    public static let schemaVersion = 2

    /// GPU memory sizes compared, in GiB (an "80 GB" card holds 80 × 2^30 bytes).
    public static let gpuSizesGiB = [16, 24, 40, 48, 80]

    /// A way of running the model.
    public enum Use: String, Sendable, Hashable, CaseIterable {
        /// Inference with every floating-point parameter in FP16/BF16.
        case inferenceFP16 = "inference-fp16"
        /// Inference with bitsandbytes LLM.int8 Linear weights (int8 codes + one FP32 scale per row), the rest FP16.
        case inferenceInt8 = "inference-int8"
        /// Inference with NF4 + double-quantized Linear weights, the rest FP16 (a 4-bit checkpoint: as stored).
        case inferenceNF4 = "inference-nf4"
        /// Full fine-tuning in mixed precision with AdamW (FP16 weights, FP32 master weights, gradients, moments).
        case trainingFull = "training-full-fp16"
        /// LoRA on a frozen FP16 base with AdamW.
        case trainingLoRA = "training-lora-fp16"
        /// QLoRA: LoRA on a frozen NF4 + double-quantized base with AdamW.
        case trainingQLoRA = "training-qlora"

        /// Whether this is a training use.
        public var isTraining: Bool { self == .trainingFull || self == .trainingLoRA || self == .trainingQLoRA }
    }

    /// The memory of one use of one model.
    public struct Fit: Sendable, Hashable {
        /// The use.
        public var use: Use
        /// Bytes it needs: weights for inference; weights, trainable parameters, gradients and 32-bit AdamW states
        /// for training (no activations, KV cache or CUDA context).
        public var byteCount: Int
        /// GPU sizes (GiB, from ``gpuSizesGiB``) with at least ``byteCount`` bytes.
        public var fitsGiB: [Int]
    }

    /// One model: a row group of the report.
    public struct Model: Sendable, Hashable {
        /// What the user asked for: `70b`, a model name, or the inspected path.
        public var label: String
        /// The published model a preset stands for (`Llama-3.1-70B`); `nil` for a checkpoint or a config.json.
        public var publishedModel: String?
        /// The shapes, when the model is a shape model or was read from a `config.json`.
        public var architecture: LlamaArchitecture?
        /// Parameters.
        public var parameterCount: Int
        /// Parameters of the weights QLoRA quantizes (Linear layers except the output head).
        public var quantizableParameterCount: Int
        /// LoRA parameters at the report's rank on every quantizable Linear layer.
        public var loraParameterCount: Int
        /// One entry per ``Use``, in declaration order.
        public var fits: [Fit]

        /// The entry for `use`.
        public func fit(_ use: Use) -> Fit? { fits.first { $0.use == use } }
    }

    /// The LoRA rank of the LoRA and QLoRA uses.
    public var loraRank: Int
    /// The models, inspected model first.
    public var models: [Model]

    /// Creates a report from models already sized.
    public init(loraRank: Int, models: [Model]) {
        self.loraRank = loraRank
        self.models = models
    }

    /// Sizes a shape model stored in FP16.
    ///
    /// The tensors QLoRA quantizes and LoRA adapts are the ones ``BnbQuantizationPlan`` selects.
    /// - Throws: ``CheckpointError`` `.invalidArgument` for a rank out of range.
    /// - Complexity: O(layers).
    public static func model(
        label: String, architecture: LlamaArchitecture, loraRank: Int
    ) throws(CheckpointError) -> Model {
        let plan = BnbQuantizationPlan()
        let entries = architecture.parameterShapes.map { tensor in
            CheckpointAnalysis.Entry(
                name: tensor.name, dtype: .f16, shape: tensor.shape, parameterCount: tensor.shape.elementCount,
                storedByteCount: 2 * tensor.shape.elementCount, group: nil,
                isQuantizable: plan.shouldQuantize(name: tensor.name, dtype: .f16, shape: tensor.shape))
        }
        let analysis = CheckpointAnalysis(entries: entries, groups: [])
        var model = try model(
            label: label, analysis: analysis, totalByteCount: 2 * analysis.parameterCount, loraRank: loraRank)
        model.architecture = architecture
        return model
    }

    /// Sizes a preset under `label`.
    /// - Throws: ``CheckpointError`` `.invalidArgument` for a rank out of range.
    public static func model(label: String, preset: Preset, loraRank: Int) throws(CheckpointError) -> Model {
        var model = try model(label: label, architecture: preset.architecture, loraRank: loraRank)
        model.publishedModel = preset.model
        return model
    }

    /// Sizes an inspected checkpoint (4-bit checkpoints count by their logical shapes; QLoRA keeps them as stored).
    ///
    /// - Throws: ``CheckpointError`` from reading 4-bit quant states, or `.invalidArgument` when the model has no
    ///   Linear weight or the rank is out of range.
    public static func model(label: String, checkpoint: Checkpoint, loraRank: Int) throws(CheckpointError) -> Model {
        let analysis = try CheckpointAnalysis(checkpoint: checkpoint, isAdapter: false)
        return try model(
            label: label, analysis: analysis, totalByteCount: checkpoint.totalByteCount, loraRank: loraRank)
    }

    private static func model(
        label: String, analysis: CheckpointAnalysis, totalByteCount: Int, loraRank: Int
    ) throws(CheckpointError) -> Model {
        let breakdown = MemoryBreakdown(analysis: analysis, totalByteCount: totalByteCount)
        let training = try TrainingMemory(
            analysis: analysis, breakdown: breakdown, options: TrainingMemoryOptions(rank: loraRank))
        let fits = Use.allCases.map { use -> Fit in
            let bytes: Int
            switch use {
            case .inferenceFP16: bytes = breakdown.cost(.fp16)?.byteCount ?? 0
            case .inferenceInt8: bytes = int8ByteCount(analysis)
            case .inferenceNF4: bytes = training.row(.qlora)?.weightByteCount ?? 0
            case .trainingFull: bytes = training.row(.fullMixedFP16)?.totalByteCount ?? 0
            case .trainingLoRA: bytes = training.row(.loraFP16Base)?.totalByteCount ?? 0
            case .trainingQLoRA: bytes = training.row(.qlora)?.totalByteCount ?? 0
            }
            return Fit(use: use, byteCount: bytes, fitsGiB: fitting(bytes))
        }
        return Model(
            label: label, publishedModel: nil, architecture: nil, parameterCount: analysis.parameterCount,
            quantizableParameterCount: breakdown.costBasis.quantizableParameterCount,
            loraParameterCount: training.loraParameterCount, fits: fits)
    }

    /// LLM.int8 weights (bitsandbytes `Linear8bitLt`): each quantizable `[out, in]` weight as `out · in` int8 codes
    /// plus `out` FP32 row scales (`SCB`); other floating-point tensors FP16; non-float tensors as stored.
    static func int8ByteCount(_ analysis: CheckpointAnalysis) -> Int {
        analysis.entries.reduce(0) { total, entry in
            if entry.isQuantizable { return total + entry.parameterCount + 4 * (entry.shape.dimensions.first ?? 1) }
            return total + (entry.isFloatingPoint ? 2 * entry.parameterCount : entry.storedByteCount)
        }
    }

    /// The GPU sizes of ``gpuSizesGiB`` with at least `byteCount` bytes.
    public static func fitting(_ byteCount: Int) -> [Int] { gpuSizesGiB.filter { byteCount <= $0 << 30 } }
}

extension CheckpointAnalysis {
    /// An analysis of tensors that exist only as shapes (no 4-bit groups).
    init(entries: [Entry], groups: [BnbQuantizedWeight]) {
        self.entries = entries
        self.groups = groups
    }
}
