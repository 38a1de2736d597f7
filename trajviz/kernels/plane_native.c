/* The fused surface kernel: an MLP's MSE at G points of a plane, one strip at a time.
 *
 * Built and loaded by trajviz/kernels/native.py (plain C, GCC/Clang vector extensions,
 * no headers beyond libc, no BLAS). Every layer of the network runs on a strip
 * of STRIP sample columns whose activations stay in L1: the first layer's
 * pre-activation is Q0 + a·Qu + b·Qv (computed once per plane), each later
 * layer a register-blocked GEMM with bias and ReLU in its epilogue, the last
 * layer's output goes straight into the squared residual. Nothing per point
 * and sample is written to memory, which is what the eager path pays for
 * (seven passes over [G, 41, N] activations against the GEMM's two).
 *
 * The vector width follows the target: 16 floats where the compiler targets
 * AVX-512 (__AVX512F__: 32 registers of 16 floats), else 8 (AVX2's 16 of 8; plain
 * SSE and other targets split them). A strip is NV vectors wide; trajviz_plane_strip()
 * says how many columns, and native.py pads to that (checked when it loads the library).
 *
 * Layout: dims[0] is the first layer's width, dims[l] layer l's (l = 1..L-1),
 * dims[L-1] the output width. q: [3, dims[0], cols] (origin, u, v; cols a
 * multiple of STRIP, zero-padded past rows). w[l]: [G, dims[l], dims[l-1]],
 * b[l]: [G, dims[l]] or NULL, for l = 1..L-1 (w[0], b[0] unused). relu[l]:
 * apply ReLU after layer l. y: [dims[L-1], rows]; rows = tasks · samples,
 * task-major. sums: [G, tasks] doubles, zeroed by the caller; the kernel adds
 * each task's sum of squared residuals over its samples and outputs.
 */
#include <string.h>

/* MR and NV may be set with -D to measure others (native.py's $TRAJVIZ_CFLAGS). */
#ifdef __AVX512F__
#define VW 16 /* floats per vector */
#ifndef MR
#define MR 8 /* output rows per register tile: MR * NV accumulators (of 32 registers) */
#endif
#else
#define VW 8
#ifndef MR
#define MR 6 /* of 16 registers */
#endif
#endif
#ifndef NV
#ifdef __AVX512F__
#define NV 3 /* vectors per strip row */
#else
#define NV 2
#endif
#endif
#define STRIP (NV * VW)
#define KS 4 /* partial sums over k for layers too narrow to fill the pipeline */

typedef float vf __attribute__((vector_size(4 * VW)));
typedef int vi __attribute__((vector_size(4 * VW)));
typedef float vh __attribute__((vector_size(2 * VW))); /* half a vector */
typedef double vd __attribute__((vector_size(4 * VW))); /* half a vector, widened */

static inline vf load(const float *p) { vf v; memcpy(&v, p, sizeof v); return v; }
static inline void store(float *p, vf v) { memcpy(p, &v, sizeof v); }
static inline vf splat(float x) { return x - (vf){0}; }
/* ReLU that keeps NaN, as torch.relu does (NaN <= 0 is false). */
static inline vf relu(vf v) { return (vf)((vi)v & ~(v <= splat(0.0f))); }

/* out[i, :] = act(bias[i] + sum_k w[i, k] h[k, :]) for rows i < n (n <= MR) over the first nv
 * vectors of each row (nv <= NV); h and out are [*, STRIP]. n and nv are constants after
 * inlining, so the accumulators live in registers. */
static inline __attribute__((always_inline)) void tile(int n, int nv, int k_n, const float *w,
                                                       const float *bias, const float *h,
                                                       float *out, int act)
{
    vf acc[MR][NV];
    for (int i = 0; i < n; i++)
        for (int j = 0; j < nv; j++)
            acc[i][j] = splat(bias ? bias[i] : 0.0f);
    for (int k = 0; k < k_n; k++) {
        vf hk[NV];
        for (int j = 0; j < nv; j++)
            hk[j] = load(h + k * STRIP + j * VW);
        for (int i = 0; i < n; i++) {
            vf wk = splat(w[i * k_n + k]);
            for (int j = 0; j < nv; j++)
                acc[i][j] += wk * hk[j];
        }
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < nv; j++)
            store(out + i * STRIP + j * VW, act ? relu(acc[i][j]) : acc[i][j]);
}

