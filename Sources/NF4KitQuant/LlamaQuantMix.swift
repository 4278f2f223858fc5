public import NF4KitCore

/// llama-quantize's choice of a ggml type for each tensor of a model (`llama_tensor_get_type` and
/// `tensor_type_fallback` in src/llama-quant.cpp, without an importance matrix or overrides), and the order in which
/// it writes the tensors.
public enum LlamaQuantMix {
    /// What the mix needs to know about the model (from the GGUF hyperparameters).
    public struct Model: Hashable, Sendable {
        /// `general.architecture` (`"llama"`).
        public var architecture: String
        /// `<arch>.block_count`.
        public var layerCount: Int
        /// `<arch>.attention.head_count`.
        public var headCount: Int
        /// `<arch>.attention.head_count_kv` (the head count when absent).
        public var kvHeadCount: Int
        /// `<arch>.expert_count` (0 when absent).
        public var expertCount: Int

        /// Creates a model description.
        public init(architecture: String, layerCount: Int, headCount: Int, kvHeadCount: Int, expertCount: Int = 0) {
            self.architecture = architecture
            self.layerCount = layerCount
            self.headCount = headCount
            self.kvHeadCount = kvHeadCount
            self.expertCount = expertCount
        }

        /// `n_gqa()`: heads per KV head (0 without KV heads).
        var groupedQueryFactor: Int { kvHeadCount == 0 ? 0 : headCount / kvHeadCount }

        /// llama.cpp's `LLM_TYPE_70B` (the attn_v bump applies to it).
        var is70B: Bool {
            switch architecture {
            case "llama": expertCount != 8 && layerCount == 80 && headCount != kvHeadCount
            case "deci", "olmo", "qwen2": layerCount == 80
            case "jais2": layerCount == 68
            default: false
            }
        }
    }

    /// One tensor as the source file has it.
    public struct Tensor: Hashable, Sendable {
        /// The GGUF name (`blk.0.attn_v.weight`).
        public var name: String
        /// ggml dimensions, `ne[0]` (the row length) first.
        public var dimensions: [Int]
        /// The type in the source file.
        public var type: GGMLType

        /// Creates a tensor description.
        public init(name: String, dimensions: [Int], type: GGMLType) {
            self.name = name
            self.dimensions = dimensions
            self.type = type
        }
    }

    /// A tensor with the type llama-quantize gives it.
    public struct Assignment: Hashable, Sendable {
        /// The source tensor.
        public var tensor: Tensor
        /// The type it is written as (the source type when it is copied).
        public var type: GGMLType
        /// Whether the type came from `tensor_type_fallback` (the row length is not a multiple of the block).
        public var isFallback: Bool
    }

    /// The type of every tensor, in the order llama-quantize writes them.
    ///
    /// The order is the loader's: tensors outside `blk.N.` first, then by layer number, each group by name (byte
    /// order). Layer counters (`i_attention_wv`, `i_ffn_down`) advance in that order, as in llama-quantize.
    /// Tied embeddings are detected as llama-quantize does: no `output.weight` in the list.
    ///
    /// - Complexity: O(n log n) in the tensor count.
    public static func plan(fileType: LlamaFileType, model: Model, tensors: [Tensor]) -> [Assignment] {
        let ordered = tensors.sorted(by: loaderOrder)
        var state = State(model: model, fileType: fileType)
        state.attentionVCount = ordered.filter { isAttentionV(category(of: $0.name)) }.count
        state.hasTiedEmbeddings = !ordered.contains { category(of: $0.name) == .output }
        return ordered.map { tensor in
            guard allowsQuantization(tensor) else {
                return Assignment(tensor: tensor, type: tensor.type, isFallback: false)
            }
            let chosen = state.choose(tensor)
            let (type, fallback) = Self.fallback(tensor, chosen)
            return Assignment(tensor: tensor, type: type, isFallback: fallback)
        }
    }

    /// `weight_name_comparer`: layer number (`blk.%d.`, -1 for other names), then name.
    static func loaderOrder(_ a: Tensor, _ b: Tensor) -> Bool {
        let la = layer(of: a.name)
        let lb = layer(of: b.name)
        if la != lb { return la < lb }
        return Array(a.name.utf8).lexicographicallyPrecedes(Array(b.name.utf8))
    }

