/* The cell library (the .cell files of cells/lib, installed under <datadir>/recur/cells) and the one
 * lookup of a cell by name that every command and the C API share (rc_cell_find). */
#define _GNU_SOURCE   /* dladdr: where this library was loaded from */
#include <dirent.h>
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "recur.h"

/* Set by meson (cells/meson.build); empty in builds that do not set them (the fuzzers). */
#ifndef RC_CELL_LIB_SOURCE
#define RC_CELL_LIB_SOURCE ""
#endif
#ifndef RC_CELL_LIB_INSTALLED
#define RC_CELL_LIB_INSTALLED ""
#endif
#ifndef RC_BUILD_ROOT
#define RC_BUILD_ROOT ""
#endif

/* The built-in cells (C code), and the library file equivalent to each (the same graph:
 * tests/test_lang.c checks it), for what needs a cell's text (recur search). */
static const struct { const char *name, *file; } builtins[] = {
    { "lstm", "lstm" }, { "gru", "gru" }, { "gru-cho", "gru_cho" }, { "rnn", "rnn_tanh" },
    { "rnn-relu", "rnn_relu" }, { "mut1", "mut1" }, { "mut2", "mut2" }, { "mut3", "mut3" },
};
#define NBUILTIN (sizeof builtins / sizeof *builtins)

