// ggml's reference k-quant quantizers for Q4_K, Q5_K and Q6_K super-blocks with AVX2 (+ F16C for the two f16
// scales), byte-identical to quantize_row_q{4,5,6}_K_ref of ggml-quants.c as built for baseline x86-64.
//
// The groups of a super-block are the lanes: Q4_K / Q5_K fit 8 groups of 32 (one __m256 per element index), Q6_K
// 16 groups of 16 (two __m256). Each lane performs exactly the scalar reference's float32 operations in the same
// order (sums still add element 0, 1, 2, ... of the group; divisions stay divisions; ggml's nearest_int is the same
// add-and-mask integer trick, exact for every input); ggml's branches become lane masks. No fused multiply-add can
// appear: the pragma forbids contraction and the target has no "fma". Two Q4_K / Q5_K super-blocks run interleaved
// so the sequential sums of one hide the add latency of the other.
//
// A super-block with a non-finite value or one of magnitude above 2^32 is not written: fallback[b] = 1 and the
// caller runs the Swift kernel for it (which handles every input); below that bound no sum can overflow, so every
// NaN the search can make is the processor's default NaN and the integer trick sees the same bits as in C.
#include "CNF4Kernels.h"

#pragma STDC FP_CONTRACT OFF

#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#define KQ_TARGET __attribute__((target("avx2,f16c")))
#define KQ_INLINE __attribute__((target("avx2,f16c"), always_inline)) static inline

// ggml's nearest_int per lane: add 1.5 * 2^23, keep the low 23 bits, subtract 2^22.
KQ_INLINE __m256i kq_nearest(__m256 v) {
    const __m256i bits = _mm256_castps_si256(_mm256_add_ps(v, _mm256_set1_ps(12582912.f)));
    return _mm256_sub_epi32(_mm256_and_si256(bits, _mm256_set1_epi32(0x007FFFFF)), _mm256_set1_epi32(0x00400000));
}

static inline int kq_nearest1(float v) {
    const float shifted = v + 12582912.f;
    int bits;
    memcpy(&bits, &shifted, 4);
    return (bits & 0x007FFFFF) - 0x00400000;
}

KQ_INLINE uint16_t kq_half(float v) { return (uint16_t)_cvtss_sh(v, 0); }  // round to nearest even
KQ_INLINE float kq_float(uint16_t h) { return _cvtsh_ss(h); }

KQ_INLINE __m256 kq_select(__m256 a, __m256 b, __m256 mask) { return _mm256_blendv_ps(a, b, mask); }

// 1 when every value of x[0..<n] (n a multiple of 8) is finite with magnitude <= 2^32.
KQ_INLINE int kq_in_range(const float *x, int n) {
    const __m256 limit = _mm256_set1_ps(4294967296.f);
    const __m256 magnitude = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    __m256 ok = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
    for (int i = 0; i < n; i += 8)
        ok = _mm256_and_ps(ok, _mm256_cmp_ps(_mm256_and_ps(_mm256_loadu_ps(x + i), magnitude), limit, _CMP_LE_OQ));
    return _mm256_movemask_ps(ok) == 0xFF;
}

