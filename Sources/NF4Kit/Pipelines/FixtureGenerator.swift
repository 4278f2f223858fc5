public import NF4KitCore
public import NF4KitInspect

/// Deterministic synthetic Llama checkpoints for tests, CI and benchmarks.
///
/// Tensor names, shapes and the config follow transformers' `LlamaForCausalLM`. Values come from a counter-based
/// generator seeded by the seed and the tensor's name, with only integer arithmetic and one rounding per value, so
/// the same seed gives the same bytes on any machine and tensors can be generated in any order or in parallel.
public struct FixtureGenerator: Sendable {
    /// Model sizes the generator knows.
    public enum Preset: String, CaseIterable, Sendable {
        /// The shapes of the golden llama-tiny model: 2 layers, hidden 256, MLP 688, vocabulary 1000, 4/2 heads.
        case tiny
        /// 12 layers, hidden 768, MLP 2048, vocabulary 32000, 12 heads (about 134 M parameters).
        case llama125m = "llama-125m"
        /// TinyLlama-1.1B shapes: 22 layers, hidden 2048, MLP 5632, vocabulary 32000, 32/4 heads.
        case llama1b = "llama-1b"
        /// Llama-2-7B shapes: 32 layers, hidden 4096, MLP 11008, vocabulary 32000, 32 heads.
        case llama7b = "llama-7b"

        /// The architecture of the preset.
        public var architecture: LlamaArchitecture {
            switch self {
            case .tiny:
                LlamaArchitecture(
                    hidden: 256, intermediate: 688, layers: 2, heads: 4, kvHeads: 2, vocabulary: 1000, maxPositions: 128
                )
            case .llama125m:
                LlamaArchitecture(
                    hidden: 768, intermediate: 2048, layers: 12, heads: 12, kvHeads: 12, vocabulary: 32000,
                    maxPositions: 2048)
            case .llama1b:
                LlamaArchitecture(
                    hidden: 2048, intermediate: 5632, layers: 22, heads: 32, kvHeads: 4, vocabulary: 32000,
                    maxPositions: 2048)
            case .llama7b:
                LlamaArchitecture(
                    hidden: 4096, intermediate: 11008, layers: 32, heads: 32, kvHeads: 32, vocabulary: 32000,
                    maxPositions: 4096)
            }
        }
    }

    public let architecture: LlamaArchitecture
    public let dtype: DType
    public let seed: UInt64
    /// Standard deviation of Linear and embedding weights (transformers' `initializer_range`).
    public let initializerRange: Double = 0.02

    /// - Precondition: `dtype` is F16, BF16 or F32.
    public init(architecture: LlamaArchitecture, dtype: DType, seed: UInt64) {
        precondition([.f16, .bf16, .f32].contains(dtype), "fixtures are F16, BF16 or F32")
        self.architecture = architecture
        self.dtype = dtype
        self.seed = seed
    }

    /// The tensors in transformers' state-dict order.
    public var tensors: [(name: String, dtype: DType, shape: Shape)] {
        architecture.parameterShapes.map { ($0.name, dtype, $0.shape) }
    }

    /// `config.json` as transformers 5 writes it (sorted keys, two-space indent, final newline).
    public var configJSON: [UInt8] {
        let a = architecture
        let config = JSONObject([
            ("architectures", .array([.string("LlamaForCausalLM")])),
            ("attention_bias", .bool(false)), ("attention_dropout", .number("0.0")),
            ("bos_token_id", .integer(1)), ("dtype", .string(dtype.torchName!)), ("eos_token_id", .integer(2)),
            ("head_dim", .integer(a.headDim)), ("hidden_act", .string("silu")), ("hidden_size", .integer(a.hidden)),
            ("initializer_range", .double(initializerRange)), ("intermediate_size", .integer(a.intermediate)),
            ("max_position_embeddings", .integer(a.maxPositions)), ("mlp_bias", .bool(false)),
            ("model_type", .string("llama")),
            ("num_attention_heads", .integer(a.heads)), ("num_hidden_layers", .integer(a.layers)),
            ("num_key_value_heads", .integer(a.kvHeads)), ("pad_token_id", .null), ("pretraining_tp", .integer(1)),
            ("rms_norm_eps", .number("1e-06")),
            (
                "rope_parameters",
                .object(JSONObject([("rope_theta", .number("10000.0")), ("rope_type", .string("default"))]))
            ),
            ("tie_word_embeddings", .bool(false)), ("transformers_version", .string("5.23.0")),
            ("use_cache", .bool(true)),
            ("vocab_size", .integer(a.vocabulary)),
        ])
        return JSONWriter.pythonPretty.bytes(.object(config)) + [0x0A]
    }

    // MARK: LoRA adapter

    /// The projections a generated adapter targets (all Linear layers of a Llama block).
    public static let loraTargets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

    /// The tensors of a PEFT LoRA adapter of rank `rank` on every projection, as PEFT saves them (F32).
    public func adapterTensors(rank: Int) -> [(name: String, dtype: DType, shape: Shape)] {
        var result: [(String, DType, Shape)] = []
        for parameter in architecture.parameterShapes {
            guard let module = FixtureGenerator.loraTargets.first(where: { parameter.name.hasSuffix(".\($0).weight") })
            else { continue }
            _ = module
            let prefix = "base_model.model." + parameter.name.dropLast(".weight".count)
            let (outFeatures, inFeatures) = (parameter.shape.dimensions[0], parameter.shape.dimensions[1])
            result.append((prefix + ".lora_A.weight", .f32, [rank, inFeatures]))
            result.append((prefix + ".lora_B.weight", .f32, [outFeatures, rank]))
        }
        return result
    }

    /// `adapter_config.json` for ``adapterTensors(rank:)`` (alpha = 2 r), sorted keys as PEFT writes it.
    public func adapterConfigJSON(rank: Int, baseModel: String) -> [UInt8] {
        let config = JSONObject([
            ("alpha_pattern", .object(JSONObject())), ("base_model_name_or_path", .string(baseModel)),
            ("bias", .string("none")),
            ("fan_in_fan_out", .bool(false)), ("inference_mode", .bool(true)), ("init_lora_weights", .bool(true)),
            ("lora_alpha", .integer(2 * rank)), ("lora_dropout", .number("0.0")), ("modules_to_save", .null),
            ("peft_type", .string("LORA")), ("r", .integer(rank)), ("rank_pattern", .object(JSONObject())),
            ("target_modules", .array(FixtureGenerator.loraTargets.map { .string($0) })),
            ("task_type", .string("CAUSAL_LM")),
            ("use_dora", .bool(false)), ("use_rslora", .bool(false)),
        ])
        return JSONWriter.pythonPretty.bytes(.object(config)) + [0x0A]
    }

    // MARK: Generation

    /// A per-tensor seed: FNV-1a of the name mixed with the run seed.
    static func streamSeed(_ seed: UInt64, _ name: String) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in name.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        var state = hash ^ seed
        return splitMix(&state)
    }

    @inline(__always)
    static func splitMix(_ state: inout UInt64) -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
