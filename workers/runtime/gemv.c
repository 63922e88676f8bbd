/* Few-row decode: matrix-vector products, and a whole Llama decode step, on the CPU.
 *
 * A decode step over a few rows reads every weight once and does two flops per weight
 * and row, so its speed is how fast the weights are read. oneDNN's kernels are blocked
 * for matrices; on a 2-core AVX-512 CPU they read SmolLM2's projections at about 25 GB/s
 * where one streaming dot product per output row reads them at 33 or more. Each output
 * row here is one AVX-512 dot product (float32 accumulation; bfloat16 weights through
 * the AVX-512 BF16 pair instruction where the CPU has it), output rows split evenly over
 * the OpenMP threads of the caller (the process's own OpenMP runtime, the one torch
 * uses, so torch.set_num_threads applies).
 *
 * stratlab_gemv_*: one projection, y = f(x) W^T (+ a), f the op the eager step runs
 * before it (nothing, RMSNorm without its weight, or SiLU(gate) * up).
 *
 * stratlab_llama_step: one token per row through every layer of a Llama-family model
 * laid out as workers/runtime/lean.py prepares it (fused q/k/v with rotary pairs
 * adjacent, fused gate/up, RMSNorm weights folded into the projections), keys and values
 * written into the row cache, logits out. With one to five rows the eager step's ~35
 * small ops per layer cost as much as its projections in dispatch alone.
 *
 * Values are rounded to bfloat16 wherever the eager bf16 step rounds them (every
 * projection's output, the normed rows, SiLU and its product, the rotated q/k, the
 * attention output, the residual stream). Attention scores, softmax weights and their
 * sum over the values stay float32 here, where the eager bf16 paths round some of them
 * to bf16 (PyTorch's CPU kernel the exponentiated scores, transformers' eager
 * attention the scores and weights): in bf16 a row's logits can differ by a few bf16
 * steps between a few-row step and a wide one.
 *
 * Built by workers/runtime/gemv.py with the machine's C compiler (-march=native); it
 * refuses to build without AVX-512, and the caller then keeps oneDNN and the eager step.
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


int stratlab_gemv_version(void) { return 5; }

/* 1 when bfloat16 products use the AVX-512 BF16 pair instruction (much faster from 2
   rows on), 0 when they widen to float32 first. */
int stratlab_gemv_bf16_pairs(void) {
#ifdef __AVX512BF16__
    return 1;
#else
    return 0;
#endif
}

static inline float round_to(int bf16, float v) { return bf16 ? bf16_to_f32(f32_to_bf16(v)) : v; }

/* What happens to the input rows before the product (the "prologue"). */
enum { AS_IS = 0, RMS_NORMED = 1, SILU_GATED = 2 };

static inline float silu(float g) { return g / (1.0f + expf(-g)); }

/* e^x for 16 floats, within 2 ulp of expf: x = k ln2 + r with |r| <= ln2 / 2 (ln2 in
 * two parts), e^r by Cephes' expf polynomial, times 2^k by scalef (which gives inf, 0 or
 * a subnormal at the ends). x is first clamped to [-104, 89], beyond which expf is 0 or
 * inf; a NaN stays NaN. */
static inline __m512 exp16(__m512 x) {
    x = _mm512_min_ps(_mm512_set1_ps(89.0f), _mm512_max_ps(_mm512_set1_ps(-104.0f), x));
    __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(k, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, k);
}

/* xf[0, I) = silu(g) * u for g = gate[0, I), u = up[0, I), each product rounded as the
 * eager bf16 ops round it (silu(g), then the product) when bf16. */
static void silu_gated(const float* gate, const float* up, int64_t I, int bf16, float* xf) {
    int64_t i = 0;
    for (; i + 16 <= I; i += 16) {
        __m512 g = _mm512_loadu_ps(gate + i);
        __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), g));
        _mm512_storeu_ps(xf + i, _mm512_div_ps(g, _mm512_add_ps(_mm512_set1_ps(1.0f), e)));
    }
    for (; i < I; i++) xf[i] = silu(gate[i]);
    for (i = 0; i < I; i++) xf[i] = round_to(bf16, round_to(bf16, xf[i]) * up[i]);
}

/* Row m of a product's input into xf[0, I), from float32 rows X:
 *   AS_IS       X is [M, I]: the row itself;
 *   RMS_NORMED  X is [M, I]: the row over its root mean square (mean of squares + eps),
 *               in float32 (RMSNorm whose weight is folded into the projection);
 *   SILU_GATED  X is [M, 2I], gate then up: silu(gate) * up.
 * In bf16 every value the eager ops round is rounded (the normed row; silu(gate), then
 * its product with up). */
