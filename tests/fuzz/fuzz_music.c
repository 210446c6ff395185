/* libFuzzer harness for the polyphonic-music JSON loader (music_load, train/data_seq.c):
 * an error names the file (and line:column); a loaded data set is consistent and its
 * first batch of each part collates. Built and run by tests/fuzz/run.sh music. */
#include "fuzz_seq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 18) return 0;
    const char *path = fuzz_write(0, "music", data, size);
    char err[512] = "";
    seqdata d;
    if (music_load(&d, path, err, sizeof err) != 0) {
        fuzz_check_msg(err, path);
        for (int k = 0; k < 3; k++)
            if (d.set[k].n || d.set[k].off) fuzz_die("set not left empty on error", err);
        seqdata_free(&d);
        return 0;
    }
    for (int k = 0; k < 3; k++)
        if (d.set[k].n && (d.set[k].F != 88 || d.set[k].kind != SEQ_TGT_NEXT)) fuzz_die("bad music set", path);
    fuzz_check_seqdata(&d, path);
    seqdata_free(&d);
    return 0;
}
