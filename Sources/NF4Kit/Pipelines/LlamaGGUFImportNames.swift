/// llama.cpp's Llama tensor names back to Hugging Face's, and the row order of attn_q/attn_k back to Hugging Face's
/// (the inverses of convert_hf_to_gguf.py's; spec gguf-llama.md sections 1 and 2).
///
/// Kept apart from the export-side map so the two can be unified later; every pair here is the inverse of a row of
/// the spec's table.
package enum LlamaGGUFImportNames {
    /// What a GGUF tensor becomes in a Hugging Face Llama checkpoint.
    package struct Target: Sendable, Hashable {
        /// The Hugging Face name (`model.layers.0.self_attn.q_proj.weight`).
        package var name: String
        /// Which head count un-permutes its rows: attn_q by `n_head`, attn_k by `n_kv_head`; `nil` for no permutation.
        package var rowPermutation: RowPermutation?
    }

    /// The Q/K row permutation a tensor needs undone.
    package enum RowPermutation: Sendable, Hashable {
        /// `llama.attention.head_count`.
        case queryHeads
        /// `llama.attention.head_count_kv`.
        case keyValueHeads
    }

    private static let topLevel: [String: String] = [
        "token_embd": "model.embed_tokens",
        "output_norm": "model.norm",
        "output": "lm_head",
    ]

    private static let perLayer: [String: String] = [
        "attn_norm": "input_layernorm",
        "ffn_norm": "post_attention_layernorm",
        "attn_q": "self_attn.q_proj",
        "attn_k": "self_attn.k_proj",
        "attn_v": "self_attn.v_proj",
        "attn_output": "self_attn.o_proj",
        "ffn_gate": "mlp.gate_proj",
        "ffn_up": "mlp.up_proj",
        "ffn_down": "mlp.down_proj",
    ]

    /// The Hugging Face name and row permutation of GGUF tensor `name`, or `nil` for a name outside the Llama map.
    ///
    /// `blk.N.<part>.weight|bias` becomes `model.layers.N.<module>.weight|bias`; `token_embd`, `output_norm` and
    /// `output` become `model.embed_tokens`, `model.norm` and `lm_head`.
    package static func target(for name: String) -> Target? {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard let suffix = parts.last, suffix == "weight" || suffix == "bias" else { return nil }
        if parts.count == 2, let module = topLevel[parts[0]] {
            return Target(name: "\(module).\(suffix)", rowPermutation: nil)
        }
        guard parts.count == 4, parts[0] == "blk", let layer = Int(parts[1]), layer >= 0, String(layer) == parts[1],
            let module = perLayer[parts[2]]
        else { return nil }
        let permutation: RowPermutation? =
            parts[2] == "attn_q" ? .queryHeads : parts[2] == "attn_k" ? .keyValueHeads : nil
        return Target(name: "model.layers.\(layer).\(module).\(suffix)", rowPermutation: permutation)
    }

    /// The GGUF row whose contents go to Hugging Face row `row` of a `[rows, cols]` q/k matrix permuted with `heads`.
    ///
    /// convert_hf_to_gguf.py put HF row `h*(rows/heads) + p*(rows/heads/2) + i` at GGUF row
    /// `h*(rows/heads) + 2i + p`; this reads it back from there. `rows` must be a multiple of `2 * heads`.
    @inline(__always)
    package static func sourceRow(of row: Int, rows: Int, heads: Int) -> Int {
        let perHead = rows / heads
        let half = perHead / 2
        let head = row / perHead
        let within = row % perHead
        let p = within / half
        let i = within % half
        return head * perHead + 2 * i + p
    }
}
