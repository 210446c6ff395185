/* Tests of train/data_text.c and train/data_seq.c: corpora, vocabularies, B-stream
 * batching, sequence sets and their loaders, shuffled/bucketed batching.
 *
 * Every input is generated here into a temporary directory; one optional test reads
 * the real JSB Chorales file and skips when it is absent. The locale tests switch
 * LC_NUMERIC to a comma-decimal locale (de_DE.UTF-8, which ./do.sh test generates)
 * and skip only when no such locale is installed. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "data.h"
#include "numparse.h"
#include "rng.h"

/* ---- fixtures and helpers ---------------------------------------------------------- */

static char tmpdir[256];

static void setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "%s/recur_data_XXXXXX",
             getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    cr_assert_not_null(mkdtemp(tmpdir), "mkdtemp failed");
}

static void teardown(void)
{
    DIR *d = opendir(tmpdir);
    if (!d) return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(tmpdir);
}

TestSuite(data, .init = setup, .fini = teardown);

/* A path in the test's temporary directory (a static buffer per slot). */
static const char *tpath(const char *name)
{
    static char buf[8][512];
    static int slot;
    char *b = buf[slot++ % 8];
    snprintf(b, 512, "%s/%s", tmpdir, name);
    return b;
}

/* Writes len bytes to a file of the temporary directory; returns its path. */
static const char *wbytes(const char *name, const char *data, size_t len)
{
    const char *p = tpath(name);
    FILE *f = fopen(p, "wb");
    cr_assert_not_null(f, "cannot write %s", p);
    if (len) cr_assert_eq(fwrite(data, 1, len, f), len);
    fclose(f);
    return p;
}

static const char *wtext(const char *name, const char *text)
{
    return wbytes(name, text, strlen(text));
}

/* Asserts that err contains every given fragment. */
#define ASSERT_ERR(err, ...)                                                            \
    do {                                                                                \
        const char *frags_[] = {__VA_ARGS__};                                           \
        for (size_t i_ = 0; i_ < sizeof frags_ / sizeof frags_[0]; i_++)                \
            cr_assert_not_null(strstr((err), frags_[i_]), "error \"%s\" lacks \"%s\"", \
                               (err), frags_[i_]);                                      \
    } while (0)

static void assert_ids(const int32_t *got, const int32_t *want, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(got[i], want[i], "%s[%zu] = %d, expected %d", what, i, (int)got[i], (int)want[i]);
}

/* Switches LC_NUMERIC to an installed locale whose decimal point is ',' and returns
 * its name, or skips the test when there is none (./do.sh test generates de_DE.UTF-8).
 * Criterion runs each test in its own worker process, so the switch ends with it. */
