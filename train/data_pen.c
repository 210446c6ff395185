/* Online handwriting data: NAME.pen + NAME.gt.txt folders. The format, the frames and
 * the alphabet are described in data_pen.h (and docs/DATA.md). */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "data_pen.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "fileio.h"
#include "numparse.h"

#define PEN_HEADER "#pen"

/* ---- .pen files ---------------------------------------------------------------------- */

void pen_file_free(pen_file *p)
{
    free(p->x);
    free(p->y);
    free(p->end);
    memset(p, 0, sizeof *p);
}

static int pen_grow(pen_file *p, size_t *cap)
{
    if (p->n < *cap) return 0;
    size_t nc = *cap ? 2 * *cap : 256;
    if (nc < *cap || nc > SIZE_MAX / sizeof(float)) return -1;
    float *x = realloc(p->x, nc * sizeof *x);
    if (x) p->x = x;
    float *y = x ? realloc(p->y, nc * sizeof *y) : NULL;
    if (y) p->y = y;
    unsigned char *e = y ? realloc(p->end, nc) : NULL;
    if (e) p->end = e;
    if (!e) return -1;
    *cap = nc;
    return 0;
}

static int is_blank(char c) { return c == ' ' || c == '\t'; }

/* The next blank-separated field of [*s, e): its start and length; 0 when none. */
static size_t field(const char **s, const char *e, const char **start)
{
    const char *p = *s;
    while (p < e && is_blank(*p)) p++;
    *start = p;
    while (p < e && !is_blank(*p)) p++;
    *s = p;
    return (size_t)(p - *start);
}

int pen_parse(pen_file *p, const char *text, size_t len, const char *name, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    size_t cap = 0, line = 0;
    const char *s = text, *end = text + len;
    int rc = 0, header = 0;
    while (s < end && rc == 0) {
        const char *nl = memchr(s, '\n', (size_t)(end - s)), *e = nl ? nl : end;
        line++;
        if (e > s && e[-1] == '\r') e--;
        if (memchr(s, 0, (size_t)(e - s))) {
            rc = data_fail(err, errlen, "%s:%zu: a NUL byte: not a text file", name, line);
            break;
        }
        if (!header) {
            size_t hl = strlen(PEN_HEADER);
            const char *q = s + hl, *f;
            if ((size_t)(e - s) < hl || memcmp(s, PEN_HEADER, hl) != 0 || (q < e && !is_blank(*q))) {
                rc = data_fail(err, errlen, "%s:1: not a pen trajectory: the first line must be \"#pen 1\" "
                               "(docs/DATA.md)", name);
                break;
            }
            size_t fl = field(&q, e, &f);
            if (fl == 0) {
                rc = data_fail(err, errlen, "%s:1: no format version: the first line must be \"#pen 1\"", name);
                break;
            }
            if (fl != 1 || f[0] != '1') {
                rc = data_fail(err, errlen, "%s:1: format version '%.*s' is not known (this recur reads \"#pen 1\")",
                               name, (int)(fl < 20 ? fl : 20), f);
                break;
            }
            header = 1;
        } else {
            const char *q = s, *f[4];
            size_t fl[4];
            int nf = 0;
            while (nf < 4 && (fl[nf] = field(&q, e, &f[nf])) > 0) nf++;
            if (nf == 0 || f[0][0] == '#') {   /* a blank line or a comment */
                s = nl ? nl + 1 : end;
                continue;
            }
            if (nf != 3) {
                rc = data_fail(err, errlen, "%s:%zu: %s; a point is \"x y end\"", name, line,
                               nf == 1 ? "1 field" : nf == 2 ? "2 fields" : "more than 3 fields");
                break;
            }
            float v[2];
            for (int k = 0; k < 2 && rc == 0; k++) {
                int r = num_parse_float(f[k], fl[k], &v[k]);
                if (r == -2) rc = data_fail(err, errlen, "%s:%zu: out of memory", name, line);
                else if (r != 0)
                    rc = data_fail(err, errlen, "%s:%zu: %c '%.*s' is not a decimal number", name, line, "xy"[k],
                                   (int)(fl[k] < 40 ? fl[k] : 40), f[k]);
                else if (!isfinite(v[k]))
                    rc = data_fail(err, errlen, "%s:%zu: %c '%.*s' is not a finite number in float range", name,
                                   line, "xy"[k], (int)(fl[k] < 40 ? fl[k] : 40), f[k]);
            }
            if (rc) break;
            if (fl[2] != 1 || (f[2][0] != '0' && f[2][0] != '1')) {
                rc = data_fail(err, errlen, "%s:%zu: end '%.*s' must be 0 or 1 (1: the pen lifts after this point)",
                               name, line, (int)(fl[2] < 40 ? fl[2] : 40), f[2]);
                break;
            }
            if (pen_grow(p, &cap)) {
                rc = data_fail(err, errlen, "%s:%zu: out of memory for %zu points", name, line, p->n + 1);
                break;
            }
            p->x[p->n] = v[0];
            p->y[p->n] = v[1];
            p->end[p->n++] = f[2][0] == '1';
        }
        s = nl ? nl + 1 : end;
    }
    if (rc == 0 && !header) rc = data_fail(err, errlen, "%s: an empty file (a pen trajectory starts \"#pen 1\")", name);
    else if (rc == 0 && p->n == 0) rc = data_fail(err, errlen, "%s: an empty trajectory (no points)", name);
    if (rc) {
        pen_file_free(p);
        return -1;
    }
    p->end[p->n - 1] = 1;
    return 0;
}

