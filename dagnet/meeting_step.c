/*
 * One pass over a dense float32 block W (m rows, n columns, row-major) that
 * both takes the block's share of the Path-SGD alpha / beta passes from the
 * weights as they are and then applies the path-scaled step to them:
 *
 *     f[j] = sum_i |W[j,i]|^p fwd[i]          (max over i for p = inf)
 *     b[i] = sum_j |W[j,i]|^p bwd[j]          (max over j for p = inf)
 *     W[j,i] <- W[j,i] + G[j,i] * (inv_rb[j] * inv_ra[i]) * value
 *
 * f and b come from W before the step. Built by dagnet/native.py and run on
 * the OpenMP threads torch uses, one band of rows per thread.
 *
 * kind selects p: 1 (|w|), 2 (w * w) or 0 (p = inf, max-products).
 * Products are taken in float32 when a row's |w| lies in [lo, hi], a range
 * chosen by the caller so that |w|^p and the sums neither overflow nor
 * underflow there; rows outside it take the same products in float64. Column
 * sums are gathered in float32 over ROWS_PER_FLUSH rows and then added into
 * float64, which keeps their rounding error near that of a row sum.
 *
 * Scratch, one slice of n entries per thread: col64 (float64, zeroed by the
 * caller; on return slice t holds thread t's share of b) and col32 (float32,
 * any contents).
 */
#include <math.h>
#include <omp.h>
#include <stdint.h>

enum { ROWS_PER_FLUSH = 32 };

static inline double power_of(double x, int kind)
{
    return kind == 2 ? x * x : fabs(x);
}

static inline float power_of_f(float x, int kind)
{
    return kind == 2 ? x * x : fabsf(x);
}

/* A max that keeps a NaN, as torch's amax does. */
static inline double max_nan(double a, double b)
{
    return (a > b || a != a) ? a : b;
}

/*
 * The range of a row: its largest |w|, its smallest nonzero |w| and a probe,
 * the sum of w * 0, which is NaN exactly when the row holds a NaN or an inf.
 */
typedef struct {
    float top, low, probe;
} Range;

static int in_range(Range r, float lo, float hi)
{
    return r.probe == 0.0f && r.top <= hi && r.low >= lo;
}

static Range row_range(const float *restrict row, int64_t n)
{
    float top = 0.0f, low = INFINITY, probe = 0.0f;
#pragma omp simd reduction(max : top) reduction(min : low) reduction(+ : probe)
    for (int64_t i = 0; i < n; ++i) {
        float x = fabsf(row[i]);
        top = x > top ? x : top;
        low = (x > 0.0f && x < low) ? x : low;
        probe += row[i] * 0.0f;
    }
    return (Range){top, low, probe};
}

/* Products of one row in float64, gathered into col64; returns f for the row. */
static double row_products_f64(const float *restrict row, int64_t n, const float *restrict fwd,
                               double bj, double *restrict col64, int kind)
{
    double acc = 0.0;
    for (int64_t i = 0; i < n; ++i) {
        double q = power_of((double)row[i], kind);
        if (kind == 0) {
            acc = max_nan(q * fwd[i], acc);
            col64[i] = max_nan(q * bj, col64[i]);
        } else {
            acc += q * fwd[i];
            col64[i] += q * bj;
        }
    }
    return acc;
}

static void step_row(float *restrict row, const float *restrict grow, int64_t n,
                     float rb, const float *restrict inv_ra, float value)
{
#pragma omp simd
    for (int64_t i = 0; i < n; ++i)
        row[i] = row[i] + grow[i] * (rb * inv_ra[i]) * value;
}

/*
 * Products (kind 1 or 2: sums) of one row in float32 and its step, while the
 * range of the next row is taken as it streams in. No probe is needed here:
 * a NaN passes through the sums as it should, and an inf exceeds hi.
 */
static float row_sums_and_step(float *restrict row, const float *restrict grow,
                               const float *restrict next, int64_t n,
                               const float *restrict fwd, float bj, float rb,
                               const float *restrict inv_ra, float value, int kind,
                               float *restrict col32, Range *next_range)
{
    float acc = 0.0f, top = 0.0f, low = INFINITY;
#pragma omp simd reduction(+ : acc) reduction(max : top) reduction(min : low)
    for (int64_t i = 0; i < n; ++i) {
        float x = row[i];
        float q = power_of_f(x, kind);
        acc += q * fwd[i];
        col32[i] += q * bj;
        row[i] = x + grow[i] * (rb * inv_ra[i]) * value;
        float y = fabsf(next[i]);
        top = y > top ? y : top;
        low = (y > 0.0f && y < low) ? y : low;
    }
    *next_range = (Range){top, low, 0.0f};
    return acc;
}

