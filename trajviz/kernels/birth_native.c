/* The birth map's native inner loop: whole rollouts of a ReLU MLP under MSE, one at a time in L1.
 *
 * Built and loaded by trajviz/kernels/native.py, called by trajviz/kernels/native_birth.py. A
 * rollout's parameters, optimiser state and activations (a few tens of kB for
 * the sinusoid MLP 1-40-40-1) stay in L1 for all its K steps; the eager loop
 * streams [R, P] arrays through memory for every elementwise op and runs each
 * rollout's [B, 40]x[40, 40] products as one tiny GEMM of a batch. The gradient
 * is never stored: each block of 8 entries is applied to θ and the optimiser's
 * state straight from the registers that computed it (``update``), and the
 * step length is summed on the way (bench/bench_birthmap.py).
 *
 * Internally layer l's weight is kept zero-padded (outp_l = out_l rounded up to 8;
 * in_l = outp_{l-1}, in_0 the input width) in one of two layouts, followed by its
 * bias [outp_l]:
 * - wide: transposed, Wt [in_l, outp_l], so a product runs over output vectors;
 * - narrow (outp_l = 8 and in_l a multiple of 8, e.g. a network's 1-wide output):
 *   row-major, W [out_l, in_l], so products run over input vectors. A wide product
 *   there would be one vector per input, a chain of dependent multiply-adds, and 7
 *   of its 8 lanes padding.
 * Padded entries start at 0, get zero gradients (their inputs or output deltas are
 * 0) and so stay 0 under every optimiser: they change no loss and no step length.
 *
 * Per step i = 0..K: f_i = mean over the batch and outputs of (net(x_i) - y_i)^2
 * (losses[r, i]); for i < K the gradient, the optimiser's update u exactly as
 * trajviz/problem/optim.py defines it (sgd: -lr g; momentum: buf = beta buf + g,
 * u = -lr buf or -lr (g + beta buf) with nesterov; adam: m, v, bias corrections,
 * u = -(lr / bc1) m / (sqrt(v) / sqrt(bc2) + eps)), θ' = θ + u, and
 * lengths[r, i] = ||θ' - θ||.
 */
#include <math.h>
#include <string.h>

typedef float v8 __attribute__((vector_size(32)));
typedef int i8 __attribute__((vector_size(32)));
#define MAXV 6 /* vectors of outputs held in registers at once */

static inline v8 load(const float *p) { v8 v; memcpy(&v, p, sizeof v); return v; }
static inline void store(float *p, v8 v) { memcpy(p, &v, sizeof v); }
static inline v8 splat(float x) { return (v8){x, x, x, x, x, x, x, x}; }
/* ReLU that keeps NaN, as torch.relu does. */
static inline v8 relu(v8 v) { return (v8)((i8)v & ~(v <= splat(0.0f))); }
static inline float hsum(v8 v) { return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7])); }

enum { SGD = 0, MOMENTUM = 1, ADAM = 2 };

/* m / (sqrt(v) c + eps), Adam's step direction (per lane: vsqrtps where available). */
static inline v8 adam_ratio(v8 m, v8 v, float c, float eps)
{
    v8 den;
    for (int q = 0; q < 8; q++)
        den[q] = sqrtf(v[q]) * c + eps;
    return m / den;
}

/* One inner step's update, applied to each block of 8 gradient entries straight from the
 * registers that computed it: no gradient is stored, no separate pass over θ is made,
 * and Adam's sqrt and division (one divider, not pipelined) overlap the next block's
 * multiply-adds. */
typedef struct {
    int opt, nesterov;
    float lr, beta, b1, b2, eps, step_size, inv_root_bc2;
    float *theta, *m, *v; /* the flat padded θ and the optimiser's state: [total] each */
    v8 sq;                /* Σ (θ' − θ)² so far, per lane */
} Step;