int pen_read(pen_file *p, const char *path, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    char *b;
    size_t n;
    struct stat st;
    if (path && stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0)
        return data_fail(err, errlen, "%s: an empty file (a pen trajectory starts \"#pen 1\")", path);
    if (data_read_file(path, &b, &n, err, errlen) != 0) return -1;
    int rc = pen_parse(p, b, n, path, err, errlen);
    free(b);
    return rc;
}

int pen_frames(const pen_file *p, pen_norm norm, float *out, const char *name, char *err, size_t errlen)
{
    double scale = 1;
    if (norm == PEN_NORM_SAMPLE) {
        double sum = 0, all = 0;
        size_t k = 0;
        for (size_t t = 1; t < p->n; t++) {
            double dx = (double)p->x[t] - p->x[t - 1], dy = (double)p->y[t] - p->y[t - 1], q = dx * dx + dy * dy;
            all += q;
            if (!p->end[t - 1]) {
                sum += q;
                k++;
            }
        }
        double ms = k ? sum / (double)k : p->n > 1 ? all / (double)(p->n - 1) : 0;
        if (ms > 0 && isfinite(ms)) scale = 1 / sqrt(ms);
    }
    for (size_t t = 0; t < p->n; t++) {
        double dx = t ? ((double)p->x[t] - p->x[t - 1]) * scale : 0, dy = t ? ((double)p->y[t] - p->y[t - 1]) * scale : 0;
        float fx = (float)dx, fy = (float)dy;
        if (!isfinite(fx) || !isfinite(fy))
            return data_fail(err, errlen, "%s: the step to point %zu (%g, %g) does not fit in a float", name, t + 1, dx,
                             dy);
        out[3 * t] = fx;
        out[3 * t + 1] = fy;
        out[3 * t + 2] = p->end[t] ? 1.0f : 0.0f;
    }
    return 0;
}

/* ---- transcripts and the alphabet ------------------------------------------------------ */

/* The code point at s[0, n): its byte length (1..4), or 0 when the bytes are not UTF-8
 * (overlong forms, surrogates and values above U+10FFFF included). */
static int utf8_next(const unsigned char *s, size_t n, unsigned *cp)
{
    unsigned c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    int len = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? (c < 0xf0 ? 3 : 0) : c >= 0xc2 ? 2 : 0;
    if (!len || (size_t)len > n) return 0;
    unsigned v = c & (0x7f >> len);
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        v = v << 6 | (s[i] & 0x3f);
    }
    if ((len == 3 && (v < 0x800 || (v >= 0xd800 && v <= 0xdfff))) || (len == 4 && (v < 0x10000 || v > 0x10ffff)))
        return 0;
    *cp = v;
    return len;
}

/* A character for messages: 'c' (U+XXXX). */
static void describe_char(const char *s, int len, unsigned cp, char *buf, size_t n)
{
    if (cp >= 0x20 && cp != 0x7f) snprintf(buf, n, "'%.*s' (U+%04X)", len, s, cp);
    else snprintf(buf, n, "U+%04X", cp);
}

