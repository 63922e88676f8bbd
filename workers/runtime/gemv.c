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
 * Built by workers/runtime/gemv.py with the machine's C compiler (-march=native); it
 * refuses to build without AVX-512, and the caller then keeps oneDNN.
 */
#include <stdint.h>
#include <stddef.h>
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

int stratlab_gemv_version(void) { return 1; }

/* Y[m, o] = sum_i W[o, i] X[m, i] (+ A[m, o]) for m < M; A may be NULL. */
void stratlab_gemv_f32(const float* W, const float* X, float* Y, const float* A,
                       int64_t O, int64_t I, int64_t M) {
    #pragma omp parallel for schedule(static)
    for (int64_t o = 0; o < O; o++) {
        const float* w = W + o * I;
        for (int64_t m = 0; m < M; m++) {
            const float* x = X + m * I;
            __m512 acc = _mm512_setzero_ps();
            int64_t i = 0;
            for (; i + 16 <= I; i += 16)
                acc = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), _mm512_loadu_ps(x + i), acc);
            float s = _mm512_reduce_add_ps(acc);
            for (; i < I; i++) s += w[i] * x[i];
            Y[m * O + o] = A ? s + A[m * O + o] : s;
        }
    }
}

/* The same in bfloat16 (float32 accumulation, one rounding of the result). */
void stratlab_gemv_bf16(const uint16_t* W, const uint16_t* X, uint16_t* Y, const uint16_t* A,
                        int64_t O, int64_t I, int64_t M) {
    #pragma omp parallel for schedule(static)
    for (int64_t o = 0; o < O; o++) {
        const uint16_t* w = W + o * I;
        for (int64_t m = 0; m < M; m++) {
            const uint16_t* x = X + m * I;
            __m512 acc = _mm512_setzero_ps();
            int64_t i = 0;
            for (; i + 16 <= I; i += 16)
                acc = _mm512_fmadd_ps(load_bf16(w + i), load_bf16(x + i), acc);
            float s = _mm512_reduce_add_ps(acc);
            for (; i < I; i++) s += bf16_to_f32(w[i]) * bf16_to_f32(x[i]);
            Y[m * O + o] = f32_to_bf16(A ? s + bf16_to_f32(A[m * O + o]) : s);
        }
    }
}
