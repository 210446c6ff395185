/* Internal: a small reader/writer of NumPy .npy files holding float32 arrays.
 *
 * Only what recur needs: little-endian float32 ('<f4'), C order, rank 1..4, every
 * dimension >= 1 (a 0-d array reads as rank 1, shape [1]; arrays with a zero-length
 * axis are refused, as recur tensors have none). Reading accepts format versions
 * 1.0, 2.0 and 3.0 with a preamble aligned to 16 or 64 bytes; writing produces
 * version 1.0 aligned to 64, as NumPy does.
 *
 * Errors are values: each function returns 0, or -1 with a message in err (which
 * names the file and what was wrong; err may be NULL or errlen 0 to drop it). Nothing
 * is printed, nothing leaks on an error path, and output arguments are left untouched
 * unless the call succeeds.
 */
#ifndef RC_NPY_H
#define RC_NPY_H

#include <stddef.h>

/* Writes a float32 C-order array as NPY format version 1.0 ('<f4'). Writes to
 * path + ".tmp", fsyncs, renames over path. Returns 0, or -1 with a message in err. */
int npy_write_f32(const char *path, int ndim, const int *shape, const float *data,
                  char *err, size_t errlen);

/* Reads the header of an .npy file: dtype must be '<f4' (little-endian float32) and
 * fortran_order False; fills ndim (1..4; a 0-d array reads as ndim 1 shape [1]) and shape.
 * Also checks that the file holds exactly the data the header announces.
 * Returns 0, or -1 with a message (not an npy file, unsupported version, dtype, fortran order,
 * rank > 4, truncated data, malformed header). */
int npy_read_header(const char *path, int *ndim, int shape[4], char *err, size_t errlen);

/* Reads the whole float32 array into data (count elements, which must equal the file's
 * element count). Returns 0, or -1 with a message; data is untouched on error. */
int npy_read_f32(const char *path, float *data, size_t count, char *err, size_t errlen);

#endif