static void prologue(const float* X, int bf16, int64_t m, int64_t I, int mode, float eps,
                     float* xf) {
    int64_t width = mode == SILU_GATED ? 2 * I : I;
    const float* x = X + m * width;
    if (mode == RMS_NORMED) {
        float squares = 0.f;
        for (int64_t i = 0; i < I; i++) squares += x[i] * x[i];
        float scale = 1.0f / sqrtf(squares / (float)I + eps);
        for (int64_t i = 0; i < I; i++) xf[i] = round_to(bf16, x[i] * scale);
    } else if (mode == SILU_GATED) {
        silu_gated(x, x + I, I, bf16, xf);
    } else {
        memcpy(xf, x, sizeof(float) * (size_t)I);
    }
}

/* out[m, o] = sum_i W[o, i] xf[m, i] (+ add[m, o]), rounded to bf16 when bf16; float32
 * buffers (out may be add). xb: xf as bfloat16 (bf16 weights with pair products), else
 * unused. Output rows are split over the OpenMP threads. */
static void project(const void* W, int bf16, const float* xf, const uint16_t* xb, int64_t M,
                    int64_t O, int64_t I, const float* add, float* out) {
    #pragma omp parallel for schedule(static)
    for (int64_t o = 0; o < O; o++) {
        for (int64_t m = 0; m < M; m++) {
            const float* x = xf + m * I;
            __m512 acc = _mm512_setzero_ps();
            int64_t i = 0;
            float s;
            if (bf16) {
                const uint16_t* w = (const uint16_t*)W + o * I;
#ifdef __AVX512BF16__
                const uint16_t* xh = xb + m * I;
                for (; i + 32 <= I; i += 32)
                    acc = _mm512_dpbf16_ps(acc, (__m512bh)_mm512_loadu_si512(w + i),
                                           (__m512bh)_mm512_loadu_si512(xh + i));
#else
                (void)xb;
#endif
                for (; i + 16 <= I; i += 16)
                    acc = _mm512_fmadd_ps(load_bf16(w + i), _mm512_loadu_ps(x + i), acc);
                s = _mm512_reduce_add_ps(acc);
                for (; i < I; i++) s += bf16_to_f32(w[i]) * x[i];
            } else {
                const float* w = (const float*)W + o * I;
                for (; i + 16 <= I; i += 16)
                    acc = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), _mm512_loadu_ps(x + i), acc);
                s = _mm512_reduce_add_ps(acc);
                for (; i < I; i++) s += w[i] * x[i];
            }
            if (add) s += add[m * O + o];
            out[m * O + o] = round_to(bf16, s);
        }
    }
}

/* Inputs of a product: the prologue of M rows of X into xf, and xf as bf16 into xb
   (read only by the pair products, so only filled where they are built). */
static void inputs(const float* X, int bf16, int64_t M, int64_t I, int mode, float eps,
                   float* xf, uint16_t* xb) {
    for (int64_t m = 0; m < M; m++) prologue(X, bf16, m, I, mode, eps, xf + m * I);
#ifdef __AVX512BF16__
    if (bf16)
        for (int64_t k = 0; k < M * I; k++) xb[k] = f32_to_bf16(xf[k]); /* exact: bf16 values */
#else
    (void)xb;
#endif
}

static void widen(const void* X, int bf16, int64_t n, float* out) {
    if (bf16) {
        const uint16_t* x = (const uint16_t*)X;
        for (int64_t k = 0; k < n; k++) out[k] = bf16_to_f32(x[k]);
    } else {
        memcpy(out, X, sizeof(float) * (size_t)n);
    }
}

/* Y[m, o] = sum_i W[o, i] f(X)[m, i] (+ A[m, o]) for m < M, f the prologue; W row-major
 * [O, I]; X, Y and A in W's dtype; A may be NULL. Returns 0, or -1 without memory. */
static int gemv(const void* W, const void* X, void* Y, const void* A, int64_t O, int64_t I,
                int64_t M, int mode, float eps, int bf16) {
    int64_t width = mode == SILU_GATED ? 2 * I : I;
    float* xin = malloc(sizeof(float) * (size_t)(M * width));
    float* xf = malloc(sizeof(float) * (size_t)(M * I));
    uint16_t* xb = malloc(sizeof(uint16_t) * (size_t)(M * I));
    float* out = malloc(sizeof(float) * (size_t)(M * O));
    int failed = !xin || !xf || !xb || !out;
    if (!failed) {
        widen(X, bf16, M * width, xin);
        inputs(xin, bf16, M, I, mode, eps, xf, xb);
        if (A) widen(A, bf16, M * O, out);
        project(W, bf16, xf, xb, M, O, I, A ? out : NULL, out);
        if (bf16) {
            for (int64_t k = 0; k < M * O; k++) ((uint16_t*)Y)[k] = f32_to_bf16(out[k]);
        } else {
            memcpy(Y, out, sizeof(float) * (size_t)(M * O));
        }
    }
    free(xin); free(xf); free(xb); free(out);
    return failed ? -1 : 0;
}