int pen_transcript_read(const char *path, char **text, size_t *len, char *err, size_t errlen)
{
    *text = NULL;
    *len = 0;
    struct stat st;
    if (stat(path, &st) != 0) {
        char eb[128];
        int e = errno;
        return data_fail(err, errlen, "%s: %s", path, e == ENOENT ? "no transcript (a NAME.pen needs its NAME.gt.txt)"
                                                                   : file_errstr(e, eb, sizeof eb));
    }
    if (S_ISREG(st.st_mode) && st.st_size == 0) return data_fail(err, errlen, "%s: an empty transcript", path);
    char *b;
    size_t n;
    if (data_read_file(path, &b, &n, err, errlen) != 0) return -1;
    size_t l = n;
    if (l && b[l - 1] == '\n') l--;
    if (l && b[l - 1] == '\r') l--;
    int rc = 0;
    if (l == 0) rc = data_fail(err, errlen, "%s: an empty transcript", path);
    size_t col = 1;
    for (size_t i = 0; rc == 0 && i < l; col++) {
        unsigned cp;
        int k = utf8_next((const unsigned char *)b + i, l - i, &cp);
        if (!k) rc = data_fail(err, errlen, "%s:1: byte 0x%02x at byte %zu is not UTF-8", path, (unsigned char)b[i], i + 1);
        else if (cp == '\n' || cp == '\r')
            rc = data_fail(err, errlen, "%s:1: a line end after character %zu: a transcript is one line", path, col - 1);
        else if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0))
            rc = data_fail(err, errlen, "%s:1: control character U+%04X at character %zu", path, cp, col);
        i += (size_t)(k ? k : 1);
    }
    if (rc) {
        free(b);
        return -1;
    }
    b[l] = 0;
    *text = b;
    *len = l;
    return 0;
}

long pen_encode(const vocab *alphabet, const char *text, size_t len, int32_t *ids, const char *name, char *err,
                size_t errlen)
{
    long n = 0;
    for (size_t i = 0; i < len; n++) {
        unsigned cp = 0;
        int k = utf8_next((const unsigned char *)text + i, len - i, &cp);
        if (!k) return data_fail(err, errlen, "%s: byte 0x%02x at byte %zu is not UTF-8", name, (unsigned char)text[i], i + 1);
        int id = vocab_find(alphabet, text + i, (size_t)k);
        if (id < 0) {
            char c[32];
            describe_char(text + i, k, cp, c, sizeof c);
            return data_fail(err, errlen, "%s: character %s at character %ld is not in the alphabet (%d characters, "
                             "made from the training transcripts)", name, c, n + 1, alphabet->n);
        }
        ids[n] = id;
        i += (size_t)k;
    }
    return n;
}

/* ---- folders ----------------------------------------------------------------------------- */

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int ends_with(const char *s, size_t l, const char *suffix)
{
    size_t k = strlen(suffix);
    return l > k && !strcmp(s + l - k, suffix);
}

