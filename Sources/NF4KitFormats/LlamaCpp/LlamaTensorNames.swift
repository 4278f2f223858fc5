/// Tensor names of the Llama family (LlamaForCausalLM, MistralForCausalLM) in Hugging Face and llama.cpp form.
///
/// The table is spec gguf-llama.md §1 (gguf-py's `tensor_mapping.py` for `MODEL_ARCH.LLAMA`): one name per weight,
/// the block index `N` kept. Names outside the table have no llama.cpp form; callers decide whether that is an
/// error (a weight) or a buffer to drop (`rotary_emb.inv_freq`).
package enum LlamaTensorNames {
    /// Whole-model names: Hugging Face to GGUF.
    package static let global: [(hf: String, gguf: String)] = [
        ("model.embed_tokens.weight", "token_embd.weight"),
        ("model.norm.weight", "output_norm.weight"),
        ("lm_head.weight", "output.weight"),
    ]

    /// Per-block names: the Hugging Face suffix after `model.layers.N.` and the GGUF suffix after `blk.N.`.
    package static let block: [(hf: String, gguf: String)] = [
        ("input_layernorm.weight", "attn_norm.weight"),
        ("post_attention_layernorm.weight", "ffn_norm.weight"),
        ("self_attn.q_proj.weight", "attn_q.weight"),
        ("self_attn.k_proj.weight", "attn_k.weight"),
        ("self_attn.v_proj.weight", "attn_v.weight"),
        ("self_attn.o_proj.weight", "attn_output.weight"),
        ("mlp.gate_proj.weight", "ffn_gate.weight"),
        ("mlp.up_proj.weight", "ffn_up.weight"),
        ("mlp.down_proj.weight", "ffn_down.weight"),
    ]

    /// Which rotary row permutation a weight needs (spec gguf-llama.md §2).
    package enum Permutation: Sendable, Hashable {
        /// No permutation.
        case none
        /// The query projection: rows permuted with `num_attention_heads`.
        case query
        /// The key projection: rows permuted with `num_key_value_heads`.
        case key
    }

    /// The GGUF name of a Hugging Face tensor name, or `nil` when the name has no llama.cpp form.
    ///
    /// - Parameter hfName: A name such as `model.layers.3.self_attn.q_proj.weight`.
    /// - Returns: `blk.3.attn_q.weight` for that example.
    package static func ggufName(hfName: String) -> String? {
        if let entry = global.first(where: { $0.hf == hfName }) { return entry.gguf }
        guard let (index, rest) = split(hfName, prefix: "model.layers.") else { return nil }
        guard let entry = block.first(where: { $0.hf == rest }) else { return nil }
        return "blk.\(index).\(entry.gguf)"
    }

    /// The Hugging Face name of a GGUF tensor name, or `nil` when the name is not one of the table's.
    ///
    /// - Parameter ggufName: A name such as `blk.3.attn_q.weight`.
    /// - Returns: `model.layers.3.self_attn.q_proj.weight` for that example.
    package static func hfName(ggufName: String) -> String? {
        if let entry = global.first(where: { $0.gguf == ggufName }) { return entry.hf }
        guard let (index, rest) = split(ggufName, prefix: "blk.") else { return nil }
        guard let entry = block.first(where: { $0.gguf == rest }) else { return nil }
        return "model.layers.\(index).\(entry.hf)"
    }

    /// The block index of a Hugging Face (`model.layers.N.`) or GGUF (`blk.N.`) name, or `nil` for a whole-model name.
    package static func blockIndex(_ name: String) -> Int? {
        if let (index, _) = split(name, prefix: "model.layers.") { return index }
        if let (index, _) = split(name, prefix: "blk.") { return index }
        return nil
    }

    /// The row permutation the converter applies to the weight with this GGUF name.
    package static func permutation(ggufName: String) -> Permutation {
        if ggufName.hasSuffix(".attn_q.weight") { return .query }
        if ggufName.hasSuffix(".attn_k.weight") { return .key }
        return .none
    }

    /// Whether a Hugging Face name is a buffer the converter drops (not a weight).
    package static func isDroppedBuffer(hfName: String) -> Bool {
        hfName.hasSuffix(".rotary_emb.inv_freq") || hfName.hasSuffix(".attention.masked_bias")
            || hfName.hasSuffix(".attention.bias")
    }

    /// Splits `prefix` + decimal index + `.` + rest; `nil` if `name` does not have that form.
    private static func split(_ name: String, prefix: String) -> (Int, String)? {
        guard name.hasPrefix(prefix) else { return nil }
        let tail = name.dropFirst(prefix.count)
        guard let dot = tail.firstIndex(of: ".") else { return nil }
        let digits = tail[..<dot]
        guard !digits.isEmpty, digits.count <= 9, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
            digits == "0" || digits.first != "0", let index = Int(digits)
        else { return nil }
        return (index, String(tail[tail.index(after: dot)...]))
    }
}
