// The LoRA rank-r update with fused multiply-adds (AVX2 + FMA), for the merge's exact arithmetic.
#include "CNF4Kernels.h"

// Only the explicit fused steps may fuse: `out + delta` and `sum * scale` stay separate roundings, as in PyTorch.
#pragma STDC FP_CONTRACT OFF

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#include <math.h>

int nf4k_has_avx2_fma(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    const int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    if (!fma || !osxsave || !avx) return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 6) != 6) return 0;  // the OS saves XMM and YMM state
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (b >> 5) & 1;  // AVX2
}

// One output vector's delta: sum over k of coef[k] * right[k][column..column+7], each step one fused rounding.
#define NF4K_FINISH(sum, column)                                                                                \
    do {                                                                                                       \
        __m256 delta = _mm256_mul_ps((sum), vscale);                                                           \
        if (apply_weight) delta = _mm256_mul_ps(delta, vweight);                                               \
        _mm256_storeu_ps(row_out + (column), _mm256_add_ps(_mm256_loadu_ps(row_out + (column)), delta));      \
    } while (0)

__attribute__((target("avx2,fma")))
void nf4k_lora_accumulate_fma(
    const float *left, const float *right, size_t rank, size_t columns, float scale, float weight, int apply_weight,
    float *out, size_t row_begin, size_t row_end) {
    const __m256 vscale = _mm256_set1_ps(scale), vweight = _mm256_set1_ps(weight);
    for (size_t row = row_begin; row < row_end; row++) {
        const float *coef = left + row * rank;
        float *row_out = out + row * columns;
        size_t column = 0;
        // Four independent sums at a time hide the FMA latency; each sum still runs k = 0, 1, ... in order.
        for (; column + 32 <= columns; column += 32) {
            __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
            const float *source = right + column;
            for (size_t k = 0; k < rank; k++, source += columns) {
                const __m256 l = _mm256_set1_ps(coef[k]);
                s0 = _mm256_fmadd_ps(l, _mm256_loadu_ps(source), s0);
                s1 = _mm256_fmadd_ps(l, _mm256_loadu_ps(source + 8), s1);
                s2 = _mm256_fmadd_ps(l, _mm256_loadu_ps(source + 16), s2);
                s3 = _mm256_fmadd_ps(l, _mm256_loadu_ps(source + 24), s3);
            }
            NF4K_FINISH(s0, column);
            NF4K_FINISH(s1, column + 8);
            NF4K_FINISH(s2, column + 16);
            NF4K_FINISH(s3, column + 24);
        }
        for (; column + 8 <= columns; column += 8) {
            __m256 s0 = _mm256_setzero_ps();
            const float *source = right + column;
            for (size_t k = 0; k < rank; k++, source += columns) {
                s0 = _mm256_fmadd_ps(_mm256_set1_ps(coef[k]), _mm256_loadu_ps(source), s0);
            }
            NF4K_FINISH(s0, column);
        }
        for (; column < columns; column++) {
            float sum = 0;
            for (size_t k = 0; k < rank; k++) sum = fmaf(coef[k], right[k * columns + column], sum);
            float delta = sum * scale;
            if (apply_weight) delta = delta * weight;
            row_out[column] = row_out[column] + delta;
        }
    }
}

#else

int nf4k_has_avx2_fma(void) { return 0; }

void nf4k_lora_accumulate_fma(
    const float *left, const float *right, size_t rank, size_t columns, float scale, float weight, int apply_weight,
    float *out, size_t row_begin, size_t row_end) {
    (void)left; (void)right; (void)rank; (void)columns; (void)scale; (void)weight; (void)apply_weight; (void)out;
    (void)row_begin; (void)row_end;
}

#endif
