/* libFuzzer harness for the pen-trajectory loader (train/data_pen.c): a folder holding
 * s.pen and s.gt.txt. The first byte picks the options (bit 0: normalise per sample;
 * bit 1: the alphabet made from the folder's own transcript, else a fixed one of
 * "abcdefgh ."; bit 2: no transcript file; bit 3: a second transcript t.gt.txt without
 * its .pen), the second the transcript's length; then the transcript, then the .pen.
 * pen_parse also reads the .pen bytes alone. An error names the folder and leaves the
 * set empty; a loaded set has one sample whose frames are finite, whose last frame
 * ends a stroke, whose labels are alphabet ids spelling the transcript, with enough
 * frames for CTC; its batch collates. Built and run by tests/fuzz/run.sh pen. */
#include <errno.h>
#include <sys/stat.h>
#include <math.h>
#include "data_pen.h"
#include "fuzz_seq.h"

static char dir[600];

static void cleanup(void)
{
    static const char *names[] = { "s.pen", "s.gt.txt", "t.gt.txt" };
    char p[700];
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
}

static void put(const char *name, const uint8_t *data, size_t n)
{
    char p[700];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) fuzz_die("cannot write", p);
}

static void drop(const char *name)
{
    char p[700];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    unlink(p);
}

/* The characters of a UTF-8 text (already checked by the loader). */
static size_t chars(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xc0) != 0x80;
    return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > 1 << 18) return 0;
    if (!dir[0]) {
        const char *t = getenv("TMPDIR");
        if (!t || !*t) t = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(dir, sizeof dir, "%s/recur-fuzz-pen-%ld", t, (long)getpid());
        if (mkdir(dir, 0700) != 0 && errno != EEXIST) fuzz_die("cannot create", dir);
        atexit(cleanup);
    }
    int mode = data[0];
    size_t L = data[1] < size - 2 ? data[1] : size - 2;
    const uint8_t *gt = data + 2, *pen = data + 2 + L;
    size_t plen = size - 2 - L;
    char err[1024] = "";

    /* the parser alone */
    pen_file pf;
    if (pen_parse(&pf, (const char *)pen, plen, "mem.pen", err, sizeof err) == 0) {
        if (pf.n < 1 || !pf.end[pf.n - 1]) fuzz_die("parsed without points or an open last stroke", "mem.pen");
        for (size_t i = 0; i < pf.n; i++)
            if (!isfinite(pf.x[i]) || !isfinite(pf.y[i]) || pf.end[i] > 1) fuzz_die("bad point", "mem.pen");
        pen_file_free(&pf);
    } else {
        fuzz_check_msg(err, "mem.pen");
        if (pf.n || pf.x) fuzz_die("pen file not left empty", err);
    }

    put("s.pen", pen, plen);
    if (mode & 4) drop("s.gt.txt");
    else put("s.gt.txt", gt, L);
    if (mode & 8) put("t.gt.txt", gt, L);
    else drop("t.gt.txt");
    vocab a;
    memset(&a, 0, sizeof a);
    int ok = 0;
    if (mode & 2) ok = pen_alphabet_build(&a, dir, err, sizeof err) == 0;
    else {
        static const char fixed[] = "abcdefgh .";
        ok = 1;
        for (size_t i = 0; ok && i < sizeof fixed - 1; i++) ok = vocab_add(&a, fixed + i, 1, err, sizeof err) >= 0;
        if (!ok) fuzz_die("vocab_add", err);
    }
    if (!ok) {
        fuzz_check_msg(err, dir);
        if (a.n) fuzz_die("alphabet not left empty", err);
        return 0;
    }
    pen_set s;
    int rc = pen_set_load(&s, dir, &a, (mode & 1) ? PEN_NORM_SAMPLE : PEN_NORM_NONE, err, sizeof err);
    if (rc != 0) {
        fuzz_check_msg(err, dir);
        if (s.n || s.x.n || s.lab || s.names) fuzz_die("set not left empty", err);
        vocab_free(&a);
        return 0;
    }
    if (s.n != 1 || s.x.F != PEN_FEATURES || strcmp(s.names[0], "s")) fuzz_die("not the one sample s", dir);
    int T = seqset_len(&s.x, 0);
    const float *x = s.x.x;
    for (int t = 0; t < T * PEN_FEATURES; t++)
        if (!isfinite(x[t])) fuzz_die("a frame is not finite", dir);
    if (x[3 * (T - 1) + 2] != 1.0f) fuzz_die("the last frame does not end a stroke", dir);
    size_t n;
    const int32_t *lab = pen_set_labels(&s, 0, &n);
    char *text;
    size_t tl;
    char path[700];
    snprintf(path, sizeof path, "%s/s.gt.txt", dir);
    if (pen_transcript_read(path, &text, &tl, err, sizeof err) != 0) fuzz_die("transcript unreadable after a load", err);
    if (n != chars(text, tl) || n < 1) fuzz_die("labels do not count the transcript's characters", dir);
    size_t need = n, pos = 0;
    for (size_t i = 0; i < n; i++) {
        size_t tok_len;
        const char *tok = vocab_token(&a, lab[i], &tok_len);
        if (!tok || pos + tok_len > tl || memcmp(text + pos, tok, tok_len) != 0) fuzz_die("labels do not spell the transcript", dir);
        pos += tok_len;
        if (i && lab[i] == lab[i - 1]) need++;
    }
    if ((size_t)T < need) fuzz_die("fewer frames than CTC needs", dir);
    free(text);
    fuzz_check_set(&s.x, dir);
    pen_set_free(&s);
    vocab_free(&a);
    return 0;
}
