/* NumPy .npy files of float32: see npy.h.
 *
 * File layout: the magic "\x93NUMPY", a major and a minor version byte, the header
 * length (2 bytes little-endian in version 1, 4 bytes in versions 2 and 3), then the
 * header: an ASCII Python dict literal such as
 *     {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
 * padded with spaces and ended by '\n' so that the whole preamble is a multiple of 64
 * bytes (16 in files of older NumPy), then the raw little-endian data in C order.
 *
 * The reader trusts nothing: every length is bounded, the header is parsed by a small
 * recursive-descent parser that stops at its end, and the file must hold exactly the
 * data the header announces. Data are converted from little-endian byte by byte, so
 * the code does not depend on the host's byte order. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L   /* fsync, strdup, O_CLOEXEC, strerror_r */
#endif
#include "npy.h"
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
#define NPY_MAX_DIMS 4
/* Largest header accepted; NumPy's own reader refuses more than 10000 by default. */
#define NPY_MAX_HEADER 65536u
/* Longest quoted string or identifier the parser keeps (a dtype, a key, True). */
#define NPY_MAX_TOKEN 32
/* Floats converted per write() call. */
#define NPY_CHUNK 4096

/* ---- messages ------------------------------------------------------------- */


/* ---- header parser -------------------------------------------------------- */

typedef struct npy_info {
    int ndim;                 /* 1..4 (a 0-d array is reported as [1]) */
    int shape[NPY_MAX_DIMS];
    size_t count;             /* elements */
    size_t data_off;          /* bytes before the data */
} npy_info;

typedef struct cursor {
    const char *p, *end;
} cursor;

