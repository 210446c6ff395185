/* Geometric and photometric degradations of a rendered line: see line_gen.h. The
 * warp is an affine map about the line box's centre (rotation, shear, scales) plus an
 * elastic displacement field (white noise smoothed by a Gaussian, Simard et al. 2003,
 * as ocropus-linegen's distortions), applied by inverse mapping with bilinear sampling
 * so the output has no holes. */
#include "line_gen.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The normalised Gaussian kernel of radius ceil(3 sigma): k[0..2r]. */
static float *gauss_kernel(double sigma, int *radius)
{
    int r = (int)ceil(3 * sigma);
    if (r < 1) r = 1;
    float *k = malloc((size_t)(2 * r + 1) * sizeof *k);
    if (!k) return NULL;
    double sum = 0;
    for (int i = -r; i <= r; i++) sum += k[i + r] = (float)exp(-0.5 * i * i / (sigma * sigma));
    for (int i = 0; i <= 2 * r; i++) k[i] = (float)(k[i] / sum);
    *radius = r;
    return k;
}

int blur_gauss(float *v, int w, int h, double sigma)
{
    if (!(sigma > 0)) return 0;
    int r;
    float *k = gauss_kernel(sigma, &r);
    int n = w > h ? w : h;
    float *line = malloc((size_t)n * sizeof *line);
    if (!k || !line) {
        free(k);
        free(line);
        return -1;
    }
    /* rows, then columns; outside the image is 0 (paper, for coverage) */
    for (int y = 0; y < h; y++) {
        float *row = v + (size_t)y * (size_t)w;
        memcpy(line, row, (size_t)w * sizeof *line);
        for (int x = 0; x < w; x++) {
            float acc = 0;
            int lo = x - r < 0 ? -x : -r, hi = x + r >= w ? w - 1 - x : r;
            for (int i = lo; i <= hi; i++) acc += k[i + r] * line[x + i];
            row[x] = acc;
        }
    }
    for (int x = 0; x < w; x++) {
        for (int y = 0; y < h; y++) line[y] = v[(size_t)y * (size_t)w + (size_t)x];
        for (int y = 0; y < h; y++) {
            float acc = 0;
            int lo = y - r < 0 ? -y : -r, hi = y + r >= h ? h - 1 - y : r;
            for (int i = lo; i <= hi; i++) acc += k[i + r] * line[y + i];
            v[(size_t)y * (size_t)w + (size_t)x] = acc;
        }
    }
    free(k);
    free(line);
    return 0;
}

int smooth_noise(float *v, int w, int h, double sigma, double amp, rng_t *r)
{
    size_t n = (size_t)w * (size_t)h;
    for (size_t i = 0; i < n; i++) v[i] = rng_normal(r);
    if (blur_gauss(v, w, h, sigma) != 0) return -1;
    float mx = 0;
    for (size_t i = 0; i < n; i++) mx = fabsf(v[i]) > mx ? fabsf(v[i]) : mx;
    float s = mx > 0 ? (float)(amp / mx) : 0;
    for (size_t i = 0; i < n; i++) v[i] *= s;
    return 0;
}

/* Bilinear sample of c at (x, y); 0 outside. */
static float sample(const canvas *c, double x, double y)
{
    double fx = floor(x), fy = floor(y);
    int x0 = (int)fx, y0 = (int)fy;
    double ax = x - fx, ay = y - fy;
    float v = 0;
    for (int dy = 0; dy < 2; dy++)
        for (int dx = 0; dx < 2; dx++) {
            int xx = x0 + dx, yy = y0 + dy;
            if (xx < 0 || yy < 0 || xx >= c->w || yy >= c->h) continue;
            double wgt = (dx ? ax : 1 - ax) * (dy ? ay : 1 - ay);
            v += (float)wgt * c->v[(size_t)yy * (size_t)c->w + (size_t)xx];
        }
    return v;
}

int warp_line(const canvas *in, const warp_params *p, rng_t *r, canvas *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    double cs = cos(p->rot), sn = sin(p->rot);
    /* M = R K S: scale, then shear (x -= shear * dy: the top leans right), then rotate */
    double m00 = cs * p->sx, m01 = cs * (-p->shear * p->sy) + sn * p->sy;
    double m10 = -sn * p->sx, m11 = -sn * (-p->shear * p->sy) + cs * p->sy;
    double det = m00 * m11 - m01 * m10;
    if (!(fabs(det) > 1e-9)) return gen_fail(err, errlen, "a degenerate warp (scale %g x %g)", p->sx, p->sy);
    double i00 = m11 / det, i01 = -m01 / det, i10 = -m10 / det, i11 = m00 / det;
    double cx = (in->left + in->right) / 2, cy = (in->top + in->bottom) / 2;
    double bx0 = INFINITY, bx1 = -INFINITY, by0 = INFINITY, by1 = -INFINITY;
    for (int k = 0; k < 4; k++) {
        double dx = (k & 1 ? in->right : in->left) - cx, dy = (k & 2 ? in->bottom : in->top) - cy;
        double X = cx + m00 * dx + m01 * dy, Y = cy + m10 * dx + m11 * dy;
        bx0 = fmin(bx0, X), bx1 = fmax(bx1, X), by0 = fmin(by0, Y), by1 = fmax(by1, Y);
    }
    double X0 = floor(bx0 - p->margin_l), X1 = ceil(bx1 + p->margin_r);
    double Y0 = floor(by0 - p->margin_t), Y1 = ceil(by1 + p->margin_b);
    if (!(X1 - X0 >= 1 && Y1 - Y0 >= 1 && (X1 - X0) * (Y1 - Y0) < 1e9))
        return gen_fail(err, errlen, "the warped line is %g x %g pixels", X1 - X0, Y1 - Y0);
    int w = (int)(X1 - X0), h = (int)(Y1 - Y0);
    if (canvas_alloc(out, w, h, err, errlen) != 0) return -1;
    float *ex = NULL, *ey = NULL;
    if (p->elastic_amp > 0) {
        ex = malloc((size_t)w * (size_t)h * sizeof *ex);
        ey = malloc((size_t)w * (size_t)h * sizeof *ey);
        if (!ex || !ey || smooth_noise(ex, w, h, p->elastic_sigma, p->elastic_amp, r) != 0 ||
            smooth_noise(ey, w, h, p->elastic_sigma, p->elastic_amp, r) != 0) {
            free(ex);
            free(ey);
            canvas_free(out);
            return gen_fail(err, errlen, "out of memory for the elastic field of a %d x %d image", w, h);
        }
    }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            size_t i = (size_t)y * (size_t)w + (size_t)x;
            double X = X0 + x - cx, Y = Y0 + y - cy;
            if (ex) X += ex[i], Y += ey[i];
            out->v[i] = sample(in, cx + i00 * X + i01 * Y, cy + i10 * X + i11 * Y);
        }
    free(ex);
    free(ey);
    out->left = bx0 - X0;
    out->right = bx1 - X0;
    out->top = by0 - Y0;
    out->bottom = by1 - Y0;
    return 0;
}
