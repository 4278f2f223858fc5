"""Times bitsandbytes' CPU quantize_4bit (NF4, blocksize 64, double quantization) on a checkpoint's
Linear weights, the peer figure for scripts/bench. Prints G values/s over all weights quantized."""
import glob
import sys
import time

import torch
import bitsandbytes.functional as F
from safetensors.torch import load_file

folder = sys.argv[1]
weights = {}
for path in sorted(glob.glob(folder + "/*.safetensors")):
    for name, tensor in load_file(path).items():
        if tensor.dim() == 2 and name.endswith("proj.weight"):
            weights[name] = tensor

total = 0
start = time.perf_counter()
for name, tensor in weights.items():
    F.quantize_4bit(tensor, blocksize=64, compress_statistics=True, quant_type="nf4")
    total += tensor.numel()
elapsed = time.perf_counter() - start
print(f"bitsandbytes {__import__('bitsandbytes').__version__} CPU quantize_4bit nf4+dq: "
      f"{total} values in {elapsed:.2f} s = {total / elapsed / 1e9:.4f} G values/s (torch threads: {torch.get_num_threads()})")