// 8x8 transpose: r[j][m] -> r[m][j].
KQ_INLINE void kq_transpose8(__m256 *r) {
    const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

// 32 int32 codes (0..255) in four vectors -> 32 bytes in order.
KQ_INLINE void kq_store_bytes32(uint8_t *out, __m256i a, __m256i b, __m256i c, __m256i d) {
    const __m256i ab = _mm256_packs_epi32(a, b), cd = _mm256_packs_epi32(c, d);
    const __m256i bytes = _mm256_packus_epi16(ab, cd);
    // packs/packus work per 128-bit half: dwords come out a0-3 b0-3 c0-3 d0-3 | a4-7 b4-7 c4-7 d4-7.
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    _mm256_storeu_si256((__m256i *)out, _mm256_permutevar8x32_epi32(bytes, order));
}

// ---- Q4_K / Q5_K: make_qkx2_quants(32, nmax, x, av_x + |x|, ..., rmin, 0.1, nstep, false) on 8 groups at once.
//
// The codes of a pass are not kept: a lane remembers the iscale and min of its best pass, and the codes are made
// again from them only where the block needs them (a group whose 6-bit scale rounds to 0).

typedef struct {
    __m256 x[32], w[32], cur[32];  // row i: element i of the 8 groups; the current pass's codes as floats
    __m256 min, max, data_min, range, bound, sum_w, sum_x, scale, best_error, best_iscale, best_min, degenerate;
} kq_fit8;

KQ_INLINE void kq_fit8_load(kq_fit8 *s, const float *x) {
    for (int k = 0; k < 4; k++) {
        __m256 r[8];
        for (int j = 0; j < 8; j++) r[j] = _mm256_loadu_ps(x + 32 * j + 8 * k);
        kq_transpose8(r);
        for (int m = 0; m < 8; m++) s->x[8 * k + m] = r[m];
    }
    const __m256 magnitude = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    __m256 sum_x2 = _mm256_setzero_ps();
    for (int i = 0; i < 32; i++) sum_x2 = _mm256_add_ps(sum_x2, _mm256_mul_ps(s->x[i], s->x[i]));
    const __m256 av_x = _mm256_sqrt_ps(_mm256_div_ps(sum_x2, _mm256_set1_ps(32.f)));
    for (int i = 0; i < 32; i++) s->w[i] = _mm256_add_ps(av_x, _mm256_and_ps(s->x[i], magnitude));
}

// After min moved: max - min (1 in a constant group, whose results are not used) and a bound on |x - min|.
KQ_INLINE void kq_fit8_moved_min(kq_fit8 *s) {
    const __m256 magnitude = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    s->range = kq_select(_mm256_sub_ps(s->max, s->min), _mm256_set1_ps(1.f), s->degenerate);
    // x - min rounds monotonically in x, so the largest |x - min| is at the largest or the smallest x.
    s->bound = _mm256_max_ps(
        _mm256_and_ps(_mm256_sub_ps(s->max, s->min), magnitude),
        _mm256_and_ps(_mm256_sub_ps(s->data_min, s->min), magnitude));
}

// 1 when every lane's |iscale * (x - min)| is at most 4194303 (so nearest_int is round-to-nearest-even, which
// _mm256_round_ps does in one step); NaN fails.
KQ_INLINE int kq_fit8_rounds(const kq_fit8 *s, __m256 iscale) {
    const __m256 magnitude = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    const __m256 top = _mm256_mul_ps(_mm256_and_ps(iscale, magnitude), s->bound);
    return _mm256_movemask_ps(_mm256_cmp_ps(top, _mm256_set1_ps(4194303.f), _CMP_LE_OQ)) == 0xFF;
}

// Codes of a pass as floats: clamp(nearest_int(iscale * (x - min)), 0, nmax).
KQ_INLINE __m256 kq_fit8_code(__m256 iscale, __m256 x, __m256 min, __m256 nmax, int exact) {
    const __m256 v = _mm256_mul_ps(iscale, _mm256_sub_ps(x, min));
    if (exact) {
        const __m256i l = _mm256_min_epi32(
            _mm256_max_epi32(kq_nearest(v), _mm256_setzero_si256()), _mm256_cvtps_epi32(nmax));
        return _mm256_cvtepi32_ps(l);
    }
    // max(r, 0) also turns a -0 from rounding into the +0 of the integer path.
    const __m256 r = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    return _mm256_min_ps(_mm256_max_ps(r, _mm256_setzero_ps()), nmax);
}

KQ_INLINE void kq_fit8_start(kq_fit8 *s, float nmax) {
    __m256 min = s->x[0], max = s->x[0];
    __m256 sum_w = s->w[0];
    __m256 sum_x = _mm256_mul_ps(sum_w, s->x[0]);
    for (int i = 1; i < 32; i++) {
        min = _mm256_min_ps(s->x[i], min);  // x < min ? x : min
        max = _mm256_max_ps(s->x[i], max);  // x > max ? x : max
        sum_w = _mm256_add_ps(sum_w, s->w[i]);
        sum_x = _mm256_add_ps(sum_x, _mm256_mul_ps(s->w[i], s->x[i]));
    }
    const __m256 zero = _mm256_setzero_ps();
    s->data_min = min;
    s->min = kq_select(min, zero, _mm256_cmp_ps(min, zero, _CMP_GT_OQ));
    s->max = max;
    s->sum_w = sum_w;
    s->sum_x = sum_x;
    s->degenerate = _mm256_cmp_ps(max, s->min, _CMP_EQ_OQ);
    kq_fit8_moved_min(s);
    const __m256 top = _mm256_set1_ps(nmax);
    const __m256 iscale = _mm256_div_ps(top, s->range);
    s->scale = _mm256_div_ps(_mm256_set1_ps(1.f), iscale);
    s->best_iscale = iscale;
    s->best_min = s->min;
    __m256 error = zero;
    for (int i = 0; i < 32; i++) {
        const __m256 lf = kq_fit8_code(iscale, s->x[i], s->min, top, 1);
        __m256 diff = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(s->scale, lf), s->min), s->x[i]);
        diff = _mm256_mul_ps(diff, diff);
        error = _mm256_add_ps(error, _mm256_mul_ps(s->w[i], diff));
    }
    s->best_error = error;
}