    /// `sscanf(name, "blk.%d.", &layer)`: the number after `blk.` (optional sign, digits), else -1.
    static func layer(of name: String) -> Int {
        let bytes = Array(name.utf8)
        let prefix = Array("blk.".utf8)
        guard bytes.count > prefix.count, Array(bytes[0..<prefix.count]) == prefix else { return -1 }
        var index = prefix.count
        var negative = false
        if bytes[index] == UInt8(ascii: "-") || bytes[index] == UInt8(ascii: "+") {
            negative = bytes[index] == UInt8(ascii: "-")
            index += 1
        }
        var value = 0
        var digits = 0
        while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]), digits < 9 {
            value = value * 10 + Int(bytes[index] - UInt8(ascii: "0"))
            index += 1
            digits += 1
        }
        guard digits > 0 else { return -1 }
        return negative ? -value : value
    }

    enum Category {
        case output, tokenEmbedding, attentionQKV, attentionKVB, attentionV, attentionK, attentionQ, attentionOutput
        case ffnUp, ffnGate, ffnDown, other
    }

    // tensor_get_category.
    static func category(of name: String) -> Category {
        if name == "output.weight" { return .output }
        if name == "token_embd.weight" || name == "per_layer_token_embd.weight" { return .tokenEmbedding }
        if name.contains("attn_qkv.weight") { return .attentionQKV }
        if name.contains("attn_kv_b.weight") { return .attentionKVB }
        if name.contains("attn_v.weight") { return .attentionV }
        if name.contains("attn_k.weight") { return .attentionK }
        if name.contains("attn_q.weight") { return .attentionQ }
        if name.contains("attn_output.weight") { return .attentionOutput }
        if name.contains("ffn_up") { return .ffnUp }
        if name.contains("ffn_gate") { return .ffnGate }
        if name.contains("ffn_down") { return .ffnDown }
        return .other
    }

    static func isAttentionV(_ category: Category) -> Bool {
        category == .attentionV || category == .attentionQKV || category == .attentionKVB
    }

    // tensor_allows_quantization (default parameters: the output tensor is quantized; architecture-specific
    // exclusions of GLM5-next are not modelled).
    static func allowsQuantization(_ tensor: Tensor) -> Bool {
        // ggml_n_dims: trailing dimensions of 1 do not count.
        let dimensionCount = (tensor.dimensions.lastIndex { $0 != 1 } ?? 0) + 1
        guard dimensionCount >= 2 else { return false }
        let name = tensor.name
        guard name.hasSuffix("weight"), !name.contains("_norm.weight") else { return false }
        let excluded = [
            "ffn_gate_inp.weight", "ffn_gate_tid2eid.weight", "altup", "laurel", "per_layer_model_proj", "ssm_conv1d",
            "shortconv.conv.weight", "indexer.k_proj.weight", "indexer.q_proj.weight", "time_mix_first.weight",
            "time_mix_w0.weight", "time_mix_w1.weight", "time_mix_w2.weight", "time_mix_v0.weight",
            "time_mix_v1.weight", "time_mix_v2.weight", "time_mix_a0.weight", "time_mix_a1.weight",
            "time_mix_a2.weight", "time_mix_g1.weight", "time_mix_g2.weight", "time_mix_decay_w1.weight",
            "time_mix_decay_w2.weight", "time_mix_lerp_fused.weight", "attn_rel_b.weight", ".position_embd",
            "sam.pos_embd", "sam.neck.", "sam.net_", ".rel_pos", ".patch_embd", ".patch_merger", "a.rvq.codebook",
            "mm.a.code_embd",
        ]
        if excluded.contains(where: { name.contains($0) }) { return false }
        return name != "position_embd.weight" && name != "token_types.weight"
    }

    // tensor_type_fallback: a row length that is not a multiple of the block.
    static func fallback(_ tensor: Tensor, _ target: GGMLType) -> (GGMLType, Bool) {
        let columns = tensor.dimensions.first ?? 1
        guard columns % target.blockSize != 0 else { return (target, false) }
        var result: GGMLType
        switch target {
        case .iq4_xs, .iq1_s, .iq1_m, .iq2_xxs, .iq2_xs, .iq2_s, .iq3_xxs, .iq3_s: result = .iq4_nl
        case .q2_K, .q3_K, .tq1_0, .tq2_0: result = .q4_0
        case .q4_K: result = .q5_0
        case .q5_K: result = .q5_1
        case .q6_K: result = .q8_0
        default: result = target
        }
        if columns % result.blockSize != 0 { result = .f16 }
        return (result, true)
    }

    private struct State {
        let model: Model
        let fileType: LlamaFileType
        var attentionVCount = 0
        var attentionVIndex = 0
        var ffnDownIndex = 0
        var hasTiedEmbeddings = true

        init(model: Model, fileType: LlamaFileType) {
            self.model = model
            self.fileType = fileType
        }

        // use_more_bits.
        static func useMoreBits(_ layer: Int, _ layers: Int) -> Bool {
            layer < layers / 8 || layer >= 7 * layers / 8 || (layer - layers / 8) % 3 == 2
        }

        // llama_tensor_get_type_impl for the file types of LlamaFileType (no imatrix, no IQ1/IQ2/IQ3 types).
        mutating func choose(_ tensor: Tensor) -> GGMLType {
            let ftype = fileType.name
            let category = LlamaQuantMix.category(of: tensor.name)
            let isFalcon = model.architecture == "falcon"
            var type = fileType.defaultType
            if category == .output || (hasTiedEmbeddings && category == .tokenEmbedding) {
                let columns = tensor.dimensions.first ?? 1
                if isFalcon || columns % type.blockSize != 0 {
                    type = .q8_0
                } else if type != .q8_0 {
                    type = .q6_K
                }
            } else if category == .tokenEmbedding {
                // Only IQ1/IQ2/IQ3/TQ file types change it.
            } else if isAttentionV(category) {
                let gqa = model.groupedQueryFactor
                switch ftype {
                case "Q2_K": type = gqa >= 4 ? .q4_K : .q3_K
                case "Q3_K_M": type = attentionVIndex < 2 ? .q5_K : .q4_K
                case "Q3_K_L": type = .q5_K
                case "IQ4_NL" where gqa >= 4, "IQ4_XS" where gqa >= 4: type = .q5_K
                case "Q4_K_M" where State.useMoreBits(attentionVIndex, attentionVCount),
                    "Q5_K_M" where State.useMoreBits(attentionVIndex, attentionVCount):
                    type = .q6_K
                case "Q4_K_S" where attentionVIndex < 4: type = .q5_K
                default: break
                }
                if model.is70B && (type == .q3_K || type == .q4_K) { type = .q5_K }
                if model.expertCount == 8 { type = .q8_0 }
                attentionVIndex += 1
            } else if category == .attentionK {
                if model.expertCount == 8 { type = .q8_0 }
            } else if category == .attentionQ {
                // Only IQ3 file types change it.
            } else if category == .ffnDown {
                let (layer, layers) = layerInfo(ffnDownIndex, tensor.name)
                switch ftype {
                case "Q2_K": type = .q3_K
                case "Q3_K_M":
                    type =
                        layer < layers / 16 ? .q5_K : (!isFalcon || State.useMoreBits(layer, layers) ? .q4_K : .q3_K)
                case "Q3_K_L": type = isFalcon ? .q4_K : .q5_K
                case "Q4_K_M":
                    if isFalcon {
                        type = layer < layers / 16 ? .q6_K : (State.useMoreBits(layer, layers) ? .q5_K : .q4_K)
                    } else if State.useMoreBits(layer, layers) {
                        type = .q6_K
                    }
                case "IQ4_NL" where layer < layers / 8, "IQ4_XS" where layer < layers / 8: type = .q5_K
                case "Q5_K_M" where State.useMoreBits(layer, layers): type = .q6_K
                case "Q4_K_S" where !isFalcon && layer < layers / 8: type = .q5_K
                default: break
                }
                ffnDownIndex += 1
            } else if category == .attentionOutput {
                if !isFalcon {
                    if model.expertCount == 8 {
                        if ["Q2_K", "Q3_K_S", "Q3_K_M", "IQ4_NL", "Q4_K_S", "Q4_K_M", "IQ4_XS"].contains(ftype) {
                            type = .q5_K
                        }
                    } else {
                        switch ftype {
                        case "Q2_K": type = .q3_K
                        case "Q3_K_M": type = .q4_K
                        case "Q3_K_L": type = .q5_K
                        default: break
                        }
                    }
                } else if ftype == "Q3_K_L" {
                    type = .q4_K
                }
            } else if category == .attentionQKV {
                switch ftype {
                case "Q3_K_M", "Q3_K_L": type = .q4_K
                case "Q4_K_M": type = .q5_K
                case "Q5_K_M": type = .q6_K
                default: break
                }
            }
            // FFN_GATE / FFN_UP change only for IQ3_XS.
            return type
        }

        // layer_info: the running counter, or with several experts the layer number in the name.
        func layerInfo(_ index: Int, _ name: String) -> (Int, Int) {
            if model.expertCount > 1 {
                let layer = LlamaQuantMix.layer(of: name)
                return (layer, model.layerCount)
            }
            return (index, model.layerCount)
        }
    }
}