static void skip_ws(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

/* Skips blanks; consumes ch when it comes next. */
static int eat(cursor *c, char ch)
{
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

/* A quoted string of printable ASCII without escapes, at most NPY_MAX_TOKEN - 1 bytes,
 * into buf[NPY_MAX_TOKEN]. 0, or -1 with a reason in why. */
static int parse_string(cursor *c, char *buf, const char **why)
{
    skip_ws(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) {
        *why = "expected a quoted string";
        return -1;
    }
    char q = *c->p++;
    size_t n = 0;
    for (;;) {
        if (c->p >= c->end) {
            *why = "unterminated string";
            return -1;
        }
        char ch = *c->p++;
        if (ch == q) break;
        if (ch == '\\' || ch < 0x20 || ch > 0x7e) {
            *why = "unsupported character in a string";
            return -1;
        }
        if (n + 1 >= NPY_MAX_TOKEN) {
            *why = "string too long";
            return -1;
        }
        buf[n++] = ch;
    }
    buf[n] = 0;
    return 0;
}

/* A Python identifier (True, False) into buf[NPY_MAX_TOKEN]. 0, or -1 with why. */
static int parse_ident(cursor *c, char *buf, const char **why)
{
    skip_ws(c);
    size_t n = 0;
    while (c->p < c->end && ((*c->p >= 'a' && *c->p <= 'z') || (*c->p >= 'A' && *c->p <= 'Z'))) {
        if (n + 1 >= NPY_MAX_TOKEN) {
            *why = "identifier too long";
            return -1;
        }
        buf[n++] = *c->p++;
    }
    buf[n] = 0;
    if (n == 0) {
        *why = "expected True or False";
        return -1;
    }
    return 0;
}

/* Parses the header dict into info (ndim, shape, count). 0, or -1 with a message. */
static int parse_header(const char *h, size_t n, npy_info *info, const char *path,
                        char *err, size_t errlen)
{
    cursor c = { h, h + n };
    const char *why = NULL;
    char key[NPY_MAX_TOKEN], val[NPY_MAX_TOKEN];
    int have_descr = 0, have_order = 0, have_shape = 0;
    int nd = 0, dims[NPY_MAX_DIMS] = { 0 };

    if (!eat(&c, '{')) {
        file_fail(err, errlen, path, "malformed header: does not start with '{'");
        return -1;
    }
    for (;;) {
        if (eat(&c, '}')) break;
        if (parse_string(&c, key, &why) < 0) {
            file_fail(err, errlen, path, "malformed header: %s where a key should be", why);
            return -1;
        }
        if (!eat(&c, ':')) {
            file_fail(err, errlen, path, "malformed header: expected ':' after key '%s'", key);
            return -1;
        }
        if (strcmp(key, "descr") == 0) {
            if (have_descr++) goto duplicate;
            skip_ws(&c);
            if (c.p < c.end && *c.p == '[') {
                file_fail(err, errlen, path, "unsupported dtype: a structured dtype "
                     "(only '<f4', little-endian float32, is supported)");
                return -1;
            }
            if (parse_string(&c, val, &why) < 0) {
                file_fail(err, errlen, path, "malformed header: %s as 'descr'", why);
                return -1;
            }
            if (strcmp(val, "<f4") != 0) {
                file_fail(err, errlen, path, "unsupported dtype '%s' "
                     "(only '<f4', little-endian float32, is supported)", val);
                return -1;
            }
        } else if (strcmp(key, "fortran_order") == 0) {
            if (have_order++) goto duplicate;
            if (parse_ident(&c, val, &why) < 0) {
                file_fail(err, errlen, path, "malformed header: %s as 'fortran_order'", why);
                return -1;
            }
            if (strcmp(val, "True") == 0) {
                file_fail(err, errlen, path, "fortran_order True is not supported (only C order)");
                return -1;
            }
            if (strcmp(val, "False") != 0) {
                file_fail(err, errlen, path, "malformed header: fortran_order is '%s', "
                     "not True or False", val);
                return -1;
            }
        } else if (strcmp(key, "shape") == 0) {
            if (have_shape++) goto duplicate;
            if (!eat(&c, '(')) {
                file_fail(err, errlen, path, "malformed header: 'shape' is not a tuple");
                return -1;
            }
            int comma = 0;   /* a comma followed the last number */
            for (;;) {
                if (eat(&c, ')')) break;
                skip_ws(&c);
                if (c.p >= c.end || *c.p < '0' || *c.p > '9') {
                    file_fail(err, errlen, path, "malformed header: 'shape' holds something "
                         "other than non-negative integers");
                    return -1;
                }
                long long v = 0;
                while (c.p < c.end && *c.p >= '0' && *c.p <= '9') {
                    v = v * 10 + (*c.p++ - '0');
                    if (v > INT_MAX) {
                        file_fail(err, errlen, path, "malformed header: axis %d of 'shape' "
                             "is too large", nd);
                        return -1;
                    }
                }
                if (c.p < c.end && (*c.p == 'L' || *c.p == 'l')) c.p++;  /* Python 2 long */
                if (nd < NPY_MAX_DIMS) dims[nd] = (int)v;
                nd++;
                comma = eat(&c, ',');
                if (!comma) {
                    if (!eat(&c, ')')) {
                        file_fail(err, errlen, path, "malformed header: expected ',' or ')' "
                             "in 'shape'");
                        return -1;
                    }
                    break;
                }
            }
            if (nd == 1 && !comma) {
                file_fail(err, errlen, path, "malformed header: 'shape' (%d) is not a tuple "
                     "(a 1-tuple needs a trailing comma)", dims[0]);
                return -1;
            }
            if (nd > NPY_MAX_DIMS) {
                file_fail(err, errlen, path, "rank %d is not supported (at most %d)",
                     nd, NPY_MAX_DIMS);
                return -1;
            }
        } else {
            file_fail(err, errlen, path, "malformed header: unexpected key '%s'", key);
            return -1;
        }
        if (eat(&c, ',')) continue;
        if (eat(&c, '}')) break;
        file_fail(err, errlen, path, "malformed header: expected ',' or '}' after '%s'", key);
        return -1;
    }
    skip_ws(&c);
    if (c.p != c.end) {
        file_fail(err, errlen, path, "malformed header: unexpected text after the dict");
        return -1;
    }
    if (!have_descr || !have_order || !have_shape) {
        file_fail(err, errlen, path, "malformed header: missing key '%s'",
             !have_descr ? "descr" : !have_order ? "fortran_order" : "shape");
        return -1;
    }
    if (nd == 0) {   /* a 0-d array (a scalar) */
        nd = 1;
        dims[0] = 1;
    }
    size_t count = 1;
    for (int d = 0; d < nd; d++) {
        if (dims[d] == 0) {
            file_fail(err, errlen, path, "axis %d has length 0: empty arrays are not supported", d);
            return -1;
        }
        if (count > SIZE_MAX / sizeof(float) / (size_t)dims[d]) {
            file_fail(err, errlen, path, "malformed header: 'shape' has too many elements");
            return -1;
        }
        count *= (size_t)dims[d];
    }
    info->ndim = nd;
    memcpy(info->shape, dims, sizeof dims);
    info->count = count;
    return 0;

duplicate:
    file_fail(err, errlen, path, "malformed header: duplicate key '%s'", key);
    return -1;
}

/* ---- reading -------------------------------------------------------------- */

/* Opens path, checks the preamble, parses the header and checks the file's size.
 * On success *fdp is open and positioned at the start of the data. */
static int npy_open(const char *path, int *fdp, npy_info *info, char *err, size_t errlen)
{
    char eb[128];
    unsigned char pre[12];
    char *hdr = NULL;

    if (!path) {
        file_fail(err, errlen, path, "path is NULL");
        return -1;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        file_fail(err, errlen, path, "cannot open: %s", file_errstr(errno, eb, sizeof eb));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        file_fail(err, errlen, path, "cannot stat: %s", file_errstr(errno, eb, sizeof eb));
        goto bad;
    }
    if (!S_ISREG(st.st_mode)) {
        file_fail(err, errlen, path, "not a regular file, not an npy file");
        goto bad;
    }
    long long size = (long long)st.st_size;
    if (size == 0) {
        file_fail(err, errlen, path, "empty file, not an npy file");
        goto bad;
    }
    size_t want = size < (long long)sizeof pre ? (size_t)size : sizeof pre;
    long long got = file_read_full(fd, pre, want);
    if (got < 0) {
        file_fail(err, errlen, path, "read error: %s", file_errstr(errno, eb, sizeof eb));
        goto bad;
    }
    if (got < NPY_MAGIC_LEN || memcmp(pre, NPY_MAGIC, NPY_MAGIC_LEN) != 0) {
        file_fail(err, errlen, path, "not an npy file (bad magic)");
        goto bad;
    }
    if (got < NPY_MAGIC_LEN + 2) {
        file_fail(err, errlen, path, "truncated header: the file is only %lld bytes", size);
        goto bad;
    }
    unsigned major = pre[6], minor = pre[7];
    size_t lenbytes;
    if (major == 1 && minor == 0) lenbytes = 2;
    else if ((major == 2 || major == 3) && minor == 0) lenbytes = 4;
    else {
        file_fail(err, errlen, path, "unsupported npy format version %u.%u "
             "(1.0, 2.0 and 3.0 are supported)", major, minor);
        goto bad;
    }
    size_t prelen = NPY_MAGIC_LEN + 2 + lenbytes;
    if ((size_t)got < prelen) {
        file_fail(err, errlen, path, "truncated header: the file is only %lld bytes", size);
        goto bad;
    }
    unsigned long hlen = (unsigned long)pre[8] | (unsigned long)pre[9] << 8;
    if (lenbytes == 4) hlen |= (unsigned long)pre[10] << 16 | (unsigned long)pre[11] << 24;
    unsigned long long total = (unsigned long long)prelen + hlen;
    if (total > (unsigned long long)size) {
        file_fail(err, errlen, path, "truncated header: the header length %lu runs past the end "
             "of the file (%lld bytes)", hlen, size);
        goto bad;
    }
    if (hlen == 0 || hlen > NPY_MAX_HEADER) {
        file_fail(err, errlen, path, "malformed header: header length %lu (must be 1..%u)",
             hlen, NPY_MAX_HEADER);
        goto bad;
    }
    if (total % 16 != 0) {
        file_fail(err, errlen, path, "malformed header: the preamble of %llu bytes is not "
             "a multiple of 16", total);
        goto bad;
    }
    if (lseek(fd, (off_t)prelen, SEEK_SET) < 0) {
        file_fail(err, errlen, path, "cannot seek: %s", file_errstr(errno, eb, sizeof eb));
        goto bad;
    }
    hdr = malloc(hlen);
    if (!hdr) {
        file_fail(err, errlen, path, "out of memory for a %lu-byte header", hlen);
        goto bad;
    }
    got = file_read_full(fd, hdr, hlen);
    if (got < 0) {
        file_fail(err, errlen, path, "read error: %s", file_errstr(errno, eb, sizeof eb));
        goto bad;
    }
    if ((unsigned long long)got != hlen) {
        file_fail(err, errlen, path, "truncated header: the file ended inside the header");
        goto bad;
    }
    npy_info in;
    if (parse_header(hdr, hlen, &in, path, err, errlen) < 0) goto bad;
    free(hdr);
    hdr = NULL;
    in.data_off = (size_t)total;
    unsigned long long have = (unsigned long long)size - total;
    unsigned long long need = (unsigned long long)in.count * sizeof(float);
    if (have < need) {
        file_fail(err, errlen, path, "truncated data: %llu bytes of data, the shape needs %llu",
             have, need);
        goto bad;
    }
    if (have > need) {
        file_fail(err, errlen, path, "trailing bytes: %llu bytes of data, the shape needs %llu",
             have, need);
        goto bad;
    }
    *info = in;
    *fdp = fd;
    return 0;

bad:
    free(hdr);
    close(fd);
    return -1;
}

int npy_read_header(const char *path, int *ndim, int shape[4], char *err, size_t errlen)
{
    if (!ndim || !shape) {
        file_fail(err, errlen, path, "ndim or shape is NULL");
        return -1;
    }
    npy_info in;
    int fd;
    if (npy_open(path, &fd, &in, err, errlen) < 0) return -1;
    close(fd);
    *ndim = in.ndim;
    for (int d = 0; d < NPY_MAX_DIMS; d++) shape[d] = d < in.ndim ? in.shape[d] : 0;
    return 0;
}

int npy_read_f32(const char *path, float *data, size_t count, char *err, size_t errlen)
{
    char eb[128];
    npy_info in;
    int fd;
    if (npy_open(path, &fd, &in, err, errlen) < 0) return -1;
    if (in.count != count) {
        file_fail(err, errlen, path, "element count mismatch: the file holds %zu elements, "
             "%zu were asked for", in.count, count);
        close(fd);
        return -1;
    }
    if (!data) {
        file_fail(err, errlen, path, "data is NULL");
        close(fd);
        return -1;
    }
    /* Read everything before touching data, so an I/O error leaves it as it was. */
    size_t bytes = count * sizeof(float);
    unsigned char *raw = malloc(bytes);
    if (!raw) {
        file_fail(err, errlen, path, "out of memory for %zu bytes of data", bytes);
        close(fd);
        return -1;
    }
    long long got = file_read_full(fd, raw, bytes);
    int e = errno;
    close(fd);
    if (got < 0) {
        file_fail(err, errlen, path, "read error: %s", file_errstr(e, eb, sizeof eb));
        free(raw);
        return -1;
    }
    if ((unsigned long long)got != bytes) {
        file_fail(err, errlen, path, "truncated data: the file ended after %lld of %zu data bytes "
             "(did it change while being read?)", got, bytes);
        free(raw);
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        const unsigned char *b = raw + 4 * i;
        uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16
                   | (uint32_t)b[3] << 24;
        memcpy(&data[i], &u, sizeof u);
    }
    free(raw);
    return 0;
}

/* ---- writing -------------------------------------------------------------- */

int npy_write_f32(const char *path, int ndim, const int *shape, const float *data,
                  char *err, size_t errlen)
{
    char eb[128];
    if (!path || !*path) {
        file_fail(err, errlen, path, "path is NULL or empty");
        return -1;
    }
    if (ndim < 1 || ndim > NPY_MAX_DIMS) {
        file_fail(err, errlen, path, "rank %d is not supported (1..%d)", ndim, NPY_MAX_DIMS);
        return -1;
    }
    if (!shape || !data) {
        file_fail(err, errlen, path, "shape or data is NULL");
        return -1;
    }
    size_t count = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 1) {
            file_fail(err, errlen, path, "axis %d has length %d (must be >= 1)", d, shape[d]);
            return -1;
        }
        if (count > SIZE_MAX / sizeof(float) / (size_t)shape[d]) {
            file_fail(err, errlen, path, "the shape has too many elements");
            return -1;
        }
        count *= (size_t)shape[d];
    }

    /* Preamble: magic, version 1.0, header length, dict, spaces, '\n'; 64-aligned. */
    unsigned char pre[320];
    memcpy(pre, NPY_MAGIC, NPY_MAGIC_LEN);
    pre[6] = 1;
    pre[7] = 0;
    char *h = (char *)pre + 10;
    size_t cap = sizeof pre - 10, k = 0;
    k += (size_t)snprintf(h, cap, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (int d = 0; d < ndim; d++)
        k += (size_t)snprintf(h + k, cap - k, d ? ", %d" : "%d", shape[d]);
    k += (size_t)snprintf(h + k, cap - k, ndim == 1 ? ",), }" : "), }");
    size_t total = 10 + k + 1;
    size_t pad = (64 - total % 64) % 64;
    memset(h + k, ' ', pad);
    h[k + pad] = '\n';
    total += pad;
    size_t hlen = total - 10;
    pre[8] = (unsigned char)(hlen & 0xff);
    pre[9] = (unsigned char)(hlen >> 8);

    size_t plen = strlen(path);
    char *tmp = malloc(plen + 5);
    if (!tmp) {
        file_fail(err, errlen, path, "out of memory");
        return -1;
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);

    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) {
        file_fail(err, errlen, path, "cannot create %s: %s", tmp, file_errstr(errno, eb, sizeof eb));
        free(tmp);
        return -1;
    }
    if (file_write_full(fd, pre, total) < 0) goto write_error;
    unsigned char buf[NPY_CHUNK * 4];
    for (size_t i = 0; i < count; i += NPY_CHUNK) {
        size_t n = count - i < NPY_CHUNK ? count - i : NPY_CHUNK;
        for (size_t j = 0; j < n; j++) {
            uint32_t u;
            memcpy(&u, &data[i + j], sizeof u);
            buf[4 * j] = (unsigned char)u;
            buf[4 * j + 1] = (unsigned char)(u >> 8);
            buf[4 * j + 2] = (unsigned char)(u >> 16);
            buf[4 * j + 3] = (unsigned char)(u >> 24);
        }
        if (file_write_full(fd, buf, 4 * n) < 0) goto write_error;
    }
    if (fsync(fd) != 0) {
        file_fail(err, errlen, path, "cannot fsync %s: %s", tmp, file_errstr(errno, eb, sizeof eb));
        goto cleanup;
    }
    if (close(fd) != 0) {
        fd = -1;
        file_fail(err, errlen, path, "cannot close %s: %s", tmp, file_errstr(errno, eb, sizeof eb));
        goto cleanup;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        file_fail(err, errlen, path, "cannot rename %s over it: %s", tmp,
             file_errstr(errno, eb, sizeof eb));
        goto cleanup;
    }
    free(tmp);
    file_sync_dir(path);
    return 0;

write_error:
    file_fail(err, errlen, path, "cannot write %s: %s", tmp, file_errstr(errno, eb, sizeof eb));
cleanup:
    if (fd >= 0) close(fd);
    unlink(tmp);
    free(tmp);
    return -1;
}