/* θ[k .. k + 8) += u(g) for their gradient g; returns (θ' − θ)². */
static inline __attribute__((always_inline)) v8 update(const Step *st, long k, v8 g)
{
    float *theta = st->theta + k, *m = st->m + k;
    const v8 th = load(theta);
    v8 next;
    if (st->opt == ADAM) {
        float *v = st->v + k;
        const v8 mk = splat(st->b1) * load(m) + splat(1.0f - st->b1) * g;
        const v8 vk = splat(st->b2) * load(v) + splat(1.0f - st->b2) * g * g;
        store(m, mk);
        store(v, vk);
        next = th - splat(st->step_size) * adam_ratio(mk, vk, st->inv_root_bc2, st->eps);
    } else if (st->opt == MOMENTUM) {
        const v8 mk = splat(st->beta) * load(m) + g;
        store(m, mk);
        next = th - splat(st->lr) * (st->nesterov ? g + splat(st->beta) * mk : mk);
    } else {
        next = th - splat(st->lr) * g;
    }
    store(theta, next);
    const v8 d = next - th;
    return d * d;
}

/* out[b, j0 + 8q] (q < nv) = act(bias + sum_i a[b, i] Wt[i, j0 + 8q]) for every b. */
static inline __attribute__((always_inline)) void forward_block(int nv, int batch, int in, int a_stride,
                                                                const float *a, const float *wt, int outp,
                                                                const float *bias, float *out, int act)
{
    int b = 0;
    for (; b + 2 <= batch; b += 2) {
        v8 acc[MAXV], acc2[MAXV];
        for (int q = 0; q < nv; q++)
            acc[q] = acc2[q] = load(bias + 8 * q);
        for (int i = 0; i < in; i++) {
            v8 s = splat(a[b * a_stride + i]), s2 = splat(a[(b + 1) * a_stride + i]);
            for (int q = 0; q < nv; q++) {
                v8 w = load(wt + i * outp + 8 * q);
                acc[q] += s * w;
                acc2[q] += s2 * w;
            }
        }
        for (int q = 0; q < nv; q++) {
            store(out + b * outp + 8 * q, act ? relu(acc[q]) : acc[q]);
            store(out + (b + 1) * outp + 8 * q, act ? relu(acc2[q]) : acc2[q]);
        }
    }
    for (; b < batch; b++) {
        v8 acc[MAXV];
        for (int q = 0; q < nv; q++)
            acc[q] = load(bias + 8 * q);
        for (int i = 0; i < in; i++) {
            v8 s = splat(a[b * a_stride + i]);
            for (int q = 0; q < nv; q++)
                acc[q] += s * load(wt + i * outp + 8 * q);
        }
        for (int q = 0; q < nv; q++)
            store(out + b * outp + 8 * q, act ? relu(acc[q]) : acc[q]);
    }
}

/* The gradient of Wt[i, j0 + 8q] (flat offset k0 + i outp + 8q), sum_b a[b, i] delta[b, j0 + 8q],
 * for every i (two rows per pass), each block updated as it is computed. */
static inline __attribute__((always_inline)) void weight_grad_block(int nv, int batch, int in, int a_stride,
                                                                    const float *a, const float *delta,
                                                                    int outp, long k0, Step *st)
{
    v8 sq = splat(0.0f), sq2 = splat(0.0f);
    int i = 0;
    for (; i + 2 <= in; i += 2) {
        v8 acc[MAXV], acc2[MAXV];
        for (int q = 0; q < nv; q++)
            acc[q] = acc2[q] = splat(0.0f);
        for (int b = 0; b < batch; b++) {
            v8 s = splat(a[b * a_stride + i]), s2 = splat(a[b * a_stride + i + 1]);
            for (int q = 0; q < nv; q++) {
                v8 d = load(delta + b * outp + 8 * q);
                acc[q] += s * d;
                acc2[q] += s2 * d;
            }
        }
        for (int q = 0; q < nv; q++) {
            sq += update(st, k0 + (long)i * outp + 8 * q, acc[q]);
            sq2 += update(st, k0 + (long)(i + 1) * outp + 8 * q, acc2[q]);
        }
    }
    for (; i < in; i++) {
        v8 acc[MAXV];
        for (int q = 0; q < nv; q++)
            acc[q] = splat(0.0f);
        for (int b = 0; b < batch; b++) {
            v8 s = splat(a[b * a_stride + i]);
            for (int q = 0; q < nv; q++)
                acc[q] += s * load(delta + b * outp + 8 * q);
        }
        for (int q = 0; q < nv; q++)
            sq += update(st, k0 + (long)i * outp + 8 * q, acc[q]);
    }
    st->sq += sq + sq2;
}

