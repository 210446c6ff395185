/* libFuzzer harness for the text-corpus loaders (train/data_text.c). The first byte
 * picks the loader (bits 0-1: corpus_char, corpus_words with the second half of the
 * rest as the valid file, corpus_words_split, vocab_load), the fractions (bits 2-4) and
 * max_vocab (bits 5-7: 0..7); the rest is the file. An error names the file; a loaded
 * corpus has ids inside its vocabulary, its vocabulary survives vocab_to_text /
 * vocab_from_text, its training ids survive vocab_decode / vocab_encode, and its
 * first B-stream batch builds. Built and run by tests/fuzz/run.sh corpus. */
#include "data.h"
#include "fuzz_file.h"

static void same_vocab(const vocab *a, const vocab *b, const char *path)
{
    if (a->n != b->n) fuzz_die("vocabulary size changed in its text form", path);
    for (int i = 0; i < a->n; i++)
        if (a->len[i] != b->len[i] || memcmp(a->tok[i], b->tok[i], (size_t)a->len[i]) != 0)
            fuzz_die("token changed in the vocabulary's text form", path);
}

static void check_vocab_text(const vocab *v, const char *path)
{
    char err[512], *t;
    size_t n;
    if (vocab_to_text(v, &t, &n, err, sizeof err) != 0) fuzz_die("vocab_to_text", err);
    if (strlen(t) != n) fuzz_die("vocabulary text holds a NUL", path);
    vocab w;
    if (vocab_from_text(&w, t, n, "text", err, sizeof err) != 0) fuzz_die("vocab_from_text of vocab_to_text", err);
    same_vocab(v, &w, path);
    free(t);
    vocab_free(&w);
}

static void check_corpus(const corpus *c, const char *path)
{
    const vocab *v = &c->voc;
    if (v->n < 1) fuzz_die("empty vocabulary", path);
    if (c->n[DATA_TRAIN] < 1) fuzz_die("empty training part", path);
    for (int k = 0; k < 3; k++)
        for (size_t i = 0; i < c->n[k]; i++)
            if (c->ids[k][i] < 0 || c->ids[k][i] >= v->n) fuzz_die("id outside the vocabulary", path);
    check_vocab_text(v, path);
    char err[512], *text;
    size_t tl, n;
    int32_t *ids;
    if (vocab_decode(v, c->ids[0], c->n[0], &text, &tl, err, sizeof err) != 0) fuzz_die("vocab_decode", err);
    if (vocab_encode(v, text, tl, &ids, &n, err, sizeof err) != 0) fuzz_die("vocab_encode of the decoded text", err);
    if (n != c->n[0] || memcmp(ids, c->ids[0], n * sizeof *ids) != 0) fuzz_die("ids changed by decode + encode", path);
    free(text);
    free(ids);
    lm_stream s;
    int32_t tok[6], tgt[6];
    if (stream_init(&s, c->ids[0], c->n[0], 2, 3, err, sizeof err) == 0 && stream_count(&s) > 0) {
        if (stream_get(&s, 0, tok, tgt, err, sizeof err) != 0) fuzz_die("stream_get", err);
        for (int i = 0; i < 6; i++)
            if (tok[i] < 0 || tok[i] >= v->n || tgt[i] < 0 || tgt[i] >= v->n) fuzz_die("stream id out of range", path);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 1 << 18) return 0;
    static const double fracs[8][2] = { { 0, 0 }, { 0.05, 0 }, { 0.1, 0.1 }, { 0.5, 0.25 },
                                        { 0.3, 0 }, { 0, 0.3 }, { 0.9, 0.05 }, { 0.45, 0.45 } };
    int mode = data[0] & 3, fr = data[0] >> 2 & 7, max_vocab = data[0] >> 5 & 7;
    double vf = fracs[fr][0], tf = fracs[fr][1];
    data++;
    size--;
    const char *path = fuzz_write(0, "corpus", data, size), *valid = NULL;
    char err[512] = "";
    corpus c;
    vocab v;
    int rc;
    if (mode == 0) rc = corpus_char(&c, path, vf, tf, err, sizeof err);
    else if (mode == 1) {
        valid = fuzz_write(1, "corpus", data + size / 2, size - size / 2);
        rc = corpus_words(&c, path, valid, NULL, max_vocab, err, sizeof err);
    } else if (mode == 2) rc = corpus_words_split(&c, path, vf, tf, max_vocab, err, sizeof err);
    else rc = vocab_load(&v, path, err, sizeof err);
    if (rc != 0) {
        if (!err[0] || (!strstr(err, path) && !(valid && strstr(err, valid)))) fuzz_die("message names no file", err);
        if (mode < 3 && (c.voc.n || c.ids[0] || c.n[0])) fuzz_die("corpus not left empty on error", err);
        if (mode == 3 && v.n) fuzz_die("vocabulary not left empty on error", err);
        return 0;
    }
    if (mode == 3) {
        check_vocab_text(&v, path);
        vocab_free(&v);
    } else {
        check_corpus(&c, path);
        corpus_free(&c);
    }
    return 0;
}
