/* Matrix-vector products for decode steps of one row: y = W x (+ a), weights row-major.
 *
 * A decode step over one row reads every weight once and does two flops per weight, so
 * its speed is memory bandwidth. oneDNN's kernels are blocked for matrices; on a 2-core
 * AVX-512 CPU they read SmolLM2's projections at about 25 GB/s where one streaming dot
 * product per output row reads them at about 33. This file is that loop and nothing more:
 * each output row is one AVX-512 dot product (16 floats per fused multiply-add, float32
 * accumulation), rows split evenly over the OpenMP threads of the caller (the process's
 * own OpenMP runtime, the one torch uses, so torch.set_num_threads applies).
 *
 * bfloat16 inputs are widened exactly to float32; a bfloat16 output is rounded to nearest
 * even once, after the optional residual add, as oneDNN's fused add does.
 *
 * The input rows can first go through the op the eager step runs before the projection
 * (RMSNorm without its weight, or SiLU(gate) * up): with one or two rows those small ops
 * cost a third of a step in dispatch alone.
 *
 * Built by workers/runtime/gemv.py with the machine's C compiler (-march=native); it
 * refuses to build without AVX-512, and the caller then keeps oneDNN.
 */
#include <stdint.h>
#include <stddef.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifndef __AVX512F__
#error "gemv.c needs AVX-512F"
#endif
#include <immintrin.h>

static inline float bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline uint16_t f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static inline __m512 load_bf16(const uint16_t* p) {
    __m256i half = _mm256_loadu_si256((const __m256i*)p);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(half), 16));
}

int stratlab_gemv_version(void) { return 3; }

/* 1 when bfloat16 products use the AVX-512 BF16 pair instruction (much faster from 2
   rows on), 0 when they widen to float32 first. */
int stratlab_gemv_bf16_pairs(void) {
#ifdef __AVX512BF16__
    return 1;
#else
    return 0;
#endif
}

/* What happens to the input rows before the product (the "prologue"). */
enum { AS_IS = 0, RMS_NORMED = 1, SILU_GATED = 2 };

static inline float silu(float g) { return g / (1.0f + expf(-g)); }

/* Row m of the product's input, in float32, into xf[0, I):
 *   AS_IS       X is [M, I]: the row itself;
 *   RMS_NORMED  X is [M, I]: the row over its root mean square (mean of squares + eps),
 *               computed in float32 (RMSNorm whose weight is folded into W);
 *   SILU_GATED  X is [M, 2I], gate then up: silu(gate) * up.
 * With bf16 != 0 the inputs are bfloat16 and every value the eager ops would round to
 * bfloat16 is rounded here too (the normed row; silu(gate), then its product with up). */
static void prologue(const void* X, int bf16, int64_t m, int64_t I, int mode, float eps, float* xf) {
    const float* xf32 = (const float*)X;
    const uint16_t* xb16 = (const uint16_t*)X;
    int64_t width = mode == SILU_GATED ? 2 * I : I;
#define IN(k) (bf16 ? bf16_to_f32(xb16[m * width + (k)]) : xf32[m * width + (k)])
#define ROUND(v) (bf16 ? bf16_to_f32(f32_to_bf16(v)) : (v))
    if (mode == RMS_NORMED) {
        float squares = 0.f;
        for (int64_t i = 0; i < I; i++) { float v = IN(i); squares += v * v; }
        float scale = 1.0f / sqrtf(squares / (float)I + eps);
        for (int64_t i = 0; i < I; i++) xf[i] = ROUND(IN(i) * scale);
    } else if (mode == SILU_GATED) {
        for (int64_t i = 0; i < I; i++) xf[i] = ROUND(ROUND(silu(IN(i))) * IN(I + i));
    } else {
        for (int64_t i = 0; i < I; i++) xf[i] = IN(i);
    }
#undef IN
#undef ROUND
}

