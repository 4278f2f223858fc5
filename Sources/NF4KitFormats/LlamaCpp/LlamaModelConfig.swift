package import NF4KitCore

/// The hyperparameters of a Llama-family `config.json` and the `llama.*` metadata llama.cpp's converter writes.
///
/// The config is read as transformers' `LlamaConfig`/`MistralConfig` would fill it (absent `num_key_value_heads` is
/// the head count, absent `head_dim` is `hidden_size / num_attention_heads`, ...), since convert_hf_to_gguf.py reads
/// it through `AutoConfig`. The architecture must be `LlamaForCausalLM` or `MistralForCausalLM`; others are refused
/// with a message that names `--layout hf`.
package struct LlamaModelConfig: Sendable, Hashable {
    /// The Hugging Face architectures the llama.cpp layout supports.
    package static let supportedArchitectures = ["LlamaForCausalLM", "MistralForCausalLM"]

    /// The largest `vocab_size` accepted: 16 Mi, 64 times the largest real vocabulary (Gemma 3: 262,144), so a
    /// hostile config cannot make the tokenizer arrays huge.
    package static let maxVocabSize = 1 << 24

    /// `architectures[0]`.
    package var architecture: String
    /// `num_hidden_layers`.
    package var blockCount: Int
    /// `max_position_embeddings` (transformers' default 2048).
    package var contextLength: Int
    /// `hidden_size`.
    package var embeddingLength: Int
    /// `intermediate_size`.
    package var feedForwardLength: Int
    /// `num_attention_heads`.
    package var headCount: Int
    /// `num_key_value_heads` (default: ``headCount``).
    package var headCountKV: Int
    /// `head_dim` (default: `hidden_size / num_attention_heads`).
    package var headDimension: Int
    /// `vocab_size`.
    package var vocabSize: Int
    /// `rms_norm_eps` (default 1e-6).
    package var rmsNormEpsilon: Double
    /// `rope_theta`, top level or under `rope_parameters` (default 10000).
    package var ropeTheta: Double
    /// `tie_word_embeddings` (default false).
    package var tieWordEmbeddings: Bool
    /// The `llama.rope.scaling.*` entries, in the converter's order.
    package var ropeScaling: [GGUFMetadataEntry]
    /// Llama 3.1's rope scaling (`rope_type: "llama3"`), written as the tensor `rope_freqs.weight`, or `nil`.
    package var llama3Rope: Llama3RopeScaling?
    /// Whether `is_causal` is `false` (then `llama.causal_attention` = false is written).
    package var nonCausal: Bool
    /// The parsed JSON (for token ids).
    package var json: JSONObject
    /// The file it came from (for messages).
    package var file: String?

    /// Parses `config.json`.
    ///
    /// - Throws: ``CheckpointError`` `.unsupported` for another architecture (the message names `--layout hf`),
    ///   `.malformedHeader` for a missing or mistyped required key (`hidden_size`, `intermediate_size`,
    ///   `num_hidden_layers`, `num_attention_heads`, `vocab_size`) or counts that contradict each other.
    package init(json: JSONObject, file: String? = nil) throws(CheckpointError) {
        func fail(_ message: String) -> CheckpointError { CheckpointError(.malformedHeader, message, file: file) }
        let archs = json["architectures"]?.arrayValue?.compactMap(\.stringValue) ?? []
        guard let arch = archs.first else {
            throw CheckpointError(
                .unsupported,
                "config.json names no architecture, so the llama.cpp layout cannot be chosen; use --layout hf to keep "
                    + "Hugging Face names", file: file)
        }
        guard Self.supportedArchitectures.contains(arch), json["text_config"] == nil else {
            throw CheckpointError(
                .unsupported,
                "architecture \(arch) has no llama.cpp layout in nf4kit (supported: "
                    + "\(Self.supportedArchitectures.joined(separator: ", "))); use --layout hf to write a GGUF with "
                    + "Hugging Face names, which llama.cpp cannot run", file: file)
        }
        func integer(_ key: String, required: Bool, default value: Int? = nil) throws(CheckpointError) -> Int {
            guard let entry = json[key], !entry.isNull else {
                if let value { return value }
                throw fail("config.json has no '\(key)', which a \(arch) needs")
            }
            guard let int = entry.intValue, int > 0, int <= Int(UInt32.max) else {
                throw fail("config.json's '\(key)' is \(entry), expected a positive integer")
            }
            return int
        }
        func number(_ value: JSONValue?, _ key: String, default fallback: Double) throws(CheckpointError) -> Double {
            guard let value, !value.isNull else { return fallback }
            guard let double = value.doubleValue, double.isFinite else {
                throw fail("config.json's '\(key)' is \(value), expected a number")
            }
            return double
        }
        architecture = arch
        blockCount = try integer("num_hidden_layers", required: true)
        embeddingLength = try integer("hidden_size", required: true)
        feedForwardLength = try integer("intermediate_size", required: true)
        headCount = try integer("num_attention_heads", required: true)
        headCountKV = try integer("num_key_value_heads", required: false, default: headCount)
        vocabSize = try integer("vocab_size", required: true)
        contextLength = try integer("max_position_embeddings", required: false, default: 2048)
        guard embeddingLength % headCount == 0 || json["head_dim"].map({ !$0.isNull }) == true else {
            throw fail(
                "config.json's hidden_size \(embeddingLength) is not a multiple of num_attention_heads \(headCount) "
                    + "and there is no head_dim")
        }
        headDimension = try integer("head_dim", required: false, default: embeddingLength / headCount)
        guard !headCount.multipliedReportingOverflow(by: headDimension).overflow,
            !embeddingLength.multipliedReportingOverflow(by: max(vocabSize, feedForwardLength)).overflow
        else { throw fail("config.json's sizes are too large to describe any tensor") }
        guard vocabSize <= Self.maxVocabSize else {
            throw fail("config.json's vocab_size \(vocabSize) is larger than \(Self.maxVocabSize)")
        }
        guard headCount % headCountKV == 0 else {
            throw fail(
                "config.json's num_attention_heads \(headCount) is not a multiple of num_key_value_heads \(headCountKV)"
            )
        }
        rmsNormEpsilon = try number(json["rms_norm_eps"], "rms_norm_eps", default: 1e-6)
        if let tie = json["tie_word_embeddings"], !tie.isNull {
            guard let value = tie.boolValue else { throw fail("config.json's 'tie_word_embeddings' is not a boolean") }
            tieWordEmbeddings = value
        } else {
            tieWordEmbeddings = false
        }
        nonCausal = json["is_causal"]?.boolValue == false

        // Rope: transformers 5 keeps everything under rope_parameters; older configs have rope_theta + rope_scaling.
        let rope = (json["rope_parameters"]?.objectValue ?? json["rope_scaling"]?.objectValue) ?? JSONObject()
        ropeTheta = try number(rope["rope_theta"] ?? json["rope_theta"], "rope_theta", default: 10000)
        var scaling: [GGUFMetadataEntry] = []
        llama3Rope = nil
        let ropeType = rope["rope_type"]?.stringValue ?? rope["type"]?.stringValue
        if let ropeType {
            let factor = rope["factor"].flatMap(\.doubleValue)
            func put(_ key: String, _ value: GGUFValue) {
                scaling.append(GGUFMetadataEntry(key: "llama." + key, value: value))
            }
            switch ropeType {
            case "linear" where factor != nil:
                put("rope.scaling.type", .string("linear"))
                put("rope.scaling.factor", .float32(Float(factor!)))
            case "yarn" where factor != nil:
                put("rope.scaling.type", .string("yarn"))
                put("rope.scaling.factor", .float32(Float(factor!)))
                guard
                    let original =
                        (rope["original_max_position_embeddings"]
                        ?? json["original_max_position_embeddings"])?.intValue, original > 0,
                    original <= Int(UInt32.max)
                else { throw fail("config.json's yarn rope scaling has no original_max_position_embeddings") }
                put("rope.scaling.original_context_length", .uint32(UInt32(original)))
                let optional: [(String, [String])] = [
                    ("rope.scaling.yarn_ext_factor", ["extrapolation_factor"]),
                    ("rope.scaling.yarn_attn_factor", ["attention_factor", "attn_factor"]),
                    ("rope.scaling.yarn_beta_fast", ["beta_fast"]),
                    ("rope.scaling.yarn_beta_slow", ["beta_slow"]),
                ]
                for (key, names) in optional {
                    guard let found = names.lazy.compactMap({ rope[$0] }).first, !found.isNull else { continue }
                    put(key, .float32(Float(try number(found, names[0], default: 0))))
                }
            case "su", "longrope":
                put("rope.scaling.type", .string("longrope"))
            case let other where other.lowercased() == "llama3":
                // No keys: the converter writes the factors as the tensor rope_freqs.weight instead.
                func positive(_ key: String, _ fallback: Double) throws(CheckpointError) -> Double {
                    let value = try number(rope[key], key, default: fallback)
                    guard value > 0 else {
                        throw fail("config.json's llama3 rope scaling has '\(key)' \(value), expected a positive value")
                    }
                    return value
                }
                llama3Rope = Llama3RopeScaling(
                    theta: ropeTheta, dimension: headDimension, factor: try positive("factor", 8),
                    lowFrequencyFactor: try positive("low_freq_factor", 1),
                    highFrequencyFactor: try positive("high_freq_factor", 4),
                    originalContextLength: try positive("original_max_position_embeddings", 8192))
            default:
                break  // "default", "dynamic" and unknown types add no keys (the converter only logs them)
            }
        }
        ropeScaling = scaling
        self.json = json
        self.file = file
    }

    /// Reads and parses a `config.json` file.
    package static func read(path: String) throws(CheckpointError) -> LlamaModelConfig {
        try LlamaModelConfig(json: try ModelSource.readJSONObject(path), file: path)
    }

    /// The rows of the query projection (`num_attention_heads * head_dim`).
    package var queryRows: Int { headCount * headDimension }
    /// The rows of the key and value projections (`num_key_value_heads * head_dim`).
    package var keyValueRows: Int { headCountKV * headDimension }

    /// The number of heads that groups the rows of a permuted weight.
    package func heads(for permutation: LlamaTensorNames.Permutation) -> Int? {
        switch permutation {
        case .none: nil
        case .query: headCount
        case .key: headCountKV
        }
    }

    /// The expected PyTorch shape (rows, columns) of a weight with this GGUF name, or `nil` for a name outside the
    /// table or a block index past ``blockCount``.
    package func expectedShape(ggufName: String) -> [Int]? {
        if let block = LlamaTensorNames.blockIndex(ggufName), block >= blockCount { return nil }
        let d = embeddingLength
        switch ggufName.split(separator: ".").dropFirst(ggufName.hasPrefix("blk.") ? 2 : 0).first.map(String.init) {
        case "token_embd", "output": return [vocabSize, d]
        case "output_norm", "attn_norm", "ffn_norm": return [d]
        case "attn_q": return [queryRows, d]
        case "attn_k", "attn_v": return [keyValueRows, d]
        case "attn_output": return [d, queryRows]
        case "ffn_gate", "ffn_up": return [feedForwardLength, d]
        case "ffn_down": return [d, feedForwardLength]
        default: return nil
        }
    }

    /// The metadata convert_hf_to_gguf.py writes before the tokenizer keys, in its order (spec gguf-llama.md §3).
    ///
    /// - Parameters:
    ///   - fileType: `general.file_type`.
    ///   - name: `general.name` (cosmetic).
    ///   - sizeLabel: `general.size_label` (cosmetic), or `nil` to leave it out.
    package func metadata(fileType: LlamaFileType, name: String, sizeLabel: String?) -> [GGUFMetadataEntry] {
        var out: [GGUFMetadataEntry] = []
        func put(_ key: String, _ value: GGUFValue) { out.append(GGUFMetadataEntry(key: key, value: value)) }
        put("general.architecture", .string("llama"))
        put("general.type", .string("model"))
        put("general.name", .string(name))
        if let sizeLabel { put("general.size_label", .string(sizeLabel)) }
        put("llama.block_count", .uint32(UInt32(blockCount)))
        put("llama.context_length", .uint32(UInt32(contextLength)))
        put("llama.embedding_length", .uint32(UInt32(embeddingLength)))
        put("llama.feed_forward_length", .uint32(UInt32(feedForwardLength)))
        put("llama.attention.head_count", .uint32(UInt32(headCount)))
        put("llama.attention.head_count_kv", .uint32(UInt32(headCountKV)))
        if nonCausal { put("llama.attention.causal", .bool(false)) }
        out += ropeScaling
        put("llama.rope.freq_base", .float32(Float(ropeTheta)))
        put("llama.attention.layer_norm_rms_epsilon", .float32(Float(rmsNormEpsilon)))
        put("llama.attention.key_length", .uint32(UInt32(headDimension)))
        put("llama.attention.value_length", .uint32(UInt32(headDimension)))
        put("general.file_type", .uint32(fileType.fileTypeID))
        put("llama.vocab_size", .uint32(UInt32(vocabSize)))
        put("llama.rope.dimension_count", .uint32(UInt32(headDimension)))
        put("general.quantization_version", .uint32(2))
        return out
    }
}
