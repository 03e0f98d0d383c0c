/* exp(z) - 1 for z <= 0 in straight-line arithmetic, so that compilers
 * vectorise the activation loops that call it (glibc's expm1 is a scalar call
 * the loop cannot be vectorised around: SELU's forward cost 1.5x ReLU's).
 *
 * z = n ln2 + r with n = round(z / ln2) and |r| <= ln2 / 2 (Cody and Waite's
 * two-part ln2, so r is exact), expm1(r) by its Taylor polynomial (to r^13 in
 * double, r^7 in float: truncation below half an ulp), then
 * expm1(z) = 2^n expm1(r) + (2^n - 1), 2^n built from its exponent bits.
 * The rounding to n adds and subtracts 1.5 * 2^52 (2^23 in float): exact
 * under the default rounding mode, with no call to rint. Inputs below -40
 * (-20 in float), where expm1 is -1 to the last bit, are clamped; positive
 * inputs are treated as 0 (callers take the other branch there).
 * Error: within 2 ulp of the correctly rounded value.
 */
#ifndef FASTFIT_MATH_H
#define FASTFIT_MATH_H

#include <stdint.h>
#include <string.h>

static inline double ff_expm1_neg(double z) {
    const double inv_ln2 = 1.4426950408889634, shift = 6755399441055744.0;
    const double ln2_hi = 6.93147180369123816490e-01;
    const double ln2_lo = 1.90821492927058770002e-10;
    double n, r, p, two_n;
    int64_t bits;
    z = z < 0.0 ? z : 0.0;
    z = z > -40.0 ? z : -40.0;
    n = (z * inv_ln2 + shift) - shift;
    r = (z - n * ln2_hi) - n * ln2_lo;
    p = 1.0 / 6227020800.0;
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = (p * r) * r + r;
    bits = (int64_t)(1023 + (int32_t)n) << 52;
    memcpy(&two_n, &bits, sizeof two_n);
    return two_n * p + (two_n - 1.0);
}

static inline float ff_expm1_negf(float z) {
    const float inv_ln2 = 1.44269504f, shift = 12582912.0f;
    const float ln2_hi = 6.93145752e-01f, ln2_lo = 1.42860677e-06f;
    float n, r, p, two_n;
    int32_t bits;
    z = z < 0.0f ? z : 0.0f;
    z = z > -20.0f ? z : -20.0f;
    n = (z * inv_ln2 + shift) - shift;
    r = (z - n * ln2_hi) - n * ln2_lo;
    p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = (p * r) * r + r;
    bits = (127 + (int32_t)n) << 23;
    memcpy(&two_n, &bits, sizeof two_n);
    return two_n * p + (two_n - 1.0f);
}

#endif
