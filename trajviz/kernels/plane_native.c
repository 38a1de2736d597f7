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
 * Layout: dims[0] is the first layer's width, dims[l] layer l's (l = 1..L-1),
 * dims[L-1] the output width. q: [3, dims[0], cols] (origin, u, v; cols a
 * multiple of STRIP, zero-padded past rows). w[l]: [G, dims[l], dims[l-1]],
 * b[l]: [G, dims[l]] or NULL, for l = 1..L-1 (w[0], b[0] unused). relu[l]:
 * apply ReLU after layer l. y: [dims[L-1], rows]; rows = tasks · samples,
 * task-major. sums: [G, tasks] doubles, zeroed by the caller; the kernel adds
 * each task's sum of squared residuals over its samples and outputs.
 */
#include <string.h>

#define STRIP 16
#define MR 6 /* output rows per register tile: 12 accumulators of 8 floats */

typedef float v8 __attribute__((vector_size(32)));
typedef int i8 __attribute__((vector_size(32)));

static inline v8 load(const float *p) { v8 v; memcpy(&v, p, sizeof v); return v; }
static inline void store(float *p, v8 v) { memcpy(p, &v, sizeof v); }
static inline v8 splat(float x) { return (v8){x, x, x, x, x, x, x, x}; }
/* ReLU that keeps NaN, as torch.relu does (NaN <= 0 is false). */
static inline v8 relu(v8 v) { return (v8)((i8)v & ~(v <= splat(0.0f))); }

/* out[i, :] = act(bias[i] + sum_k w[i, k] h[k, :]) for rows i < n (n <= MR, a constant
 * after inlining); h and out are [*, STRIP]. */
static inline __attribute__((always_inline)) void tile(int n, int k_n, const float *w, const float *bias,
                                                       const float *h, float *out, int act)
{
    v8 lo[MR], hi[MR];
    for (int i = 0; i < n; i++)
        lo[i] = hi[i] = splat(bias ? bias[i] : 0.0f);
    for (int k = 0; k < k_n; k++) {
        v8 h0 = load(h + k * STRIP), h1 = load(h + k * STRIP + 8);
        for (int i = 0; i < n; i++) {
            v8 wk = splat(w[i * k_n + k]);
            lo[i] += wk * h0;
            hi[i] += wk * h1;
        }
    }
    for (int i = 0; i < n; i++) {
        store(out + i * STRIP, act ? relu(lo[i]) : lo[i]);
        store(out + i * STRIP + 8, act ? relu(hi[i]) : hi[i]);
    }
}

static void layer(int n_out, int n_in, const float *w, const float *bias, const float *h, float *out,
                  int act)
{
    int i = 0;
    for (; i + MR <= n_out; i += MR)
        tile(MR, n_in, w + i * n_in, bias ? bias + i : 0, h, out + i * STRIP, act);
    const float *wr = w + i * n_in, *br = bias ? bias + i : 0;
    float *o = out + i * STRIP;
    switch (n_out - i) {
    case 5: tile(5, n_in, wr, br, h, o, act); break;
    case 4: tile(4, n_in, wr, br, h, o, act); break;
    case 3: tile(3, n_in, wr, br, h, o, act); break;
    case 2: tile(2, n_in, wr, br, h, o, act); break;
    case 1: tile(1, n_in, wr, br, h, o, act); break;
    default: break;
    }
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
        for (long p = args->first; p < args->first + args->count; p++) {
            v8 a = splat(args->coords[2 * p]), bb = splat(args->coords[2 * p + 1]);
            for (int k = 0; k < f0; k++) {
                for (int half = 0; half < STRIP; half += 8) {
                    int at = k * cols + c0 + half;
                    v8 v = load(qo + at) + a * load(qu + at) + bb * load(qv + at);
                    store(buf[0] + k * STRIP + half, relu_after[0] ? relu(v) : v);
                }
            }
            int cur = 0;
            for (int l = 1; l < n_layers; l++) {
                const float *wl = args->w[l] + p * dims[l] * dims[l - 1];
                const float *bl = args->b[l] ? args->b[l] + p * dims[l] : 0;
                layer(dims[l], dims[l - 1], wl, bl, buf[cur], buf[1 - cur], relu_after[l]);
                cur = 1 - cur;
            }
            double *s = args->sums + p * tasks;
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
