"""Loads BASE quantized by transformers itself (NF4, double quant, bf16 compute) and the nf4kit-converted
folder, and checks that their logits and state dicts are identical. usage: transformers_same_as_bnb.py BASE CONVERTED"""
import sys, torch
from transformers import AutoModelForCausalLM, BitsAndBytesConfig
ids = torch.tensor([[1, 5, 42, 7, 99, 3, 11]])
cfg = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=torch.bfloat16)
theirs = AutoModelForCausalLM.from_pretrained(sys.argv[1], quantization_config=cfg)
ours = AutoModelForCausalLM.from_pretrained(sys.argv[2])
a, b = theirs(ids).logits, ours(ids).logits
print("transformers-quantized vs nf4kit-converted logits identical:", torch.equal(a, b), "max diff", (a.float() - b.float()).abs().max().item())
sd_t = theirs.state_dict(); sd_o = ours.state_dict()
same = sum(torch.equal(sd_t[k], sd_o[k]) for k in sd_t if k in sd_o and sd_t[k].dtype == sd_o[k].dtype)
print("state-dict tensors equal:", same, "of", len(sd_t))
