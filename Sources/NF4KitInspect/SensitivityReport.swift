public import NF4KitCore
public import NF4KitQuant
import Synchronization

/// Settings of a sensitivity analysis.
public struct SensitivityOptions: Sendable, Hashable {
    /// The schemes to quantize with, in report order.
    public var schemes: [QuantizationScheme]
    /// Elements per block of NF4, FP4 and INT4 (one of ``BlockQuantizer/supportedBlocksizes``; transformers uses 64).
    public var blocksize: Int
    /// Which tensors are quantized: the same plan `convert` uses.
    public var plan: BnbQuantizationPlan
    /// Worker threads (at least 1); each holds one tensor's buffers at a time.
    public var threads: Int
    /// Cap on the buffers in flight: the thread count is lowered so that threads × (the largest selected tensor's
    /// working set, about 10 bytes per element) stays below it (one thread always runs).
    public var memoryBudgetByteCount: Int

    /// Default memory budget: 4 GiB.
    public static let defaultMemoryBudgetByteCount = 4 << 30

    /// Creates options.
    public init(
        schemes: [QuantizationScheme] = QuantizationScheme.defaultSchemes, blocksize: Int = 64,
        plan: BnbQuantizationPlan = BnbQuantizationPlan(), threads: Int = 1,
        memoryBudgetByteCount: Int = SensitivityOptions.defaultMemoryBudgetByteCount
    ) {
        self.schemes = schemes
        self.blocksize = blocksize
        self.plan = plan
        self.threads = threads
        self.memoryBudgetByteCount = memoryBudgetByteCount
    }
}

/// How much accuracy each storage scheme loses on a checkpoint's weights, and what it costs in bytes.
///
/// Every tensor that `convert` would quantize (``BnbQuantizationPlan``) is quantized in memory with each scheme
/// and decoded to float32; the decoded values are compared with the original values (widened to float32). Results
/// are kept per tensor, per layer type (`q`, `k`, `v`, `o`, `gate`, `up`, `down`, ...), per component (attention,
/// MLP, other) and for the whole model. See docs/sensitivity.md.
public struct SensitivityReport: Sendable, Hashable {
    /// Version of the JSON document's layout.
    public static let schemaVersion = 1

    /// Which part of a transformer block a weight belongs to.
    public enum Component: String, Sendable, Hashable, CaseIterable {
        /// Attention projections (`q`, `k`, `v`, `o`, or a module under `attn`/`attention`).
        case attention
        /// Feed-forward projections (`gate`, `up`, `down`, or a module under `mlp`/`ffn`).
        case mlp
        /// Anything else.
        case other
    }

    /// The error and cost of one scheme on one tensor or group of tensors.
    public struct SchemeResult: Sendable, Hashable {
        /// The scheme.
        public var scheme: QuantizationScheme
        /// Tensors the scheme was applied to (ggml formats skip rows that are not a multiple of 32).
        public var tensorCount: Int
        /// Their elements.
        public var parameterCount: Int
        /// Bytes of those tensors in this scheme (``QuantizationScheme/byteCount(elementCount:blocksize:)``).
        public var byteCount: Int
        /// The error statistics.
        public var error: ErrorStatistics

        /// `byteCount · 8 / parameterCount`; 0 for no parameters.
        public var bitsPerParameter: Double { parameterCount > 0 ? Double(byteCount) * 8 / Double(parameterCount) : 0 }

        mutating func merge(_ other: SchemeResult) {
            tensorCount += other.tensorCount
            parameterCount += other.parameterCount
            byteCount += other.byteCount
            error.merge(other.error)
        }
    }

    /// One weight.
    public struct TensorResult: Sendable, Hashable {
        /// The tensor's name.
        public var name: String
        /// Its stored dtype.
        public var dtype: DType
        /// Its shape.
        public var shape: Shape
        /// Layer type, e.g. `q`, `gate` (see ``SensitivityReport/layerType(of:)``).
        public var layerType: String
        /// Attention, MLP or other.
        public var component: Component
        /// Elements.
        public var parameterCount: Int
        /// Bytes as stored.
        public var byteCount: Int
        /// One entry per scheme that accepts the shape, in ``SensitivityOptions/schemes`` order.
        public var schemes: [SchemeResult]
    }