int stratlab_gemv_f32(const float* W, const float* X, float* Y, const float* A, int64_t O,
                      int64_t I, int64_t M, int mode, float eps) {
    return gemv(W, X, Y, A, O, I, M, mode, eps, 0);
}

int stratlab_gemv_bf16(const uint16_t* W, const uint16_t* X, uint16_t* Y, const uint16_t* A,
                       int64_t O, int64_t I, int64_t M, int mode, float eps) {
    return gemv(W, X, Y, A, O, I, M, mode, eps, 1);
}

/* The shape of a model and of the row cache a step writes into. */
typedef struct {
    int64_t layers, hidden, heads, kv_heads, head_dim, intermediate, vocab;
    float eps;
    int32_t bf16;
    /* Row cache: element strides of the buffer [2 * layers, rows, kv_heads, columns, D]. */
    int64_t cache_layer, cache_row, cache_head, cache_column;
} StepShape;

static inline void store(void* base, int bf16, int64_t at, float v) {
    if (bf16) ((uint16_t*)base)[at] = f32_to_bf16(v);
    else ((float*)base)[at] = v;
}

static inline float load(const void* base, int bf16, int64_t at) {
    return bf16 ? bf16_to_f32(((const uint16_t*)base)[at]) : ((const float*)base)[at];
}

/* q . v[at, at + D) for a float32 query and a cached key in the cache's dtype. */
static inline float dot_cached(const float* q, const void* cache, int bf16, int64_t at, int64_t D) {
    __m512 acc = _mm512_setzero_ps();
    int64_t d = 0;
    if (bf16) {
        const uint16_t* k = (const uint16_t*)cache + at;
        for (; d + 16 <= D; d += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(q + d), load_bf16(k + d), acc);
    } else {
        const float* k = (const float*)cache + at;
        for (; d + 16 <= D; d += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(q + d), _mm512_loadu_ps(k + d), acc);
    }
    float s = _mm512_reduce_add_ps(acc);
    for (; d < D; d++) s += q[d] * load(cache, bf16, at + d);
    return s;
}

/* out[0, D) += weight * v[at, at + D) for a cached value in the cache's dtype. */
static inline void add_cached(float* out, float weight, const void* cache, int bf16, int64_t at,
                              int64_t D) {
    __m512 w = _mm512_set1_ps(weight);
    int64_t d = 0;
    if (bf16) {
        const uint16_t* v = (const uint16_t*)cache + at;
        for (; d + 16 <= D; d += 16)
            _mm512_storeu_ps(out + d, _mm512_fmadd_ps(w, load_bf16(v + d), _mm512_loadu_ps(out + d)));
    } else {
        const float* v = (const float*)cache + at;
        for (; d + 16 <= D; d += 16)
            _mm512_storeu_ps(out + d, _mm512_fmadd_ps(w, _mm512_loadu_ps(v + d), _mm512_loadu_ps(out + d)));
    }
    for (; d < D; d++) out[d] += weight * load(cache, bf16, at + d);
}

/* One token per row through every layer; float32 logits [M, vocab].
 *
 * weights: 4 per layer (qkv, out, gate_up, down), then the head; x: the rows' token
 * embeddings [M, hidden] in the model's dtype; rotation [M, head_dim / 2, 2]: each row's
 * (cos, sin) per rotary pair, attention scaling included; cache: the row cache's first
 * row of the step; column: where the new keys and values go (each row attends to the
 * columns before it, those valid[m, c] != 0 when valid is not NULL, and itself).
 * Returns 0, or -1 without memory. */
