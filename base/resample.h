/* Internal: resizing gray images (row-major floats, row 0 at the top) with a tent
 * filter whose radius is one input pixel when enlarging (bilinear interpolation) and
 * one output pixel when shrinking (each output averages the inputs it covers, weighted
 * by distance: no aliasing) — PIL's BILINEAR resize. Used to bring line images to a
 * fixed height (the loader) and rendered lines to theirs (the generator). */
#ifndef RC_RESAMPLE_H
#define RC_RESAMPLE_H

#include <stddef.h>

/* The width that keeps a w x h image's aspect ratio at height oh: round(w * oh / h),
 * at least 1. */
double resample_width(int w, int h, int oh);
/* Resizes in[h][w] into out[oh][ow] (all sizes >= 1). 0, or -1 when memory is short
 * (it allocates the filter taps and one intermediate image of oh x w floats). */
int resample_f32(const float *in, int w, int h, float *out, int ow, int oh);

#endif
