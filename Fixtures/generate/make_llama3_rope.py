"""Writes Fixtures/files/llama3-rope: a 1-layer Llama whose config.json carries Llama 3.2's llama3 rope scaling.

Run with a Python that has torch and safetensors (a venv with the torch CPU wheel). The tokenizer files are
llama-g's (SentencePiece, 1000 tokens); the tests copy them in, so only config.json and model.safetensors are kept.
The reference GGUF is then convert_hf_to_gguf.py --outtype bf16 of the assembled folder (see Fixtures/README.md).
"""

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

out = Path(sys.argv[1])
hidden, heads, kv_heads, head_dim, ffn, vocab = 8, 1, 1, 128, 16, 1000
config = {
    "architectures": ["LlamaForCausalLM"],
    "attention_bias": False,
    "attention_dropout": 0.0,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "head_dim": head_dim,
    "hidden_act": "silu",
    "hidden_size": hidden,
    "initializer_range": 0.02,
    "intermediate_size": ffn,
    "max_position_embeddings": 131072,
    "mlp_bias": False,
    "model_type": "llama",
    "num_attention_heads": heads,
    "num_hidden_layers": 1,
    "num_key_value_heads": kv_heads,
    "pretraining_tp": 1,
    "rms_norm_eps": 1e-05,
    "rope_scaling": {
        "factor": 32.0,
        "high_freq_factor": 4.0,
        "low_freq_factor": 1.0,
        "original_max_position_embeddings": 8192,
        "rope_type": "llama3",
    },
    "rope_theta": 500000.0,
    "tie_word_embeddings": True,
    "torch_dtype": "bfloat16",
    "use_cache": True,
    "vocab_size": vocab,
}
generator = torch.Generator().manual_seed(0)


def weight(*shape):
    return (torch.randint(-8, 9, shape, generator=generator).to(torch.float32) / 16).to(torch.bfloat16)


tensors = {"model.embed_tokens.weight": weight(vocab, hidden), "model.norm.weight": weight(hidden)}
prefix = "model.layers.0."
tensors[prefix + "input_layernorm.weight"] = weight(hidden)
tensors[prefix + "post_attention_layernorm.weight"] = weight(hidden)
tensors[prefix + "self_attn.q_proj.weight"] = weight(heads * head_dim, hidden)
tensors[prefix + "self_attn.k_proj.weight"] = weight(kv_heads * head_dim, hidden)
tensors[prefix + "self_attn.v_proj.weight"] = weight(kv_heads * head_dim, hidden)
tensors[prefix + "self_attn.o_proj.weight"] = weight(hidden, heads * head_dim)
tensors[prefix + "mlp.gate_proj.weight"] = weight(ffn, hidden)
tensors[prefix + "mlp.up_proj.weight"] = weight(ffn, hidden)
tensors[prefix + "mlp.down_proj.weight"] = weight(hidden, ffn)
out.mkdir(parents=True, exist_ok=True)
(out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