// One candidate pass for `count` super-blocks: the codes into cur, the three weighted sums.
KQ_INLINE void kq_fit8_pass(
    kq_fit8 *s, const int count, const __m256 *iscale, __m256 top, int exact, __m256 *sum_l, __m256 *sum_l2,
    __m256 *sum_xl) {
    for (int k = 0; k < count; k++) sum_l[k] = sum_l2[k] = sum_xl[k] = _mm256_setzero_ps();
    for (int i = 0; i < 32; i++) {
        for (int k = 0; k < count; k++) {
            const __m256 lf = kq_fit8_code(iscale[k], s[k].x[i], s[k].min, top, exact);
            s[k].cur[i] = lf;
            const __m256 wl = _mm256_mul_ps(s[k].w[i], lf);
            sum_l[k] = _mm256_add_ps(sum_l[k], wl);
            sum_l2[k] = _mm256_add_ps(sum_l2[k], _mm256_mul_ps(wl, lf));
            sum_xl[k] = _mm256_add_ps(sum_xl[k], _mm256_mul_ps(wl, s[k].x[i]));
        }
    }
}

// The candidate scales of make_qkx2_quants for `count` (1 or 2) super-blocks in lockstep.
KQ_INLINE void kq_fit8_search(kq_fit8 *s, const int count, float nmax, float rmin, float rdelta, int nstep) {
    const __m256 top = _mm256_set1_ps(nmax);
    const __m256 zero = _mm256_setzero_ps();
    for (int is = 0; is <= nstep; ++is) {
        const __m256 shifted = _mm256_set1_ps(rmin + rdelta * (float)is + nmax);
        __m256 iscale[2], sum_l[2], sum_l2[2], sum_xl[2];
        int rounds = 1;
        for (int k = 0; k < count; k++) {
            iscale[k] = _mm256_div_ps(shifted, s[k].range);
            rounds &= kq_fit8_rounds(&s[k], iscale[k]);
        }
        if (rounds) {
            kq_fit8_pass(s, count, iscale, top, 0, sum_l, sum_l2, sum_xl);
        } else {
            kq_fit8_pass(s, count, iscale, top, 1, sum_l, sum_l2, sum_xl);
        }
        __m256 valid[2], this_scale[2], this_min[2];
        int any_valid = 0;
        for (int k = 0; k < count; k++) {
            const __m256 det = _mm256_sub_ps(_mm256_mul_ps(s[k].sum_w, sum_l2[k]), _mm256_mul_ps(sum_l[k], sum_l[k]));
            valid[k] = _mm256_cmp_ps(det, zero, _CMP_GT_OQ);
            any_valid |= _mm256_movemask_ps(valid[k]);
            __m256 scale = _mm256_div_ps(
                _mm256_sub_ps(_mm256_mul_ps(s[k].sum_w, sum_xl[k]), _mm256_mul_ps(s[k].sum_x, sum_l[k])), det);
            __m256 min = _mm256_div_ps(
                _mm256_sub_ps(_mm256_mul_ps(sum_l2[k], s[k].sum_x), _mm256_mul_ps(sum_l[k], sum_xl[k])), det);
            const __m256 pinned = _mm256_cmp_ps(min, zero, _CMP_GT_OQ);
            this_min[k] = kq_select(min, zero, pinned);
            this_scale[k] = kq_select(scale, _mm256_div_ps(sum_xl[k], sum_l2[k]), pinned);
        }
        if (!any_valid) continue;
        __m256 error[2];
        for (int k = 0; k < count; k++) error[k] = zero;
        for (int i = 0; i < 32; i++) {
            for (int k = 0; k < count; k++) {
                __m256 diff = _mm256_sub_ps(
                    _mm256_add_ps(_mm256_mul_ps(this_scale[k], s[k].cur[i]), this_min[k]), s[k].x[i]);
                diff = _mm256_mul_ps(diff, diff);
                error[k] = _mm256_add_ps(error[k], _mm256_mul_ps(s[k].w[i], diff));
            }
        }
        for (int k = 0; k < count; k++) {
            const __m256 better = _mm256_andnot_ps(
                s[k].degenerate, _mm256_and_ps(valid[k], _mm256_cmp_ps(error[k], s[k].best_error, _CMP_LT_OQ)));
            if (!_mm256_movemask_ps(better)) continue;
            s[k].best_iscale = kq_select(s[k].best_iscale, iscale[k], better);
            s[k].best_min = kq_select(s[k].best_min, s[k].min, better);  // the min this pass used
            s[k].best_error = kq_select(s[k].best_error, error[k], better);
            s[k].scale = kq_select(s[k].scale, this_scale[k], better);
            s[k].min = kq_select(s[k].min, this_min[k], better);
            kq_fit8_moved_min(&s[k]);
        }
    }
}

