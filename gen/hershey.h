/* Internal: a Hershey face as read from its .jhf file (gen/hershey.c), shared with the
 * pen-trajectory renderer (gen/pen_render.c). */
#ifndef RC_GEN_HERSHEY_H
#define RC_GEN_HERSHEY_H

#include <stdint.h>
#include "recur.h"

/* The first character of a .jhf file: line k holds the glyph of character 32 + k. */
#define HERSHEY_FIRST 32

typedef struct hershey_glyph {
    int left, right;     /* bounds relative to the centre: the advance is right - left */
    int n;               /* vertex pairs, pen lifts included */
    int8_t *xy;          /* [2n] x, y; a pen lift is (RC_HERSHEY_PEN_UP, 0) */
    int drawn;           /* 1 when some vertex is drawn (an empty glyph draws nothing) */
} hershey_glyph;

struct rc_hershey_font {
    char *name;          /* the file name without .jhf */
    int connected;       /* a script face whose letters join */
    int n;               /* glyphs: characters HERSHEY_FIRST .. HERSHEY_FIRST + n - 1 */
    hershey_glyph *g;
};

/* The glyph of character c, or NULL when the face has none (or c is not drawn and is
 * not the space). */
const hershey_glyph *hershey_get(const rc_hershey_font *f, int c);

#endif