static void free_names(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

/* "dir/name" + suffix, malloc'd. */
static char *join(const char *dir, const char *name, const char *suffix)
{
    size_t l = strlen(dir) + strlen(name) + strlen(suffix) + 2;
    char *p = malloc(l);
    if (p) snprintf(p, l, "%s/%s%s", dir, name, suffix);
    return p;
}

/* The sample names of dir (NAME of each NAME.pen, sorted); a transcript without its
 * .pen is an error. */
static int list_samples(const char *dir, char ***names, size_t *n, char *err, size_t errlen)
{
    *names = NULL;
    *n = 0;
    char eb[128];
    DIR *d = opendir(dir);
    if (!d) return data_fail(err, errlen, "%s: cannot read the folder: %s", dir, file_errstr(errno, eb, sizeof eb));
    char **v = NULL, **gt = NULL;
    size_t cnt = 0, cap = 0, ngt = 0, cap_gt = 0;
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        const char *nm = e->d_name;
        size_t l = strlen(nm);
        int pen = ends_with(nm, l, ".pen"), txt = ends_with(nm, l, ".gt.txt");
        if (nm[0] == '.' || (!pen && !txt)) continue;
        char ***list = pen ? &v : &gt;
        size_t *c = pen ? &cnt : &ngt, *cp = pen ? &cap : &cap_gt;
        if (*c == *cp) {
            size_t nc = *cp ? 2 * *cp : 64;
            char **nv = nc < SIZE_MAX / sizeof *nv ? realloc(*list, nc * sizeof *nv) : NULL;
            if (!nv) {
                rc = data_fail(err, errlen, "%s: out of memory", dir);
                break;
            }
            *list = nv;
            *cp = nc;
        }
        char *s = strndup(nm, l - (pen ? 4 : 7));
        if (!s) {
            rc = data_fail(err, errlen, "%s: out of memory", dir);
            break;
        }
        (*list)[(*c)++] = s;
    }
    closedir(d);
    if (rc == 0 && cnt == 0)
        rc = data_fail(err, errlen, "%s: no pen trajectories (NAME.pen with NAME.gt.txt beside each)", dir);
    if (rc == 0) {
        qsort(v, cnt, sizeof *v, by_name);
        for (size_t i = 0; i < ngt && rc == 0; i++) {
            const char *key = gt[i];
            if (!bsearch(&key, v, cnt, sizeof *v, by_name))
                rc = data_fail(err, errlen, "%s/%s.gt.txt: a transcript without its trajectory %s.pen", dir, gt[i],
                               gt[i]);
        }
    }
    free_names(gt, ngt);
    if (rc) {
        free_names(v, cnt);
        return -1;
    }
    *names = v;
    *n = cnt;
    return 0;
}

int pen_alphabet_build(vocab *alphabet, const char *dir, char *err, size_t errlen)
{
    memset(alphabet, 0, sizeof *alphabet);
    char **names;
    size_t n;
    if (list_samples(dir, &names, &n, err, errlen)) return -1;
    vocab_counter c;
    memset(&c, 0, sizeof c);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char *path = join(dir, names[i], ".gt.txt"), *text = NULL;
        size_t len = 0;
        if (!path) rc = data_fail(err, errlen, "%s: out of memory", dir);
        else rc = pen_transcript_read(path, &text, &len, err, errlen);
        for (size_t k = 0; rc == 0 && k < len;) {
            unsigned cp;
            int b = utf8_next((const unsigned char *)text + k, len - k, &cp);   /* checked by the read */
            if (counter_add(&c, text + k, (size_t)b, err, errlen) < 0) rc = -1;
            k += (size_t)b;
        }
        free(text);
        free(path);
    }
    if (rc == 0) rc = counter_finish(&c, VOCAB_SORTED, 0, alphabet, NULL, NULL, err, errlen);
    counter_free(&c);
    free_names(names, n);
    if (rc) {
        vocab_free(alphabet);
        return -1;
    }
    return 0;
}

void pen_set_free(pen_set *s)
{
    seqset_free(&s->x);
    free(s->lab);
    free(s->lab_off);
    if (s->names)
        for (int i = 0; i < s->n; i++) free(s->names[i]);
    free(s->names);
    memset(s, 0, sizeof *s);
}

const int32_t *pen_set_labels(const pen_set *s, int i, size_t *len)
{
    if (i < 0 || i >= s->n) {
        if (len) *len = 0;
        return NULL;
    }
    if (len) *len = s->lab_off[i + 1] - s->lab_off[i];
    return s->lab + s->lab_off[i];
}