// The rest of quantize_row_q4_K_ref / q5_K_ref after the fits: 6-bit scales and mins, codes, packing.
KQ_INLINE void kq_q45k_finish(const kq_fit8 *s, const float *x, int bits, uint8_t *y) {
    const int nmax = bits == 4 ? 15 : 31;
    float scales[8], mins[8];
    const __m256 degenerate = s->degenerate;
    _mm256_storeu_ps(scales, kq_select(s->scale, _mm256_setzero_ps(), degenerate));
    _mm256_storeu_ps(mins, _mm256_xor_ps(s->min, _mm256_set1_ps(-0.f)));  // the_min = -min
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; j++) {
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    uint8_t *sc = y + 4;
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < 8; j++) {
        uint8_t ls = (uint8_t)kq_nearest1(inv_scale * scales[j]);
        uint8_t lm = (uint8_t)kq_nearest1(inv_min * mins[j]);
        ls = ls < 63 ? ls : 63;
        lm = lm < 63 ? lm : 63;
        if (j < 4) {
            sc[j] = ls;
            sc[j + 4] = lm;
        } else {
            sc[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
            sc[j - 4] |= (uint8_t)((ls >> 4) << 6);
            sc[j] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    const uint16_t d_bits = kq_half(max_scale / 63.f), dmin_bits = kq_half(max_min / 63.f);
    memcpy(y, &d_bits, 2);
    memcpy(y + 2, &dmin_bits, 2);
    const float d_all = kq_float(d_bits), dmin_all = kq_float(dmin_bits);
    uint8_t L[256];
    const __m256i top = _mm256_set1_epi32(nmax);
    for (int j = 0; j < 8; j++) {
        uint8_t sj, mj;
        if (j < 4) {
            sj = sc[j] & 63;
            mj = sc[j + 4] & 63;
        } else {
            sj = (uint8_t)((sc[j + 4] & 0xF) | ((sc[j - 4] >> 6) << 4));
            mj = (uint8_t)((sc[j + 4] >> 4) | ((sc[j] >> 6) << 4));
        }
        const float d = d_all * (float)sj;
        if (!d) {  // the fit's codes stay: made again from its best pass (zero for a constant group)
            float best_iscale[8], best_min[8], constant[8];
            _mm256_storeu_ps(best_iscale, s->best_iscale);
            _mm256_storeu_ps(best_min, s->best_min);
            _mm256_storeu_ps(constant, degenerate);
            for (int i = 0; i < 32; i++) {
                const int l = kq_nearest1(best_iscale[j] * (x[32 * j + i] - best_min[j]));
                L[32 * j + i] = constant[j] != 0 ? 0 : (uint8_t)(l < 0 ? 0 : (l > nmax ? nmax : l));
            }
            continue;
        }
        const __m256 vd = _mm256_set1_ps(d), vdm = _mm256_set1_ps(dmin_all * (float)mj);
        __m256i l[4];
        for (int c = 0; c < 4; c++) {
            const __m256 q = _mm256_div_ps(_mm256_add_ps(_mm256_loadu_ps(x + 32 * j + 8 * c), vdm), vd);
            l[c] = _mm256_min_epi32(_mm256_max_epi32(kq_nearest(q), _mm256_setzero_si256()), top);
        }
        kq_store_bytes32(L + 32 * j, l[0], l[1], l[2], l[3]);
    }
    const __m256i low = _mm256_set1_epi8(0x0F);
    if (bits == 4) {
        for (int j = 0; j < 4; j++) {
            const __m256i a = _mm256_loadu_si256((const __m256i *)(L + 64 * j));
            const __m256i b = _mm256_loadu_si256((const __m256i *)(L + 64 * j + 32));
            _mm256_storeu_si256((__m256i *)(y + 16 + 32 * j), _mm256_or_si256(a, _mm256_slli_epi16(b, 4)));
        }
        return;
    }
    const __m256i one = _mm256_set1_epi8(1);
    __m256i qh = _mm256_setzero_si256();
    for (int n = 0; n < 4; n++) {
        const __m256i a = _mm256_loadu_si256((const __m256i *)(L + 64 * n));
        const __m256i b = _mm256_loadu_si256((const __m256i *)(L + 64 * n + 32));
        const __m256i ql = _mm256_or_si256(_mm256_and_si256(a, low), _mm256_slli_epi16(_mm256_and_si256(b, low), 4));
        _mm256_storeu_si256((__m256i *)(y + 48 + 32 * n), ql);
        const __m256i ha = _mm256_and_si256(_mm256_srli_epi16(a, 4), one);
        const __m256i hb = _mm256_and_si256(_mm256_srli_epi16(b, 4), one);
        qh = _mm256_or_si256(qh, _mm256_sll_epi16(ha, _mm_cvtsi32_si128(2 * n)));
        qh = _mm256_or_si256(qh, _mm256_sll_epi16(hb, _mm_cvtsi32_si128(2 * n + 1)));
    }
    _mm256_storeu_si256((__m256i *)(y + 16), qh);
}

KQ_TARGET
void nf4k_quantize_q45k_avx2(const float *x, size_t block_count, int bits, uint8_t *out, uint8_t *fallback) {
    const float nmax = bits == 4 ? 15.f : 31.f;
    const float rmin = bits == 4 ? -1.f : -0.5f;
    const int nstep = bits == 4 ? 20 : 15;
    const size_t size = bits == 4 ? 144 : 176;
    kq_fit8 state[2];
    size_t b = 0;
    while (b < block_count) {
        // Up to two super-blocks in range go together; one out of range is left to the caller.
        size_t picked[2];
        int count = 0;
        while (b < block_count && count < 2) {
            const float *xb = x + 256 * b;
            fallback[b] = !kq_in_range(xb, 256);
            if (!fallback[b]) picked[count++] = b;
            b++;
        }
        for (int k = 0; k < count; k++) {
            kq_fit8_load(&state[k], x + 256 * picked[k]);
            kq_fit8_start(&state[k], nmax);
        }
        if (count == 2) {
            kq_fit8_search(state, 2, nmax, rmin, 0.1f, nstep);
        } else if (count == 1) {
            kq_fit8_search(state, 1, nmax, rmin, 0.1f, nstep);
        }
        for (int k = 0; k < count; k++)
            kq_q45k_finish(&state[k], x + 256 * picked[k], bits, out + size * picked[k]);
    }
}

// ---- Q6_K: make_qx_quants(16, 32, x, L, 1, NULL) on 16 groups at once (groups 8h..8h+7 in half h). As for
// Q4_K, a lane keeps the iscale of its best pass and its codes are made again only where the block needs them.

// clamp(nearest_int(iscale * x), -32, 31) as floats; `exact` the integer trick, else one rounding (the same for
// |iscale * x| <= 4194303; a -0 it may give adds and multiplies into the sums as the +0 of C does).
KQ_INLINE __m256 kq_q6_code(__m256 iscale, __m256 x, int exact) {
    const __m256 v = _mm256_mul_ps(iscale, x);
    if (exact) {
        const __m256i l = _mm256_min_epi32(
            _mm256_max_epi32(kq_nearest(v), _mm256_set1_epi32(-32)), _mm256_set1_epi32(31));
        return _mm256_cvtepi32_ps(l);
    }
    const __m256 r = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    return _mm256_min_ps(_mm256_max_ps(r, _mm256_set1_ps(-32.f)), _mm256_set1_ps(31.f));
}

KQ_INLINE void kq_q6_pass(
    __m256 (*xs)[16], __m256 (*w)[16], __m256 (*wx)[16], const __m256 *iscale, int exact, __m256 *sumlx,
    __m256 *suml2) {
    for (int h = 0; h < 2; h++) sumlx[h] = suml2[h] = _mm256_setzero_ps();
    for (int i = 0; i < 16; i++) {
        for (int h = 0; h < 2; h++) {
            const __m256 lf = kq_q6_code(iscale[h], xs[h][i], exact);
            sumlx[h] = _mm256_add_ps(sumlx[h], _mm256_mul_ps(wx[h][i], lf));
            suml2[h] = _mm256_add_ps(suml2[h], _mm256_mul_ps(_mm256_mul_ps(w[h][i], lf), lf));
        }
    }
}

KQ_INLINE void kq_q6k_block(const float *x, uint8_t *y) {
    __m256 xs[2][16], w[2][16], wx[2][16];
    for (int h = 0; h < 2; h++)
        for (int k = 0; k < 2; k++) {
            __m256 r[8];
            for (int j = 0; j < 8; j++) r[j] = _mm256_loadu_ps(x + 16 * (8 * h + j) + 8 * k);
            kq_transpose8(r);
            for (int m = 0; m < 8; m++) xs[h][8 * k + m] = r[m];
        }
    const __m256 zero = _mm256_setzero_ps();
    const __m256 magnitude = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    const __m256 limit = _mm256_set1_ps(4194303.f);
    __m256 maxs[2], amaxs[2], empty[2], scale[2], best_value[2], best_iscale[2];
    for (int h = 0; h < 2; h++) {
        __m256 amax = zero, max = zero;
        for (int i = 0; i < 16; i++) {
            const __m256 ax = _mm256_and_ps(xs[h][i], magnitude);
            const __m256 larger = _mm256_cmp_ps(ax, amax, _CMP_GT_OQ);
            amax = kq_select(amax, ax, larger);
            max = kq_select(max, xs[h][i], larger);
            w[h][i] = _mm256_mul_ps(xs[h][i], xs[h][i]);
            wx[h][i] = _mm256_mul_ps(w[h][i], xs[h][i]);
        }
        amaxs[h] = amax;
        empty[h] = _mm256_cmp_ps(amax, _mm256_set1_ps(1e-15f), _CMP_LT_OQ);
        maxs[h] = kq_select(max, _mm256_set1_ps(1.f), empty[h]);  // the empty lanes' results are not used
        best_iscale[h] = _mm256_div_ps(_mm256_set1_ps(-32.f), maxs[h]);
    }
    for (int is = -10; is <= 9; ++is) {  // -10: the first fit with iscale = -nmax / max
        if (is == 0) continue;
        __m256 iscale[2], sumlx[2], suml2[2];
        int rounds = 1;
        for (int h = 0; h < 2; h++) {
            iscale[h] = is == -10 ? best_iscale[h]
                                  : _mm256_div_ps(_mm256_set1_ps(-(32.f + 0.1f * (float)is)), maxs[h]);
            const __m256 top = _mm256_mul_ps(_mm256_and_ps(iscale[h], magnitude), amaxs[h]);
            rounds &= _mm256_movemask_ps(_mm256_cmp_ps(top, limit, _CMP_LE_OQ)) == 0xFF;
        }
        if (rounds) {
            kq_q6_pass(xs, w, wx, iscale, 0, sumlx, suml2);
        } else {
            kq_q6_pass(xs, w, wx, iscale, 1, sumlx, suml2);
        }
        for (int h = 0; h < 2; h++) {
            if (is == -10) {
                scale[h] = kq_select(
                    _mm256_div_ps(sumlx[h], suml2[h]), zero, _mm256_cmp_ps(suml2[h], zero, _CMP_EQ_OQ));
                best_value[h] = _mm256_mul_ps(scale[h], sumlx[h]);
                continue;
            }
            const __m256 better = _mm256_andnot_ps(
                empty[h],
                _mm256_and_ps(
                    _mm256_cmp_ps(suml2[h], zero, _CMP_GT_OQ),
                    _mm256_cmp_ps(
                        _mm256_mul_ps(sumlx[h], sumlx[h]), _mm256_mul_ps(best_value[h], suml2[h]), _CMP_GT_OQ)));
            if (!_mm256_movemask_ps(better)) continue;
            best_iscale[h] = kq_select(best_iscale[h], iscale[h], better);
            scale[h] = kq_select(scale[h], _mm256_div_ps(sumlx[h], suml2[h]), better);
            best_value[h] = kq_select(best_value[h], _mm256_mul_ps(scale[h], sumlx[h]), better);
        }
    }
    // The rest of quantize_row_q6_K_ref.
    float scales[16];
    for (int h = 0; h < 2; h++) _mm256_storeu_ps(scales + 8 * h, kq_select(scale[h], zero, empty[h]));
    float max_scale = 0, max_abs_scale = 0;
    for (int ib = 0; ib < 16; ib++) {
        const float abs_scale = scales[ib] < 0 ? -scales[ib] : scales[ib];
        if (abs_scale > max_abs_scale) {
            max_abs_scale = abs_scale;
            max_scale = scales[ib];
        }
    }
    if (max_abs_scale < 1e-15f) {
        memset(y, 0, 210);
        return;
    }
    const float iscale = -128.f / max_scale;
    const uint16_t d_bits = kq_half(1 / iscale);
    memcpy(y + 208, &d_bits, 2);
    int8_t *sc = (int8_t *)(y + 192);
    for (int ib = 0; ib < 16; ib++) {
        const int l = kq_nearest1(iscale * scales[ib]);
        sc[ib] = (int8_t)(l < 127 ? l : 127);
    }
    const float d_all = kq_float(d_bits);
    uint8_t L[256];
    const __m256i offset = _mm256_set1_epi32(32), low = _mm256_set1_epi32(-32), high = _mm256_set1_epi32(31);
    for (int j = 0; j < 16; j++) {
        const float d = d_all * (float)sc[j];
        if (!d) {  // the fit's codes stay: made again from its best pass (zero for an all-zero group)
            float lane_iscale[8], lane_empty[8];
            _mm256_storeu_ps(lane_iscale, best_iscale[j / 8]);
            _mm256_storeu_ps(lane_empty, empty[j / 8]);
            for (int i = 0; i < 16; i++) {
                const int l = kq_nearest1(lane_iscale[j % 8] * x[16 * j + i]);
                L[16 * j + i] = lane_empty[j % 8] != 0 ? 0 : (uint8_t)((l < -32 ? -32 : (l > 31 ? 31 : l)) + 32);
            }
            continue;
        }
        const __m256 vd = _mm256_set1_ps(d);
        __m256i l[2];
        for (int c = 0; c < 2; c++) {
            const __m256 q = _mm256_div_ps(_mm256_loadu_ps(x + 16 * j + 8 * c), vd);
            l[c] = _mm256_add_epi32(_mm256_min_epi32(_mm256_max_epi32(kq_nearest(q), low), high), offset);
        }
        // 16 codes to bytes: pack to words then bytes, lanes per 128-bit half.
        const __m256i words = _mm256_packs_epi32(l[0], l[1]);  // l0[0-3] l1[0-3] | l0[4-7] l1[4-7]
        const __m128i lo = _mm256_castsi256_si128(words), hi = _mm256_extracti128_si256(words, 1);
        const __m128i ordered_lo = _mm_unpacklo_epi64(lo, hi);  // l0[0-7]
        const __m128i ordered_hi = _mm_unpackhi_epi64(lo, hi);  // l1[0-7]
        _mm_storeu_si128((__m128i *)(L + 16 * j), _mm_packus_epi16(ordered_lo, ordered_hi));
    }
    const __m256i nibble = _mm256_set1_epi8(0x0F), two = _mm256_set1_epi8(0x03);
    for (int half = 0; half < 2; half++) {
        const uint8_t *Lh = L + 128 * half;
        const __m256i a = _mm256_loadu_si256((const __m256i *)Lh);
        const __m256i b = _mm256_loadu_si256((const __m256i *)(Lh + 32));
        const __m256i c = _mm256_loadu_si256((const __m256i *)(Lh + 64));
        const __m256i e = _mm256_loadu_si256((const __m256i *)(Lh + 96));
        uint8_t *ql = y + 64 * half;
        uint8_t *qh = y + 128 + 32 * half;
        _mm256_storeu_si256(
            (__m256i *)ql, _mm256_or_si256(_mm256_and_si256(a, nibble), _mm256_slli_epi16(_mm256_and_si256(c, nibble), 4)));
        _mm256_storeu_si256(
            (__m256i *)(ql + 32),
            _mm256_or_si256(_mm256_and_si256(b, nibble), _mm256_slli_epi16(_mm256_and_si256(e, nibble), 4)));
        const __m256i ha = _mm256_and_si256(_mm256_srli_epi16(a, 4), two);
        const __m256i hb = _mm256_and_si256(_mm256_srli_epi16(b, 4), two);
        const __m256i hc = _mm256_and_si256(_mm256_srli_epi16(c, 4), two);
        const __m256i he = _mm256_and_si256(_mm256_srli_epi16(e, 4), two);
        const __m256i bits = _mm256_or_si256(
            _mm256_or_si256(ha, _mm256_slli_epi16(hb, 2)), _mm256_or_si256(_mm256_slli_epi16(hc, 4), _mm256_slli_epi16(he, 6)));
        _mm256_storeu_si256((__m256i *)qh, bits);
    }
}

KQ_TARGET
void nf4k_quantize_q6k_avx2(const float *x, size_t block_count, uint8_t *out, uint8_t *fallback) {
    for (size_t b = 0; b < block_count; b++) {
        const float *xb = x + 256 * b;
        fallback[b] = !kq_in_range(xb, 256);
        if (!fallback[b]) kq_q6k_block(xb, out + 210 * b);
    }
}

#else

void nf4k_quantize_q45k_avx2(const float *x, size_t block_count, int bits, uint8_t *out, uint8_t *fallback) {
    (void)x; (void)bits; (void)out;
    for (size_t b = 0; b < block_count; b++) fallback[b] = 1;
}

void nf4k_quantize_q6k_avx2(const float *x, size_t block_count, uint8_t *out, uint8_t *fallback) {
    (void)x; (void)out;
    for (size_t b = 0; b < block_count; b++) fallback[b] = 1;
}

#endif