/* w_rows[o, i] = wt[i, o] for o < outp, i < n_i (both multiples of 8): 8x8 blocks in
 * registers where the compiler has __builtin_shufflevector (GCC 12+, Clang), else scalar. */
#if defined(__has_builtin)
#if __has_builtin(__builtin_shufflevector)
#define HAVE_SHUFFLE 1
#endif
#endif
static void transpose(int n_i, int outp, const float *wt, float *w_rows)
{
#ifdef HAVE_SHUFFLE
#define LO(a, b) __builtin_shufflevector(a, b, 0, 8, 1, 9, 4, 12, 5, 13)
#define HI(a, b) __builtin_shufflevector(a, b, 2, 10, 3, 11, 6, 14, 7, 15)
#define PAIR_LO(a, b) __builtin_shufflevector(a, b, 0, 1, 8, 9, 4, 5, 12, 13)
#define PAIR_HI(a, b) __builtin_shufflevector(a, b, 2, 3, 10, 11, 6, 7, 14, 15)
#define HALF_LO(a, b) __builtin_shufflevector(a, b, 0, 1, 2, 3, 8, 9, 10, 11)
#define HALF_HI(a, b) __builtin_shufflevector(a, b, 4, 5, 6, 7, 12, 13, 14, 15)
    for (int i0 = 0; i0 < n_i; i0 += 8) {
        for (int o0 = 0; o0 < outp; o0 += 8) {
            v8 r[8], t[8], u[8];
            for (int k = 0; k < 8; k++)
                r[k] = load(wt + (i0 + k) * outp + o0);
            for (int k = 0; k < 8; k += 2) {
                t[k] = LO(r[k], r[k + 1]);
                t[k + 1] = HI(r[k], r[k + 1]);
            }
            for (int k = 0; k < 8; k += 4) {
                u[k] = PAIR_LO(t[k], t[k + 2]);
                u[k + 1] = PAIR_HI(t[k], t[k + 2]);
                u[k + 2] = PAIR_LO(t[k + 1], t[k + 3]);
                u[k + 3] = PAIR_HI(t[k + 1], t[k + 3]);
            }
            for (int k = 0; k < 4; k++) {
                store(w_rows + (o0 + k) * n_i + i0, HALF_LO(u[k], u[k + 4]));
                store(w_rows + (o0 + k + 4) * n_i + i0, HALF_HI(u[k], u[k + 4]));
            }
        }
    }
#else
    for (int o = 0; o < outp; o++)
        for (int i = 0; i < n_i; i++)
            w_rows[o * n_i + i] = wt[i * outp + o];
#endif
}

#define DISPATCH(call)                                                                          \
    for (int j0 = 0; j0 < outp; j0 += 8 * MAXV) {                                               \
        int nv = (outp - j0) / 8 < MAXV ? (outp - j0) / 8 : MAXV;                              \
        switch (nv) {                                                                           \
        case 6: { const int n = 6; call; } break;                                               \
        case 5: { const int n = 5; call; } break;                                               \
        case 4: { const int n = 4; call; } break;                                               \
        case 3: { const int n = 3; call; } break;                                               \
        case 2: { const int n = 2; call; } break;                                               \
        default: { const int n = 1; call; } break;                                              \
        }                                                                                       \
    }

static void forward(int batch, int in, int a_stride, const float *a, const float *wt, int outp,
                    const float *bias, float *out, int act)
{
    DISPATCH(forward_block(n, batch, in, a_stride, a, wt + j0, outp, bias + j0, out + j0, act))
}

static void weight_grad(int batch, int in, int a_stride, const float *a, const float *delta, int outp,
                        long k0, Step *st)
{
    DISPATCH(weight_grad_block(n, batch, in, a_stride, a, delta + j0, outp, k0 + j0, st))
}

/* Narrow layers, W [n_o, in] row-major (in a multiple of 8), activations [batch, 8]. */