/* Y[m, o] = sum_i W[o, i] x_m[i] (+ A[m, o]) for m < M, x_m the prologue's row m; W is
 * row-major [O, I] (float32 or bfloat16), Y and A have the inputs' dtype; A may be NULL.
 * Returns 0, or -1 when memory for the input rows cannot be had. */
static int gemv(const void* W, const void* X, void* Y, const void* A, int64_t O, int64_t I,
                int64_t M, int mode, float eps, int bf16) {
    float* xf = malloc(sizeof(float) * (size_t)(M * I));
    if (xf == NULL) return -1;
    for (int64_t m = 0; m < M; m++) prologue(X, bf16, m, I, mode, eps, xf + m * I);
#ifdef __AVX512BF16__
    /* bfloat16 pairs multiplied and summed into float32 by one instruction (products of
       two bf16 values are exact in float32): half the instructions of widening first. */
    if (bf16) {
        uint16_t* xb = malloc(sizeof(uint16_t) * (size_t)(M * I));
        if (xb == NULL) { free(xf); return -1; }
        for (int64_t k = 0; k < M * I; k++) xb[k] = f32_to_bf16(xf[k]); /* exact: bf16 values */
        #pragma omp parallel for schedule(static)
        for (int64_t o = 0; o < O; o++) {
            const uint16_t* w = (const uint16_t*)W + o * I;
            for (int64_t m = 0; m < M; m++) {
                const uint16_t* x = xb + m * I;
                __m512 acc = _mm512_setzero_ps();
                int64_t i = 0;
                for (; i + 32 <= I; i += 32)
                    acc = _mm512_dpbf16_ps(acc, (__m512bh)_mm512_loadu_si512(w + i),
                                           (__m512bh)_mm512_loadu_si512(x + i));
                float s = _mm512_reduce_add_ps(acc);
                for (; i < I; i++) s += bf16_to_f32(w[i]) * xf[m * I + i];
                const uint16_t* a = (const uint16_t*)A;
                ((uint16_t*)Y)[m * O + o] = f32_to_bf16(a ? s + bf16_to_f32(a[m * O + o]) : s);
            }
        }
        free(xb);
        free(xf);
        return 0;
    }
#endif
    #pragma omp parallel for schedule(static)
    for (int64_t o = 0; o < O; o++) {
        for (int64_t m = 0; m < M; m++) {
            const float* x = xf + m * I;
            __m512 acc = _mm512_setzero_ps();
            int64_t i = 0;
            float s;
            if (bf16) {
                const uint16_t* w = (const uint16_t*)W + o * I;
                for (; i + 16 <= I; i += 16)
                    acc = _mm512_fmadd_ps(load_bf16(w + i), _mm512_loadu_ps(x + i), acc);
                s = _mm512_reduce_add_ps(acc);
                for (; i < I; i++) s += bf16_to_f32(w[i]) * x[i];
                const uint16_t* a = (const uint16_t*)A;
                ((uint16_t*)Y)[m * O + o] = f32_to_bf16(a ? s + bf16_to_f32(a[m * O + o]) : s);
            } else {
                const float* w = (const float*)W + o * I;
                for (; i + 16 <= I; i += 16)
                    acc = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), _mm512_loadu_ps(x + i), acc);
                s = _mm512_reduce_add_ps(acc);
                for (; i < I; i++) s += w[i] * x[i];
                const float* a = (const float*)A;
                ((float*)Y)[m * O + o] = a ? s + a[m * O + o] : s;
            }
        }
    }
    free(xf);
    return 0;
}

int stratlab_gemv_f32(const float* W, const float* X, float* Y, const float* A, int64_t O,
                      int64_t I, int64_t M, int mode, float eps) {
    return gemv(W, X, Y, A, O, I, M, mode, eps, 0);
}

int stratlab_gemv_bf16(const uint16_t* W, const uint16_t* X, uint16_t* Y, const uint16_t* A,
                       int64_t O, int64_t I, int64_t M, int mode, float eps) {
    return gemv(W, X, Y, A, O, I, M, mode, eps, 1);
}