    /// Statistics merged over a group of tensors.
    public struct Aggregate: Sendable, Hashable {
        /// The group: a layer type, a component name, or `model`.
        public var label: String
        /// Tensors in the group.
        public var tensorCount: Int
        /// Their elements.
        public var parameterCount: Int
        /// Their bytes as stored.
        public var byteCount: Int
        /// One entry per scheme applied to at least one tensor of the group.
        public var schemes: [SchemeResult]

        /// The entry for `scheme`.
        public func result(_ scheme: QuantizationScheme) -> SchemeResult? { schemes.first { $0.scheme == scheme } }
    }

    /// The schemes compared.
    public var schemes: [QuantizationScheme]
    /// Block size of NF4, FP4 and INT4.
    public var blocksize: Int
    /// The quantized tensors in checkpoint order.
    public var tensors: [TensorResult]
    /// Per layer type: `q`, `k`, `v`, `o`, `gate`, `up`, `down` first (those present), then others by name.
    public var byLayerType: [Aggregate]
    /// Per component: attention, MLP, other (those present).
    public var byComponent: [Aggregate]
    /// The whole model (every selected tensor).
    public var model: Aggregate

    /// Quantizes every selected tensor of `checkpoint` with each scheme and measures the error.
    ///
    /// Tensors are processed by up to ``SensitivityOptions/threads`` threads, one tensor per thread at a time, so
    /// memory stays at about threads × 10 bytes per element of the largest tensor. Each tensor's statistics are
    /// summed sequentially and aggregates are merged in checkpoint order, so the result is the same for any
    /// thread count.
    /// - Parameters:
    ///   - progress: called after each tensor with the tensors and stored bytes done so far, from any thread.
    /// - Throws: ``CheckpointError`` `.invalidArgument` for an unsupported block size or an empty scheme list.
    /// - Complexity: O(schemes × parameters).
    public static func analyze(
        _ checkpoint: Checkpoint, options: SensitivityOptions = SensitivityOptions(),
        progress: (@Sendable (AnalysisProgress) -> Void)? = nil
    ) throws(CheckpointError) -> SensitivityReport {
        guard !options.schemes.isEmpty else { throw CheckpointError(.invalidArgument, "no scheme to compare") }
        let nf4 = try BlockQuantizer(quantType: .nf4, blocksize: options.blocksize)
        let fp4 = try BlockQuantizer(quantType: .fp4, blocksize: options.blocksize)
        let selected = checkpoint.tensors.filter {
            options.plan.shouldQuantize(name: $0.name, dtype: $0.dtype, shape: $0.shape)
                && $0.descriptor.elementCount > 0
        }
        let largest = selected.map(\.descriptor.elementCount).max() ?? 0
        let perThread = max(1, largest * bytesPerElementInFlight)
        let window = max(1, min(options.threads, options.memoryBudgetByteCount / perThread, selected.count))
        let context = Worker(schemes: options.schemes, blocksize: options.blocksize, nf4: nf4, fp4: fp4)

        let counter = AnalysisProgressCounter(
            tensorsTotal: selected.count, bytesTotal: selected.reduce(0) { $0 + $1.descriptor.byteCount },
            report: progress)
        let tensors = ParallelRunner.map(count: selected.count, threads: window) { index in
            let result = context.analyze(selected[index])
            counter.finished(bytes: selected[index].descriptor.byteCount)
            return result
        }
        return SensitivityReport(schemes: options.schemes, blocksize: options.blocksize, tensors: tensors)
    }

    /// Bytes of buffers per element while one tensor is analysed: float32 reference and decoded copies (8), plus
    /// the largest encoded form (Q8_0, about 1.1; BF16, 2).
    static let bytesPerElementInFlight = 10

