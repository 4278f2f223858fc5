/// Tensor names of the Llama family (LlamaForCausalLM, MistralForCausalLM) in Hugging Face and llama.cpp form.
///
/// The table is spec gguf-llama.md §1 (gguf-py's `tensor_mapping.py` for `MODEL_ARCH.LLAMA`): one name per weight,
/// the block index `N` kept. Names outside the table have no llama.cpp form; callers decide whether that is an
/// error (a weight) or a buffer to drop (`rotary_emb.inv_freq`).
package enum LlamaTensorNames {
    /// Whole-model modules: Hugging Face to GGUF (a tensor name adds `.weight` or `.bias`).
    package static let global: [(hf: String, gguf: String)] = [
        ("model.embed_tokens", "token_embd"),
        ("model.norm", "output_norm"),
        ("lm_head", "output"),
    ]

    /// Per-block modules: the Hugging Face module after `model.layers.N.` and the GGUF one after `blk.N.`.
    package static let block: [(hf: String, gguf: String)] = [
        ("input_layernorm", "attn_norm"),
        ("post_attention_layernorm", "ffn_norm"),
        ("self_attn.q_proj", "attn_q"),
        ("self_attn.k_proj", "attn_k"),
        ("self_attn.v_proj", "attn_v"),
        ("self_attn.o_proj", "attn_output"),
        ("mlp.gate_proj", "ffn_gate"),
        ("mlp.up_proj", "ffn_up"),
        ("mlp.down_proj", "ffn_down"),
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
    /// - Parameter hfName: A name such as `model.layers.3.self_attn.q_proj.weight` (or `.bias`).
    /// - Returns: `blk.3.attn_q.weight` for that example.
    package static func ggufName(hfName: String) -> String? {
        guard let (module, suffix) = splitSuffix(hfName) else { return nil }
        if let entry = global.first(where: { $0.hf == module }) { return entry.gguf + suffix }
        guard let (index, rest) = split(module + suffix, prefix: "model.layers."),
            let (blockModule, _) = splitSuffix(rest), let entry = block.first(where: { $0.hf == blockModule })
        else { return nil }
        return "blk.\(index).\(entry.gguf)\(suffix)"
    }

    /// The Hugging Face name of a GGUF tensor name, or `nil` when the name is not one of the table's: the inverse of
    /// ``ggufName(hfName:)``, used when reading a llama.cpp GGUF back into a Hugging Face model.
    ///
    /// - Parameter ggufName: A name such as `blk.3.attn_q.weight` (or `.bias`).
    /// - Returns: `model.layers.3.self_attn.q_proj.weight` for that example.
    package static func hfName(ggufName: String) -> String? {
        guard let (module, suffix) = splitSuffix(ggufName) else { return nil }
        if let entry = global.first(where: { $0.gguf == module }) { return entry.hf + suffix }
        guard let (index, rest) = split(ggufName, prefix: "blk."), let (blockModule, _) = splitSuffix(rest),
            let entry = block.first(where: { $0.gguf == blockModule })
        else { return nil }
        return "model.layers.\(index).\(entry.hf)\(suffix)"
    }

    /// The GGUF names of every weight a model with `blocks` layers has (`output.weight` unless `tied`).
    package static func requiredWeights(blocks: Int, tied: Bool) -> [String] {
        var names = global.filter { !(tied && $0.gguf == "output") }.map { $0.gguf + ".weight" }
        for index in 0..<blocks { names += block.map { "blk.\(index).\($0.gguf).weight" } }
        return names
    }

    /// The block index of a Hugging Face (`model.layers.N.`) or GGUF (`blk.N.`) name, or `nil` for a whole-model name.
    package static func blockIndex(_ name: String) -> Int? {
        if let (index, _) = split(name, prefix: "model.layers.") { return index }
        if let (index, _) = split(name, prefix: "blk.") { return index }
        return nil
    }

    /// The row permutation the converter applies to the tensor with this GGUF name (weights and biases of attn_q
    /// and attn_k), and that reading it back undoes.
    package static func permutation(ggufName: String) -> Permutation {
        if ggufName.hasSuffix(".attn_q.weight") || ggufName.hasSuffix(".attn_q.bias") { return .query }
        if ggufName.hasSuffix(".attn_k.weight") || ggufName.hasSuffix(".attn_k.bias") { return .key }
        return .none
    }

    /// Whether a Hugging Face name is a buffer the converter drops (not a weight).
    package static func isDroppedBuffer(hfName: String) -> Bool {
        hfName.hasSuffix(".rotary_emb.inv_freq") || hfName.hasSuffix(".attention.masked_bias")
            || hfName.hasSuffix(".attention.bias")
    }

    /// Splits a tensor name into its module and `.weight`/`.bias`; `nil` for another suffix.
    private static func splitSuffix(_ name: String) -> (String, String)? {
        for suffix in [".weight", ".bias"] where name.hasSuffix(suffix) {
            return (String(name.dropLast(suffix.count)), suffix)
        }
        return nil
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
