/* Line images and their transcripts: see data_lines.h. A folder is listed and sorted
 * first; each PNG is decoded to gray (base/pngio.c), resized to the height with the
 * tent filter (base/resample.c) and transposed into frames; transcripts are checked
 * and mapped to alphabet ids. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "data_lines.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include "fileio.h"
#include "memlimit.h"
#include "pngio.h"
#include "resample.h"

/* ---- UTF-8 ---------------------------------------------------------------------------- */

/* The code point at s[0..len): its byte count (1-4), or 0 when the bytes there are
 * not valid UTF-8 (truncated, overlong, a surrogate, beyond U+10FFFF). */
static int utf8_next(const unsigned char *s, size_t len, uint32_t *cp)
{
    if (len == 0) return 0;
    unsigned c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    int n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
    if (n == 0 || (size_t)n > len) return 0;
    uint32_t v = c & (0x7fu >> n);
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3fu);
    }
    static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (v < min[n] || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return 0;
    *cp = v;
    return n;
}

/* "'x' (U+0078)" for messages: the character itself when printable. */
static const char *describe_char(const unsigned char *s, int nb, uint32_t cp, char *buf, size_t len)
{
    if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0)) snprintf(buf, len, "U+%04X", (unsigned)cp);
    else snprintf(buf, len, "'%.*s' (U+%04X)", nb, (const char *)s, (unsigned)cp);
    return buf;
}

/* ---- transcripts ----------------------------------------------------------------------- */

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

int lines_read_transcript(const char *path, char **text, size_t *len, char *err, size_t errlen)
{
    *text = NULL;
    *len = 0;
    char *buf;
    size_t n;
    if (data_read_file(path, &buf, &n, err, errlen) != 0) return -1;
    const unsigned char *b = (const unsigned char *)buf;
    size_t lo = 0, hi = n;
    if (n >= 3 && b[0] == 0xef && b[1] == 0xbb && b[2] == 0xbf) lo = 3;   /* a byte-order mark */
    while (lo < hi && is_space(b[lo])) lo++;
    while (hi > lo && is_space(b[hi - 1])) hi--;
    if (lo == hi) {
        free(buf);
        return data_fail(err, errlen, "%s: empty transcript (only white space)", path);
    }
    size_t col = 1;
    char cb[48];
    for (size_t i = lo; i < hi; col++) {
        uint32_t cp;
        int k = utf8_next(b + i, hi - i, &cp);
        if (k == 0) {
            unsigned bad = b[i];
            free(buf);
            return data_fail(err, errlen, "%s: bad UTF-8 at byte %zu (byte 0x%02x)", path, i + 1, bad);
        }
        if (cp == '\n' || cp == '\r') {
            free(buf);
            return data_fail(err, errlen, "%s: more than one line (a line break at column %zu): a transcript is "
                             "one line", path, col);
        }
        if (cp < 0x20 || cp == 0x7f) {
            describe_char(b + i, k, cp, cb, sizeof cb);
            free(buf);
            return data_fail(err, errlen, "%s: control character %s at column %zu", path, cb, col);
        }
        i += (size_t)k;
    }
    memmove(buf, buf + lo, hi - lo);
    buf[hi - lo] = 0;
    *text = buf;
    *len = hi - lo;
    return 0;
}

int lines_encode(const vocab *a, const char *text, size_t len, const char *path, int32_t **ids, size_t *n,
                 char *err, size_t errlen)
{
    *ids = NULL;
    *n = 0;
    int32_t *v = malloc((len ? len : 1) * sizeof *v);   /* at most one id a byte */
    if (!v) return data_fail(err, errlen, "%s: out of memory", path);
    const unsigned char *s = (const unsigned char *)text;
    size_t k = 0;
    char cb[48];
    for (size_t i = 0; i < len; k++) {
        uint32_t cp;
        int nb = utf8_next(s + i, len - i, &cp);
        if (nb == 0) {
            free(v);
            return data_fail(err, errlen, "%s: bad UTF-8 at byte %zu", path, i + 1);
        }
        int id = vocab_find(a, text + i, (size_t)nb);
        if (id < 0) {
            free(v);
            return data_fail(err, errlen, "%s: character %s at column %zu is not in the alphabet of the training "
                             "transcripts (%d characters)", path, describe_char(s + i, nb, cp, cb, sizeof cb),
                             k + 1, a->n);
        }
        v[k] = id;
        i += (size_t)nb;
    }
    *ids = v;
    *n = k;
    return 0;
}

