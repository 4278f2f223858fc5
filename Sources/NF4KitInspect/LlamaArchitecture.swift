public import NF4KitCore

/// The hyper-parameters that decide a Llama model's tensor shapes (transformers' `LlamaForCausalLM`).
///
/// Used by the fixture generator to lay out synthetic checkpoints and by the what-if report to size models that
/// exist only as shapes.
public struct LlamaArchitecture: Sendable, Hashable {
    /// `hidden_size`.
    public var hidden: Int
    /// `intermediate_size` (the MLP width).
    public var intermediate: Int
    /// `num_hidden_layers`.
    public var layers: Int
    /// `num_attention_heads`.
    public var heads: Int
    /// `num_key_value_heads` (fewer than ``heads`` for grouped-query attention).
    public var kvHeads: Int
    /// `vocab_size`.
    public var vocabulary: Int
    /// `max_position_embeddings` (no tensor depends on it).
    public var maxPositions: Int
    /// `tie_word_embeddings`: the output head shares the embedding matrix (no `lm_head.weight`).
    public var tiedEmbeddings: Bool = false
    /// Whether the q, k and v projections have biases (Qwen2: always; Llama: `attention_bias`).
    public var attentionBias: Bool = false

    /// Creates an architecture from its hyper-parameters.
    public init(
        hidden: Int, intermediate: Int, layers: Int, heads: Int, kvHeads: Int, vocabulary: Int,
        maxPositions: Int = 2048,
        tiedEmbeddings: Bool = false, attentionBias: Bool = false
    ) {
        self.hidden = hidden
        self.intermediate = intermediate
        self.layers = layers
        self.heads = heads
        self.kvHeads = kvHeads
        self.vocabulary = vocabulary
        self.maxPositions = maxPositions
        self.tiedEmbeddings = tiedEmbeddings
        self.attentionBias = attentionBias
    }

    /// `hidden / heads`.
    public var headDim: Int { hidden / heads }

    /// Every parameter tensor in state-dict order.
    /// - Complexity: O(layers).
    public var parameterShapes: [(name: String, shape: Shape)] {
        let kv = kvHeads * headDim
        var shapes: [(String, Shape)] = [("model.embed_tokens.weight", [vocabulary, hidden])]
        for layer in 0..<layers {
            let p = "model.layers.\(layer)."
            shapes += [
                (p + "self_attn.q_proj.weight", [heads * headDim, hidden]),
                (p + "self_attn.k_proj.weight", [kv, hidden]),
                (p + "self_attn.v_proj.weight", [kv, hidden]),
            ]
            if attentionBias {
                shapes += [
                    (p + "self_attn.q_proj.bias", [heads * headDim]), (p + "self_attn.k_proj.bias", [kv]),
                    (p + "self_attn.v_proj.bias", [kv]),
                ]
            }
            shapes += [
                (p + "self_attn.o_proj.weight", [hidden, heads * headDim]),
                (p + "mlp.gate_proj.weight", [intermediate, hidden]),
                (p + "mlp.up_proj.weight", [intermediate, hidden]),
                (p + "mlp.down_proj.weight", [hidden, intermediate]),
                (p + "input_layernorm.weight", [hidden]),
                (p + "post_attention_layernorm.weight", [hidden]),
            ]
        }
        shapes.append(("model.norm.weight", [hidden]))
        if !tiedEmbeddings { shapes.append(("lm_head.weight", [vocabulary, hidden])) }
        return shapes
    }

    /// Total number of parameters.
    /// - Complexity: O(layers).
    public var parameterCount: Int { parameterShapes.reduce(0) { $0 + $1.shape.elementCount } }

    /// Largest value accepted for a width read from a `config.json` (keeps every shape product far inside `Int`).
    static let maxWidth = 1 << 22
    /// Largest layer count accepted from a `config.json`.
    static let maxLayers = 4096

    /// Reads the shape hyper-parameters from a Hugging Face `config.json` of a Llama-style model.
    ///
    /// Needs `hidden_size`, `intermediate_size`, `num_hidden_layers`, `num_attention_heads` and `vocab_size`;
    /// `num_key_value_heads` defaults to the head count and `tie_word_embeddings` to false. The q/k/v projections
    /// have biases when `attention_bias` is true or `model_type` is `qwen2` (whose configs do not say it).
    /// - Throws: ``CheckpointError`` `.malformedHeader` naming `file` and the key that is missing, not a positive
    ///   integer, too large (widths up to 2^22, layers up to 4096), or inconsistent (heads not dividing the width).
    public init(config: JSONObject, file: String? = nil) throws(CheckpointError) {
        func value(
            _ key: String, default fallback: Int? = nil, limit: Int = LlamaArchitecture.maxWidth
        ) throws(CheckpointError) -> Int {
            guard let entry = config[key], !entry.isNull else {
                if let fallback { return fallback }
                throw CheckpointError(
                    .malformedHeader, "config.json has no \"\(key)\"; cannot size a Llama-style model", file: file)
            }
            guard let number = entry.intValue, number >= 1, number <= limit else {
                throw CheckpointError(
                    .malformedHeader, "config.json \"\(key)\" must be an integer between 1 and \(limit)", file: file)
            }
            return number
        }
        let hidden = try value("hidden_size")
        let heads = try value("num_attention_heads")
        let kvHeads = try value("num_key_value_heads", default: heads)
        guard hidden % heads == 0, heads % kvHeads == 0 else {
            throw CheckpointError(
                .malformedHeader,
                "config.json: hidden_size \(hidden) is not a multiple of num_attention_heads \(heads), or the heads are not a multiple of num_key_value_heads \(kvHeads)",
                file: file)
        }
        self.init(
            hidden: hidden, intermediate: try value("intermediate_size"),
            layers: try value("num_hidden_layers", limit: Self.maxLayers),
            heads: heads, kvHeads: kvHeads, vocabulary: try value("vocab_size"),
            maxPositions: try value("max_position_embeddings", default: 2048, limit: Int(Int32.max)),
            tiedEmbeddings: config["tie_word_embeddings"]?.boolValue ?? false,
            attentionBias: config["attention_bias"]?.boolValue ?? (config["model_type"]?.stringValue == "qwen2"))
    }
}