static int is_dir(const char *p)
{
    struct stat st;
    return p[0] && stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Whether this code runs from its build folder (not installed): the file it was loaded
 * from (librecur.so, or the program that linked it statically) lies under the build root. */
static const char here = 0;   /* an address inside this library, for dladdr */
static int run_from_build(void)
{
    Dl_info info;
    char root[PATH_MAX], self[PATH_MAX];
    if (!RC_BUILD_ROOT[0] || !dladdr(&here, &info) || !info.dli_fname ||
        !realpath(RC_BUILD_ROOT, root) || !realpath(info.dli_fname, self))
        return 0;
    size_t n = strlen(root);
    return strncmp(self, root, n) == 0 && self[n] == '/';
}

const char *rc_cell_lib_dir(void)
{
    const char *env = getenv("RECUR_CELL_LIB");
    if (env && env[0]) return env;
    if (run_from_build() && is_dir(RC_CELL_LIB_SOURCE)) return RC_CELL_LIB_SOURCE;
    if (is_dir(RC_CELL_LIB_INSTALLED)) return RC_CELL_LIB_INSTALLED;
    return is_dir(RC_CELL_LIB_SOURCE) ? RC_CELL_LIB_SOURCE : RC_CELL_LIB_INSTALLED;
}

static int has_suffix(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

static int is_path(const char *name) { return strchr(name, '/') || has_suffix(name, ".cell"); }

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

size_t rc_cell_names(char *buf, size_t len)
{
    size_t n = 0;
    if (len) buf[0] = 0;
#define PUT(...) (n += (size_t)snprintf(len > n ? buf + n : NULL, len > n ? len - n : 0, __VA_ARGS__))
    for (size_t i = 0; i < NBUILTIN; i++) PUT("%s%s", i ? ", " : "", builtins[i].name);
    const char *dir = rc_cell_lib_dir();
    DIR *d = opendir(dir);
    char *names[256];
    size_t k = 0;
    for (struct dirent *e; d && (e = readdir(d)) && k < sizeof names / sizeof *names;) {
        if (!has_suffix(e->d_name, ".cell") || e->d_name[0] == '.') continue;
        char *s = strdup(e->d_name);
        if (!s) break;
        s[strlen(s) - 5] = 0;
        for (char *p = s; *p; p++)
            if (*p == '_') *p = '-';
        int dup = 0;   /* a built-in's own file is listed once, under the built-in's name */
        for (size_t i = 0; i < NBUILTIN; i++) dup |= !strcmp(s, builtins[i].name);
        if (dup) free(s);
        else names[k++] = s;
    }
    if (d) closedir(d);
    qsort(names, k, sizeof *names, by_name);
    for (size_t i = 0; i < k; i++) {
        PUT(", %s", names[i]);
        free(names[i]);
    }
    PUT(" (library: %s), or a FILE.cell", dir);
#undef PUT
    return n;
}

/* The library file of a name ('-' read as '_'); 0 when it exists. */
static int lib_file(const char *name, char *buf, size_t len)
{
    char file[256];
    if (strlen(name) >= sizeof file - 6 || strchr(name, '/')) return -1;
    snprintf(file, sizeof file, "%s", name);
    for (char *p = file; *p; p++)
        if (*p == '-') *p = '_';
    struct stat st;
    int n = snprintf(buf, len, "%s/%s.cell", rc_cell_lib_dir(), file);
    return n > 0 && (size_t)n < len && stat(buf, &st) == 0 && S_ISREG(st.st_mode) ? 0 : -1;
}

static void unknown(const char *name, char *err, size_t errlen)
{
    if (!err || !errlen) return;
    int n = snprintf(err, errlen, "unknown cell '%.200s': the cells are ", name);
    if (n > 0 && (size_t)n < errlen) rc_cell_names(err + n, errlen - (size_t)n);
}

int rc_cell_file(const char *name, char *buf, size_t len, char *err, size_t errlen)
{
    if (err && errlen) err[0] = 0;
    if (!name || !buf || !len) {
        if (err && errlen) snprintf(err, errlen, "rc_cell_file: NULL name or buffer");
        return -1;
    }
    if (is_path(name)) {
        if (snprintf(buf, len, "%s", name) >= (int)len) {
            if (err && errlen) snprintf(err, errlen, "%.200s: path too long", name);
            return -1;
        }
        return 0;
    }
    const char *file = name;
    for (size_t i = 0; i < NBUILTIN; i++)
        if (!strcmp(name, builtins[i].name)) file = builtins[i].file;
    if (lib_file(file, buf, len) == 0) return 0;
    unknown(name, err, errlen);
    return -1;
}

rc_cell *rc_cell_find(const char *name, int hidden, const rc_lstm_opts *lstm, char *err, size_t errlen)
{
    if (err && errlen) err[0] = 0;
    if (!name) {
        if (err && errlen) snprintf(err, errlen, "rc_cell_find: NULL name");
        return NULL;
    }
    if (hidden < 1) {
        if (err && errlen) snprintf(err, errlen, "cell %.200s: hidden size %d must be >= 1", name, hidden);
        return NULL;
    }
    rc_cell *c = NULL;
    int builtin = 1;
    if (is_path(name)) return rc_cell_load(name, hidden, err, errlen);
    if (!strcmp(name, "lstm")) c = rc_cell_lstm(hidden, lstm);
    else if (!strcmp(name, "gru")) c = rc_cell_gru(hidden, RC_GRU_RESET_AFTER);
    else if (!strcmp(name, "gru-cho")) c = rc_cell_gru(hidden, RC_GRU_RESET_BEFORE);
    else if (!strcmp(name, "rnn")) c = rc_cell_rnn(hidden, RC_ACT_TANH);
    else if (!strcmp(name, "rnn-relu")) c = rc_cell_rnn(hidden, RC_ACT_RELU);
    else if (!strcmp(name, "mut1")) c = rc_cell_mut(1, hidden);
    else if (!strcmp(name, "mut2")) c = rc_cell_mut(2, hidden);
    else if (!strcmp(name, "mut3")) c = rc_cell_mut(3, hidden);
    else builtin = 0;
    if (builtin) {
        if (!c && err && errlen) snprintf(err, errlen, "cell %s: out of memory", name);
        return c;
    }
    char path[PATH_MAX + 64];
    if (lib_file(name, path, sizeof path) == 0) return rc_cell_load(path, hidden, err, errlen);
    unknown(name, err, errlen);
    return NULL;
}
