/* Edit (Levenshtein) distances with counts of substitutions, insertions and
 * deletions, between int sequences, UTF-8 strings by code point and strings by word,
 * and the error rates made of them (CER, WER).
 *
 * One row of the dynamic programme at a time (O(hyp) memory); each cell carries the
 * counts of the alignment chosen there: the cheapest of a diagonal step (a match or a
 * substitution), a deletion (a reference unit the hypothesis lacks) and an insertion
 * (a hypothesis unit the reference lacks), preferred in that order on a tie. Strings
 * are turned into int sequences first: code points, or word ids (equal words, byte
 * for byte, get one id, through a hash table). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "decode_util.h"

typedef struct counts { int64_t s, i, d; } counts;

static int64_t cost(counts c) { return c.s + c.i + c.d; }

static rc_status edit_core(const char *who, const int32_t *ref, int n, const int32_t *hyp, int m, rc_edit_stats *out,
                           char *err, size_t errlen)
{
    counts *prev = malloc(((size_t)m + 1) * sizeof *prev), *cur = malloc(((size_t)m + 1) * sizeof *cur);
    if (!prev || !cur) {
        free(prev);
        free(cur);
        return dec_fail(err, errlen, RC_ERR_NOMEM, "%s: out of memory for %d units", who, m);
    }
    for (int j = 0; j <= m; j++) prev[j] = (counts){ 0, j, 0 };
    for (int i = 1; i <= n; i++) {
        cur[0] = (counts){ 0, 0, i };
        for (int j = 1; j <= m; j++) {
            counts best = prev[j - 1];
            best.s += ref[i - 1] != hyp[j - 1];
            counts del = prev[j], ins = cur[j - 1];
            del.d++;
            ins.i++;
            if (cost(del) < cost(best)) best = del;
            if (cost(ins) < cost(best)) best = ins;
            cur[j] = best;
        }
        counts *t = prev; prev = cur; cur = t;
    }
    counts c = prev[m];
    *out = (rc_edit_stats){ .distance = cost(c), .substitutions = c.s, .insertions = c.i, .deletions = c.d,
                            .ref_length = n, .hyp_length = m };
    free(prev);
    free(cur);
    if (err && errlen > 0) err[0] = '\0';
    return RC_OK;
}

rc_status rc_edit_distance(const int32_t *ref, int nref, const int32_t *hyp, int nhyp, rc_edit_stats *out,
                           char *err, size_t errlen)
{
    if (!out) return dec_fail(err, errlen, RC_ERR_ARG, "edit_distance: NULL out");
    if (nref < 0 || nhyp < 0 || (nref > 0 && !ref) || (nhyp > 0 && !hyp))
        return dec_fail(err, errlen, RC_ERR_ARG, "edit_distance: lengths %d and %d must be >= 0 with their sequences",
                        nref, nhyp);
    return edit_core("edit_distance", ref, nref, hyp, nhyp, out, err, errlen);
}

/* Decodes the UTF-8 string s into cp (NULL: only counts); returns the number of code
 * points, or -1 with *bad the byte offset of the first invalid sequence. */
static long utf8_decode(const char *str, int32_t *cp, size_t *bad)
{
    const unsigned char *s = (const unsigned char *)str;
    long n = 0;
    for (size_t k = 0; s[k];) {
        unsigned c = s[k];
        int more;
        uint32_t v, min;
        if (c < 0x80) { more = 0; v = c; min = 0; }
        else if ((c & 0xE0) == 0xC0) { more = 1; v = c & 0x1F; min = 0x80; }
        else if ((c & 0xF0) == 0xE0) { more = 2; v = c & 0x0F; min = 0x800; }
        else if ((c & 0xF8) == 0xF0) { more = 3; v = c & 0x07; min = 0x10000; }
        else { *bad = k; return -1; }
        for (int j = 1; j <= more; j++) {
            if ((s[k + j] & 0xC0) != 0x80) { *bad = k; return -1; }   /* a cut sequence meets the NUL here */
            v = (v << 6) | (s[k + j] & 0x3F);
        }
        if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) { *bad = k; return -1; }
        if (n == INT32_MAX) { *bad = k; return -1; }
        if (cp) cp[n] = (int32_t)v;
        n++;
        k += (size_t)more + 1;
    }
    return n;
}