/* out[b, o] = act(bias[o] + a[b, :] . W[o, :]) for o < n_o; out[b, o] = 0 for n_o <= o < 8. */
static void narrow_forward(int batch, int in, const float *a, const float *w, int n_o,
                           const float *bias, float *out, int act)
{
    for (int b = 0; b < batch; b++) {
        for (int o = 0; o < 8; o++) {
            float value = 0.0f;
            if (o < n_o) {
                v8 acc = splat(0.0f), acc2 = splat(0.0f);
                int q = 0;
                for (; q + 16 <= in; q += 16) {
                    acc += load(a + b * in + q) * load(w + o * in + q);
                    acc2 += load(a + b * in + q + 8) * load(w + o * in + q + 8);
                }
                for (; q < in; q += 8)
                    acc += load(a + b * in + q) * load(w + o * in + q);
                value = hsum(acc + acc2) + bias[o];
                if (act && value <= 0.0f) /* NaN stays NaN, as torch.relu */
                    value = 0.0f;
            }
            out[b * 8 + o] = value;
        }
    }
}

/* The gradient of W[o, :] (flat offset k0 + o in), sum_b delta[b, o] a[b, :], for o < n_o,
 * each block updated as it is computed; then the bias's, sum_b delta[b, :] (offset k_bias), or
 * with k_bias < 0 none (no bias: its padded zeros stay). */
static void narrow_weight_grad(int batch, int in, const float *a, const float *delta, int n_o, long k0,
                               Step *st)
{
    v8 sq = splat(0.0f);
    for (int o = 0; o < n_o; o++) {
        for (int q0 = 0; q0 < in; q0 += 8 * MAXV) {
            const int nv = (in - q0) / 8 < MAXV ? (in - q0) / 8 : MAXV;
            v8 acc[MAXV];
            for (int q = 0; q < nv; q++)
                acc[q] = splat(0.0f);
            for (int b = 0; b < batch; b++) {
                v8 d = splat(delta[b * 8 + o]);
                for (int q = 0; q < nv; q++)
                    acc[q] += d * load(a + b * in + q0 + 8 * q);
            }
            for (int q = 0; q < nv; q++)
                sq += update(st, k0 + (long)o * in + q0 + 8 * q, acc[q]);
        }
    }
    st->sq += sq;
}

/* The bias gradient sum_b delta[b, :] over outp entries (flat offset k0), updated. */
static void bias_grad(int batch, const float *delta, int outp, long k0, Step *st)
{
    v8 sq = splat(0.0f);
    for (int o0 = 0; o0 < outp; o0 += 8 * MAXV) {
        const int nv = (outp - o0) / 8 < MAXV ? (outp - o0) / 8 : MAXV;
        v8 acc[MAXV];
        for (int q = 0; q < nv; q++)
            acc[q] = splat(0.0f);
        for (int b = 0; b < batch; b++)
            for (int q = 0; q < nv; q++)
                acc[q] += load(delta + b * outp + o0 + 8 * q);
        for (int q = 0; q < nv; q++)
            sq += update(st, k0 + o0 + 8 * q, acc[q]);
    }
    st->sq += sq;
}

/* delta_prev[b, :] = sum_o delta[b, o] W[o, :]. */
static void narrow_input_grad(int batch, int in, const float *delta, const float *w, int n_o,
                              float *delta_prev)
{
    for (int b = 0; b < batch; b++) {
        for (int q = 0; q < in; q += 8) {
            v8 acc = splat(0.0f);
            for (int o = 0; o < n_o; o++)
                acc += splat(delta[b * 8 + o]) * load(w + o * in + q);
            store(delta_prev + b * in + q, acc);
        }
    }
}

/* Whether layer (in, outp) takes the narrow layout. */
static inline int narrow(int in, int outp) { return outp == 8 && in % 8 == 0; }

/* Floats of layer (in, out, outp) in the flat padded θ: weight then bias. */
static inline long layer_size(int in, int out, int outp)
{
    return (narrow(in, outp) ? (long)out * in : (long)in * outp) + outp;
}

/* n_layers linear layers, true widths in_0 = dims[0], out_l = dims[l + 1]; relu_after[l]
 * for l < n_layers - 1. w_off[l], b_off[l] (or -1): where W_l [out, in] and b_l [out] sit in
 * the flat θ of n_params. Rollout r (of rollouts, numbered from r0) starts from
 * theta0[(r0 + r) / repeat] ([I, n_params]: each θ0 on `repeat` tasks, θ0-major).
 * x: [R, S, B, in_0], y: [R, S, B, out_L] with S = K + 1 batches (one per step) or
 * S = 1 (the same batch every step). hyper: lr, then beta (momentum) or beta1,
 * beta2, eps (adam). scratch: trajviz_birth_scratch(...) floats. n_layers <= 16. Returns 0. */
