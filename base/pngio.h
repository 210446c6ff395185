/* Internal: PNG files as 8-bit gray images, through libpng (built with it when meson
 * found libpng: RC_HAVE_PNG; otherwise every function fails with a message saying so).
 *
 * Reading converts every PNG colour type and bit depth to 8-bit gray:
 *   - gray of 1, 2 or 4 bits is scaled to 0..255 (1 bit: 0 and 255);
 *   - 16-bit samples are scaled to 8 bits with rounding (libpng's png_set_scale_16);
 *   - palette images are expanded to their RGB(A) entries;
 *   - RGB becomes luma 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601, as PIL's
 *     convert("L")), rounded, on the stored values (no gamma handling);
 *   - an alpha channel or a tRNS transparent colour is composited over white
 *     (transparent = background: line images are dark ink on light paper).
 * Images are row-major, row 0 at the top.
 *
 * Errors name the file: not a PNG (signature), libpng's own message for a corrupt or
 * truncated file (libpng's longjmp is caught: nothing leaks, nothing is printed),
 * zero width or height, and sizes beyond what the file's bytes can hold (deflate
 * expands at most 1032:1, so a header claiming more pixels than that is truncated or
 * corrupt) or beyond the caller's memory bound. */
#ifndef RC_PNGIO_H
#define RC_PNGIO_H

#include <stddef.h>

/* 1 when recur was built with libpng. */
int png_available(void);
/* The message of a build without libpng ("recur was built without libpng: ..."). */
const char *png_missing_message(void);

/* An open PNG whose header has been read. */
typedef struct png_in png_in;

/* Opens path and reads its header: *w and *h (>= 1), and in *work the bytes the
 * decode will allocate besides the caller's w*h output (rows of up to 4 channels).
 * *r is NULL on failure. 0, or -1 with a message naming the file. */
int png_in_open(png_in **r, const char *path, int *w, int *h, size_t *work, char *err, size_t errlen);
/* Decodes the image as 8-bit gray into px[w*h]. 0, or -1 (a corrupt or truncated
 * file, out of memory) with a message naming the file. Call once. */
int png_in_gray(png_in *r, unsigned char *px, char *err, size_t errlen);
/* Closes the file and frees everything (NULL is fine). */
void png_in_close(png_in *r);

/* Reads a whole PNG as gray: *px a new array of (*w) * (*h) bytes. An image whose
 * decode needs more than max_bytes (w*h plus the work bytes; 0: mem_limit_bytes()) is
 * refused with a message giving its size. 0, or -1 with *px NULL. */
int png_read_gray(const char *path, size_t max_bytes, unsigned char **px, int *w, int *h,
                  char *err, size_t errlen);
/* Writes px[w*h] as an 8-bit gray PNG (no interlace, no time stamp: the same pixels
 * give the same bytes), through path + ".tmp" renamed over path. 0, or -1. */
int png_write_gray(const char *path, const unsigned char *px, int w, int h, char *err, size_t errlen);

#endif