int stratlab_llama_step(const StepShape* shape, const void* const* weights, const void* x,
                        const float* rotation, void* cache, int64_t column,
                        const uint8_t* valid, int64_t valid_row, int64_t M, float* logits) {
    const int bf16 = shape->bf16;
    const int64_t hidden = shape->hidden, H = shape->heads, KV = shape->kv_heads;
    const int64_t D = shape->head_dim, inter = shape->intermediate;
    const int64_t qkv_out = (H + 2 * KV) * D, group = H / KV, end = column + 1;
    int64_t widest = inter > hidden ? inter : hidden;
    if (H * D > widest) widest = H * D; /* the attention output feeds the output projection */
    const float scale = 1.0f / sqrtf((float)D);
    float* residual = malloc(sizeof(float) * (size_t)(M * hidden));
    float* xf = malloc(sizeof(float) * (size_t)(M * widest));
    uint16_t* xb = malloc(sizeof(uint16_t) * (size_t)(M * widest));
    float* qkv = malloc(sizeof(float) * (size_t)(M * qkv_out));
    float* attended = malloc(sizeof(float) * (size_t)(M * H * D));
    float* mixed = malloc(sizeof(float) * (size_t)(M * 2 * inter));
    float* scores = malloc(sizeof(float) * (size_t)(M * H * end));
    int failed = !residual || !xf || !xb || !qkv || !attended || !mixed || !scores;
    if (failed) goto done;
    widen(x, bf16, M * hidden, residual);

    for (int64_t layer = 0; layer < shape->layers; layer++) {
        const void* const* w = weights + 4 * layer;
        char* keys = (char*)cache;
        size_t element = bf16 ? 2 : 4;
        keys += (size_t)(2 * layer * shape->cache_layer) * element;
        char* values = keys + (size_t)shape->cache_layer * element;

        inputs(residual, bf16, M, hidden, RMS_NORMED, shape->eps, xf, xb);
        project(w[0], bf16, xf, xb, M, qkv_out, hidden, NULL, qkv);
        for (int64_t m = 0; m < M; m++) {
            float* row = qkv + m * qkv_out;
            const float* turn = rotation + m * D;  /* D / 2 pairs of (cos, sin) */
            for (int64_t p = 0; p < (H + KV) * D / 2; p++) {
                int64_t j = p % (D / 2);
                float re = row[2 * p], im = row[2 * p + 1];
                float c = turn[2 * j], s = turn[2 * j + 1];
                row[2 * p] = round_to(bf16, re * c - im * s);
                row[2 * p + 1] = round_to(bf16, re * s + im * c);
            }
            for (int64_t h = 0; h < KV; h++) {
                int64_t at = m * shape->cache_row + h * shape->cache_head + column * shape->cache_column;
                for (int64_t d = 0; d < D; d++) {
                    store(keys, bf16, at + d, row[(H + h) * D + d]);
                    store(values, bf16, at + d, row[(H + KV + h) * D + d]);
                }
            }
        }
        #pragma omp parallel for schedule(static)
        for (int64_t task = 0; task < M * H; task++) {
            int64_t m = task / H, h = task % H, kv = h / group;
            const float* q = qkv + m * qkv_out + h * D;
            float* score = scores + task * end;
            int64_t base = m * shape->cache_row + kv * shape->cache_head;
            float top = -INFINITY;
            for (int64_t c = 0; c < end; c++) {
                if (valid && c < column && !valid[m * valid_row + c]) { score[c] = -INFINITY; continue; }
                score[c] = dot_cached(q, keys, bf16, base + c * shape->cache_column, D) * scale;
                if (score[c] > top) top = score[c];
            }
            float total = 0.f;
            for (int64_t c = 0; c < end; c++) {
                score[c] = score[c] == -INFINITY ? 0.f : expf(score[c] - top);
                total += score[c];
            }
            float* out = attended + m * H * D + h * D;
            for (int64_t d = 0; d < D; d++) out[d] = 0.f;
            for (int64_t c = 0; c < end; c++) {
                float weight = score[c] / total;
                if (weight == 0.f) continue;
                add_cached(out, weight, values, bf16, base + c * shape->cache_column, D);
            }
            for (int64_t d = 0; d < D; d++) out[d] = round_to(bf16, out[d]);
        }
        inputs(attended, bf16, M, H * D, AS_IS, 0.f, xf, xb);
        project(w[1], bf16, xf, xb, M, hidden, H * D, residual, residual);
        inputs(residual, bf16, M, hidden, RMS_NORMED, shape->eps, xf, xb);
        project(w[2], bf16, xf, xb, M, 2 * inter, hidden, NULL, mixed);
        inputs(mixed, bf16, M, inter, SILU_GATED, 0.f, xf, xb);
        project(w[3], bf16, xf, xb, M, hidden, inter, residual, residual);
    }
    inputs(residual, bf16, M, hidden, RMS_NORMED, shape->eps, xf, xb);
    project(weights[4 * shape->layers], bf16, xf, xb, M, shape->vocab, hidden, NULL, logits);

done:
    free(residual); free(xf); free(xb); free(qkv); free(attended); free(mixed); free(scores);
    return failed ? -1 : 0;
}
