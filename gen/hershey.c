/* The Hershey fonts in James Hurt's .jhf format, as Debian's hershey-fonts-data ships
 * them (/usr/share/hershey-fonts/NAME.jhf).
 *
 * One glyph per line: columns 1-5 a glyph number (not used: many files write 12345 for
 * every glyph), columns 6-8 the number of vertex pairs N (right-aligned, the bounds
 * included), then N pairs of characters, each character a coordinate offset from 'R'
 * ('R' = 0, 'S' = 1, 'Q' = -1): first the glyph's left and right bounds, then the
 * vertices x, y (y downwards); the pair " R" lifts the pen. Line k (from 0) is the
 * glyph of character 32 + k, so the 96 lines of a Latin face are ASCII 32..127. The
 * original distribution wraps lines longer than 72 characters; a short line is
 * therefore continued by the next ones (Debian's files are not wrapped). */
#include "hershey.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fileio.h"
#include "gen_io.h"

/* The connected script faces: their letters join within a word. */
static const char *const CONNECTED[] = { "scripts", "scriptc", "cursive" };

const char *rc_hershey_dir(void)
{
    const char *d = getenv("RECUR_HERSHEY_DIR");
    return d && *d ? d : "/usr/share/hershey-fonts";
}

void rc_hershey_free(rc_hershey_font *f)
{
    if (!f) return;
    for (int i = 0; i < f->n; i++) free(f->g[i].xy);
    free(f->g);
    free(f->name);
    free(f);
}

const char *rc_hershey_name(const rc_hershey_font *f) { return f ? f->name : ""; }
int rc_hershey_connected(const rc_hershey_font *f) { return f ? f->connected : 0; }

const hershey_glyph *hershey_get(const rc_hershey_font *f, int c)
{
    if (!f || c < HERSHEY_FIRST || c - HERSHEY_FIRST >= f->n) return NULL;
    const hershey_glyph *g = &f->g[c - HERSHEY_FIRST];
    return g->drawn || c == ' ' ? g : NULL;
}

int rc_hershey_has(const rc_hershey_font *f, int c) { return hershey_get(f, c) != NULL; }

int rc_hershey_glyph(const rc_hershey_font *f, int c, int *left, int *right, const int8_t **xy)
{
    const hershey_glyph *g = hershey_get(f, c);
    if (!g) return -1;
    if (left) *left = g->left;
    if (right) *right = g->right;
    if (xy) *xy = g->xy + 2;   /* after the bounds */
    return g->n - 1;
}