size_t lines_min_frames(const int32_t *ids, size_t n)
{
    size_t need = n;
    for (size_t i = 1; i < n; i++) need += ids[i] == ids[i - 1];
    return need;
}

/* ---- images ---------------------------------------------------------------------------- */

int lines_image(const char *path, const lines_opts *o, float **x, int *frames, char *err, size_t errlen)
{
    *x = NULL;
    *frames = 0;
    int H = o->height;
    if (H < LINES_MIN_HEIGHT || H > LINES_MAX_HEIGHT)
        return data_fail(err, errlen, "line height %d is outside %d..%d", H, LINES_MIN_HEIGHT, LINES_MAX_HEIGHT);
    png_in *r;
    int w, h;
    size_t work;
    if (png_in_open(&r, path, &w, &h, &work, err, errlen) != 0) return -1;
    double ow = resample_width(w, h, H);
    /* gray bytes + libpng's rows, the image as floats, the resizer's intermediate (H x w),
     * the resized image and its frames (H x ow each) */
    double need = (double)w * h + (double)work + 4.0 * w * h + 4.0 * H * w + 8.0 * H * ow;
    size_t limit = o->max_bytes ? o->max_bytes : mem_limit_bytes();
    if (need > (double)limit || ow > INT_MAX) {
        png_in_close(r);
        return data_fail(err, errlen, "%s: a %d x %d image resized to height %d needs %.0f bytes, more than the %zu "
                         "%s", path, w, h, H, need, limit,
                         o->max_bytes ? "bytes allowed" : "bytes this process can hold (memory and limits)");
    }
    int W = (int)ow;
    size_t npx = (size_t)w * (size_t)h;
    unsigned char *g = malloc(npx);
    float *f = malloc(npx * sizeof *f);
    float *rs = malloc((size_t)W * (size_t)H * sizeof *rs);
    float *fr = malloc((size_t)W * (size_t)H * sizeof *fr);
    int rc = -1;
    if (!g || !f || !rs || !fr) {
        data_fail(err, errlen, "%s: out of memory for a %d x %d image", path, w, h);
        goto done;
    }
    if (png_in_gray(r, g, err, errlen) != 0) goto done;
    for (size_t i = 0; i < npx; i++) f[i] = o->invert ? 1.0f - g[i] / 255.0f : g[i] / 255.0f;
    if (resample_f32(f, w, h, rs, W, H) != 0) {
        data_fail(err, errlen, "%s: out of memory resizing a %d x %d image", path, w, h);
        goto done;
    }
    for (int t = 0; t < W; t++)
        for (int y = 0; y < H; y++) {
            float v = rs[(size_t)y * (size_t)W + (size_t)t];
            fr[(size_t)t * (size_t)H + (size_t)y] = v < 0 ? 0 : v > 1 ? 1 : v;
        }
    *x = fr;
    *frames = W;
    fr = NULL;
    rc = 0;
done:
    png_in_close(r);
    free(g);
    free(f);
    free(rs);
    free(fr);
    return rc;
}

/* ---- folders --------------------------------------------------------------------------- */

typedef struct line_list {
    char **png, **gt;   /* [n] paths */
    int n, cap;
} line_list;

static void list_free(line_list *l)
{
    for (int i = 0; i < l->n; i++) {
        free(l->png[i]);
        free(l->gt[i]);
    }
    free(l->png);
    free(l->gt);
    memset(l, 0, sizeof *l);
}

static char *join(const char *dir, const char *name, size_t name_len, const char *suffix)
{
    size_t dl = strlen(dir), sl = strlen(suffix);
    char *p = malloc(dl + 1 + name_len + sl + 1);
    if (!p) return NULL;
    memcpy(p, dir, dl);
    p[dl] = '/';
    memcpy(p + dl + 1, name, name_len);
    memcpy(p + dl + 1 + name_len, suffix, sl + 1);
    return p;
}

