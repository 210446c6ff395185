/* Locale-independent number parsing: see numparse.h.
 *
 * The syntax is checked here, so strtod/strtof only ever see a plain decimal number;
 * they run under the "C" locale set for this thread alone (uselocale), so another
 * thread's locale and the process's setlocale are neither read nor changed. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L   /* newlocale, uselocale */
#endif
#include "numparse.h"

#include <locale.h>
#include <stdlib.h>
#include <string.h>

static int digit(char c) { return c >= '0' && c <= '9'; }

/* 1 when s[0, len) is a decimal number as numparse.h describes. */
static int well_formed(const char *s, size_t len)
{
    size_t i = 0, digits = 0;
    if (i < len && (s[i] == '+' || s[i] == '-')) i++;
    while (i < len && digit(s[i])) i++, digits++;
    if (i < len && s[i] == '.') {
        i++;
        while (i < len && digit(s[i])) i++, digits++;
    }
    if (digits == 0) return 0;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-')) i++;
        size_t e = i;
        while (i < len && digit(s[i])) i++;
        if (i == e) return 0;
    }
    return i == len;
}

/* Converts s[0, len) (well formed) with strtod (as_float 0) or strtof under the "C"
 * locale into *d or *f. 0, or -2 when memory is short. */
static int convert(const char *s, size_t len, int as_float, double *d, float *f)
{
    char small[128], *buf = small;
    if (len >= sizeof small && !(buf = malloc(len + 1))) return -2;
    memcpy(buf, s, len);
    buf[len] = 0;
    /* glibc returns its static "C" object here without allocating; elsewhere the
     * object is made and freed per call. */
    locale_t c = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    if (!c) {
        if (buf != small) free(buf);
        return -2;
    }
    locale_t old = uselocale(c);
    if (as_float) *f = strtof(buf, NULL);
    else *d = strtod(buf, NULL);
    uselocale(old);
    freelocale(c);
    if (buf != small) free(buf);
    return 0;
}

int num_parse(const char *s, size_t len, double *v)
{
    if (!s || !well_formed(s, len)) return -1;
    return convert(s, len, 0, v, NULL);
}

int num_parse_float(const char *s, size_t len, float *v)
{
    if (!s || !well_formed(s, len)) return -1;
    return convert(s, len, 1, NULL, v);
}