static const char *comma_locale(void)
{
    static const char *const names[] = {"de_DE.UTF-8", "de_DE.utf8", "de_DE", "fr_FR.UTF-8", "fr_FR.utf8",
                                        "nl_NL.UTF-8", "es_ES.UTF-8", "it_IT.UTF-8", "ru_RU.UTF-8"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (setlocale(LC_NUMERIC, names[i]) && strcmp(localeconv()->decimal_point, ",") == 0) return names[i];
    setlocale(LC_NUMERIC, "C");
    cr_skip_test("no comma-decimal locale is installed (generate de_DE.UTF-8: ./do.sh test does)");
    return NULL;
}

/* ---- character corpora ----------------------------------------------------------------- */

Test(data, char_corpus_vocab_ids_split)
{
    const char *text = "abcabcabcabcabcaXYZ\n";   /* 20 bytes */
    const char *p = wtext("c.txt", text);
    corpus c;
    char err[512] = "";
    cr_assert_eq(corpus_char(&c, p, 0.1, 0.05, err, sizeof err), 0, "%s", err);
    /* distinct bytes in byte order: '\n' X Y Z a b c */
    cr_assert_eq(c.voc.n, 7);
    cr_assert_eq(c.voc.chars, 1);
    const char want[] = "\nXYZabc";
    for (int i = 0; i < 7; i++) {
        size_t l;
        const char *t = vocab_token(&c.voc, i, &l);
        cr_assert_eq(l, 1);
        cr_assert_eq(t[0], want[i], "token %d", i);
        cr_assert_eq(vocab_find(&c.voc, &want[i], 1), i);
    }
    cr_assert_eq(c.n[DATA_TRAIN], 17);
    cr_assert_eq(c.n[DATA_VALID], 2);
    cr_assert_eq(c.n[DATA_TEST], 1);
    for (size_t i = 0; i < 20; i++) {
        int part = i < 17 ? 0 : i < 19 ? 1 : 2;
        size_t at = i < 17 ? i : i < 19 ? i - 17 : i - 19;
        cr_assert_eq(c.ids[part][at], vocab_find(&c.voc, text + i, 1), "byte %zu", i);
    }
    cr_assert_eq(c.unk, -1);
    cr_assert_eq(c.eos, -1);
    /* decode gives the text back */
    char *out;
    size_t ol;
    cr_assert_eq(vocab_decode(&c.voc, c.ids[0], c.n[0], &out, &ol, err, sizeof err), 0, "%s", err);
    cr_assert_eq(ol, 17);
    cr_assert_eq(memcmp(out, text, 17), 0);
    free(out);
    corpus_free(&c);
    /* char-rnn's 95/5 */
    cr_assert_eq(corpus_char(&c, p, 0.05, 0, err, sizeof err), 0, "%s", err);
    cr_assert_eq(c.n[0], 19);
    cr_assert_eq(c.n[1], 1);
    cr_assert_eq(c.n[2], 0);
    cr_assert_null(c.ids[2]);
    corpus_free(&c);
}

Test(data, char_corpus_errors)
{
    corpus c;
    char err[512] = "";
    cr_assert_eq(corpus_char(&c, tpath("absent.txt"), 0.05, 0, err, sizeof err), -1);
    ASSERT_ERR(err, "absent.txt", "cannot open");
    cr_assert_eq(c.voc.n, 0);
    cr_assert_null(c.ids[0]);
    corpus_free(&c);   /* safe on a failed corpus */
    const char *e = wbytes("empty.txt", "", 0);
    cr_assert_eq(corpus_char(&c, e, 0.05, 0, err, sizeof err), -1);
    ASSERT_ERR(err, "empty.txt", "empty file");
    const char *p = wtext("x.txt", "abc");
    cr_assert_eq(corpus_char(&c, p, 0.6, 0.5, err, sizeof err), -1);
    ASSERT_ERR(err, "x.txt", "fractions");
    cr_assert_eq(corpus_char(&c, p, -0.1, 0, err, sizeof err), -1);
    cr_assert_eq(corpus_char(&c, p, NAN, 0, err, sizeof err), -1);
    cr_assert_eq(corpus_char(&c, p, 0.34, 0.34, err, sizeof err), 0, "%s", err); /* 1 + 1 + 1 */
    cr_assert_eq(c.n[0], 1);
    cr_assert_eq(c.n[1], 1);
    cr_assert_eq(c.n[2], 1);
    corpus_free(&c);
    /* NULL err is allowed */
    cr_assert_eq(corpus_char(&c, tpath("absent.txt"), 0.05, 0, NULL, 0), -1);
}

/* ---- word corpora ------------------------------------------------------------------------ */

Test(data, word_corpus_eos_unk)
{
    const char *tr = wtext("train.txt", "a b a\nc  a\tb\n");
    const char *va = wtext("valid.txt", "a d\nb");   /* last line without '\n' */
    const char *te = wtext("test.txt", "\nc\n");      /* an empty line gives <eos> */
    corpus c;
    char err[512] = "";
    cr_assert_eq(corpus_words(&c, tr, va, te, 0, err, sizeof err), 0, "%s", err);
    /* counts: a 3, b 2, <eos> 2, c 1; ties in byte order: "<eos>" < "b" */
    cr_assert_eq(c.voc.chars, 0);
    cr_assert_str_eq(vocab_token(&c.voc, 0, NULL), "a");
    cr_assert_str_eq(vocab_token(&c.voc, 1, NULL), "<eos>");
    cr_assert_str_eq(vocab_token(&c.voc, 2, NULL), "b");
    cr_assert_str_eq(vocab_token(&c.voc, 3, NULL), "c");
    cr_assert_eq(c.eos, 1);
    /* <unk> was needed by valid's "d": appended */
    cr_assert_eq(c.voc.n, 5);
    cr_assert_eq(c.unk, 4);
    cr_assert_str_eq(vocab_token(&c.voc, 4, NULL), "<unk>");
    int32_t wtr[] = {0, 2, 0, 1, 3, 0, 2, 1};
    cr_assert_eq(c.n[0], 8);
    assert_ids(c.ids[0], wtr, 8, "train");
    int32_t wva[] = {0, 4, 1, 2, 1};
    cr_assert_eq(c.n[1], 5);
    assert_ids(c.ids[1], wva, 5, "valid");
    int32_t wte[] = {1, 3, 1};
    cr_assert_eq(c.n[2], 3);
    assert_ids(c.ids[2], wte, 3, "test");
    /* decode: words joined by spaces, <eos> as a newline */
    char *out;
    size_t ol;
    cr_assert_eq(vocab_decode(&c.voc, c.ids[0], c.n[0], &out, &ol, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(out, "a b a\nc a b\n");
    free(out);
    int32_t *ids;
    size_t n;
    cr_assert_eq(vocab_encode(&c.voc, "b zz\na", 6, &ids, &n, err, sizeof err), 0, "%s", err);
    int32_t wenc[] = {2, 4, 1, 0};
    cr_assert_eq(n, 4);
    assert_ids(ids, wenc, 4, "encode");
    free(ids);
    corpus_free(&c);

    /* no valid/test: no <unk> in the vocabulary */
    cr_assert_eq(corpus_words(&c, tr, NULL, NULL, 0, err, sizeof err), 0, "%s", err);
    cr_assert_eq(c.voc.n, 4);
    cr_assert_eq(c.unk, -1);
    cr_assert_eq(vocab_id(&c.voc, "<unk>"), -1);
    cr_assert_null(c.ids[1]);
    cr_assert_eq(c.n[2], 0);
    corpus_free(&c);
}

Test(data, word_corpus_max_vocab)
{
    const char *tr = wtext("train.txt", "a b a\nc  a\tb\n");
    const char *va = wtext("valid.txt", "c a\n");
    corpus c;
    char err[512] = "";
    /* 4 distinct > 3: a, <eos>, then <unk> last; b and c map to <unk> */
    cr_assert_eq(corpus_words(&c, tr, va, NULL, 3, err, sizeof err), 0, "%s", err);
    cr_assert_eq(c.voc.n, 3);
    cr_assert_str_eq(vocab_token(&c.voc, 0, NULL), "a");
    cr_assert_str_eq(vocab_token(&c.voc, 1, NULL), "<eos>");
    cr_assert_str_eq(vocab_token(&c.voc, 2, NULL), "<unk>");
    cr_assert_eq(c.unk, 2);
    int32_t wtr[] = {0, 2, 0, 1, 2, 0, 2, 1};
    assert_ids(c.ids[0], wtr, 8, "train");
    int32_t wva[] = {2, 0, 1};
    assert_ids(c.ids[1], wva, 3, "valid");
    corpus_free(&c);
    /* a limit above the distinct count changes nothing */
    cr_assert_eq(corpus_words(&c, tr, NULL, NULL, 4, err, sizeof err), 0, "%s", err);
    cr_assert_eq(c.voc.n, 4);
    cr_assert_eq(c.unk, -1);
    corpus_free(&c);

    /* a literal <unk> of the training text keeps its rank when inside the limit */
    const char *t2 = wtext("t2.txt", "<unk> <unk> x\ny\n");
    cr_assert_eq(corpus_words(&c, t2, NULL, NULL, 3, err, sizeof err), 0, "%s", err);
    /* counts <unk> 2, <eos> 2, x 1, y 1 -> <eos> <unk> x; y -> <unk> */
    cr_assert_eq(c.voc.n, 3);
    cr_assert_str_eq(vocab_token(&c.voc, 0, NULL), "<eos>");
    cr_assert_str_eq(vocab_token(&c.voc, 1, NULL), "<unk>");
    cr_assert_str_eq(vocab_token(&c.voc, 2, NULL), "x");
    int32_t w2[] = {1, 1, 2, 0, 1, 0};
    cr_assert_eq(c.n[0], 6);
    assert_ids(c.ids[0], w2, 6, "train");
    corpus_free(&c);
    /* without a limit the literal <unk> is just a word */
    cr_assert_eq(corpus_words(&c, t2, NULL, NULL, 0, err, sizeof err), 0, "%s", err);
    cr_assert_eq(c.voc.n, 4);
    cr_assert_eq(c.unk, 1);
    corpus_free(&c);
}

Test(data, word_corpus_split_and_errors)
{
    char text[256] = "";
    for (int i = 0; i < 10; i++) {
        char line[32];
        snprintf(line, sizeof line, "w%d common\n", i);
        strcat(text, line);
    }
    const char *p = wtext("all.txt", text);
    corpus c;
    char err[512] = "";
    cr_assert_eq(corpus_words_split(&c, p, 0.2, 0.1, 0, err, sizeof err), 0, "%s", err);
    /* 7 train lines, 2 valid, 1 test, 3 tokens per line */
    cr_assert_eq(c.n[0], 21);
    cr_assert_eq(c.n[1], 6);
    cr_assert_eq(c.n[2], 3);
    /* the vocabulary comes from the train lines: w7..w9 are <unk> */
    cr_assert_eq(vocab_id(&c.voc, "w6") >= 0, 1);
    cr_assert_eq(vocab_id(&c.voc, "w7"), -1);
    cr_assert_eq(c.ids[1][0], c.unk);
    cr_assert_eq(c.ids[1][1], vocab_id(&c.voc, "common"));
    cr_assert_eq(c.ids[2][2], c.eos);
    corpus_free(&c);

    cr_assert_eq(corpus_words(&c, tpath("none.txt"), NULL, NULL, 0, err, sizeof err), -1);
    ASSERT_ERR(err, "none.txt", "cannot open");
    const char *tr = wtext("tr.txt", "a b\n");
    cr_assert_eq(corpus_words(&c, tr, tpath("nov.txt"), NULL, 0, err, sizeof err), -1);
    ASSERT_ERR(err, "nov.txt", "cannot open");
    cr_assert_eq(c.voc.n, 0);
    const char *e = wbytes("e.txt", "", 0);
    cr_assert_eq(corpus_words(&c, e, NULL, NULL, 0, err, sizeof err), -1);
    ASSERT_ERR(err, "e.txt", "empty file");
    const char *ws = wtext("ws.txt", "  \t ");
    cr_assert_eq(corpus_words(&c, ws, NULL, NULL, 0, err, sizeof err), -1);
    ASSERT_ERR(err, "ws.txt", "no words");
    cr_assert_eq(corpus_words_split(&c, tr, 0.5, 0.5, 0, err, sizeof err), -1);
    ASSERT_ERR(err, "tr.txt", "fractions");
}

/* ---- vocabulary text form -------------------------------------------------------------------- */

Test(data, vocab_save_load_roundtrip)
{
    char err[512] = "";
    /* a character vocabulary with the bytes that need escaping */
    const char bytes[] = {'\n', '\t', '\\', '\0', '\r', 'a', ' ', (char)0x7f, (char)0xc3, 'x'};
    vocab v;
    memset(&v, 0, sizeof v);
    for (size_t i = 0; i < sizeof bytes; i++) cr_assert_eq(vocab_add(&v, &bytes[i], 1, err, sizeof err), (int)i);
    v.chars = 1;
    char *t;
    size_t tl;
    cr_assert_eq(vocab_to_text(&v, &t, &tl, err, sizeof err), 0, "%s", err);
    const char want[] = "\\n\n\\t\n\\\\\n\\x00\n\\r\na\n \n\\x7f\n\xc3\nx\n";
    cr_assert_eq(tl, sizeof want - 1);
    cr_assert_eq(memcmp(t, want, tl), 0, "text form: %s", t);
    free(t);
    const char *p = tpath("chars.vocab");
    cr_assert_eq(vocab_save(&v, p, err, sizeof err), 0, "%s", err);
    vocab w;
    cr_assert_eq(vocab_load(&w, p, err, sizeof err), 0, "%s", err);
    cr_assert_eq(w.n, v.n);
    cr_assert_eq(w.chars, 1);
    for (int i = 0; i < v.n; i++) {
        size_t l;
        const char *s = vocab_token(&w, i, &l);
        cr_assert_eq(l, 1);
        cr_assert_eq(s[0], bytes[i], "token %d", i);
        cr_assert_eq(vocab_find(&w, &bytes[i], 1), i);
    }
    vocab_free(&w);
    vocab_free(&v);

    /* a word vocabulary from a corpus */
    const char *tr = wtext("train.txt", "the cat sat on the mat\nthe back\\slash word\n");
    corpus c;
    cr_assert_eq(corpus_words(&c, tr, NULL, NULL, 0, err, sizeof err), 0, "%s", err);
    const char *vp = tpath("words.vocab");
    cr_assert_eq(vocab_save(&c.voc, vp, err, sizeof err), 0, "%s", err);
    cr_assert_eq(vocab_load(&w, vp, err, sizeof err), 0, "%s", err);
    cr_assert_eq(w.chars, 0);
    cr_assert_eq(w.n, c.voc.n);
    for (int i = 0; i < w.n; i++) cr_assert_str_eq(vocab_token(&w, i, NULL), vocab_token(&c.voc, i, NULL));
    cr_assert_eq(vocab_id(&w, "back\\slash"), vocab_id(&c.voc, "back\\slash"));
    cr_assert_eq(vocab_id(&w, "the"), 0);
    vocab_free(&w);
    corpus_free(&c);

    /* copy */
    cr_assert_eq(vocab_from_text(&v, "x\ny\n", 4, "mem", err, sizeof err), 0, "%s", err);
    cr_assert_eq(vocab_copy(&w, &v, err, sizeof err), 0, "%s", err);
    cr_assert_eq(vocab_id(&w, "y"), 1);
    vocab_free(&w);
    vocab_free(&v);
}

Test(data, vocab_large_and_encode)
{
    char err[512] = "";
    vocab v;
    memset(&v, 0, sizeof v);
    char tok[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(tok, sizeof tok, "w%d", i);
        cr_assert_eq(vocab_add(&v, tok, strlen(tok), err, sizeof err), i);
    }
    cr_assert_eq(vocab_add(&v, "w17", 3, err, sizeof err), 17);   /* present: same id */
    cr_assert_eq(v.n, 5000);
    char *t;
    size_t tl;
    cr_assert_eq(vocab_to_text(&v, &t, &tl, err, sizeof err), 0);
    vocab w;
    cr_assert_eq(vocab_from_text(&w, t, tl, "big", err, sizeof err), 0, "%s", err);
    free(t);
    for (int i = 0; i < 5000; i += 7) {
        snprintf(tok, sizeof tok, "w%d", i);
        cr_assert_eq(vocab_id(&w, tok), i);
    }
    cr_assert_eq(vocab_id(&w, "w5000"), -1);
    cr_assert_null(vocab_token(&w, 5000, NULL));
    cr_assert_null(vocab_token(&w, -1, NULL));
    cr_assert_eq(vocab_add(&w, "", 0, err, sizeof err), -1);
    /* no <unk>: an unknown word cannot be encoded */
    int32_t *ids;
    size_t n;
    cr_assert_eq(vocab_encode(&w, "w1 nope", 7, &ids, &n, err, sizeof err), -1);
    ASSERT_ERR(err, "'nope'", "offset 3");
    vocab_free(&w);
    vocab_free(&v);

    /* a character vocabulary encodes bytes and refuses unknown ones */
    cr_assert_eq(vocab_from_text(&v, "a\nb\n\\n\n", 8, "chars", err, sizeof err), 0, "%s", err);
    cr_assert_eq(v.chars, 1);
    cr_assert_eq(vocab_encode(&v, "ab\na", 4, &ids, &n, err, sizeof err), 0, "%s", err);
    int32_t want[] = {0, 1, 2, 0};
    cr_assert_eq(n, 4);
    assert_ids(ids, want, 4, "char ids");
    free(ids);
    cr_assert_eq(vocab_encode(&v, "abc", 3, &ids, &n, err, sizeof err), -1);
    ASSERT_ERR(err, "'c'", "offset 2");
    /* save into a missing directory; load a directory */
    char bad[600];
    snprintf(bad, sizeof bad, "%s/no/such/dir/v.vocab", tmpdir);
    cr_assert_eq(vocab_save(&v, bad, err, sizeof err), -1);
    ASSERT_ERR(err, "v.vocab", "cannot create");
    vocab_free(&v);
    cr_assert_eq(vocab_load(&v, tmpdir, err, sizeof err), -1);
    ASSERT_ERR(err, "is a directory");
}

Test(data, vocab_text_errors)
{
    vocab v;
    char err[512] = "";
    cr_assert_eq(vocab_from_text(&v, "a\nb\na\n", 6, "v.txt", err, sizeof err), -1);
    ASSERT_ERR(err, "v.txt:3:", "duplicate");
    cr_assert_eq(v.n, 0);
    cr_assert_eq(vocab_from_text(&v, "a\n\nb\n", 5, "v.txt", err, sizeof err), -1);
    ASSERT_ERR(err, "v.txt:2:", "empty line");
    cr_assert_eq(vocab_from_text(&v, "a\nb\\q\n", 6, "v.txt", err, sizeof err), -1);
    ASSERT_ERR(err, "v.txt:2:2:", "escape");
    cr_assert_eq(vocab_from_text(&v, "\\x4\n", 4, "v.txt", err, sizeof err), -1);
    ASSERT_ERR(err, "v.txt:1:1:", "hex");
    cr_assert_eq(vocab_from_text(&v, "ab\\", 3, "v.txt", err, sizeof err), -1);
    ASSERT_ERR(err, "v.txt:1:3:", "backslash");
    cr_assert_eq(vocab_load(&v, tpath("nope.vocab"), err, sizeof err), -1);
    ASSERT_ERR(err, "nope.vocab", "cannot open");
    cr_assert_eq(vocab_load(&v, wbytes("e.vocab", "", 0), err, sizeof err), -1);
    ASSERT_ERR(err, "e.vocab", "empty file");
    /* the last '\n' may be missing */
    cr_assert_eq(vocab_from_text(&v, "a\nbc", 4, "v.txt", err, sizeof err), 0, "%s", err);
    cr_assert_eq(v.n, 2);
    cr_assert_eq(v.chars, 0);
    cr_assert_eq(vocab_id(&v, "bc"), 1);
    int32_t bad = 7;
    char *out;
    size_t ol;
    cr_assert_eq(vocab_decode(&v, &bad, 1, &out, &ol, err, sizeof err), -1);
    ASSERT_ERR(err, "id 7");
    vocab_free(&v);
}

/* ---- B-stream batching ------------------------------------------------------------------- */

Test(data, stream_matches_hand_example)
{
    int32_t ids[20];
    for (int i = 0; i < 20; i++) ids[i] = 100 + i;
    lm_stream s;
    char err[256] = "";
    cr_assert_eq(stream_init(&s, ids, 20, 2, 3, err, sizeof err), 0, "%s", err);
    /* batch_len 10, epoch_size (10 - 1) / 3 = 3; stream 0 = 100..109, stream 1 = 110..119 */
    cr_assert_eq(stream_count(&s), 3);
    const int32_t want_x[3][6] = {{100, 110, 101, 111, 102, 112},
                                  {103, 113, 104, 114, 105, 115},
                                  {106, 116, 107, 117, 108, 118}};
    const int32_t want_y[3][6] = {{101, 111, 102, 112, 103, 113},
                                  {104, 114, 105, 115, 106, 116},
                                  {107, 117, 108, 118, 109, 119}};
    int32_t x[6], y[6];
    for (size_t i = 0; i < 3; i++) {
        cr_assert_eq(stream_get(&s, i, x, y, err, sizeof err), 0, "%s", err);
        assert_ids(x, want_x[i], 6, "tokens");
        assert_ids(y, want_y[i], 6, "targets");
    }
    /* consecutive batches continue each stream: batch i+1's first inputs follow batch i's last */
    for (int i = 0; i + 1 < 3; i++)
        for (int b = 0; b < 2; b++) cr_assert_eq(want_x[i + 1][b], want_x[i][2 * 2 + b] + 1);
    cr_assert_eq(stream_get(&s, 3, x, y, err, sizeof err), -1);
    ASSERT_ERR(err, "batch 3");
    /* the iterator, its position and a restore */
    cr_assert_eq(stream_pos(&s), 0);
    cr_assert_eq(stream_next(&s, x, y), 1);
    assert_ids(x, want_x[0], 6, "next 0");
    cr_assert_eq(stream_next(&s, x, y), 1);
    size_t saved = stream_pos(&s);
    cr_assert_eq(saved, 2);
    lm_stream s2;
    cr_assert_eq(stream_init(&s2, ids, 20, 2, 3, err, sizeof err), 0);
    cr_assert_eq(stream_set_pos(&s2, saved, err, sizeof err), 0);
    int32_t x2[6], y2[6];
    cr_assert_eq(stream_next(&s, x, y), 1);
    cr_assert_eq(stream_next(&s2, x2, y2), 1);
    assert_ids(x2, x, 6, "resumed tokens");
    assert_ids(y2, y, 6, "resumed targets");
    assert_ids(x, want_x[2], 6, "next 2");
    cr_assert_eq(stream_next(&s, x, y), 0);
    cr_assert_eq(stream_set_pos(&s, 4, err, sizeof err), -1);
    cr_assert_eq(stream_set_pos(&s, 0, err, sizeof err), 0);
    cr_assert_eq(stream_next(&s, x, y), 1);
    assert_ids(x, want_x[0], 6, "new epoch");

    /* n not divisible by B: the tail is dropped (21 ids, B = 2: batch_len 10) */
    int32_t ids21[21];
    for (int i = 0; i < 21; i++) ids21[i] = i;
    cr_assert_eq(stream_init(&s, ids21, 21, 2, 3, err, sizeof err), 0);
    cr_assert_eq(s.batch_len, 10);
    cr_assert_eq(stream_get(&s, 0, x, y, err, sizeof err), 0);
    cr_assert_eq(x[1], 10);
    /* too short: B * (T + 1) ids are needed */
    cr_assert_eq(stream_init(&s, ids, 7, 2, 3, err, sizeof err), -1);
    ASSERT_ERR(err, "need at least 8");
    cr_assert_eq(stream_init(&s, ids, 8, 2, 3, err, sizeof err), 0);
    cr_assert_eq(stream_count(&s), 1);
    cr_assert_eq(stream_init(&s, ids, 20, 0, 3, err, sizeof err), -1);
}

/* ---- music JSON ---------------------------------------------------------------------------- */

static int frame_has(const float *f, int note)
{
    return f[note - 21] == 1.0f;
}

Test(data, music_small_file)
{
    const char *p = wtext("m.json",
                          "{\n"
                          "  \"train\": [ [[60, 64], [], [21,108]],\n"
                          "              [[60]] ],\n"
                          "  \"valid\" : [[[62],[63, 63.0, 0.64E+2]]]\n"
                          "}\n");
    seqdata d;
    char err[512] = "";
    cr_assert_eq(music_load(&d, p, err, sizeof err), 0, "%s", err);
    cr_assert_eq(d.nseq[0], 2);
    cr_assert_eq(d.frames[0], 4);
    cr_assert_eq(d.set[0].n, 1);   /* the one-frame sequence gives no step: dropped */
    cr_assert_eq(d.set[0].F, 88);
    cr_assert_eq(d.set[0].kind, SEQ_TGT_NEXT);
    cr_assert_eq(seqset_len(&d.set[0], 0), 2);
    cr_assert_eq(d.nseq[1], 1);
    cr_assert_eq(d.frames[1], 2);
    cr_assert_eq(seqset_len(&d.set[1], 0), 1);
    float v1[88];   /* frame 1 of valid: notes 63 and 64 */
    cr_assert_eq(seqset_step_x(&d.set[1], 0, 1, v1, err, sizeof err), 0, "%s", err);
    cr_assert(frame_has(v1, 63) && frame_has(v1, 64) && !frame_has(v1, 62));
    for (int k = 0; k < 88; k++) cr_assert(v1[k] == 0.0f || v1[k] == 1.0f);
    cr_assert_eq(seqset_step_x(&d.set[1], 0, 2, v1, err, sizeof err), -1);
    ASSERT_ERR(err, "step 2 out of range (0..1)");
    cr_assert_null(d.set[0].x);   /* frames are bits until a batch is collated */
    cr_assert_not_null(d.set[0].xb);
    cr_assert_eq(d.nseq[2], 0);
    cr_assert_eq(d.set[2].n, 0);
    /* batch: input frame t, target frame t+1 */
    batch_buf bb;
    memset(&bb, 0, sizeof bb);
    rc_batch b;
    int32_t idx = 0;
    cr_assert_eq(seqset_collate(&d.set[0], &idx, 1, &bb, &b, err, sizeof err), 0, "%s", err);
    cr_assert_eq(b.T, 2);
    cr_assert_eq(b.B, 1);
    cr_assert_eq(b.lengths[0], 2);
    cr_assert_null(b.tokens);
    cr_assert_null(b.targets);
    float sum = 0;
    for (int i = 0; i < 2 * 88; i++) sum += b.x[i] + b.y[i];
    cr_assert_eq(sum, 2 + 0 + 0 + 2);
    cr_assert(frame_has(b.x, 60) && frame_has(b.x, 64));
    cr_assert(frame_has(b.y + 88, 21) && frame_has(b.y + 88, 108));
    cr_assert_eq(b.y[0 * 88 + 60 - 21], 0.0f);   /* target of step 0 is the silent frame */
    batch_buf_free(&bb);
    seqdata_free(&d);
    /* an empty train list is fine; valid/test absent */
    p = wtext("m2.json", "{\"train\":[]}");
    cr_assert_eq(music_load(&d, p, err, sizeof err), 0, "%s", err);
    cr_assert_eq(d.set[0].n, 0);
    seqdata_free(&d);
}

/* Loads text as music and asserts failure with the given fragments in the message. */
#define MUSIC_BAD(text, ...)                                                     \
    do {                                                                         \
        seqdata d_;                                                              \
        char e_[512] = "";                                                       \
        const char *p_ = wtext("bad.json", text);                                \
        cr_assert_eq(music_load(&d_, p_, e_, sizeof e_), -1, "accepted: %s", text); \
        ASSERT_ERR(e_, "bad.json:", __VA_ARGS__);                                \
        cr_assert_eq(d_.set[0].n, 0);                                            \
        seqdata_free(&d_);                                                       \
    } while (0)

Test(data, music_rejects_malformed)
{
    MUSIC_BAD("{\"train\": [[[60], [62]]", ":1:24:", "unterminated list of sequences", "line 1, column 11");
    MUSIC_BAD("{\"train\": [[[60], [62\n", ":2:1:", "unterminated list of notes");
    MUSIC_BAD("{\"train\": [[[60], [20]]]}", ":1:20:", "note 20 out of range 21..108");
    MUSIC_BAD("{\"train\": [[[60],\n  [109]]]}", ":2:4:", "note 109 out of range");
    MUSIC_BAD("{\"train\": [[[60], [\"C4\"]]]}", ":1:20:", "expected a note number", "'\"'");
    MUSIC_BAD("{\"train\": [[[60], [60x]]]}", ":1:22:", "expected ',' or ']'", "'x'");
    MUSIC_BAD("{\"train\": [[[60.5]]]}", ":1:14:", "not an integer");
    MUSIC_BAD("{\"train\": [[[-]]]}", ":1:14:", "malformed number");
    MUSIC_BAD("{\"valid\": [[[60]]],\n \"test\": []\n}", ":3:1:", "no \"train\"");
    MUSIC_BAD("{}", ":1:2:", "no \"train\"");
    MUSIC_BAD("{\"train\": [], \"extra\": []}", ":1:15:", "unknown key \"extra\"");
    MUSIC_BAD("{\"train\": [], \"train\": []}", ":1:15:", "duplicate key");
    MUSIC_BAD("{\"train\": [] \"valid\": []}", ":1:14:", "expected ',' or '}'");
    MUSIC_BAD("{\"train\" [] }", ":1:10:", "expected ':'");
    MUSIC_BAD("{\"train\": [60]}", ":1:12:", "expected '[' to start a sequence");
    MUSIC_BAD("{\"train\": []} x", ":1:15:", "after the object");
    MUSIC_BAD("[1, 2]", ":1:1:", "expected '{'");
    MUSIC_BAD("{\"train\": [[[60],]]}", ":1:18:", "expected '[' to start a step");
    MUSIC_BAD("{\"train\": []", ":1:13:", "unterminated object");
    MUSIC_BAD("{\"tra", ":1:2:", "unterminated string");
    MUSIC_BAD("{1: []}", ":1:2:", "expected a key");
    MUSIC_BAD("{\"train\": [[[60, \x01]]]}", ":1:18:", "byte 0x01");
    MUSIC_BAD("{\"train\": [[[60,", ":1:17:", "unexpected end of file");
    MUSIC_BAD("{\"train\": [[[2.1e2]]]}", ":1:14:", "note 2.1e2 out of range");
    seqdata d;
    char err[512] = "";
    cr_assert_eq(music_load(&d, tpath("nofile.json"), err, sizeof err), -1);
    ASSERT_ERR(err, "nofile.json", "cannot open");
    cr_assert_eq(music_load(&d, wbytes("e.json", "", 0), err, sizeof err), -1);
    ASSERT_ERR(err, "e.json", "empty file");
}

Test(data, music_jsb_chorales_split_sizes)
{
    const char *p = "/work/shared/data/music/JSB_Chorales.json";
    if (access(p, R_OK) != 0) cr_skip("%s is absent", p);
    seqdata d;
    char err[512] = "";
    cr_assert_eq(music_load(&d, p, err, sizeof err), 0, "%s", err);
    cr_assert_eq(d.nseq[0], 229);
    cr_assert_eq(d.nseq[1], 76);
    cr_assert_eq(d.nseq[2], 77);
    cr_assert_eq(d.frames[0], 13807);
    cr_assert_eq(d.frames[1], 4602);
    cr_assert_eq(d.frames[2], 4725);
    cr_assert_eq(d.set[0].n, 229);
    cr_assert_eq(seqset_steps(&d.set[0]), 13807 - 229);
    seqdata_free(&d);
}

/* A file of n sequences of L empty frames each ("[]", 3 bytes a frame): its path and
 * size in *bytes. */
static const char *silent_music(const char *name, size_t n, size_t L, size_t *bytes)
{
    size_t cap = 32 + n * (3 * L + 3), k = 0;
    char *t = malloc(cap);
    cr_assert_not_null(t);
    k += (size_t)snprintf(t + k, cap - k, "{\"train\":[");
    for (size_t i = 0; i < n; i++) {
        t[k++] = i ? ',' : '[';
        if (i) t[k++] = '[';
        for (size_t j = 0; j < L; j++) {
            if (j) t[k++] = ',';
            t[k++] = '[';
            t[k++] = ']';
        }
        t[k++] = ']';
    }
    k += (size_t)snprintf(t + k, cap - k, "]}");
    cr_assert_lt(k, cap);
    const char *p = wbytes(name, t, k);
    free(t);
    *bytes = k;
    return p;
}

/* Frames are stored compactly and expanded to 88 floats only in a batch: a file of
 * empty frames (3 bytes each) once took 88 floats a frame (a 3 MB file, 690 MB). The
 * set must hold a few bytes per input byte, whether one long sequence or many short. */
Test(data, music_memory_follows_file_size)
{
    struct { size_t n, L; } cases[] = { {1, 200000}, {40000, 2}, {2000, 50} };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        size_t bytes, frames = cases[c].n * cases[c].L;
        const char *p = silent_music("silent.json", cases[c].n, cases[c].L, &bytes);
        seqdata d;
        char err[512] = "";
        cr_assert_eq(music_load(&d, p, err, sizeof err), 0, "%s", err);
        cr_assert_eq(d.frames[0], frames);
        size_t held = seqset_bytes(&d.set[0]);
        /* 2 words of bits a frame, at most doubled by growth, plus the offsets */
        cr_expect_leq(held, 12 * bytes, "%zu sequences of %zu frames: %zu bytes held for a %zu-byte file "
                      "(%.1f bytes a frame)", cases[c].n, cases[c].L, held, bytes, (double)held / (double)frames);
        if (cases[c].L > 1000) {   /* a batch of it would be 140 MB of floats */
            seqdata_free(&d);
            continue;
        }
        /* the frames still come out as 88 floats in a batch */
        batch_buf bb;
        memset(&bb, 0, sizeof bb);
        rc_batch b;
        int32_t idx = 0;
        cr_assert_eq(seqset_collate(&d.set[0], &idx, 1, &bb, &b, err, sizeof err), 0, "%s", err);
        cr_assert_eq(b.T, (int)cases[c].L - 1);
        double sum = 0;
        for (size_t i = 0; i < (size_t)b.T * 88; i++) sum += b.x[i] + b.y[i];
        cr_expect_eq(sum, 0.0);
        batch_buf_free(&bb);
        seqdata_free(&d);
    }
}

/* Binary sets: bits in, floats out; misuse and impossible batches are errors. */
Test(data, binary_set_and_absurd_batches)
{
    seqset s;
    char err[512] = "";
    cr_assert_eq(seqset_init_binary(&s, 70, SEQ_TGT_CLASS, err, sizeof err), -1);
    ASSERT_ERR(err, "only none or next");
    cr_assert_eq(seqset_init_binary(&s, 0, SEQ_TGT_NONE, err, sizeof err), -1);
    cr_assert_eq(seqset_init_binary(&s, 70, SEQ_TGT_NEXT, err, sizeof err), 0, "%s", err);
    cr_assert_eq(s.words, 2);
    uint64_t bits[3 * 2] = {1, 0, (uint64_t)1 << 63, 1u << 5, 0, 0};   /* features 0; 63, 69; none */
    cr_assert_eq(seqset_add_bits(&s, 3, bits, err, sizeof err), 0, "%s", err);
    float x[70];
    cr_assert_eq(seqset_step_x(&s, 0, 1, x, err, sizeof err), 0, "%s", err);
    for (int k = 0; k < 70; k++) cr_assert_eq(x[k], (k == 63 || k == 69) ? 1.0f : 0.0f, "feature %d", k);
    uint64_t stray[2 * 2] = {0, 0, 0, 1u << 6};   /* feature 70 of a 70-feature set */
    cr_assert_eq(seqset_add_bits(&s, 2, stray, err, sizeof err), -1);
    ASSERT_ERR(err, "step 1 has bits set beyond its 70 features");
    cr_assert_eq(seqset_add(&s, 2, x, NULL, 0, NULL, NULL, err, sizeof err), -1);
    ASSERT_ERR(err, "binary set takes bits");
    seqset w;
    cr_assert_eq(seqset_windows(&w, &s, 0, 1, 1, err, sizeof err), -1);
    cr_assert_eq(s.n, 1);
    batch_buf bb;
    memset(&bb, 0, sizeof bb);
    rc_batch b;
    int32_t idx[4] = {0, 0, 0, 0};
    cr_assert_eq(seqset_collate(&s, idx, 1, &bb, &b, err, sizeof err), 0, "%s", err);
    cr_assert_eq(b.T, 2);
    cr_assert_eq(b.x[0], 1.0f);
    cr_assert_eq(b.y[63], 1.0f);
    cr_assert_eq(b.y[70 + 0], 0.0f);
    seqset_free(&s);

    /* a batch whose floats would not fit in memory's address space is refused with
     * its sizes, before anything is allocated: a set that claims one sequence of
     * INT_MAX frames of INT_MAX features (nothing of it is read) */
    seqset big;
    memset(&big, 0, sizeof big);
    size_t off[2] = {0, (size_t)INT_MAX};
    big.n = 1;
    big.F = big.K = INT_MAX;
    big.kind = SEQ_TGT_NEXT;
    big.off = off;
    cr_assert_eq(seqset_collate(&big, idx, 4, &bb, &b, err, sizeof err), -1);
    ASSERT_ERR(err, "a batch of 4 sequences of up to 2147483646 steps", "more than memory can address");
    batch_buf_free(&bb);
}

/* Notes are read with '.' as the decimal point whatever the locale: under a German
 * locale strtod stops at the '.', so 6.1e1 became note 6 and 60.5 note 60. */
Test(data, music_numbers_ignore_locale)
{
    const char *loc = comma_locale();
    const char *p = wtext("loc.json", "{\"train\": [[[6.1e1, 60.0], [62]]]}");
    seqdata d;
    char err[512] = "";
    cr_assert_eq(music_load(&d, p, err, sizeof err), 0, "under %s: %s", loc, err);
    float x[88];
    cr_assert_eq(seqset_step_x(&d.set[0], 0, 0, x, err, sizeof err), 0, "%s", err);
    cr_expect(frame_has(x, 61) && frame_has(x, 60) && !frame_has(x, 62), "under %s: 6.1e1 is not note 61", loc);
    seqdata_free(&d);
    p = wtext("loc2.json", "{\"train\": [[[60.5], [62]]]}");
    cr_assert_eq(music_load(&d, p, err, sizeof err), -1, "under %s: note 60.5 accepted", loc);
    ASSERT_ERR(err, "loc2.json:1:14:", "note 60.5 is not an integer");
    setlocale(LC_NUMERIC, "C");
}

/* Fields are read with '.' as the decimal point whatever the locale: under a German
 * locale "1.5,2.25" was taken for a header. */
Test(data, csv_numbers_ignore_locale)
{
    const char *loc = comma_locale();
    const char *p = wtext("loc.csv", "1.5,2.25\n-0.125,3e-1\n");
    seqset s;
    char err[512] = "";
    cr_assert_eq(csv_load(&s, p, err, sizeof err), 0, "under %s: %s", loc, err);
    cr_expect_null(s.names, "under %s: the first row was taken for a header", loc);
    cr_assert_eq(seqset_len(&s, 0), 2, "under %s: %d rows", loc, seqset_len(&s, 0));
    const float want[] = {1.5f, 2.25f, -0.125f, 0.3f};
    for (int i = 0; i < 4; i++) cr_expect_eq(s.x[i], want[i], "under %s: x[%d] = %g", loc, i, (double)s.x[i]);
    seqset_free(&s);
    setlocale(LC_NUMERIC, "C");
}

/* The shared parser under the current locale (loc, for messages): C syntax only. */
static void check_num_parse(const char *loc)
{
    static const char *const good[] = {"0", "-0", "+1", "1.5", ".5", "5.", "-2.5e-3", "1E+2", "007", "3e0"};
    static const double gv[] = {0, -0.0, 1, 1.5, 0.5, 5, -2.5e-3, 100, 7, 3};
    static const char *const bad[] = {"", "+", "-", ".", "e1", "1e", "1e+", "1,5", " 1", "1 ", "0x10", "inf",
                                      "nan", "1.5.2", "--1", "1e1.5", "1..2"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        double v = -99;
        float f = -99;
        cr_expect_eq(num_parse(good[i], strlen(good[i]), &v), 0, "%s: \"%s\" rejected", loc, good[i]);
        cr_expect_eq(v, gv[i], "%s: \"%s\" = %g", loc, good[i], v);
        cr_expect_eq(num_parse_float(good[i], strlen(good[i]), &f), 0);
        cr_expect_eq(f, (float)gv[i], "%s: \"%s\" = %g as float", loc, good[i], (double)f);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        double v;
        cr_expect_eq(num_parse(bad[i], strlen(bad[i]), &v), -1, "%s: \"%s\" accepted", loc, bad[i]);
    }
    /* only len bytes are read: "1.25" of "1.2589" is 1.25 */
    double v = 0;
    cr_expect_eq(num_parse("1.2589", 4, &v), 0);
    cr_expect_eq(v, 1.25, "%s: %g", loc, v);
    /* a long number (copied to the heap) is read to its last digit: 2^53 + 1 and a
     * little more rounds up to 2^53 + 2, where 2^53 + 1 alone rounds to even, 2^53 */
    char longnum[400];
    memset(longnum, '0', sizeof longnum);
    memcpy(longnum, "9007199254740993.", 17);
    longnum[sizeof longnum - 1] = '1';
    cr_expect_eq(num_parse(longnum, sizeof longnum, &v), 0);
    cr_expect_eq(v, 9007199254740994.0, "%s: %.17g", loc, v);
    cr_expect_eq(num_parse(longnum, 16, &v), 0);
    cr_expect_eq(v, 9007199254740992.0, "%s: %.17g", loc, v);
}

/* The shared parser: the same syntax and values in the C locale and a comma one. */
Test(data, num_parse_syntax_and_locale)
{
    check_num_parse("C");
    const char *loc = comma_locale();
    check_num_parse(loc);
    setlocale(LC_NUMERIC, "C");
}

/* ---- CSV ---------------------------------------------------------------------------------- */

Test(data, csv_header_windows)
{
    const char *p = wtext("h.csv", "time, value\r\n0,1.5\r\n1,2.5\n\n2,-3e1\n3,4\n4,5\n");
    seqset s;
    char err[512] = "";
    cr_assert_eq(csv_load(&s, p, err, sizeof err), 0, "%s", err);
    cr_assert_eq(s.n, 1);
    cr_assert_eq(s.F, 2);
    cr_assert_eq(seqset_len(&s, 0), 5);
    cr_assert_not_null(s.names);
    cr_assert_str_eq(s.names[0], "time");
    cr_assert_str_eq(s.names[1], "value");
    const float want[] = {0, 1.5f, 1, 2.5f, 2, -30, 3, 4, 4, 5};
    for (int i = 0; i < 10; i++) cr_assert_eq(s.x[i], want[i], "x[%d] = %g", i, s.x[i]);
    /* windows of T = 2, stride 2: starts 0 and 2 (0 + 3 <= 5, 2 + 3 <= 5, 4 + 3 > 5) */
    seqset w;
    cr_assert_eq(seqset_windows(&w, &s, 0, 2, 2, err, sizeof err), 0, "%s", err);
    cr_assert_eq(w.n, 2);
    cr_assert_eq(w.kind, SEQ_TGT_NEXT);
    cr_assert_eq(seqset_len(&w, 1), 2);
    cr_assert_str_eq(w.names[1], "value");
    batch_buf bb;
    memset(&bb, 0, sizeof bb);
    rc_batch b;
    int32_t idx[2] = {0, 1};
    cr_assert_eq(seqset_collate(&w, idx, 2, &bb, &b, err, sizeof err), 0, "%s", err);
    cr_assert_eq(b.T, 2);
    /* input rows [i, i+2), target rows [i+1, i+3): row t*B+b */
    const float wx[] = {0, 1.5f, 2, -30, 1, 2.5f, 3, 4};
    const float wy[] = {1, 2.5f, 3, 4, 2, -30, 4, 5};
    for (int i = 0; i < 8; i++) {
        cr_assert_eq(b.x[i], wx[i], "x[%d]", i);
        cr_assert_eq(b.y[i], wy[i], "y[%d]", i);
    }
    batch_buf_free(&bb);
    seqset_free(&w);
    /* stride 1: 3 windows; a window longer than the series is an error */
    cr_assert_eq(seqset_windows(&w, &s, 0, 2, 1, err, sizeof err), 0, "%s", err);
    cr_assert_eq(w.n, 3);
    seqset_free(&w);
    cr_assert_eq(seqset_windows(&w, &s, 0, 5, 1, err, sizeof err), -1);
    ASSERT_ERR(err, "5 rows", "needs 6");
    cr_assert_eq(seqset_windows(&w, &s, 1, 2, 1, err, sizeof err), -1);
    ASSERT_ERR(err, "sequence 1 out of range");
    cr_assert_eq(seqset_windows(&w, &s, 0, 2, 0, err, sizeof err), -1);
    seqset_free(&s);
}

Test(data, csv_no_header_and_errors)
{
    const char *p = wtext("n.csv", "1,2,3\n4,5,6");
    seqset s;
    char err[512] = "";
    cr_assert_eq(csv_load(&s, p, err, sizeof err), 0, "%s", err);
    cr_assert_null(s.names);
    cr_assert_eq(s.F, 3);
    cr_assert_eq(seqset_len(&s, 0), 2);
    cr_assert_eq(s.x[5], 6.0f);
    seqset_free(&s);
    p = wtext("r.csv", "a,b,c\n1,2,3\n4,5,6\n\n7,8\n");
    cr_assert_eq(csv_load(&s, p, err, sizeof err), -1);
    ASSERT_ERR(err, "r.csv:5:", "2 columns, expected 3");
    cr_assert_eq(s.n, 0);
    p = wtext("r2.csv", "1,2\n3,4,5\n");
    cr_assert_eq(csv_load(&s, p, err, sizeof err), -1);
    ASSERT_ERR(err, "r2.csv:2:", "3 columns, expected 2");
    p = wtext("bad.csv", "1,2\n3,x\n");
    cr_assert_eq(csv_load(&s, p, err, sizeof err), -1);
    ASSERT_ERR(err, "bad.csv:2:3:", "field 2", "not a finite number");
    p = wtext("empty_field.csv", "1,2\n3,\n");
    cr_assert_eq(csv_load(&s, p, err, sizeof err), -1);
    ASSERT_ERR(err, "empty_field.csv:2:3:");
    p = wtext("hdr.csv", "x,y\n");
    cr_assert_eq(csv_load(&s, p, err, sizeof err), -1);
    ASSERT_ERR(err, "hdr.csv", "no data rows");
    cr_assert_eq(csv_load(&s, wbytes("e.csv", "", 0), err, sizeof err), -1);
    ASSERT_ERR(err, "e.csv", "empty file");
    cr_assert_eq(csv_load(&s, tpath("missing.csv"), err, sizeof err), -1);
    ASSERT_ERR(err, "missing.csv", "cannot open");
}

/* ---- labelled text ------------------------------------------------------------------------- */

Test(data, text_classification)
{
    const char *tr = wtext("cls.train", "pos\tgood movie good\nneg\tbad movie\n\npos\tgreat\n");
    const char *va = wtext("cls.valid", "neg\tawful movie\n");
    seqdata d;
    char err[512] = "";
    cr_assert_eq(text_class_load(&d, tr, va, NULL, 0, err, sizeof err), 0, "%s", err);
    /* labels in byte order: neg 0, pos 1 */
    cr_assert_eq(d.labels.n, 2);
    cr_assert_str_eq(vocab_token(&d.labels, 0, NULL), "neg");
    cr_assert_str_eq(vocab_token(&d.labels, 1, NULL), "pos");
    /* words by frequency: good 2, movie 2 (byte order), bad, great; <unk> added for valid */
    cr_assert_str_eq(vocab_token(&d.words, 0, NULL), "good");
    cr_assert_str_eq(vocab_token(&d.words, 1, NULL), "movie");
    cr_assert_str_eq(vocab_token(&d.words, 2, NULL), "bad");
    cr_assert_str_eq(vocab_token(&d.words, 3, NULL), "great");
    cr_assert_str_eq(vocab_token(&d.words, 4, NULL), "<unk>");
    seqset *s = &d.set[DATA_TRAIN];
    cr_assert_eq(s->n, 3);
    cr_assert_eq(s->kind, SEQ_TGT_CLASS);
    cr_assert_eq(d.nseq[0], 3);
    cr_assert_eq(seqset_len(s, 0), 3);
    cr_assert_eq(seqset_len(s, 2), 1);
    int32_t wtok[] = {0, 1, 0, 2, 1, 3};
    assert_ids(s->tok, wtok, 6, "tokens");
    int32_t wcls[] = {1, 0, 1};
    assert_ids(s->cls, wcls, 3, "classes");
    cr_assert_eq(d.set[1].n, 1);
    cr_assert_eq(d.set[1].tok[0], 4);
    cr_assert_eq(d.set[1].tok[1], 1);
    cr_assert_eq(d.set[1].cls[0], 0);
    /* collate: targets [B], tokens padded with 0 */
    batch_buf bb;
    memset(&bb, 0, sizeof bb);
    rc_batch b;
    int32_t idx[3] = {2, 0, 1};
    cr_assert_eq(seqset_collate(s, idx, 3, &bb, &b, err, sizeof err), 0, "%s", err);
    cr_assert_eq(b.T, 3);
    int32_t wt[] = {3, 0, 2, 0, 1, 1, 0, 0, 0};
    assert_ids(b.tokens, wt, 9, "batch tokens");
    int32_t wl[] = {1, 3, 2};
    assert_ids(b.lengths, wl, 3, "lengths");
    int32_t wc[] = {1, 1, 0};
    assert_ids(b.targets, wc, 3, "targets");
    cr_assert_null(b.x);
    cr_assert_null(b.y);
    batch_buf_free(&bb);
    seqdata_free(&d);

    /* numeric labels sort by value */
    const char *num = wtext("num.train", "10\ta\n2\tb\n1\tc\n");
    cr_assert_eq(text_class_load(&d, num, NULL, NULL, 0, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(vocab_token(&d.labels, 0, NULL), "1");
    cr_assert_str_eq(vocab_token(&d.labels, 1, NULL), "2");
    cr_assert_str_eq(vocab_token(&d.labels, 2, NULL), "10");
    seqdata_free(&d);

    /* errors */
    const char *bad = wtext("bad.train", "pos\tok\npos no tab here\n");
    cr_assert_eq(text_class_load(&d, bad, NULL, NULL, 0, err, sizeof err), -1);
    ASSERT_ERR(err, "bad.train:2:", "no tab");
    bad = wtext("bad1.train", "pos\tok\n \tno label\n");
    cr_assert_eq(text_class_load(&d, bad, NULL, NULL, 0, err, sizeof err), -1);
    ASSERT_ERR(err, "bad1.train:2:", "empty label");
    bad = wtext("bad2.train", "pos\t  \n");
    cr_assert_eq(text_class_load(&d, bad, NULL, NULL, 0, err, sizeof err), -1);
    ASSERT_ERR(err, "bad2.train:1:", "no words");
    const char *bv = wtext("bad.valid", "\n\nmaybe\tgood\n");
    cr_assert_eq(text_class_load(&d, tr, bv, NULL, 0, err, sizeof err), -1);
    ASSERT_ERR(err, "bad.valid:3:", "label \"maybe\"");
    cr_assert_eq(d.set[0].n, 0);
    cr_assert_eq(text_class_load(&d, tpath("no.train"), NULL, NULL, 0, err, sizeof err), -1);
    ASSERT_ERR(err, "no.train", "cannot open");
    cr_assert_eq(text_class_load(&d, wbytes("e.train", "", 0), NULL, NULL, 0, err, sizeof err), -1);
    ASSERT_ERR(err, "e.train", "empty file");
    cr_assert_eq(text_class_load(&d, wtext("blank.train", "\n \n"), NULL, NULL, 0, err, sizeof err), -1);
    ASSERT_ERR(err, "blank.train", "no sequences");
}

Test(data, text_labelling)
{
    const char *tr = wtext("tag.train", "the/DT dog/NN runs/VBZ\nthe/DT 1/2/CD\n");
    const char *te = wtext("tag.test", "a/DT dog/NN\n");
    seqdata d;
    char err[512] = "";
    cr_assert_eq(text_tags_load(&d, tr, NULL, te, 0, err, sizeof err), 0, "%s", err);
    /* tags in byte order: CD DT NN VBZ */
    cr_assert_eq(d.labels.n, 4);
    cr_assert_eq(vocab_id(&d.labels, "CD"), 0);
    cr_assert_eq(vocab_id(&d.labels, "DT"), 1);
    cr_assert_eq(vocab_id(&d.labels, "NN"), 2);
    cr_assert_eq(vocab_id(&d.labels, "VBZ"), 3);
    /* words: the 2, then 1/2, dog, runs (byte order) */
    cr_assert_eq(vocab_id(&d.words, "the"), 0);
    cr_assert_eq(vocab_id(&d.words, "1/2"), 1);
    seqset *s = &d.set[0];
    cr_assert_eq(s->kind, SEQ_TGT_TAGS);
    cr_assert_eq(s->n, 2);
    int32_t wtag[] = {1, 2, 3, 1, 0};
    assert_ids(s->tag, wtag, 5, "tags");
    cr_assert_eq(d.set[2].n, 1);
    cr_assert_eq(d.set[2].tok[0], vocab_id(&d.words, "<unk>"));
    cr_assert_eq(d.set[2].tag[0], 1);
    cr_assert_eq(d.set[1].n, 0);
    /* collate: per-step targets padded with -1 */
    batch_buf bb;
    memset(&bb, 0, sizeof bb);
    rc_batch b;
    int32_t idx[2] = {1, 0};
    cr_assert_eq(seqset_collate(s, idx, 2, &bb, &b, err, sizeof err), 0, "%s", err);
    cr_assert_eq(b.T, 3);
    int32_t wt[] = {1, 1, 0, 2, -1, 3};
    assert_ids(b.targets, wt, 6, "batch targets");
    batch_buf_free(&bb);
    seqdata_free(&d);

    const char *bad = wtext("bad.train", "the/DT dog\n");
    cr_assert_eq(text_tags_load(&d, bad, NULL, NULL, 0, err, sizeof err), -1);
    ASSERT_ERR(err, "bad.train:1:8:", "\"dog\"", "word/tag");
    bad = wtext("bad2.train", "the/DT\n/NN x/\n");
    cr_assert_eq(text_tags_load(&d, bad, NULL, NULL, 0, err, sizeof err), -1);
    ASSERT_ERR(err, "bad2.train:2:1:");
    const char *bt = wtext("bad.test", "the/DT dog/XX\n");
    cr_assert_eq(text_tags_load(&d, tr, NULL, bt, 0, err, sizeof err), -1);
    ASSERT_ERR(err, "bad.test:1:12:", "tag \"XX\"");
}

/* ---- batching ---------------------------------------------------------------------------------- */

/* A token set of n sequences with lengths from the generator (1..maxlen); token = id. */
static void make_set(seqset *s, int n, int maxlen, uint64_t seed)
{
    char err[256] = "";
    cr_assert_eq(seqset_init(s, 0, SEQ_TGT_TAGS, 0, err, sizeof err), 0, "%s", err);
    rng_t r;
    rng_seed(&r, seed);
    int32_t tok[512], tag[512];
    for (int i = 0; i < n; i++) {
        int len = 1 + (int)(rng_next(&r) % (uint64_t)maxlen);
        for (int t = 0; t < len; t++) {
            tok[t] = i;
            tag[t] = t;
        }
        cr_assert_eq(seqset_add(s, len, NULL, tok, 0, tag, NULL, err, sizeof err), 0, "%s", err);
    }
}

/* Checks that an epoch of b covers every sequence exactly once and batches are right. */
static void check_epoch(batcher *b)
{
    int n = b->set->n;
    int *seen = calloc((size_t)n, sizeof *seen);
    rc_batch x;
    char err[256] = "";
    int k, batches = 0;
    while ((k = batcher_next(b, &x, err, sizeof err)) == 1) {
        batches++;
        cr_assert(x.B == b->B || batches == b->count, "a short batch before the last");
        for (int j = 0; j < x.B; j++) {
            int id = x.tokens[j];
            cr_assert(id >= 0 && id < n);
            seen[id]++;
            cr_assert_eq(x.lengths[j], seqset_len(b->set, id));
            for (int t = 0; t < x.T; t++) {
                int valid = t < x.lengths[j];
                cr_assert_eq(x.tokens[t * x.B + j], valid ? id : 0);
                cr_assert_eq(x.targets[t * x.B + j], valid ? t : -1);
            }
        }
    }
    cr_assert_eq(k, 0, "%s", err);
    cr_assert_eq(batches, b->count);
    for (int i = 0; i < n; i++) cr_assert_eq(seen[i], 1, "sequence %d seen %d times", i, seen[i]);
    free(seen);
}

Test(data, batcher_epochs_and_seeds)
{
    seqset s;
    make_set(&s, 53, 20, 7);
    char err[256] = "";
    batcher a, b, c;
    cr_assert_eq(batcher_init(&a, &s, 8, 0, 1, 42, err, sizeof err), 0, "%s", err);
    cr_assert_eq(batcher_count(&a), 7);
    check_epoch(&a);
    cr_assert_eq(batcher_set_epoch(&a, 1, err, sizeof err), 0);
    check_epoch(&a);
    /* the same seed gives the same orders; another seed another */
    cr_assert_eq(batcher_init(&b, &s, 8, 0, 1, 42, err, sizeof err), 0);
    cr_assert_eq(batcher_init(&c, &s, 8, 0, 1, 43, err, sizeof err), 0);
    cr_assert_eq(batcher_set_epoch(&b, 1, err, sizeof err), 0);
    cr_assert_eq(batcher_set_epoch(&c, 1, err, sizeof err), 0);
    cr_assert_eq(memcmp(a.order, b.order, 53 * sizeof *a.order), 0);
    cr_assert_neq(memcmp(a.order, c.order, 53 * sizeof *a.order), 0);
    /* epochs differ */
    cr_assert_eq(batcher_set_epoch(&b, 2, err, sizeof err), 0);
    cr_assert_neq(memcmp(a.order, b.order, 53 * sizeof *a.order), 0);
    batcher_free(&a);
    batcher_free(&b);
    batcher_free(&c);
    /* without shuffle: the identity */
    cr_assert_eq(batcher_init(&a, &s, 8, 0, 0, 42, err, sizeof err), 0);
    for (int i = 0; i < 53; i++) cr_assert_eq(a.order[i], i);
    check_epoch(&a);
    batcher_free(&a);
    /* errors */
    cr_assert_eq(batcher_init(&a, &s, 0, 0, 1, 1, err, sizeof err), -1);
    ASSERT_ERR(err, "batch size 0");
    cr_assert_eq(batcher_init(&a, &s, 8, 0, 1, 42, err, sizeof err), 0);
    rc_batch x;
    cr_assert_eq(batcher_get(&a, 7, &x, err, sizeof err), -1);
    ASSERT_ERR(err, "batch 7 out of range");
    cr_assert_eq(batcher_get(&a, 6, &x, err, sizeof err), 0, "%s", err);
    cr_assert_eq(x.B, 53 - 6 * 8);
    batcher_free(&a);
    seqset e;
    cr_assert_eq(seqset_init(&e, -1, SEQ_TGT_NONE, 0, err, sizeof err), -1);
    cr_assert_eq(seqset_init(&e, 2, SEQ_TGT_FLOAT, 0, err, sizeof err), -1);
    ASSERT_ERR(err, "target values");
    cr_assert_eq(seqset_init(&e, 2, (seq_target)9, 0, err, sizeof err), -1);
    cr_assert_eq(seqset_init(&e, 4, SEQ_TGT_NONE, 0, err, sizeof err), 0);
    cr_assert_eq(seqset_add(&e, 2, NULL, NULL, 0, NULL, NULL, err, sizeof err), -1);
    ASSERT_ERR(err, "no features");
    cr_assert_eq(batcher_init(&a, &e, 2, 0, 1, 1, err, sizeof err), -1);
    ASSERT_ERR(err, "no sequences");
    seqset_free(&e);
    seqset_free(&s);
}

Test(data, bucketing_reduces_padding)
{
    seqset s;
    make_set(&s, 400, 100, 11);
    char err[256] = "";
    batcher plain, buck;
    cr_assert_eq(batcher_init(&plain, &s, 16, 0, 1, 5, err, sizeof err), 0, "%s", err);
    cr_assert_eq(batcher_init(&buck, &s, 16, 8, 1, 5, err, sizeof err), 0, "%s", err);
    for (int e = 0; e < 3; e++) {
        cr_assert_eq(batcher_set_epoch(&plain, e, err, sizeof err), 0);
        cr_assert_eq(batcher_set_epoch(&buck, e, err, sizeof err), 0);
        size_t pp = batcher_padding(&plain), pb = batcher_padding(&buck);
        cr_assert_lt(pb * 2, pp, "epoch %d: padding %zu bucketed vs %zu plain", e, pb, pp);
        check_epoch(&buck);
    }
    /* the same seed reproduces the bucketed order; bucketing without shuffle sorts chunks */
    batcher again;
    cr_assert_eq(batcher_init(&again, &s, 16, 8, 1, 5, err, sizeof err), 0);
    cr_assert_eq(batcher_set_epoch(&again, 2, err, sizeof err), 0);
    cr_assert_eq(memcmp(again.order, buck.order, 400 * sizeof *buck.order), 0);
    batcher_free(&again);
    cr_assert_eq(batcher_init(&again, &s, 16, 2, 0, 5, err, sizeof err), 0);
    for (int i = 1; i < 32; i++)
        cr_assert_leq(seqset_len(&s, again.order[i - 1]), seqset_len(&s, again.order[i]));
    check_epoch(&again);
    batcher_free(&again);
    batcher_free(&plain);
    batcher_free(&buck);
    seqset_free(&s);
}

Test(data, collate_pads_features_and_floats)
{
    char err[256] = "";
    seqset s;
    cr_assert_eq(seqset_init(&s, 2, SEQ_TGT_FLOAT, 1, err, sizeof err), 0, "%s", err);
    const float x0[] = {1, 2, 3, 4, 5, 6}, y0[] = {10, 20, 30};
    const float x1[] = {7, 8}, y1[] = {40};
    cr_assert_eq(seqset_add(&s, 3, x0, NULL, 0, NULL, y0, err, sizeof err), 0, "%s", err);
    cr_assert_eq(seqset_add(&s, 1, x1, NULL, 0, NULL, y1, err, sizeof err), 0, "%s", err);
    cr_assert_eq(seqset_add(&s, 0, x1, NULL, 0, NULL, y1, err, sizeof err), -1);
    cr_assert_eq(seqset_add(&s, 1, x1, NULL, 0, NULL, NULL, err, sizeof err), -1);
    cr_assert_eq(seqset_steps(&s), 4);
    batch_buf bb;
    memset(&bb, 0, sizeof bb);
    rc_batch b;
    int32_t idx[2] = {1, 0};
    cr_assert_eq(seqset_collate(&s, idx, 2, &bb, &b, err, sizeof err), 0, "%s", err);
    cr_assert_eq(b.T, 3);
    cr_assert_eq(b.B, 2);
    const float wx[] = {7, 8, 1, 2, 0, 0, 3, 4, 0, 0, 5, 6};
    const float wy[] = {40, 10, 0, 20, 0, 30};
    for (int i = 0; i < 12; i++) cr_assert_eq(b.x[i], wx[i], "x[%d]", i);
    for (int i = 0; i < 6; i++) cr_assert_eq(b.y[i], wy[i], "y[%d]", i);
    cr_assert_eq(b.lengths[0], 1);
    cr_assert_eq(b.lengths[1], 3);
    cr_assert_null(b.targets);
    /* reusing the buffer for a smaller batch overwrites the padding */
    cr_assert_eq(seqset_collate(&s, idx, 1, &bb, &b, err, sizeof err), 0);
    cr_assert_eq(b.T, 1);
    cr_assert_eq(b.x[1], 8);
    idx[0] = 5;
    cr_assert_eq(seqset_collate(&s, idx, 1, &bb, &b, err, sizeof err), -1);
    ASSERT_ERR(err, "sequence 5 out of range");
    batch_buf_free(&bb);
    seqset_free(&s);

    /* next-token targets on a token set */
    cr_assert_eq(seqset_init(&s, 0, SEQ_TGT_NEXT, 0, err, sizeof err), 0);
    const int32_t t0[] = {5, 6, 7}, t1[] = {8, 9};
    cr_assert_eq(seqset_add(&s, 3, NULL, t0, 0, NULL, NULL, err, sizeof err), 0);
    cr_assert_eq(seqset_add(&s, 2, NULL, t1, 0, NULL, NULL, err, sizeof err), 0);
    cr_assert_eq(seqset_add(&s, 1, NULL, t1, 0, NULL, NULL, err, sizeof err), -1);
    int32_t id2[2] = {0, 1};
    memset(&bb, 0, sizeof bb);
    cr_assert_eq(seqset_collate(&s, id2, 2, &bb, &b, err, sizeof err), 0);
    cr_assert_eq(b.T, 2);
    const int32_t wt[] = {5, 8, 6, 0}, wg[] = {6, 9, 7, -1};
    assert_ids(b.tokens, wt, 4, "tokens");
    assert_ids(b.targets, wg, 4, "targets");
    batch_buf_free(&bb);
    seqset_free(&s);
}

Test(data, batcher_restore_reproduces_epoch)
{
    seqset s;
    make_set(&s, 37, 30, 3);
    char err[256] = "";
    batcher a, r;
    cr_assert_eq(batcher_init(&a, &s, 4, 3, 1, 99, err, sizeof err), 0, "%s", err);
    cr_assert_eq(batcher_set_epoch(&a, 4, err, sizeof err), 0);
    rc_batch x, y;
    for (int i = 0; i < 3; i++) cr_assert_eq(batcher_next(&a, &x, err, sizeof err), 1);
    int epoch, pos;
    const int32_t *ord = batcher_state(&a, &epoch, &pos);
    cr_assert_eq(epoch, 4);
    cr_assert_eq(pos, 3);
    int32_t saved[37];
    memcpy(saved, ord, sizeof saved);

    /* a fresh batcher (another seed even) given the order, epoch and position */
    for (int variant = 0; variant < 2; variant++) {
        cr_assert_eq(batcher_init(&r, &s, 4, 3, 1, variant ? 99 : 1234, err, sizeof err), 0);
        /* variant 1: order regenerated from the seed and epoch */
        cr_assert_eq(batcher_restore(&r, epoch, pos, variant ? NULL : saved, 37, err, sizeof err), 0, "%s", err);
        cr_assert_eq(memcmp(r.order, saved, sizeof saved), 0);
        batcher a2;
        cr_assert_eq(batcher_init(&a2, &s, 4, 3, 1, 99, err, sizeof err), 0);
        cr_assert_eq(batcher_restore(&a2, epoch, pos, saved, 37, err, sizeof err), 0);
        int k1, k2, n = 0;
        while ((k1 = batcher_next(&a2, &x, err, sizeof err)) == 1) {
            k2 = batcher_next(&r, &y, err, sizeof err);
            cr_assert_eq(k2, 1);
            cr_assert_eq(x.T, y.T);
            cr_assert_eq(x.B, y.B);
            assert_ids(y.tokens, x.tokens, (size_t)x.T * (size_t)x.B, "resumed tokens");
            assert_ids(y.lengths, x.lengths, (size_t)x.B, "resumed lengths");
            n++;
        }
        cr_assert_eq(n, batcher_count(&a) - 3);
        cr_assert_eq(batcher_next(&r, &y, err, sizeof err), 0);
        /* the next epoch matches too (with the same seed) */
        if (variant) {
            cr_assert_eq(batcher_set_epoch(&r, epoch + 1, err, sizeof err), 0);
            cr_assert_eq(batcher_set_epoch(&a, epoch + 1, err, sizeof err), 0);
            cr_assert_eq(memcmp(r.order, a.order, sizeof saved), 0);
        }
        batcher_free(&a2);
        batcher_free(&r);
    }
    /* the remaining batches of the original equal those of the restored one, checked
     * above through a2; a bad state is refused and changes nothing */
    int32_t bad[37];
    memcpy(bad, saved, sizeof bad);
    bad[5] = bad[6];
    cr_assert_eq(batcher_restore(&a, 1, 0, bad, 37, err, sizeof err), -1);
    ASSERT_ERR(err, "not a permutation");
    cr_assert_eq(batcher_restore(&a, 1, 0, saved, 36, err, sizeof err), -1);
    cr_assert_eq(batcher_restore(&a, 1, 99, saved, 37, err, sizeof err), -1);
    ASSERT_ERR(err, "position 99");
    cr_assert_eq(a.epoch, 5);
    batcher_free(&a);
    seqset_free(&s);
}

/* Label sequences (CTC targets) attached to a feature set are batched padded with 0,
 * with each sequence's label count and S the batch's longest; the set refuses more
 * sequences once labelled, and bad offsets are refused (the arrays freed either way). */
Test(data, seqset_labels_collate)
{
    char err[256];
    seqset s;
    cr_assert_eq(seqset_init(&s, 1, SEQ_TGT_NONE, 0, err, sizeof err), 0, "%s", err);
    float x[5] = {1, 2, 3, 4, 5};
    cr_assert_eq(seqset_add(&s, 3, x, NULL, 0, NULL, NULL, err, sizeof err), 0, "%s", err);
    cr_assert_eq(seqset_add(&s, 2, x, NULL, 0, NULL, NULL, err, sizeof err), 0, "%s", err);
    size_t *bad_off = malloc(3 * sizeof *bad_off);
    int32_t *bad_lab = malloc(3 * sizeof *bad_lab);
    bad_off[0] = 0, bad_off[1] = 2, bad_off[2] = 1;
    cr_assert_eq(seqset_attach_labels(&s, bad_lab, bad_off, err, sizeof err), -1);
    ASSERT_ERR(err, "cannot attach labels", "the offsets decrease");
    cr_assert_eq(s.kind, SEQ_TGT_NONE);
    size_t *off = malloc(3 * sizeof *off);
    int32_t *lab = malloc(3 * sizeof *lab);
    off[0] = 0, off[1] = 1, off[2] = 3;
    lab[0] = 7, lab[1] = 2, lab[2] = 9;
    cr_assert_eq(seqset_attach_labels(&s, lab, off, err, sizeof err), 0, "%s", err);
    cr_assert_eq(seqset_add(&s, 2, x, NULL, 0, NULL, NULL, err, sizeof err), -1);
    ASSERT_ERR(err, "labels are attached once every sequence is in");
    batch_buf bb;
    memset(&bb, 0, sizeof bb);
    rc_batch b;
    memset(&b, 0, sizeof b);
    int32_t idx[2] = {0, 1};
    cr_assert_eq(seqset_collate(&s, idx, 2, &bb, &b, err, sizeof err), 0, "%s", err);
    cr_assert_eq(b.T, 3);
    cr_assert_eq(b.S, 2);
    cr_assert_eq(b.label_lengths[0], 1);
    cr_assert_eq(b.label_lengths[1], 2);
    int32_t want[4] = {7, 0, 2, 9};
    for (int i = 0; i < 4; i++) cr_assert_eq(b.labels[i], want[i], "label %d", i);
    cr_assert_eq(b.lengths[0], 3);
    cr_assert_eq(b.lengths[1], 2);
    batch_buf_free(&bb);
    seqset_free(&s);
}