static int is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted image names of dir, each with its transcript. */
static int list_dir(line_list *l, const char *dir, char *err, size_t errlen)
{
    memset(l, 0, sizeof *l);
    char eb[128];
    DIR *d = opendir(dir);
    if (!d) {
        int e = errno;
        return data_fail(err, errlen, "%s: cannot open the folder of line images: %s", dir,
                         file_errstr(e, eb, sizeof eb));
    }
    char **names = NULL;
    size_t nn = 0, cap = 0;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL) {
        size_t k = strlen(e->d_name);
        if (e->d_name[0] == '.' || k <= 4 || strcasecmp(e->d_name + k - 4, ".png") != 0) continue;
        if (nn == cap) {
            size_t nc = cap ? 2 * cap : 64;
            char **nv = nc < SIZE_MAX / sizeof *nv ? realloc(names, nc * sizeof *nv) : NULL;
            if (!nv) {
                rc = data_fail(err, errlen, "%s: out of memory listing the folder", dir);
                break;
            }
            names = nv;
            cap = nc;
        }
        if (!(names[nn] = strdup(e->d_name))) {
            rc = data_fail(err, errlen, "%s: out of memory listing the folder", dir);
            break;
        }
        nn++;
    }
    closedir(d);
    if (rc == 0 && nn == 0) rc = data_fail(err, errlen, "%s: no line images (NAME.png with NAME.gt.txt) in the folder", dir);
    if (rc == 0 && nn > INT_MAX) rc = data_fail(err, errlen, "%s: %zu images are too many", dir, nn);
    if (rc == 0) {
        qsort(names, nn, sizeof *names, cmp_str);
        l->png = calloc(nn, sizeof *l->png);
        l->gt = calloc(nn, sizeof *l->gt);
        if (!l->png || !l->gt) rc = data_fail(err, errlen, "%s: out of memory listing the folder", dir);
    }
    for (size_t i = 0; rc == 0 && i < nn; i++) {
        size_t stem = strlen(names[i]) - 4;
        char *png = join(dir, names[i], stem + 4, "");
        char *gt = join(dir, names[i], stem, ".gt.txt");
        if (png && gt && !is_file(gt)) {
            size_t s2 = stem;   /* after the stem's last dot: 010001.bin.png -> 010001.gt.txt */
            while (s2 > 0 && names[i][s2 - 1] != '.') s2--;
            char *alt = s2 > 1 ? join(dir, names[i], s2 - 1, ".gt.txt") : NULL;
            if (alt && is_file(alt)) {
                free(gt);
                gt = alt;
            } else {
                rc = data_fail(err, errlen, "%s: no transcript: %s is missing%s%s%s", png, gt,
                               alt ? " (and so is " : "", alt ? alt : "", alt ? ")" : "");
                free(alt);
            }
        }
        if (rc == 0 && (!png || !gt)) rc = data_fail(err, errlen, "%s: out of memory listing the folder", dir);
        l->png[i] = png;
        l->gt[i] = gt;
        l->n = (int)i + 1;
    }
    for (size_t i = 0; i < nn; i++) free(names[i]);
    free(names);
    if (rc != 0) list_free(l);
    return rc;
}

int lines_alphabet(vocab *a, const char *dir, char *err, size_t errlen)
{
    memset(a, 0, sizeof *a);
    line_list l;
    if (list_dir(&l, dir, err, errlen) != 0) return -1;
    vocab_counter c;
    memset(&c, 0, sizeof c);
    int rc = 0;
    for (int i = 0; rc == 0 && i < l.n; i++) {
        char *t;
        size_t n;
        if (lines_read_transcript(l.gt[i], &t, &n, err, errlen) != 0) {
            rc = -1;
            break;
        }
        const unsigned char *s = (const unsigned char *)t;
        for (size_t j = 0; rc == 0 && j < n;) {
            uint32_t cp;
            int nb = utf8_next(s + j, n - j, &cp);   /* valid: checked by the reader */
            if (counter_add(&c, t + j, (size_t)nb, err, errlen) < 0) rc = -1;
            j += (size_t)nb;
        }
        free(t);
    }
    if (rc == 0) rc = counter_finish(&c, VOCAB_SORTED, 0, a, NULL, NULL, err, errlen);
    a->chars = 0;   /* tokens are characters of 1-4 bytes, not bytes */
    counter_free(&c);
    list_free(&l);
    if (rc != 0) vocab_free(a);
    return rc;
}

void lineset_free(lineset *s)
{
    if (!s) return;
    seqset_free(&s->frames);
    if (s->paths)
        for (int i = 0; i < s->n; i++) free(s->paths[i]);
    free(s->paths);
    free(s->loff);
    free(s->lab);
    memset(s, 0, sizeof *s);
}