/* One output row (a narrow last layer): KS partial sums over k, so that the FMAs do not
 * wait on one another (a row alone has nv chains, each k_n FMAs long). */
static inline __attribute__((always_inline)) void row(int nv, int k_n, const float *w,
                                                      const float *bias, const float *h,
                                                      float *out, int act)
{
    vf acc[KS][NV];
    for (int s = 0; s < KS; s++)
        for (int j = 0; j < nv; j++)
            acc[s][j] = splat(0.0f);
    int k = 0;
    for (; k + KS <= k_n; k += KS)
        for (int s = 0; s < KS; s++)
            for (int j = 0; j < nv; j++)
                acc[s][j] += splat(w[k + s]) * load(h + (k + s) * STRIP + j * VW);
    for (; k < k_n; k++)
        for (int j = 0; j < nv; j++)
            acc[0][j] += splat(w[k]) * load(h + k * STRIP + j * VW);
    for (int j = 0; j < nv; j++) {
        vf v = ((acc[0][j] + acc[1][j]) + (acc[2][j] + acc[3][j])) + splat(bias ? bias[0] : 0.0f);
        store(out + j * VW, act ? relu(v) : v);
    }
}

#define REST(r) case r: tile(r, nv, n_in, wr, br, h, o, act); break;

static inline __attribute__((always_inline)) void layer(int nv, int n_out, int n_in, const float *w,
                                                        const float *bias, const float *h,
                                                        float *out, int act)
{
    if (n_out * nv < 8) { /* too few accumulators to keep the FMAs busy: split over k */
        for (int i = 0; i < n_out; i++)
            row(nv, n_in, w + i * n_in, bias ? bias + i : 0, h, out + i * STRIP, act);
        return;
    }
    int i = 0;
    for (; i + MR <= n_out; i += MR)
        tile(MR, nv, n_in, w + i * n_in, bias ? bias + i : 0, h, out + i * STRIP, act);
    const float *wr = w + i * n_in, *br = bias ? bias + i : 0;
    float *o = out + i * STRIP;
    switch (n_out - i) {
    REST(1) REST(2) REST(3)
#if MR > 4
    REST(4)
#endif
#if MR > 5
    REST(5)
#endif
#if MR > 6
    REST(6)
#endif
#if MR > 7
    REST(7)
#endif
#if MR > 8
    REST(8)
#endif
#if MR > 9
    REST(9)
#endif
#if MR > 10
    REST(10)
#endif
#if MR > 11
    REST(11)
#endif
#if MR > 12
#error "REST cases stop at 11"
#endif
    default: break;
    }
}

/* layer() for each vector count 1..NV: a strip's last vectors past rows are skipped. */
typedef void LayerFn(int, int, const float *, const float *, const float *, float *, int);
#define LAYER_NV(v)                                                                            \
    static void layer_##v(int n_out, int n_in, const float *w, const float *bias, const float *h, \
                          float *out, int act) { layer(v, n_out, n_in, w, bias, h, out, act); }
LAYER_NV(1)
#if NV >= 2
LAYER_NV(2)
#endif
#if NV >= 3
LAYER_NV(3)
#endif
#if NV >= 4
LAYER_NV(4)
#endif
#if NV > 4
#error "NV stops at 4"
#endif
static LayerFn *const layers[NV + 1] = {0, layer_1,
#if NV >= 2
    layer_2,
#endif
#if NV >= 3
    layer_3,
#endif
#if NV >= 4
    layer_4,
#endif
};

/* The sum of squared residuals of one output row over a whole strip, in double. */
static inline double residuals(const float *out, const float *y)
{
    vd acc = {0};
    for (int j = 0; j < STRIP; j += VW / 2) {
        vh o, t;
        memcpy(&o, out + j, sizeof o);
        memcpy(&t, y + j, sizeof t);
        vd d = __builtin_convertvector(o, vd) - __builtin_convertvector(t, vd);
        acc += d * d;
    }
    double s = 0.0;
    for (int j = 0; j < VW / 2; j++)
        s += acc[j];
    return s;
}

