/* libFuzzer harness for the line-image loader (lines_load, train/data_lines.c, with
 * base/pngio.c's libpng reader and base/resample.c): a folder of one image x.png and its
 * transcript x.gt.txt. The input is [transcript length: 1 byte][transcript][PNG bytes].
 * Unless the length is a multiple of 3, every chunk's CRC is recomputed before the PNG
 * is written, so that mutations reach the decoder instead of stopping at libpng's CRC
 * check (which the raw inputs still exercise).
 * An error names the file (or the folder) and leaves the set empty; a loaded set has one
 * image of at least the frames its labels need, every value in [0, 1], labels within
 * the alphabet; the same folder loads again with that alphabet (the eval path) alike.
 * Built (with libpng) and run by tests/fuzz/run.sh lines. */
#include <math.h>
#include <sys/stat.h>
#include "data_lines.h"
#include "fuzz_file.h"

static char dir[512];

static void remove_dir(void)
{
    char p[600];
    snprintf(p, sizeof p, "%s/x.png", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/x.gt.txt", dir);
    unlink(p);
    rmdir(dir);
}

static void write_file(const char *name, const uint8_t *data, size_t n)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (!f) fuzz_die("cannot create", p);
    if (n && fwrite(data, 1, n, f) != n) fuzz_die("cannot write", p);
    if (fclose(f) != 0) fuzz_die("cannot close", p);
}

static uint32_t crc32_of(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
    }
    return c ^ 0xffffffffu;
}

/* Rewrites the CRC of every whole chunk after the 8-byte signature. */
static void fix_crcs(uint8_t *p, size_t n)
{
    for (size_t at = 8; at + 12 <= n;) {
        uint32_t len = (uint32_t)p[at] << 24 | (uint32_t)p[at + 1] << 16 | (uint32_t)p[at + 2] << 8 | p[at + 3];
        if (len > n - at - 12) break;
        uint32_t c = crc32_of(p + at + 4, 4 + (size_t)len);
        uint8_t *q = p + at + 8 + len;
        q[0] = (uint8_t)(c >> 24), q[1] = (uint8_t)(c >> 16), q[2] = (uint8_t)(c >> 8), q[3] = (uint8_t)c;
        at += 12 + (size_t)len;
    }
}

static void check_set(const lineset *s, const vocab *a)
{
    if (s->n != 1 || s->frames.n != 1 || !s->paths || !s->paths[0]) fuzz_die("not one image", dir);
    size_t T = (size_t)seqset_len(&s->frames, 0), L = s->loff[1] - s->loff[0];
    if (L < 1) fuzz_die("an empty transcript was loaded", dir);
    if (T < lines_min_frames(s->lab, L)) fuzz_die("fewer frames than the labels need", dir);
    for (size_t i = 0; i < L; i++)
        if (s->lab[i] < 0 || s->lab[i] >= a->n) fuzz_die("a label outside the alphabet", dir);
    for (size_t i = 0; i < T * (size_t)s->frames.F; i++)
        if (!(s->frames.x[i] >= 0 && s->frames.x[i] <= 1)) fuzz_die("a value outside [0, 1]", dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 1 << 18) return 0;
    if (!dir[0]) {
        const char *base = fuzz_path(0, "lines");
        snprintf(dir, sizeof dir, "%s.d", base);
        if (mkdir(dir, 0700) != 0) fuzz_die("cannot create", dir);
        atexit(remove_dir);
    }
    size_t tl = data[0] < size - 1 ? data[0] : size - 1;
    write_file("x.gt.txt", data + 1, tl);
    size_t pn = size - 1 - tl;
    uint8_t *png = malloc(pn ? pn : 1);
    if (!png) return 0;
    if (pn) memcpy(png, data + 1 + tl, pn);
    if (tl % 3 != 0) fix_crcs(png, pn);
    write_file("x.png", png, pn);
    free(png);
    /* a height from the transcript's length, so several heights are tried */
    lines_opts o = {.height = LINES_MIN_HEIGHT + (int)(tl % 41), .invert = (int)(tl & 1), .max_bytes = 256u << 20};
    char err[1024] = "";
    lineset s;
    vocab a;
    memset(&a, 0, sizeof a);
    if (lines_load(&s, dir, &a, &o, err, sizeof err) != 0) {
        if (!err[0]) fuzz_die("failure without a message", dir);
        if (!strstr(err, dir)) fuzz_die("message does not name the file or folder", err);
        if (s.n || s.frames.x || s.lab || s.paths || a.n) fuzz_die("not left empty on error", err);
        return 0;
    }
    check_set(&s, &a);
    lineset s2;
    if (lines_load(&s2, dir, &a, &o, err, sizeof err) != 0) fuzz_die("the eval load failed", err);
    check_set(&s2, &a);
    size_t n = s.frames.off[1] * (size_t)s.frames.F;
    if (s2.frames.off[1] != s.frames.off[1] || memcmp(s.frames.x, s2.frames.x, n * sizeof(float)) != 0 ||
        memcmp(s.lab, s2.lab, (s.loff[1]) * sizeof(int32_t)) != 0)
        fuzz_die("the second load differs", dir);
    lineset_free(&s2);
    lineset_free(&s);
    vocab_free(&a);
    return 0;
}
