/* Internal: lines of text for the pen-trajectory data sets (gen/pen_text.c). */
#ifndef RC_GEN_PEN_TEXT_H
#define RC_GEN_PEN_TEXT_H

#include <stddef.h>
#include "rng.h"

typedef struct pen_lines {
    char **s;            /* [n] NUL-terminated lines */
    size_t n, cap;
} pen_lines;

void pen_lines_free(pen_lines *l);

/* What pen_text_lines read. */
typedef struct pen_text_stats { size_t lines, words, skipped; } pen_text_stats;

/* The lines of a text (a file, or a folder as gen_text_files lists it): its words
 * (runs of bytes other than space, tab, CR, LF, VT, FF) in order, packed into lines by
 * single spaces, each line's length drawn from [min_len, max_len] by r. A word holding
 * a byte c with !ok[c] (every byte >= 128 included) is dropped and ends the line being
 * packed, so lines stay runs of the text; so does a word longer than max_len; a line
 * that cannot reach min_len is dropped. Lines of the text that are exactly "%"
 * (fortune separators) are skipped. 0, or -1 with a message. */
int pen_text_lines(const char *path, const unsigned char ok[128], int min_len, int max_len, rng_t *r, pen_lines *out,
                   pen_text_stats *st, char *err, size_t errlen);

/* Sorts the lines bytewise and drops repeats. */
void pen_lines_unique(pen_lines *l);

#endif
