// AVX2 + F16C block kernels for NF4/FP4 quantization, compiled per function so the package needs no global
// target flags (SwiftPM refuses unsafeFlags in dependencies) and still runs on any x86-64 (runtime check).
// The arithmetic is the Swift kernel's, operation for operation: exact f16 -> f32, one float32 multiply by the
// reciprocal, strict compares; contraction into FMA is impossible here (no add), so results are bit-identical.
#include "CNF4Kernels.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#include <math.h>

int nf4k_has_avx2_f16c(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    const int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, f16c = (c >> 29) & 1;
    if (!osxsave || !avx || !f16c) return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 6) != 6) return 0;  // the OS saves XMM and YMM state
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (b >> 5) & 1;  // AVX2
}

enum { KIND_F16 = 0, KIND_BF16 = 1, KIND_F32 = 2 };

// Eight float32 values of element i..i+7 of a block, widened exactly.
__attribute__((target("avx2,f16c"), always_inline))
static inline __m256 load8(const void *x, size_t i, int kind) {
    if (kind == KIND_F16) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)x + i)));
    if (kind == KIND_BF16)
        return _mm256_castsi256_ps(
            _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)x + i))), 16));
    return _mm256_loadu_ps((const float *)x + i);
}

// The block's largest magnitude as float32 bits (NaN payloads order above inf, as in the Swift kernel).
__attribute__((target("avx2,f16c"), always_inline))
static inline uint32_t magnitude_bits(const void *x, size_t blocksize, int kind) {
    if (kind == KIND_F32) {
        const __m256i magnitude = _mm256_set1_epi32(0x7FFFFFFF);
        __m256i top = _mm256_setzero_si256();
        for (size_t i = 0; i < blocksize; i += 8)
            top = _mm256_max_epu32(top, _mm256_and_si256(_mm256_loadu_si256((const __m256i *)((const float *)x + i)), magnitude));
        __m128i m = _mm_max_epu32(_mm256_castsi256_si128(top), _mm256_extracti128_si256(top, 1));
        m = _mm_max_epu32(m, _mm_srli_si128(m, 8));
        m = _mm_max_epu32(m, _mm_srli_si128(m, 4));
        return (uint32_t)_mm_cvtsi128_si32(m);
    }
    const __m256i magnitude = _mm256_set1_epi16(0x7FFF);
    __m256i top = _mm256_setzero_si256();
    for (size_t i = 0; i < blocksize; i += 16)
        top = _mm256_max_epu16(top, _mm256_and_si256(_mm256_loadu_si256((const __m256i *)((const uint16_t *)x + i)), magnitude));
    __m128i m = _mm_max_epu16(_mm256_castsi256_si128(top), _mm256_extracti128_si256(top, 1));
    m = _mm_max_epu16(m, _mm_srli_si128(m, 8));
    m = _mm_max_epu16(m, _mm_srli_si128(m, 4));
    m = _mm_max_epu16(m, _mm_srli_si128(m, 2));
    const uint16_t h = (uint16_t)_mm_extract_epi16(m, 0);
    if (kind == KIND_BF16) return (uint32_t)h << 16;
    if (h >= 0x7C00) return 0x7F800000u;  // inf or NaN: reported as non-finite, the caller falls back
    float f = _cvtsh_ss(h);
    uint32_t bits;
    __builtin_memcpy(&bits, &f, 4);
    return bits;
}

