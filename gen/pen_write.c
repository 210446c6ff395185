/* NAME.pen + NAME.gt.txt (docs/DATA.md "Pen trajectories"): rc_gen_pen_write.
 *
 * .pen: the line "#pen 1 x y end", then one point per line "x y end" with x and y
 * written with two decimals and '.' whatever the locale (printf's %f follows
 * LC_NUMERIC), end 0 or 1. .gt.txt: the text and a newline. Each file is written to
 * NAME.*.tmp and renamed, so a file of that name is never half-written. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fileio.h"
#include "recur.h"

/* v rounded to hundredths as "[-]I.FF" into buf (at least 32 bytes); -1 when v is not
 * finite or too large to round exactly in a double. */
static int fmt_hundredths(double v, char *buf, size_t len)
{
    if (!isfinite(v) || fabs(v) >= 1e13) return -1;
    long long q = llround(v * 100.0);
    unsigned long long a = q < 0 ? (unsigned long long)(-q) : (unsigned long long)q;
    snprintf(buf, len, "%s%llu.%02llu", q < 0 ? "-" : "", a / 100, a % 100);
    return 0;
}

/* Writes len bytes to path through path.tmp and a rename. RC_OK or RC_ERR_IO. */
static rc_status write_file(const char *path, const char *data, size_t len, char *err, size_t errlen)
{
    size_t pl = strlen(path);
    char *tmp = malloc(pl + 5);
    if (!tmp) {
        file_fail(err, errlen, path, "out of memory");
        return RC_ERR_NOMEM;
    }
    snprintf(tmp, pl + 5, "%s.tmp", path);
    char eb[128];
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        file_fail(err, errlen, tmp, "cannot create: %s", file_errstr(errno, eb, sizeof eb));
        free(tmp);
        return RC_ERR_IO;
    }
    int bad = fwrite(data, 1, len, f) != len;
    int e = errno;
    if (fclose(f) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    if (!bad && rename(tmp, path) != 0) {
        file_fail(err, errlen, path, "cannot rename %s to it: %s", tmp, file_errstr(errno, eb, sizeof eb));
        remove(tmp);
        free(tmp);
        return RC_ERR_IO;
    }
    if (bad) {
        file_fail(err, errlen, tmp, "cannot write: %s", file_errstr(e, eb, sizeof eb));
        remove(tmp);
    }
    free(tmp);
    return bad ? RC_ERR_IO : RC_OK;
}

rc_status rc_gen_pen_write(const char *base, const rc_pen_traj *t, const char *text, const char *comment, char *err,
                           size_t errlen)
{
    if (!base || !*base || !t || !text) {
        file_fail(err, errlen, NULL, "rc_gen_pen_write: %s", !base || !*base ? "no file name" : !t ? "no trajectory"
                                                                                                 : "no text");
        return RC_ERR_ARG;
    }
    size_t bl = strlen(base);
    char *path = malloc(bl + 8);
    if (!path) {
        file_fail(err, errlen, base, "out of memory");
        return RC_ERR_NOMEM;
    }
    snprintf(path, bl + 8, "%s.pen", base);
    rc_status rc = RC_OK;
    if (t->n == 0 || !t->pts) {
        file_fail(err, errlen, path, "an empty trajectory (no points)");
        rc = RC_ERR_ARG;
    } else if (!*text || strpbrk(text, "\r\n")) {
        file_fail(err, errlen, path, "the transcript is %s", *text ? "more than one line" : "empty");
        rc = RC_ERR_ARG;
    } else if (comment && strpbrk(comment, "\r\n")) {
        file_fail(err, errlen, path, "the comment is more than one line");
        rc = RC_ERR_ARG;
    }
    /* each point takes at most 2 * 17 + 4 characters */
    size_t cl = comment ? strlen(comment) + 4 : 0;
    size_t cap = t->n <= (SIZE_MAX - 64 - cl) / 40 ? 64 + cl + 40 * t->n : 0, n = 0;
    char *buf = rc == RC_OK && cap ? malloc(cap) : NULL;
    if (rc == RC_OK && !buf) {
        file_fail(err, errlen, path, "out of memory for %zu points", t->n);
        rc = RC_ERR_NOMEM;
    }
    if (rc == RC_OK) n = (size_t)snprintf(buf, cap, "#pen 1 x y end\n");
    if (rc == RC_OK && comment) n += (size_t)snprintf(buf + n, cap - n, "# %s\n", comment);
    for (size_t i = 0; rc == RC_OK && i < t->n; i++) {
        char x[32], y[32];
        if (fmt_hundredths(t->pts[i].x, x, sizeof x) || fmt_hundredths(t->pts[i].y, y, sizeof y)) {
            file_fail(err, errlen, path, "point %zu: coordinate (%g, %g) is not finite or too large", i + 1,
                      (double)t->pts[i].x, (double)t->pts[i].y);
            rc = RC_ERR_ARG;
            break;
        }
        n += (size_t)snprintf(buf + n, cap - n, "%s %s %d\n", x, y, t->pts[i].end ? 1 : 0);
    }
    if (rc == RC_OK) rc = write_file(path, buf, n, err, errlen);
    free(buf);
    if (rc == RC_OK) {
        snprintf(path, bl + 8, "%s.gt.txt", base);
        size_t tl = strlen(text);
        char *gt = malloc(tl + 1);
        if (!gt) {
            file_fail(err, errlen, path, "out of memory");
            rc = RC_ERR_NOMEM;
        } else {
            memcpy(gt, text, tl);
            gt[tl] = '\n';
            rc = write_file(path, gt, tl + 1, err, errlen);
            free(gt);
        }
    }
    free(path);
    return rc;
}