/* The arguments, one struct (trajviz/kernels/native.py's PlaneArgs, checked there): points
 * first .. first + count - 1 of the g points whose coords [g, 2], w[l] [g, dims[l], dims[l-1]],
 * b[l] [g, dims[l]] and sums [g, tasks] are passed whole. act[l]: 0 identity, 1 ReLU after
 * layer l (trajviz/kernels/tables.py). scratch: 2 * max(dims) * STRIP floats. */
typedef struct {
    int n_layers;
    const int *dims, *act;
    const float *q;
    const float *const *w, *const *b;
    const float *coords;
    long first, count;
    int cols, rows, samples;
    const float *y;
    float *scratch;
    double *sums;
} PlaneArgs;

/* The strip's width in columns: cols must be a multiple of it. */
int trajviz_plane_strip(void) { return STRIP; }

/* Floats per vector (16 with AVX-512, else 8). */
int trajviz_plane_lanes(void) { return VW; }

/* Returns 0, or -1 for an activation code it does not know (nothing computed). */
int trajviz_plane_mlp_sse(const PlaneArgs *args)
{
    const int n_layers = args->n_layers, *dims = args->dims, *relu_after = args->act;
    const int cols = args->cols, rows = args->rows, samples = args->samples;
    const float *y = args->y;
    for (int l = 0; l < n_layers; l++)
        if (relu_after[l] != 0 && relu_after[l] != 1)
            return -1;
    int width = 0, n_out = dims[n_layers - 1], tasks = rows / samples;
    for (int l = 0; l < n_layers; l++)
        width = dims[l] > width ? dims[l] : width;
    float *buf[2] = {args->scratch, args->scratch + width * STRIP};
    const int f0 = dims[0];
    const float *qo = args->q, *qu = qo + f0 * cols, *qv = qo + 2 * f0 * cols;
    for (int c0 = 0; c0 < cols && c0 < rows; c0 += STRIP) {
        /* a strip inside one task: its residuals summed whole, in vectors */
        const int whole = c0 + STRIP <= rows && c0 / samples == (c0 + STRIP - 1) / samples;
        const int nv = rows - c0 >= STRIP ? NV : (rows - c0 + VW - 1) / VW; /* vectors in use */
        LayerFn *const layer_nv = layers[nv];
        for (long p = args->first; p < args->first + args->count; p++) {
            vf a = splat(args->coords[2 * p]), bb = splat(args->coords[2 * p + 1]);
            for (int k = 0; k < f0; k++) {
                for (int j = 0; j < nv * VW; j += VW) {
                    int at = k * cols + c0 + j;
                    vf v = load(qo + at) + a * load(qu + at) + bb * load(qv + at);
                    store(buf[0] + k * STRIP + j, relu_after[0] ? relu(v) : v);
                }
            }
            int cur = 0;
            for (int l = 1; l < n_layers; l++) {
                const float *wl = args->w[l] + p * dims[l] * dims[l - 1];
                const float *bl = args->b[l] ? args->b[l] + p * dims[l] : 0;
                layer_nv(dims[l], dims[l - 1], wl, bl, buf[cur], buf[1 - cur], relu_after[l]);
                cur = 1 - cur;
            }
            double *s = args->sums + p * tasks;
            if (whole) {
                double acc = 0.0;
                for (int o = 0; o < n_out; o++)
                    acc += residuals(buf[cur] + o * STRIP, y + (long)o * rows + c0);
                s[c0 / samples] += acc;
                continue;
            }
            for (int j = 0; j < STRIP && c0 + j < rows; j++) {
                int r = c0 + j;
                double acc = 0.0;
                for (int o = 0; o < n_out; o++) {
                    double d = (double)buf[cur][o * STRIP + j] - (double)y[(long)o * rows + r];
                    acc += d * d;
                }
                s[r / samples] += acc;
            }
        }
    }
    return 0;
}
