/* Lines of text for the pen-trajectory data sets: see pen_text.h. */
#include "pen_text.h"

#include <stdlib.h>
#include <string.h>
#include "fileio.h"
#include "gen_io.h"

void pen_lines_free(pen_lines *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->s[i]);
    free(l->s);
    memset(l, 0, sizeof *l);
}

static int push(pen_lines *l, const char *s, size_t len)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? 2 * l->cap : 1024;
        char **ns = nc < SIZE_MAX / sizeof *ns ? realloc(l->s, nc * sizeof *ns) : NULL;
        if (!ns) return -1;
        l->s = ns;
        l->cap = nc;
    }
    char *c = malloc(len + 1);
    if (!c) return -1;
    memcpy(c, s, len);
    c[len] = 0;
    l->s[l->n++] = c;
    return 0;
}

static int is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; }

/* The packer: the line being filled and its target length. */
typedef struct packer {
    char *buf;           /* [max_len + 1] */
    size_t len, target;
    int min_len, max_len;
    rng_t *r;
} packer;

static size_t draw_target(packer *p)
{
    return (size_t)p->min_len + (size_t)(rng_next(p->r) % (uint64_t)(p->max_len - p->min_len + 1));
}

/* Ends the current line: kept when long enough. */
static int flush(packer *p, pen_lines *out)
{
    int rc = 0;
    if (p->len >= (size_t)p->min_len) rc = push(out, p->buf, p->len);
    p->len = 0;
    p->target = draw_target(p);
    return rc;
}

static int add_word(packer *p, const char *w, size_t wl, pen_lines *out)
{
    if (wl > (size_t)p->max_len) return flush(p, out);   /* cannot be on any line: the text breaks here */
    if (p->len && p->len + 1 + wl > p->target && flush(p, out)) return -1;
    if (p->len) p->buf[p->len++] = ' ';
    memcpy(p->buf + p->len, w, wl);
    p->len += wl;
    return 0;
}

int pen_text_lines(const char *path, const unsigned char ok[128], int min_len, int max_len, rng_t *r, pen_lines *out,
                   pen_text_stats *st, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    memset(st, 0, sizeof *st);
    char **files;
    size_t nf;
    if (gen_text_files(path, &files, &nf, err, errlen)) return -1;
    packer p = { malloc((size_t)max_len + 1), 0, 0, min_len, max_len, r };
    int rc = p.buf ? 0 : -1;
    if (!p.buf) file_fail(err, errlen, path, "out of memory");
    p.target = draw_target(&p);
    for (size_t f = 0; rc == 0 && f < nf; f++) {
        size_t len;
        char *text = gen_read_file(files[f], &len, NULL, err, errlen);
        if (!text) {
            rc = -1;
            break;
        }
        const char *s = text, *end = text + len;
        while (rc == 0 && s < end) {
            const char *nl = memchr(s, '\n', (size_t)(end - s)), *e = nl ? nl : end;
            st->lines++;
            size_t ll = (size_t)(e - s);
            if (ll && s[ll - 1] == '\r') ll--;
            if (!(ll == 1 && s[0] == '%')) {
                const char *q = s, *qe = s + ll;
                while (rc == 0 && q < qe) {
                    while (q < qe && is_space((unsigned char)*q)) q++;
                    const char *w = q;
                    int good = 1;
                    while (q < qe && !is_space((unsigned char)*q)) {
                        unsigned char c = (unsigned char)*q++;
                        if (c >= 128 || !ok[c]) good = 0;
                    }
                    if (q == w) break;
                    if (!good) {   /* the line breaks there: lines stay runs of the text */
                        st->skipped++;
                        if (flush(&p, out)) rc = -1;
                        continue;
                    }
                    st->words++;
                    if (add_word(&p, w, (size_t)(q - w), out)) rc = -1;
                }
            }
            s = nl ? nl + 1 : end;
        }
        free(text);
        if (rc) file_fail(err, errlen, files[f], "out of memory");
    }
    if (rc == 0 && flush(&p, out)) {
        file_fail(err, errlen, path, "out of memory");
        rc = -1;
    }
    free(p.buf);
    gen_free_names(files, nf);
    if (rc) pen_lines_free(out);
    return rc;
}

static int by_text(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

void pen_lines_unique(pen_lines *l)
{
    if (l->n < 2) return;
    qsort(l->s, l->n, sizeof *l->s, by_text);
    size_t k = 1;
    for (size_t i = 1; i < l->n; i++) {
        if (!strcmp(l->s[i], l->s[k - 1])) free(l->s[i]);
        else l->s[k++] = l->s[i];
    }
    l->n = k;
}
