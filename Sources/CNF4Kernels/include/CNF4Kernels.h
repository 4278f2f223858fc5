#ifndef CNF4KERNELS_H
#define CNF4KERNELS_H

#include <stddef.h>
#include <stdint.h>

/// 1 when this CPU (and the OS) can run the AVX2 + F16C kernels below, else 0. Never 1 off x86-64.
int nf4k_has_avx2_f16c(void);

/// Full 4-bit blocks of float16 (dtype 0), bfloat16 (1) or float32 (2) input with AVX2 + F16C (call only when
/// nf4k_has_avx2_f16c() is 1).
///
/// For each of `block_count` blocks of `blocksize` (a multiple of 16) values starting at `input`:
/// absmax = max |x|; the divisor is absmax, raised to `clamp_floor` when `clamp` is 1 (bitsandbytes' CPU rule);
/// s = x * (1 / divisor) in float32; rank = number of the 15 `thresholds` strictly below s; code = map[rank];
/// two codes per byte, the even element in the high nibble. Writes absmax[b] and blocksize / 2 bytes at
/// packed + b * blocksize / 2. A block whose absmax is inf or NaN, or whose 1 / divisor is not finite, is left
/// to the caller: fallback[b] = 1 and nothing else is written for it (fallback[b] = 0 otherwise).
void nf4k_quantize_blocks_avx2(
    const void *input, int dtype, size_t block_count, size_t blocksize, const float *thresholds, const uint8_t *map,
    int map_is_identity, int clamp, float clamp_floor, uint8_t *packed, float *absmax, uint8_t *fallback);

/// 1 when this CPU (and the OS) can run nf4k_lora_accumulate_fma, else 0. Never 1 off x86-64.
int nf4k_has_avx2_fma(void);

/// out[row][c] += weight * (scale * sum_k left[row][k] * right[k][c]) for rows row_begin..<row_end (row-major f32;
/// left is [rows, rank], right [rank, columns], out [rows, columns]). The sum runs k = 0, 1, ... with one fused
/// multiply-add per step (one rounding, as PyTorch's AVX2 CPU matmul); the scale, the weight (only when
/// apply_weight is 1) and the add to out are separate f32 roundings. Call only when nf4k_has_avx2_fma() is 1.
void nf4k_lora_accumulate_fma(
    const float *left, const float *right, size_t rank, size_t columns, float scale, float weight, int apply_weight,
    float *out, size_t row_begin, size_t row_end);

/// ggml's quantize_row_q4_K_ref (bits 4, 144-byte blocks) or quantize_row_q5_K_ref (bits 5, 176 bytes) over
/// `block_count` super-blocks of 256 float32 values at `x`, with AVX2 + F16C (call only when nf4k_has_avx2_f16c() is
/// 1); byte-identical to the reference. A super-block holding a non-finite value or one of magnitude above 2^32 is
/// left to the caller: fallback[b] = 1 and its bytes are not written (fallback[b] = 0 otherwise).
void nf4k_quantize_q45k_avx2(const float *x, size_t block_count, int bits, uint8_t *out, uint8_t *fallback);

/// ggml's quantize_row_q6_K_ref (210-byte blocks), as nf4k_quantize_q45k_avx2.
void nf4k_quantize_q6k_avx2(const float *x, size_t block_count, uint8_t *out, uint8_t *fallback);

#endif
