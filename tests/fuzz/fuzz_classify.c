/* libFuzzer harness for the labelled-text loaders (text_class_load, text_tags_load,
 * train/data_seq.c). The first byte picks the loader (bit 0: tags), max_vocab (bits
 * 1-3: 0..7) and whether the second half of the rest is also given as the valid file
 * (bit 4); the rest is the training file. An error names a file; a loaded set is
 * consistent and its first batch collates. Built and run by tests/fuzz/run.sh classify. */
#include "fuzz_seq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 1 << 18) return 0;
    int tags = data[0] & 1, max_vocab = data[0] >> 1 & 7, valid = data[0] >> 4 & 1;
    data++;
    size--;
    const char *train = fuzz_write(0, "classify", data, size), *vpath = NULL;
    if (valid) vpath = fuzz_write(1, "classify", data + size / 2, size - size / 2);
    char err[512] = "";
    seqdata d;
    int rc = tags ? text_tags_load(&d, train, vpath, NULL, max_vocab, err, sizeof err)
                  : text_class_load(&d, train, vpath, NULL, max_vocab, err, sizeof err);
    if (rc != 0) {
        if (!err[0] || (!strstr(err, train) && !(vpath && strstr(err, vpath)))) fuzz_die("message names no file", err);
        if (d.set[0].n || d.words.n || d.labels.n) fuzz_die("data not left empty on error", err);
        seqdata_free(&d);
        return 0;
    }
    if (d.set[DATA_TRAIN].n < 1) fuzz_die("loaded without a training sequence", train);
    for (int k = 0; k < 3; k++) {
        const seqset *s = &d.set[k];
        if (s->n && (s->F != 0 || s->kind != (tags ? SEQ_TGT_TAGS : SEQ_TGT_CLASS))) fuzz_die("bad set kind", train);
        for (size_t i = 0; s->n && i < s->off[s->n]; i++) {
            if (s->tok[i] < 0 || s->tok[i] >= d.words.n) fuzz_die("token id out of range", train);
            if (tags && (s->tag[i] < 0 || s->tag[i] >= d.labels.n)) fuzz_die("tag id out of range", train);
        }
        for (int i = 0; !tags && i < s->n; i++)
            if (s->cls[i] < 0 || s->cls[i] >= d.labels.n) fuzz_die("class id out of range", train);
    }
    fuzz_check_seqdata(&d, train);
    seqdata_free(&d);
    return 0;
}
