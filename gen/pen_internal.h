/* Internal: shared by the pen-trajectory files of gen/. */
#ifndef RC_GEN_PEN_INTERNAL_H
#define RC_GEN_PEN_INTERNAL_H

#include <stddef.h>
#include "recur.h"

/* 0 when every range of the style is sound, else -1 with a message naming the field. */
int pen_style_check(const rc_pen_style *s, char *err, size_t errlen);

#endif
