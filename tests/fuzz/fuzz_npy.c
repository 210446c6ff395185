/* libFuzzer harness for the NumPy reader (cells/npy.c): npy_read_header, then
 * npy_read_f32 with the announced count (must succeed, and the floats must be the
 * file's last count*4 bytes, little-endian) and with a wrong count (must fail).
 * Built and run by tests/fuzz/run.sh npy. */
#include "fuzz_file.h"
#include "npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 20) return 0;
    const char *path = fuzz_write(0, "npy", data, size);
    char err[512] = "";
    int nd = -1, shape[4] = { -1, -1, -1, -1 };
    if (npy_read_header(path, &nd, shape, err, sizeof err) != 0) {
        fuzz_check_msg(err, path);
        if (nd != -1 || shape[0] != -1) fuzz_die("outputs changed on error", err);
        float one = 7.0f;
        err[0] = 0;
        if (npy_read_f32(path, &one, 1, err, sizeof err) == 0) fuzz_die("read_f32 accepted what read_header refused", path);
        fuzz_check_msg(err, path);
        if (one != 7.0f) fuzz_die("data changed on error", err);
        return 0;
    }
    if (nd < 1 || nd > 4) fuzz_die("bad rank", path);
    size_t count = 1;
    for (int d = 0; d < nd; d++) {
        if (shape[d] < 1) fuzz_die("bad dimension", path);
        count *= (size_t)shape[d];
    }
    if (count * 4 > size) fuzz_die("shape larger than the file", path);
    float *x = malloc(count * sizeof(float) + 1);
    if (!x) abort();
    if (npy_read_f32(path, x, count, err, sizeof err) != 0) fuzz_die("read_f32 failed after read_header", err);
    if (memcmp(x, data + size - 4 * count, 4 * count) != 0) fuzz_die("data differ from the file's bytes", path);
    err[0] = 0;
    if (npy_read_f32(path, x, count + 1, err, sizeof err) == 0) fuzz_die("read_f32 accepted a wrong count", path);
    fuzz_check_msg(err, path);
    free(x);
    return 0;
}