long trajviz_birth_scratch(int n_layers, const int *dims, int batch)
{
    long params = 0, acts = 0, inp = dims[0], widest = dims[0];
    for (int l = 0; l < n_layers; l++) {
        long outp = (dims[l + 1] + 7) / 8 * 8;
        params += layer_size(inp, dims[l + 1], outp);
        acts += batch * outp;
        inp = outp;
        widest = outp > widest ? outp : widest;
    }
    return 3 * params + acts + 2 * batch * widest + widest * widest + widest;
}

/* The arguments, one struct (trajviz/kernels/native.py's BirthArgs, checked there). Rollouts
 * first .. first + count - 1 of x, y, losses and lengths, which are passed whole. act[l]:
 * 0 identity, 1 ReLU (trajviz/kernels/tables.py); opt: 0 sgd, 1 momentum, 2 adam. */
typedef struct {
    int n_layers;
    const int *dims, *act;
    const long *w_off, *b_off;
    long n_params;
    const float *theta0;
    int repeat;
    long first, count;
    const float *x, *y;
    int n_batches, batch, steps, opt, nesterov;
    const double *hyper;
    float *scratch, *losses, *lengths;
} BirthArgs;

/* Returns 0, or -1 (nothing computed) for an optimiser or activation code it does not know or
 * more than 16 layers: never another optimiser's numbers. */
