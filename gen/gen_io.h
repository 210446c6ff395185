/* Internal: reading whole files and listing text folders for the generators (gen/). */
#ifndef RC_GEN_IO_H
#define RC_GEN_IO_H

#include <stddef.h>

/* The whole file, NUL-terminated (its length in *len), or NULL with "path: message" in
 * err; a missing file's message ends with `hint` (may be NULL). */
char *gen_read_file(const char *path, size_t *len, const char *hint, char *err, size_t errlen);

/* The text files of a folder in byte order of their names, skipping hidden files,
 * symbolic links, anything not a regular file and fortune index files (.dat): *names
 * (each "dir/name", malloc'd) and *n. When path is a file, just that file. 0, or -1 with
 * a message (a folder holding none is an error). Free with gen_free_names. */
int gen_text_files(const char *path, char ***names, size_t *n, char *err, size_t errlen);
void gen_free_names(char **names, size_t n);
/* A printf-style message into err (when there is room); returns -1. Every generator's errors. */
int gen_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