/* The same for kind 0 (p = inf): max-products, which would skip a NaN. */
static float row_maxima_and_step(float *restrict row, const float *restrict grow,
                                 const float *restrict next, int64_t n,
                                 const float *restrict fwd, float bj, float rb,
                                 const float *restrict inv_ra, float value,
                                 float *restrict col32, Range *next_range)
{
    float acc = 0.0f, top = 0.0f, low = INFINITY, probe = 0.0f;
#pragma omp simd reduction(max : acc, top) reduction(min : low) reduction(+ : probe)
    for (int64_t i = 0; i < n; ++i) {
        float x = row[i];
        float q = fabsf(x);
        float a = q * fwd[i], c = q * bj;
        acc = a > acc ? a : acc;
        col32[i] = c > col32[i] ? c : col32[i];
        row[i] = x + grow[i] * (rb * inv_ra[i]) * value;
        float y = fabsf(next[i]);
        top = y > top ? y : top;
        low = (y > 0.0f && y < low) ? y : low;
        probe += next[i] * 0.0f;
    }
    *next_range = (Range){top, low, probe};
    return acc;
}

/*
 * Rows r0 .. r1 - 1. Each row's range is known before its products are
 * taken: the loop over row j also takes the range of row j + 1.
 */
static void band(float *restrict w, const float *restrict g, int64_t r0, int64_t r1,
                 int64_t n, const float *restrict fwd, const float *restrict bwd,
                 const float *restrict inv_rb, const float *restrict inv_ra, float value,
                 float lo, float hi, int kind, double *restrict f, double *restrict col64,
                 float *restrict col32)
{
    if (r0 >= r1)
        return;
    Range range = row_range(w + r0 * n, n);
    for (int64_t start = r0; start < r1; start += ROWS_PER_FLUSH) {
        int64_t stop = start + ROWS_PER_FLUSH < r1 ? start + ROWS_PER_FLUSH : r1;
        for (int64_t i = 0; i < n; ++i)
            col32[i] = 0.0f;
        for (int64_t j = start; j < stop; ++j) {
            float *restrict row = w + j * n;
            const float *restrict grow = g + j * n;
            /* the last row checks its gradient row instead: never used, never written */
            const float *restrict next = j + 1 < r1 ? row + n : grow;
            if (!in_range(range, lo, hi)) {
                f[j] = row_products_f64(row, n, fwd, bwd[j], col64, kind);
                step_row(row, grow, n, inv_rb[j], inv_ra, value);
                range = row_range(next, n);
            } else if (kind == 0) {
                f[j] = row_maxima_and_step(row, grow, next, n, fwd, bwd[j], inv_rb[j], inv_ra,
                                           value, col32, &range);
            } else {
                f[j] = row_sums_and_step(row, grow, next, n, fwd, bwd[j], inv_rb[j], inv_ra,
                                         value, kind, col32, &range);
            }
        }
        for (int64_t i = 0; i < n; ++i)
            col64[i] = kind == 0 ? max_nan(col64[i], col32[i]) : col64[i] + col32[i];
    }
}

void dagnet_meeting_step(float *w, const float *g, int64_t m, int64_t n, const float *fwd,
                         const float *bwd, const float *inv_rb, const float *inv_ra,
                         float value, int kind, float lo, float hi, int threads, double *f,
                         double *col64, float *col32)
{
#pragma omp parallel num_threads(threads)
    {
        int t = omp_get_thread_num(), count = omp_get_num_threads();
        int64_t r0 = m * t / count, r1 = m * (t + 1) / count;
        double *mine64 = col64 + (int64_t)t * n;
        float *mine32 = col32 + (int64_t)t * n;
        if (kind == 2)
            band(w, g, r0, r1, n, fwd, bwd, inv_rb, inv_ra, value, lo, hi, 2, f, mine64, mine32);
        else if (kind == 1)
            band(w, g, r0, r1, n, fwd, bwd, inv_rb, inv_ra, value, lo, hi, 1, f, mine64, mine32);
        else
            band(w, g, r0, r1, n, fwd, bwd, inv_rb, inv_ra, value, lo, hi, 0, f, mine64, mine32);
    }
}