int trajviz_birth_rollouts(const BirthArgs *args)
{
    const int n_layers = args->n_layers, *dims = args->dims, *relu_after = args->act;
    const long *w_off = args->w_off, *b_off = args->b_off, n_params = args->n_params;
    const int repeat = args->repeat, n_batches = args->n_batches, batch = args->batch;
    const int steps = args->steps, opt = args->opt, nesterov = args->nesterov;
    const double *hyper = args->hyper;
    const long r0 = args->first, rollouts = args->count;
    const float *theta0 = args->theta0;
    if (n_layers < 1 || n_layers > 16 || (opt != SGD && opt != MOMENTUM && opt != ADAM))
        return -1;
    for (int l = 0; l < n_layers; l++)
        if (relu_after[l] != 0 && relu_after[l] != 1)
            return -1;
    const float *x = args->x + r0 * n_batches * batch * dims[0];
    const float *y = args->y + r0 * n_batches * batch * dims[n_layers];
    float *scratch = args->scratch;
    float *losses = args->losses + r0 * (steps + 1), *lengths = args->lengths + r0 * steps;
    int inp[16], outp[16], widest = dims[0];
    long off[17], total = 0; /* layer l's weight at off[l], its bias at off[l + 1] - outp[l] */
    for (int l = 0; l < n_layers; l++) {
        outp[l] = (dims[l + 1] + 7) / 8 * 8;
        inp[l] = l == 0 ? dims[0] : outp[l - 1];
        off[l] = total;
        total += layer_size(inp[l], dims[l + 1], outp[l]);
        widest = outp[l] > widest ? outp[l] : widest;
    }
    off[n_layers] = total;
    float *theta = scratch, *m = theta + total, *v = m + total;
    float *act[17];
    act[1] = v + total;
    for (int l = 1; l < n_layers; l++)
        act[l + 1] = act[l] + batch * outp[l - 1];
    float *delta = act[n_layers] + batch * outp[n_layers - 1], *delta_prev = delta + batch * widest;
    float *w_rows = delta_prev + batch * widest, *zeros = w_rows + widest * widest;
    memset(zeros, 0, sizeof(float) * widest);
    const int n_out = dims[n_layers], d_in = dims[0];
    const float lr = (float)hyper[0];
    const float inv = 1.0f / (float)(batch * n_out);
    Step st = {opt, nesterov, lr, opt == MOMENTUM ? (float)hyper[1] : 0.0f,
               opt == ADAM ? (float)hyper[1] : 0.0f, opt == ADAM ? (float)hyper[2] : 0.0f,
               opt == ADAM ? (float)hyper[3] : 0.0f, 0.0f, 0.0f, theta, m, v, splat(0.0f)};

    for (long r = 0; r < rollouts; r++) {
        const float *t0 = theta0 + (long)((r0 + r) / repeat) * n_params;
        memset(theta, 0, sizeof(float) * total);
        for (int l = 0; l < n_layers; l++) {
            const int rows = narrow(inp[l], outp[l]);
            float *wt = theta + off[l], *bias = theta + off[l + 1] - outp[l];
            for (int o = 0; o < dims[l + 1]; o++) {
                for (int i = 0; i < dims[l]; i++)
                    wt[rows ? o * inp[l] + i : i * outp[l] + o] = t0[w_off[l] + (long)o * dims[l] + i];
                if (b_off[l] >= 0)
                    bias[o] = t0[b_off[l] + o];
            }
        }
        memset(m, 0, sizeof(float) * total);
        memset(v, 0, sizeof(float) * total);
        double beta1_power = 1.0, beta2_power = 1.0; /* β^(s+1) by products, not a pow() per step */
        for (int s = 0; s <= steps; s++) {
            const long at = (r * n_batches + (n_batches > 1 ? s : 0)) * batch;
            const float *xs = x + at * d_in, *ys = y + at * n_out;
            /* forward */
            for (int l = 0; l < n_layers; l++) {
                const float *a = l == 0 ? xs : act[l];
                const float *w = theta + off[l], *bias = theta + off[l + 1] - outp[l];
                const int relu_here = l < n_layers - 1 && relu_after[l];
                if (narrow(inp[l], outp[l]))
                    narrow_forward(batch, inp[l], a, w, dims[l + 1], bias, act[l + 1], relu_here);
                else
                    forward(batch, inp[l], l == 0 ? d_in : outp[l - 1], a, w, outp[l], bias, act[l + 1],
                            relu_here);
            }
            /* loss and the output delta */
            const float *pred = act[n_layers];
            const int po = outp[n_layers - 1];
            float sse = 0.0f;
            for (int b = 0; b < batch; b++) {
                for (int o = 0; o < po; o++) {
                    float d = o < n_out ? pred[b * po + o] - ys[b * n_out + o] : 0.0f;
                    sse += d * d;
                    delta[b * po + o] = 2.0f * d * inv;
                }
            }
            losses[r * (steps + 1) + s] = sse * inv;
            if (s == steps)
                break;
            /* backward, with the update of each block as soon as its gradient is stored */
            if (opt == ADAM) {
                beta1_power *= hyper[1];
                beta2_power *= hyper[2];
                const double bc1 = 1.0 - beta1_power, bc2 = 1.0 - beta2_power;
                st.step_size = (float)(lr / bc1);
                st.inv_root_bc2 = (float)(1.0 / sqrt(bc2));
            }
            st.sq = splat(0.0f);
            for (int l = n_layers - 1; l >= 0; l--) {
                const float *a = l == 0 ? xs : act[l];
                const int a_stride = l == 0 ? d_in : outp[l - 1];
                const float *w = theta + off[l];
                const int rows = narrow(inp[l], outp[l]), n_o = dims[l + 1], n_i = inp[l];
                /* first delta_prev = delta · W with this step's W (wide: W = Wtᵀ, its real rows,
                 * as a forward pass), then ReLU' */
                if (l > 0) {
                    if (rows) {
                        narrow_input_grad(batch, n_i, delta, w, n_o, delta_prev);
                    } else {
                        transpose(n_i, outp[l], w, w_rows);
                        forward(batch, n_o, outp[l], delta, w_rows, n_i, zeros, delta_prev, 0);
                    }
                    if (relu_after[l - 1]) {
                        for (int k = 0; k < batch * n_i; k += 8) {
                            /* autograd's threshold_backward: 0 where the output <= 0 (NaN passes) */
                            i8 dead = load(a + k) <= splat(0.0f);
                            store(delta_prev + k, (v8)((i8)load(delta_prev + k) & ~dead));
                        }
                    }
                }
                if (rows)
                    narrow_weight_grad(batch, n_i, a, delta, n_o, off[l], &st);
                else
                    weight_grad(batch, n_i, a_stride, a, delta, outp[l], off[l], &st);
                if (b_off[l] >= 0) /* a missing bias keeps its zeros */
                    bias_grad(batch, delta, outp[l], off[l + 1] - outp[l], &st);
                float *swap = delta;
                delta = delta_prev;
                delta_prev = swap;
            }
            double len2 = 0.0;
            for (int q = 0; q < 8; q++)
                len2 += st.sq[q];
            lengths[r * steps + s] = (float)sqrt(len2);
        }
    }
    return 0;
}