__attribute__((target("avx2,f16c"), always_inline))
static inline void quantize_blocks(
    const void *input, int kind, size_t block_count, size_t blocksize, const float *thresholds, const uint8_t *map,
    int map_is_identity, int clamp, float clamp_floor, uint8_t *packed, float *absmax, uint8_t *fallback) {
    __m256 t[15];
    for (int k = 0; k < 15; k++) t[k] = _mm256_set1_ps(thresholds[k]);
    const __m128i table = _mm_loadu_si128((const __m128i *)map);
    const __m128i low_byte = _mm_set1_epi16(0x00FF);
    const size_t width = kind == KIND_F32 ? 4 : 2;
    for (size_t b = 0; b < block_count; b++) {
        const void *x = (const uint8_t *)input + b * blocksize * width;
        const uint32_t top_bits = magnitude_bits(x, blocksize, kind);
        if (top_bits >= 0x7F800000u) {  // inf or NaN in the block
            fallback[b] = 1;
            continue;
        }
        float a;
        __builtin_memcpy(&a, &top_bits, 4);
        const float divisor = (clamp && a < clamp_floor) ? clamp_floor : a;
        const float inverse = 1.0f / divisor;
        if (!isfinite(inverse)) {
            fallback[b] = 1;
            continue;
        }
        fallback[b] = 0;
        absmax[b] = a;
        const __m256 scale = _mm256_set1_ps(inverse);
        uint8_t *out = packed + b * (blocksize / 2);
        for (size_t i = 0; i < blocksize; i += 16) {
            const __m256 s0 = _mm256_mul_ps(load8(x, i, kind), scale);
            const __m256 s1 = _mm256_mul_ps(load8(x, i + 8, kind), scale);
            __m256i r0 = _mm256_setzero_si256(), r1 = _mm256_setzero_si256();
            for (int k = 0; k < 15; k++) {  // a true compare is all ones (-1): subtracting it counts it
                r0 = _mm256_sub_epi32(r0, _mm256_castps_si256(_mm256_cmp_ps(s0, t[k], _CMP_GT_OQ)));
                r1 = _mm256_sub_epi32(r1, _mm256_castps_si256(_mm256_cmp_ps(s1, t[k], _CMP_GT_OQ)));
            }
            // 16 ranks (0..15) as bytes, in element order.
            const __m256i words = _mm256_permute4x64_epi64(_mm256_packs_epi32(r0, r1), 0xD8);
            __m128i codes = _mm_packus_epi16(_mm256_castsi256_si128(words), _mm256_extracti128_si256(words, 1));
            if (!map_is_identity) codes = _mm_shuffle_epi8(table, codes);
            // Byte pairs (even, odd) -> even << 4 | odd.
            const __m128i pairs = _mm_or_si128(
                _mm_slli_epi16(_mm_and_si128(codes, low_byte), 4), _mm_srli_epi16(codes, 8));
            _mm_storel_epi64((__m128i *)(out + i / 2), _mm_packus_epi16(pairs, pairs));
        }
    }
}

__attribute__((target("avx2,f16c")))
void nf4k_quantize_blocks_avx2(
    const void *input, int dtype, size_t block_count, size_t blocksize, const float *thresholds, const uint8_t *map,
    int map_is_identity, int clamp, float clamp_floor, uint8_t *packed, float *absmax, uint8_t *fallback) {
    switch (dtype) {
    case KIND_F16:
        quantize_blocks(input, KIND_F16, block_count, blocksize, thresholds, map, map_is_identity, clamp, clamp_floor,
                        packed, absmax, fallback);
        break;
    case KIND_BF16:
        quantize_blocks(input, KIND_BF16, block_count, blocksize, thresholds, map, map_is_identity, clamp, clamp_floor,
                        packed, absmax, fallback);
        break;
    default:
        quantize_blocks(input, KIND_F32, block_count, blocksize, thresholds, map, map_is_identity, clamp, clamp_floor,
                        packed, absmax, fallback);
        break;
    }
}

#else

int nf4k_has_avx2_f16c(void) { return 0; }

void nf4k_quantize_blocks_avx2(
    const void *input, int dtype, size_t block_count, size_t blocksize, const float *thresholds, const uint8_t *map,
    int map_is_identity, int clamp, float clamp_floor, uint8_t *packed, float *absmax, uint8_t *fallback) {
    (void)input; (void)dtype; (void)blocksize; (void)thresholds; (void)map; (void)map_is_identity; (void)clamp;
    (void)clamp_floor; (void)packed; (void)absmax;
    for (size_t b = 0; b < block_count; b++) fallback[b] = 1;
}

#endif