/* Appends image i's path and labels (the frames are already in s->frames). */
static int add_labels(lineset *s, const char *path, const int32_t *ids, size_t n, char *err, size_t errlen)
{
    if (s->n + 1 > s->cap_n) {
        int nc = s->cap_n ? (s->cap_n > INT_MAX / 2 ? INT_MAX - 1 : 2 * s->cap_n) : 64;
        size_t *lo = realloc(s->loff, ((size_t)nc + 1) * sizeof *lo);
        if (lo) s->loff = lo;
        char **pp = lo ? realloc(s->paths, (size_t)nc * sizeof *pp) : NULL;
        if (pp) s->paths = pp;
        if (!lo || !pp) return data_fail(err, errlen, "%s: out of memory", path);
        s->cap_n = nc;
        if (s->n == 0) s->loff[0] = 0;
    }
    size_t at = s->loff[s->n];
    if (n > SIZE_MAX / sizeof *s->lab - at) return data_fail(err, errlen, "%s: out of memory", path);
    if (at + n > s->cap_lab) {
        size_t nc = s->cap_lab ? 2 * s->cap_lab : 1024;
        while (nc < at + n) nc *= 2;
        int32_t *nl = nc < SIZE_MAX / sizeof *nl ? realloc(s->lab, nc * sizeof *nl) : NULL;
        if (!nl) return data_fail(err, errlen, "%s: out of memory for %zu labels", path, at + n);
        s->lab = nl;
        s->cap_lab = nc;
    }
    if (!(s->paths[s->n] = strdup(path))) return data_fail(err, errlen, "%s: out of memory", path);
    if (n) memcpy(s->lab + at, ids, n * sizeof *ids);
    s->n++;
    s->loff[s->n] = at + n;
    return 0;
}

int lines_load(lineset *s, const char *dir, vocab *a, const lines_opts *o, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    if (o->height < LINES_MIN_HEIGHT || o->height > LINES_MAX_HEIGHT)
        return data_fail(err, errlen, "line height %d is outside %d..%d", o->height, LINES_MIN_HEIGHT,
                         LINES_MAX_HEIGHT);
    vocab built;
    memset(&built, 0, sizeof built);
    const vocab *use = a;
    if (a->n == 0) {
        if (lines_alphabet(&built, dir, err, errlen) != 0) return -1;
        use = &built;
    }
    line_list l;
    if (list_dir(&l, dir, err, errlen) != 0) {
        vocab_free(&built);
        return -1;
    }
    int rc = seqset_init(&s->frames, o->height, SEQ_TGT_NONE, 0, err, errlen);
    for (int i = 0; rc == 0 && i < l.n; i++) {
        char *t = NULL;
        size_t tn = 0, nid = 0;
        int32_t *ids = NULL;
        float *x = NULL;
        int frames = 0;
        rc = lines_read_transcript(l.gt[i], &t, &tn, err, errlen);
        if (rc == 0) rc = lines_encode(use, t, tn, l.gt[i], &ids, &nid, err, errlen);
        if (rc == 0) rc = lines_image(l.png[i], o, &x, &frames, err, errlen);
        if (rc == 0) {
            size_t need = lines_min_frames(ids, nid);
            if ((size_t)frames < need)
                rc = data_fail(err, errlen, "%s: %d frames (the image at height %d) are fewer than the %zu its "
                               "transcript needs (%zu characters and %zu adjacent repeats; CTC puts a blank "
                               "between repeats)", l.png[i], frames, o->height, need, nid, need - nid);
        }
        if (rc == 0) {
            char e2[256];
            if (seqset_add(&s->frames, frames, x, NULL, 0, NULL, NULL, e2, sizeof e2) != 0)
                rc = data_fail(err, errlen, "%s: %s", l.png[i], e2);
        }
        if (rc == 0) rc = add_labels(s, l.png[i], ids, nid, err, errlen);
        free(t);
        free(ids);
        free(x);
    }
    list_free(&l);
    if (rc != 0) {
        lineset_free(s);
        vocab_free(&built);
        return -1;
    }
    if (use == &built) *a = built;   /* handed over */
    return 0;
}

int lines_alphabet_load(vocab *a, const char *path, char *err, size_t errlen)
{
    if (vocab_load(a, path, err, errlen) != 0) return -1;
    for (int i = 0; i < a->n; i++) {
        uint32_t cp;
        if (utf8_next((const unsigned char *)a->tok[i], (size_t)a->len[i], &cp) != a->len[i]) {
            data_fail(err, errlen, "%s:%d: \"%s\" is not one UTF-8 character", path, i + 1, a->tok[i]);
            vocab_free(a);
            return -1;
        }
    }
    a->chars = 0;
    return 0;
}
