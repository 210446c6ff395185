/* libFuzzer harness for the CSV time-series loader (csv_load, train/data_seq.c): an
 * error names the file; a loaded series is one sequence of rows x F floats, and its
 * windows (T = 1 and T = 2) build and collate. Built and run by tests/fuzz/run.sh csv. */
#include <math.h>
#include "fuzz_seq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 18) return 0;
    const char *path = fuzz_write(0, "csv", data, size);
    char err[512] = "";
    seqset s;
    if (csv_load(&s, path, err, sizeof err) != 0) {
        fuzz_check_msg(err, path);
        if (s.n || s.off || s.x || s.names) fuzz_die("set not left empty on error", err);
        seqset_free(&s);
        return 0;
    }
    if (s.n != 1 || s.F < 1) fuzz_die("a CSV is one sequence of at least one column", path);
    fuzz_check_set(&s, path);
    size_t rows = s.off[1];
    for (size_t i = 0; i < rows * (size_t)s.F; i++)
        if (!isfinite(s.x[i])) fuzz_die("non-finite value loaded", path);
    for (int T = 1; T <= 2; T++) {
        seqset w;
        int rc = seqset_windows(&w, &s, 0, T, 1, err, sizeof err);
        if ((rc == 0) != (rows >= (size_t)T + 1)) fuzz_die("windows disagree with the row count", err);
        if (rc == 0) {
            if ((size_t)w.n != rows - (size_t)T) fuzz_die("wrong window count", path);
            fuzz_check_set(&w, path);
        }
        seqset_free(&w);
    }
    seqset_free(&s);
    return 0;
}