/* "path:line: message" (col > 0: "path:line:col: message") into err. */
static void line_fail(char *err, size_t errlen, const char *path, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static void line_fail(char *err, size_t errlen, const char *path, int line, int col, const char *fmt, ...)
{
    if (!err || !errlen) return;
    int k = col > 0 ? snprintf(err, errlen, "%s:%d:%d: ", path, line, col) : snprintf(err, errlen, "%s:%d: ", path, line);
    if (k < 0 || (size_t)k >= errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + k, errlen - (size_t)k, fmt, ap);
    va_end(ap);
}

/* A coordinate character's value, or -1000 when it is not one. */
static int coord(unsigned char c) { return c > ' ' && c <= '~' ? (int)c - 'R' : -1000; }

/* Parses one glyph from s[0, len) (continuation lines already joined). 0, or -1 with a
 * message naming path and line. */
static int parse_glyph(hershey_glyph *g, const char *s, size_t len, const char *path, int line, char *err,
                       size_t errlen)
{
    if (len < 10) {
        line_fail(err, errlen, path, line, 0, "%zu characters; a glyph line has at least 10 (number, count, bounds)",
                  len);
        return -1;
    }
    int count = 0, digits = 0;
    for (int i = 5; i < 8; i++) {
        if (s[i] == ' ' && !digits) continue;
        if (s[i] < '0' || s[i] > '9') {
            line_fail(err, errlen, path, line, i + 1, "the vertex count (columns 6-8) is not a number");
            return -1;
        }
        count = count * 10 + (s[i] - '0');
        digits++;
    }
    if (count < 1) {
        line_fail(err, errlen, path, line, 0, "vertex count %d (at least 1: the bounds)", count);
        return -1;
    }
    size_t need = 8 + 2 * (size_t)count;
    if (len != need) {
        line_fail(err, errlen, path, line, 0, "%d vertex pairs need %zu characters, the glyph has %zu", count, need,
                  len);
        return -1;
    }
    g->n = count;
    g->xy = malloc(2 * (size_t)count);
    if (!g->xy) {
        file_fail(err, errlen, path, "out of memory");
        return -1;
    }
    for (int k = 0; k < count; k++) {
        unsigned char a = (unsigned char)s[8 + 2 * k], b = (unsigned char)s[9 + 2 * k];
        if (k > 0 && a == ' ' && b == 'R') {
            g->xy[2 * k] = RC_HERSHEY_PEN_UP;
            g->xy[2 * k + 1] = 0;
            continue;
        }
        int x = coord(a), y = coord(b);
        if (x == -1000 || y == -1000) {
            unsigned char bad = x == -1000 ? a : b;
            line_fail(err, errlen, path, line, 9 + 2 * k + (x == -1000 ? 0 : 1), "byte 0x%02x is not a coordinate (one "
                      "of '!'..'~', or \" R\" for a pen lift)", bad);
            return -1;
        }
        g->xy[2 * k] = (int8_t)x;
        g->xy[2 * k + 1] = (int8_t)y;
        if (k == 0) {
            g->left = x;
            g->right = y;
        } else g->drawn = 1;
    }
    if (g->right < g->left) {
        line_fail(err, errlen, path, line, 0, "right bound %d left of the left bound %d", g->right, g->left);
        return -1;
    }
    return 0;
}

/* The face's name: the file name without its folder and ".jhf". */
static char *face_name(const char *path)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    size_t l = strlen(b);
    if (l > 4 && !strcmp(b + l - 4, ".jhf")) l -= 4;
    char *s = malloc(l + 1);
    if (s) {
        memcpy(s, b, l);
        s[l] = 0;
    }
    return s;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

rc_hershey_font *rc_hershey_load(const char *face, const char *dir, char *err, size_t errlen)
{
    if (!face || !*face) {
        file_fail(err, errlen, NULL, "no Hershey face given");
        return NULL;
    }
    char *path;
    if (strchr(face, '/') || ends_with(face, ".jhf")) path = strdup(face);
    else {
        if (!dir || !*dir) dir = rc_hershey_dir();
        size_t l = strlen(dir) + strlen(face) + 6;
        path = malloc(l);
        if (path) snprintf(path, l, "%s/%s.jhf", dir, face);
    }
    size_t len = 0;
    char *text = path ? gen_read_file(path, &len, " (the Hershey fonts: apt-get install hershey-fonts-data, or set "
                                      "RECUR_HERSHEY_DIR to the folder holding the .jhf files)", err, errlen) : NULL;
    rc_hershey_font *f = text ? calloc(1, sizeof *f) : NULL;
    if (!path) file_fail(err, errlen, face, "out of memory");
    else if (text && !f) file_fail(err, errlen, path, "out of memory");
    if (!f) {
        free(text);
        free(path);
        return NULL;
    }
    f->name = face_name(path);
    int ok = f->name != NULL, cap = 0;
    if (!ok) file_fail(err, errlen, path, "out of memory");
    /* lines; a short one is continued by the next ones (the original 72-column wrap) */
    char *p = text, *end = text + len;
    int line = 0;
    while (ok && p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *e = nl ? nl : end;
        line++;
        int first = line;
        size_t l = (size_t)(e - p);
        if (l && p[l - 1] == '\r') l--;
        if (l == 0) {
            if (!nl) break;   /* the last line's end */
            line_fail(err, errlen, path, line, 0, "an empty line (every line is a glyph)");
            ok = 0;
            break;
        }
        /* join continuation lines while the count asks for more */
        char *buf = NULL;
        size_t bl = l;
        const char *s = p;
        if (l >= 8) {
            int count = atoi((char[4]){ p[5], p[6], p[7], 0 });
            size_t need = count > 0 ? 8 + 2 * (size_t)count : 0;
            while (bl < need && nl && nl + 1 < end) {
                char *q = nl + 1, *nl2 = memchr(q, '\n', (size_t)(end - q));
                char *e2 = nl2 ? nl2 : end;
                size_t l2 = (size_t)(e2 - q);
                if (l2 && q[l2 - 1] == '\r') l2--;
                if (l2 == 0 || bl + l2 > need) break;
                char *nb = realloc(buf, bl + l2);
                if (!nb) {
                    ok = 0;
                    break;
                }
                if (!buf) memcpy(nb, p, l);
                buf = nb;
                memcpy(buf + bl, q, l2);
                bl += l2;
                s = buf;
                nl = nl2;
                line++;
            }
            if (!ok) {
                free(buf);
                file_fail(err, errlen, path, "out of memory");
                break;
            }
        }
        if (f->n == cap) {
            int nc = cap ? 2 * cap : 128;
            hershey_glyph *ng = realloc(f->g, (size_t)nc * sizeof *ng);
            if (!ng) {
                free(buf);
                file_fail(err, errlen, path, "out of memory");
                ok = 0;
                break;
            }
            f->g = ng;
            cap = nc;
        }
        memset(&f->g[f->n], 0, sizeof f->g[f->n]);
        if (parse_glyph(&f->g[f->n], s, bl, path, first, err, errlen) != 0) ok = 0;
        f->n++;   /* counted even when it failed: rc_hershey_free frees its xy */
        free(buf);
        p = nl ? nl + 1 : end;
    }
    if (ok && f->n == 0) {
        file_fail(err, errlen, path, "no glyphs");
        ok = 0;
    }
    for (size_t i = 0; ok && i < sizeof CONNECTED / sizeof *CONNECTED; i++)
        if (!strcmp(f->name, CONNECTED[i])) f->connected = 1;
    free(text);
    free(path);
    if (!ok) {
        rc_hershey_free(f);
        return NULL;
    }
    return f;
}