    /// Builds the aggregates from per-tensor results (merged in the given order).
    public init(schemes: [QuantizationScheme], blocksize: Int, tensors: [TensorResult]) {
        self.schemes = schemes
        self.blocksize = blocksize
        self.tensors = tensors
        func aggregate(_ label: String, _ members: [TensorResult]) -> Aggregate {
            var merged: [SchemeResult] = []
            for scheme in schemes {
                var total = SchemeResult(
                    scheme: scheme, tensorCount: 0, parameterCount: 0, byteCount: 0, error: ErrorStatistics())
                for tensor in members {
                    if let result = tensor.schemes.first(where: { $0.scheme == scheme }) { total.merge(result) }
                }
                if total.tensorCount > 0 { merged.append(total) }
            }
            return Aggregate(
                label: label, tensorCount: members.count, parameterCount: members.reduce(0) { $0 + $1.parameterCount },
                byteCount: members.reduce(0) { $0 + $1.byteCount }, schemes: merged)
        }
        let known = Self.layerTypeOrder
        let present = Set(tensors.map(\.layerType))
        let order = known.filter(present.contains) + present.subtracting(known).sorted()
        byLayerType = order.map { type in aggregate(type, tensors.filter { $0.layerType == type }) }
        byComponent = Component.allCases.compactMap { component in
            let members = tensors.filter { $0.component == component }
            return members.isEmpty ? nil : aggregate(component.rawValue, members)
        }
        model = aggregate("model", tensors)
    }

    /// The layer types listed first, in this order.
    public static let layerTypeOrder = ["q", "k", "v", "o", "qkv", "gate", "up", "gate_up", "down"]

    /// The layer type of a weight: its module's last name with `_proj` removed (`q_proj` -> `q`), with the common
    /// aliases of other families and of GGUF mapped to Llama's (`query` -> `q`, `dense_h_to_4h` -> `up`,
    /// `attn_output` -> `o`, `ffn_down` -> `down`, ...).
    public static func layerType(of name: String) -> String {
        let module = name.hasSuffix(".weight") ? String(name.dropLast(".weight".count)) : name
        let last = module.split(separator: ".").last.map(String.init) ?? module
        switch last {
        case "query", "wq", "attn_q": return "q"
        case "key", "wk", "attn_k": return "k"
        case "value", "wv", "attn_v": return "v"
        case "out", "wo", "attn_output": return "o"
        case "attn_qkv": return "qkv"
        case "ffn_gate": return "gate"
        case "ffn_up": return "up"
        case "ffn_down": return "down"
        case "c_proj": return module.contains("attn") ? "o" : "down"  // GPT-2: attn.c_proj vs mlp.c_proj
        case "query_key_value", "c_attn", "Wqkv": return "qkv"
        case "w1": return "gate"
        case "w3", "fc1", "dense_h_to_4h", "c_fc": return "up"
        case "w2", "fc2", "dense_4h_to_h": return "down"
        default: return last.hasSuffix("_proj") ? String(last.dropLast("_proj".count)) : last
        }
    }

    /// The component of a weight: attention for `q`/`k`/`v`/`o`/`qkv` or a path through `attn`/`attention`, MLP for
    /// `gate`/`up`/`down` or a path through `mlp`/`ffn`/`feed_forward`, else other.
    public static func component(of name: String) -> Component {
        let type = layerType(of: name)
        if ["q", "k", "v", "o", "qkv"].contains(type) { return .attention }
        if ["gate", "up", "down", "gate_up"].contains(type) { return .mlp }
        let parts = name.lowercased().split(separator: ".")
        if parts.contains(where: { $0.contains("attn") || $0.contains("attention") }) { return .attention }
        if parts.contains(where: { $0.contains("mlp") || $0.contains("ffn") || $0.contains("feed_forward") }) {
            return .mlp
        }
        return .other
    }
}
