public import NF4KitCore
import NF4KitQuant

/// Memory of models under FP32, FP16, LoRA on FP16 and QLoRA, for weights and for AdamW training, and which common
/// GPU memory sizes each fits (docs/sensitivity.md).
///
/// Every number comes from tensor shapes through the same ``MemoryBreakdown`` and ``TrainingMemory`` computation as
/// `nf4kit inspect --lora-rank`, applied either to an inspected checkpoint or to a Llama-style shape model.
public struct WhatIfReport: Sendable, Hashable {
    /// Version of the JSON document's layout.
    public static let schemaVersion = 1

    /// GPU memory sizes compared, in GiB (an "80 GB" card holds 80 × 2^30 bytes).
    public static let gpuSizesGiB = [8, 12, 16, 24, 40, 48, 80]

    /// A way of holding the model.
    public enum Setup: String, Sendable, Hashable, CaseIterable {
        /// Every floating-point parameter in FP32; training: full fine-tuning in FP32 with AdamW.
        case fp32
        /// Every floating-point parameter in FP16; training: full mixed-precision fine-tuning (FP32 master weights).
        case fp16
        /// Frozen FP16 base plus LoRA adapters; training: LoRA with AdamW.
        case loraFP16 = "lora-fp16"
        /// Frozen NF4 + double-quantized base plus LoRA adapters; training: QLoRA with AdamW.
        case qlora

        /// The ``TrainingMemory`` row that this setup reads.
        var method: TrainingMemory.Method {
            switch self {
            case .fp32: .fullFP32
            case .fp16: .fullMixedFP16
            case .loraFP16: .loraFP16Base
            case .qlora: .qlora
            }
        }
    }

    /// One setup of one model.
    public struct Scenario: Sendable, Hashable {
        /// The setup.
        public var setup: Setup
        /// Bytes to hold the weights (and the LoRA parameters, for the LoRA setups) for inference.
        public var weightByteCount: Int
        /// Bytes to train: weights, trainable parameters, gradients and 32-bit AdamW states (no activations).
        public var trainingByteCount: Int
        /// GPU sizes (GiB, from ``gpuSizesGiB``) that hold ``weightByteCount``.
        public var weightsFitGiB: [Int]
        /// GPU sizes (GiB) that hold ``trainingByteCount``.
        public var trainingFitsGiB: [Int]
    }

    /// One model: a row group of the report.
    public struct Model: Sendable, Hashable {
        /// `7b`, ..., or the inspected path.
        public var label: String
        /// The shapes, when the model is a shape model or was read from a `config.json`.
        public var architecture: LlamaArchitecture?
        /// Parameters.
        public var parameterCount: Int
        /// Parameters of the weights QLoRA quantizes (Linear layers except the output head).
        public var quantizableParameterCount: Int
        /// LoRA parameters at the report's rank on every quantizable Linear layer.
        public var loraParameterCount: Int
        /// One entry per ``Setup``, in declaration order.
        public var scenarios: [Scenario]

        /// The entry for `setup`.
        public func scenario(_ setup: Setup) -> Scenario? { scenarios.first { $0.setup == setup } }
    }

    /// The LoRA rank of the LoRA and QLoRA setups.
    public var loraRank: Int
    /// The models, inspected model first.
    public var models: [Model]

    /// Creates a report from models already sized.
    public init(loraRank: Int, models: [Model]) {
        self.loraRank = loraRank
        self.models = models
    }

    /// LLaMA-1 shapes by size name (hidden / intermediate / layers / heads, vocabulary 32000), as published with the
    /// models: `7b` 4096/11008/32/32, `13b` 5120/13824/40/40, `30b` (33B) 6656/17920/60/52, `65b` 8192/22016/80/64.
    public static let presets: [(name: String, architecture: LlamaArchitecture)] = [
        ("7b", LlamaArchitecture(hidden: 4096, intermediate: 11008, layers: 32, heads: 32, kvHeads: 32, vocabulary: 32000)),
        ("13b", LlamaArchitecture(hidden: 5120, intermediate: 13824, layers: 40, heads: 40, kvHeads: 40, vocabulary: 32000)),
        ("30b", LlamaArchitecture(hidden: 6656, intermediate: 17920, layers: 60, heads: 52, kvHeads: 52, vocabulary: 32000)),
        ("65b", LlamaArchitecture(hidden: 8192, intermediate: 22016, layers: 80, heads: 64, kvHeads: 64, vocabulary: 32000)),
    ]