rc_status rc_edit_distance_utf8(const char *ref, const char *hyp, rc_edit_stats *out, char *err, size_t errlen)
{
    const char *who = "edit_distance_utf8";
    if (!ref || !hyp || !out) return dec_fail(err, errlen, RC_ERR_ARG, "%s: NULL argument", who);
    size_t bad = 0;
    long n = utf8_decode(ref, NULL, &bad);
    if (n < 0) return dec_fail(err, errlen, RC_ERR_FORMAT, "%s: the reference is not valid UTF-8 at byte %zu", who, bad);
    long m = utf8_decode(hyp, NULL, &bad);
    if (m < 0) return dec_fail(err, errlen, RC_ERR_FORMAT, "%s: the hypothesis is not valid UTF-8 at byte %zu", who, bad);
    int32_t *a = malloc(((size_t)n + 1) * sizeof *a), *b = malloc(((size_t)m + 1) * sizeof *b);
    rc_status s;
    if (!a || !b) {
        s = dec_fail(err, errlen, RC_ERR_NOMEM, "%s: out of memory", who);
    } else {
        utf8_decode(ref, a, &bad);
        utf8_decode(hyp, b, &bad);
        s = edit_core(who, a, (int)n, b, (int)m, out, err, errlen);
    }
    free(a);
    free(b);
    return s;
}

/* ---- words --------------------------------------------------------------------------- */

typedef struct span { const char *p; size_t len; } span;

static int is_space(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* The words of s into w (NULL: only counts); returns their number. */
static long split_words(const char *s, span *w)
{
    long n = 0;
    for (size_t k = 0; s[k];) {
        while (s[k] && is_space((unsigned char)s[k])) k++;
        if (!s[k]) break;
        size_t start = k;
        while (s[k] && !is_space((unsigned char)s[k])) k++;
        if (w) w[n] = (span){ s + start, k - start };
        n++;
    }
    return n;
}

static uint64_t fnv1a(const char *p, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t k = 0; k < len; k++) h = (h ^ (unsigned char)p[k]) * 0x100000001b3ull;
    return h;
}

rc_status rc_edit_distance_words(const char *ref, const char *hyp, rc_edit_stats *out, char *err, size_t errlen)
{
    const char *who = "edit_distance_words";
    if (!ref || !hyp || !out) return dec_fail(err, errlen, RC_ERR_ARG, "%s: NULL argument", who);
    long n = split_words(ref, NULL), m = split_words(hyp, NULL);
    if (n + m > INT32_MAX / 2) return dec_fail(err, errlen, RC_ERR_ARG, "%s: too many words", who);
    size_t N = (size_t)(n + m), cap = 16;
    while (cap < 2 * N) cap *= 2;
    span *w = malloc((N + 1) * sizeof *w);
    int32_t *id = malloc((N + 1) * sizeof *id), *table = malloc(cap * sizeof *table);
    rc_status s;
    if (!w || !id || !table) {
        s = dec_fail(err, errlen, RC_ERR_NOMEM, "%s: out of memory for %zu words", who, N);
    } else {
        split_words(ref, w);
        split_words(hyp, w + n);
        memset(table, 0xff, cap * sizeof *table);
        for (size_t k = 0; k < N; k++) {   /* id = the index of the word's first occurrence */
            size_t h = (size_t)fnv1a(w[k].p, w[k].len) & (cap - 1);
            for (;; h = (h + 1) & (cap - 1)) {
                int32_t e = table[h];
                if (e < 0) {
                    table[h] = (int32_t)k;
                    id[k] = (int32_t)k;
                    break;
                }
                if (w[e].len == w[k].len && memcmp(w[e].p, w[k].p, w[k].len) == 0) {
                    id[k] = e;
                    break;
                }
            }
        }
        s = edit_core(who, id, (int)n, id + n, (int)m, out, err, errlen);
    }
    free(w);
    free(id);
    free(table);
    return s;
}

void rc_edit_stats_add(rc_edit_stats *total, const rc_edit_stats *one)
{
    if (!total || !one) return;
    total->distance += one->distance;
    total->substitutions += one->substitutions;
    total->insertions += one->insertions;
    total->deletions += one->deletions;
    total->ref_length += one->ref_length;
    total->hyp_length += one->hyp_length;
}

double rc_error_rate(const rc_edit_stats *s)
{
    if (!s) return NAN;
    if (s->ref_length == 0) return s->distance == 0 ? 0.0 : INFINITY;
    return (double)s->distance / (double)s->ref_length;
}