/* Appends one sample (frames copied into the set, labels, name). */
static int add_sample(pen_set *s, const float *frames, size_t T, const int32_t *ids, size_t L, const char *name,
                      char *err, size_t errlen)
{
    if (T > INT32_MAX) return data_fail(err, errlen, "%s: %zu points: more than a sequence may hold", name, T);
    if (s->n == s->cap_n) {
        int nc = s->cap_n ? 2 * s->cap_n : 64;
        if (s->cap_n > INT32_MAX / 2) return data_fail(err, errlen, "%s: too many samples", name);
        size_t *no = realloc(s->lab_off, ((size_t)nc + 1) * sizeof *no);
        if (no) s->lab_off = no;
        char **nn = no ? realloc(s->names, (size_t)nc * sizeof *nn) : NULL;
        if (!nn) return data_fail(err, errlen, "%s: out of memory", name);
        s->names = nn;
        s->cap_n = nc;
    }
    size_t need = s->lab_off[s->n] + L;
    if (need > s->cap_lab) {
        size_t nc = s->cap_lab ? s->cap_lab : 1024;
        while (nc < need && nc <= SIZE_MAX / 2 / sizeof *s->lab) nc *= 2;
        int32_t *nl = nc >= need ? realloc(s->lab, nc * sizeof *nl) : NULL;
        if (!nl) return data_fail(err, errlen, "%s: out of memory for %zu labels", name, need);
        s->lab = nl;
        s->cap_lab = nc;
    }
    const char *slash = strrchr(name, '/');
    size_t bl = strlen(slash ? slash + 1 : name);
    char *nm = strndup(slash ? slash + 1 : name, bl > 4 ? bl - 4 : bl);   /* without ".pen" */
    if (!nm) return data_fail(err, errlen, "%s: out of memory", name);
    if (seqset_add(&s->x, (int)T, frames, NULL, 0, NULL, NULL, err, errlen) != 0) {
        free(nm);
        return -1;
    }
    memcpy(s->lab + s->lab_off[s->n], ids, L * sizeof *ids);
    s->names[s->n] = nm;
    s->lab_off[s->n + 1] = need;
    s->n++;
    return 0;
}

/* One sample: its files read, checked, encoded and added. */
static int load_sample(pen_set *s, const char *dir, const char *name, const vocab *alphabet, pen_norm norm,
                       char *err, size_t errlen)
{
    char *pen_path = join(dir, name, ".pen"), *gt_path = join(dir, name, ".gt.txt"), *text = NULL;
    size_t len = 0;
    pen_file p;
    memset(&p, 0, sizeof p);
    float *frames = NULL;
    int32_t *ids = NULL;
    int rc = pen_path && gt_path ? 0 : data_fail(err, errlen, "%s: out of memory", dir);
    if (rc == 0) rc = pen_transcript_read(gt_path, &text, &len, err, errlen);
    if (rc == 0) rc = pen_read(&p, pen_path, err, errlen);
    if (rc == 0) {
        ids = malloc(len * sizeof *ids);
        frames = p.n <= SIZE_MAX / (PEN_FEATURES * sizeof *frames) ? malloc(p.n * PEN_FEATURES * sizeof *frames)
                                                                    : NULL;
        if (!ids || !frames) rc = data_fail(err, errlen, "%s: out of memory for %zu points", pen_path, p.n);
    }
    long L = 0;
    if (rc == 0 && (L = pen_encode(alphabet, text, len, ids, gt_path, err, errlen)) < 0) rc = -1;
    if (rc == 0) {
        size_t need = (size_t)L;
        for (long i = 1; i < L; i++) need += ids[i] == ids[i - 1];
        if (p.n < need)
            rc = data_fail(err, errlen, "%s: %zu points are too few for its transcript of %ld characters (CTC needs "
                           "%zu: one per character and one between equal neighbours)", pen_path, p.n, L, need);
    }
    if (rc == 0) rc = pen_frames(&p, norm, frames, pen_path, err, errlen);
    if (rc == 0) rc = add_sample(s, frames, p.n, ids, (size_t)L, pen_path, err, errlen);
    free(frames);
    free(ids);
    free(text);
    pen_file_free(&p);
    free(pen_path);
    free(gt_path);
    return rc;
}

int pen_set_load(pen_set *s, const char *dir, const vocab *alphabet, pen_norm norm, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    if (norm != PEN_NORM_NONE && norm != PEN_NORM_SAMPLE)
        return data_fail(err, errlen, "%s: unknown normalisation %d", dir, (int)norm);
    if (!alphabet || alphabet->n < 1) return data_fail(err, errlen, "%s: an empty alphabet", dir);
    char **names;
    size_t n;
    if (list_samples(dir, &names, &n, err, errlen)) return -1;
    int rc = seqset_init(&s->x, PEN_FEATURES, SEQ_TGT_NONE, 0, err, errlen);
    if (rc == 0) {
        s->lab_off = malloc(sizeof *s->lab_off);
        if (!s->lab_off) rc = data_fail(err, errlen, "%s: out of memory", dir);
        else s->lab_off[0] = 0;
    }
    for (size_t i = 0; i < n && rc == 0; i++) rc = load_sample(s, dir, names[i], alphabet, norm, err, errlen);
    free_names(names, n);
    if (rc) {
        pen_set_free(s);
        return -1;
    }
    return 0;
}