    /// The preset called `name` (`7b`, `13b`, `30b` or `33b`, `65b`; case-insensitive).
    public static func preset(named name: String) -> LlamaArchitecture? {
        let key = name.lowercased() == "33b" ? "30b" : name.lowercased()
        return presets.first { $0.name == key }?.architecture
    }

    /// Parses `7b,13b,30b,65b` into presets.
    /// - Throws: ``CheckpointError`` `.invalidArgument` naming an unknown size or an empty list.
    public static func presets(in list: String) throws(CheckpointError) -> [(name: String, architecture: LlamaArchitecture)] {
        var result: [(name: String, architecture: LlamaArchitecture)] = []
        for item in list.split(separator: ",") {
            let name = item.filter { $0 != " " }.lowercased()
            if name.isEmpty { continue }
            guard let architecture = preset(named: name) else {
                throw CheckpointError(
                    .invalidArgument, "unknown model size '\(name)'; expected \(presets.map(\.name).joined(separator: ", "))")
            }
            if !result.contains(where: { $0.name == name }) { result.append((name, architecture)) }
        }
        guard !result.isEmpty else { throw CheckpointError(.invalidArgument, "the --what-if list names no model size") }
        return result
    }

    /// Sizes a shape model stored in FP16.
    ///
    /// The tensors QLoRA quantizes and LoRA adapts are the ones ``BnbQuantizationPlan`` selects.
    /// - Throws: ``CheckpointError`` `.invalidArgument` for a rank out of range.
    /// - Complexity: O(layers).
    public static func model(label: String, architecture: LlamaArchitecture, loraRank: Int) throws(CheckpointError) -> Model {
        let plan = BnbQuantizationPlan()
        let entries = architecture.parameterShapes.map { tensor in
            CheckpointAnalysis.Entry(
                name: tensor.name, dtype: .f16, shape: tensor.shape, parameterCount: tensor.shape.elementCount,
                storedByteCount: 2 * tensor.shape.elementCount, group: nil,
                isQuantizable: plan.shouldQuantize(name: tensor.name, dtype: .f16, shape: tensor.shape))
        }
        let analysis = CheckpointAnalysis(entries: entries, groups: [])
        var model = try model(label: label, analysis: analysis, totalByteCount: 2 * analysis.parameterCount, loraRank: loraRank)
        model.architecture = architecture
        return model
    }

    /// Sizes an inspected checkpoint (4-bit checkpoints count by their logical shapes; QLoRA keeps them as stored).
    ///
    /// - Throws: ``CheckpointError`` from reading 4-bit quant states, or `.invalidArgument` when the model has no
    ///   Linear weight or the rank is out of range.
    public static func model(label: String, checkpoint: Checkpoint, loraRank: Int) throws(CheckpointError) -> Model {
        let analysis = try CheckpointAnalysis(checkpoint: checkpoint, isAdapter: false)
        return try model(label: label, analysis: analysis, totalByteCount: checkpoint.totalByteCount, loraRank: loraRank)
    }

    private static func model(label: String, analysis: CheckpointAnalysis, totalByteCount: Int, loraRank: Int) throws(CheckpointError) -> Model {
        let breakdown = MemoryBreakdown(analysis: analysis, totalByteCount: totalByteCount)
        let training = try TrainingMemory(analysis: analysis, breakdown: breakdown, options: TrainingMemoryOptions(rank: loraRank))
        let scenarios = Setup.allCases.map { setup in
            let row = training.row(setup.method)!
            let weights = row.weightByteCount + (setup == .loraFP16 || setup == .qlora ? row.trainableByteCount : 0)
            return Scenario(
                setup: setup, weightByteCount: weights, trainingByteCount: row.totalByteCount,
                weightsFitGiB: fitting(weights), trainingFitsGiB: fitting(row.totalByteCount))
        }
        return Model(
            label: label, architecture: nil, parameterCount: analysis.parameterCount,
            quantizableParameterCount: breakdown.costBasis.quantizableParameterCount,
            loraParameterCount: training.loraParameterCount, scenarios: scenarios)
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
