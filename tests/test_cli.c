/* The recur command-line program, run as a child process (fork/execv, no shell):
 * argument and value errors, the train/eval/sample/plot round trip, resume ==
 * uninterrupted (bitwise, for carried-state language models and shuffled sequence
 * sets), config files, corrupt checkpoints, Ctrl-C / SIGTERM / SIGKILL during
 * training, and small tasks trained to a stated quality.
 *
 * Every test works in its own mkdtemp folder (removed by the fixture, also after a
 * failed assertion) on small generated data; each recur run is tiny (hidden 16, one
 * layer, a few dozen updates). The binary is RECUR_EXE (set by meson), or the
 * RECUR_TEST_EXE environment variable when set (e.g. to run the suite against a
 * sanitizer build of the tool). */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>   /* isfinite, fabs, NAN: no libm calls */
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "recur.h"   /* rc_gen_line_write_png: the line images of lines_align */
#include "test_util.h"

/* The options that keep every training run tiny. */
#define SMALL "--hidden", "16", "--layers", "1", "--seq", "10", "--batch", "4", "--progress", "0", "--sample", "0"

/* ---- per-test state: the temp folder, memory to free, a background child ---------- */

static char g_dir[64];
static void *g_mem[4096];
static int g_nmem, g_nrun;
static pid_t g_bg = -1;
static int g_auto_threads;   /* children choose their threads (no RC_NUM_THREADS) */

static void *track(void *p)
{
    cr_assert_not_null(p, "out of memory");
    if (g_nmem < (int)(sizeof g_mem / sizeof *g_mem)) g_mem[g_nmem++] = p;
    return p;
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int n = vsnprintf(NULL, 0, f, ap);
    va_end(ap);
    char *s = track(malloc((size_t)n + 1));
    va_start(ap, f);
    vsnprintf(s, (size_t)n + 1, f, ap);
    va_end(ap);
    return s;
}

/* A path inside the test's folder. */
static char *P(const char *name) { return fmt("%s/%s", g_dir, name); }

static void setup(void)
{
    tu_make_temp_dir(g_dir, sizeof g_dir, "/tmp/recur-cli-");
    g_nmem = 0;
    g_nrun = 0;
    g_bg = -1;
}

static void teardown(void)
{
    if (g_bg > 0) {
        kill(g_bg, SIGKILL);
        waitpid(g_bg, NULL, 0);
        g_bg = -1;
    }
    if (g_dir[0]) tu_remove_tree(g_dir);
    g_dir[0] = 0;
    for (int i = 0; i < g_nmem; i++) free(g_mem[i]);
    g_nmem = 0;
}

TestSuite(cli, .init = setup, .fini = teardown, .timeout = 60);

/* ---- files (more in test_util.c) ------------------------------------------------- */

static int exists(const char *path) { return access(path, F_OK) == 0; }

/* The whole file (NUL-terminated, tracked), or NULL when it cannot be read. */
static char *slurp(const char *path, size_t *len)
{
    char *b = tu_read_file(path, len);
    return b ? track(b) : NULL;
}

static void spit(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    cr_assert_eq(fwrite(data, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
}

static void spit_str(const char *path, const char *s) { spit(path, s, strlen(s)); }

static void copy_file(const char *from, const char *to)
{
    size_t n;
    char *b = slurp(from, &n);
    cr_assert_not_null(b, "cannot read %s", from);
    spit(to, b, n);
}

static int same_bytes(const char *a, const char *b)
{
    size_t na, nb;
    char *x = slurp(a, &na), *y = slurp(b, &nb);
    return x && y && na == nb && memcmp(x, y, na) == 0;
}

/* ---- generated data (more in test_util.c) ------------------------------------------ */

/* Text of words of a-f (capitals when upper = 1) ending with a newline. */
static void gen_text(const char *path, size_t bytes, uint32_t seed, int upper)
{
    tu_write_word_text(path, bytes, seed, upper, 1);
}

/* Classification lines "L<first token>\t<3..8 tokens of a..e>". */
static void gen_classify(const char *path, int lines, uint32_t seed)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    for (int i = 0; i < lines; i++) {
        int len = 3 + (int)(tu_lcg_next(&seed) % 6);
        char tok[8];
        for (int t = 0; t < len; t++) tok[t] = (char)('a' + tu_lcg_next(&seed) % 5);
        fprintf(f, "L%c\t", tok[0]);
        for (int t = 0; t < len; t++) fprintf(f, "%c%s", tok[t], t + 1 < len ? " " : "\n");
    }
    cr_assert_eq(fclose(f), 0);
}

/* A two-column CSV time series with a header: two sinusoids, made by rotating unit
 * vectors (no libm needed). */
static void gen_csv(const char *path, int rows)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "x,y\n");
    const double c1 = 0.98006657784124163, s1 = 0.19866933079506122;   /* cos, sin of 0.2 */
    const double c2 = 0.95533648912560601, s2 = 0.29552020666133957;   /* of 0.3 */
    double x1 = 0, y1 = 1, x2 = 1, y2 = 0;
    for (int i = 0; i < rows; i++) {
        fprintf(f, "%.6f,%.6f\n", x1, x2);
        double t = x1 * c1 + y1 * s1;
        y1 = y1 * c1 - x1 * s1;
        x1 = t;
        t = x2 * c2 - y2 * s2;
        y2 = y2 * c2 + x2 * s2;
        x2 = t;
    }
    cr_assert_eq(fclose(f), 0);
}

/* exp(x) without libm: (1 + x / 2^20)^(2^20), good to 1e-5 relative for |x| < 5. */
static double exp_approx(double x)
{
    double y = 1 + x / 1048576.0;
    for (int i = 0; i < 20; i++) y *= y;
    return y;
}

/* ---- running recur -------------------------------------------------------------------- */

typedef struct run {
    int code;         /* exit status, or -1 when killed by a signal */
    int sig;          /* the signal that ended it, or 0 */
    int timed_out;
    double secs;
    char *out, *err;  /* captured stdout / stderr (tracked) */
    char *cmd;        /* the command line, for messages */
    pid_t pid;
    char out_path[128], err_path[128];
    double t0;
} run;

/* Starts recur with args[0..n), stdout and stderr to files. */
static void start_argv(run *r, const char *const *args, int n)
{
    const char *argv[128];
    cr_assert(n < 126, "too many arguments");
    argv[0] = tu_recur_exe();
    for (int i = 0; i < n; i++) argv[i + 1] = args[i];
    argv[n + 1] = NULL;
    memset(r, 0, sizeof *r);
    size_t cl = 1;
    for (int i = 0; i <= n; i++) cl += strlen(argv[i]) + 1;
    r->cmd = track(calloc(cl, 1));
    for (int i = 0; i <= n; i++) {
        strcat(r->cmd, argv[i]);
        if (i < n) strcat(r->cmd, " ");
    }
    int k = g_nrun++;
    snprintf(r->out_path, sizeof r->out_path, "%s/run%d.out", g_dir, k);
    snprintf(r->err_path, sizeof r->err_path, "%s/run%d.err", g_dir, k);
    fflush(stdout);
    fflush(stderr);
    r->t0 = tu_monotonic_seconds();
    pid_t pid = fork();
    cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        tu_child_redirect(r->out_path, r->err_path);
        /* recur's own choice of threads follows the machine's load (tools/threads.c), which
         * the other test workers make vary: runs compared with each other take a fixed
         * count, all cores, unless a test sets RC_NUM_THREADS or asks for the choice */
        if (g_auto_threads) unsetenv("RC_NUM_THREADS");
        else if (!getenv("RC_NUM_THREADS")) setenv("RC_NUM_THREADS", "0", 1);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    r->pid = pid;
}

/* The variadic arguments (NULL-terminated) as an array. */
static int collect(const char **args, int max, const char *first, va_list ap)
{
    int n = 0;
    for (const char *a = first; a; a = va_arg(ap, const char *)) {
        cr_assert(n < max, "too many arguments");
        args[n++] = a;
    }
    return n;
}

/* Starts recur in the background (killed by the fixture if the test fails). */
static void start(run *r, const char *first, ...) __attribute__((sentinel));
static void start(run *r, const char *first, ...)
{
    const char *args[120];
    va_list ap;
    va_start(ap, first);
    int n = collect(args, 120, first, ap);
    va_end(ap);
    start_argv(r, args, n);
    g_bg = r->pid;
}

/* Waits up to timeout seconds (then kills it), collects the outputs. */
static void finish(run *r, double timeout)
{
    int st = 0;
    r->timed_out = tu_wait_child(r->pid, r->pid, r->t0, timeout, 0.002, &st);
    if (g_bg == r->pid) g_bg = -1;
    r->secs = tu_monotonic_seconds() - r->t0;
    r->code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    r->sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
    r->out = slurp(r->out_path, NULL);
    r->err = slurp(r->err_path, NULL);
    if (!r->out) r->out = fmt("%s", "");
    if (!r->err) r->err = fmt("%s", "");
    cr_assert_neq(r->code, 127, "cannot run %s (build it: ninja -C build)", tu_recur_exe());
    cr_assert(!r->timed_out, "%s: did not finish within %.0f s", r->cmd, timeout);
}

/* Runs recur to the end (30 s at most). */
static run recur_argv(const char *const *args, int n)
{
    run r;
    start_argv(&r, args, n);
    finish(&r, 30);
    return r;
}

static run recur(const char *first, ...) __attribute__((sentinel));
static run recur(const char *first, ...)
{
    const char *args[120];
    va_list ap;
    va_start(ap, first);
    int n = collect(args, 120, first, ap);
    va_end(ap);
    return recur_argv(args, n);
}

/* A run in a failure message: SHOW(r), or SHOWF with SHOWA(r) after other arguments. */
#define SHOWF "%s\n  exit %d, signal %d\n  stdout: %.1500s\n  stderr: %.1500s"
#define SHOWA(r) (r).cmd, (r).code, (r).sig, (r).out, (r).err
#define SHOW(r) SHOWF, SHOWA(r)

/* The run exited normally with code c. */
#define EXPECT_EXIT(r, c) cr_assert((r).sig == 0 && (r).code == (c), "expected exit %d: " SHOWF, (c), SHOWA(r))
#define OK(r) cr_assert((r).sig == 0 && (r).code == 0, "expected success: " SHOW(r))

static int has(const char *s, const char *sub) { return s && strstr(s, sub) != NULL; }

/* The number after `key` in s (e.g. key "loss "), NAN when absent. */
static double number_after(const char *s, const char *key)
{
    const char *p = s ? strstr(s, key) : NULL;
    if (!p) return NAN;
    char *end;
    double v = strtod(p + strlen(key), &end);
    return end == p + strlen(key) ? NAN : v;
}

/* ---- the checkpoint container (train/ckpt.h), parsed independently --------------------- */

typedef struct entry {
    char name[128];
    int type, ndim;
    uint32_t dims[4];
    const unsigned char *data;
    uint64_t bytes;
} entry;

typedef struct ckfile {
    unsigned char *buf;
    size_t len;
    int n;
    entry *e;
} ckfile;

static uint64_t le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* CRC-32 (IEEE, reflected, as zlib's crc32), bit by bit. */
static uint32_t crc32_of(const unsigned char *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0xEDB88320u : c >> 1;
    }
    return c ^ 0xFFFFFFFFu;
}

/* Parses path; fails the test on any malformation. */
static void ck_read(const char *path, ckfile *c)
{
    memset(c, 0, sizeof *c);
    c->buf = (unsigned char *)slurp(path, &c->len);
    cr_assert_not_null(c->buf, "cannot read %s", path);
    const unsigned char *b = c->buf;
    size_t n = c->len, o = 16;
    cr_assert(n >= 36 && memcmp(b, "RECURCKP", 8) == 0, "%s: no header", path);
    cr_assert_eq(le(b + 8, 4), 1, "%s: version", path);
    c->n = (int)le(b + 12, 4);
    cr_assert(c->n >= 0 && c->n < 100000, "%s: %d entries", path, c->n);
    c->e = track(calloc((size_t)c->n + 1, sizeof *c->e));
    for (int i = 0; i < c->n; i++) {
        entry *e = &c->e[i];
        cr_assert(o + 2 <= n, "%s: truncated", path);
        size_t L = (size_t)le(b + o, 2);
        o += 2;
        cr_assert(L >= 1 && L <= 127 && o + L + 2 <= n, "%s: entry %d name", path, i);
        memcpy(e->name, b + o, L);
        o += L;
        e->type = b[o];
        e->ndim = b[o + 1];
        o += 2;
        cr_assert(e->ndim >= 1 && e->ndim <= 4 && o + 4u * (size_t)e->ndim + 8 <= n, "%s: %s dims", path, e->name);
        for (int d = 0; d < e->ndim; d++) e->dims[d] = (uint32_t)le(b + o + 4u * (size_t)d, 4);
        o += 4u * (size_t)e->ndim;
        e->bytes = le(b + o, 8);
        o += 8;
        cr_assert(e->bytes <= n - o, "%s: %s payload", path, e->name);
        e->data = b + o;
        o += (size_t)e->bytes;
    }
    cr_assert_eq(o + 20, n, "%s: trailer at %zu of %zu", path, o, n);
    cr_assert_eq(le(b + o, 8), o, "%s: trailer length", path);
    cr_assert(memcmp(b + o + 12, "RECUREND", 8) == 0, "%s: end magic", path);
    cr_assert_eq(le(b + o + 8, 4), crc32_of(b, o), "%s: CRC-32", path);
}

static const entry *ck_find(const ckfile *c, const char *name)
{
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->e[i].name, name)) return &c->e[i];
    return NULL;
}

static int is_state_entry(const char *nm)
{
    return !strncmp(nm, "param/", 6) || !strncmp(nm, "optim/", 6) || !strncmp(nm, "state/", 6) ||
           !strcmp(nm, "optim.scalars") || !strcmp(nm, "train.order");
}

/* Every param/, optim/, state/ entry (and optim.scalars, train.order) of a and b is
 * the same, byte for byte, and so are the training counters (step, epoch, batch,
 * dropout runs, best loss, bad validations; not the wall time). Returns the number
 * of entries compared. */
static int ck_same_state(const char *pa, const char *pb)
{
    ckfile a, b;
    ck_read(pa, &a);
    ck_read(pb, &b);
    int compared = 0;
    for (int i = 0; i < a.n; i++) {
        const entry *x = &a.e[i];
        if (!is_state_entry(x->name)) continue;
        const entry *y = ck_find(&b, x->name);
        cr_assert_not_null(y, "%s has '%s', %s does not", pa, x->name, pb);
        cr_assert(x->type == y->type && x->ndim == y->ndim && memcmp(x->dims, y->dims, sizeof x->dims) == 0 &&
                      x->bytes == y->bytes,
                  "'%s': type/shape differ between %s and %s", x->name, pa, pb);
        size_t k = 0;
        while (k < x->bytes && x->data[k] == y->data[k]) k++;
        cr_assert_eq(k, x->bytes, "'%s' differs at byte %zu of %llu between %s and %s", x->name, k,
                     (unsigned long long)x->bytes, pa, pb);
        compared++;
    }
    for (int i = 0; i < b.n; i++)
        if (is_state_entry(b.e[i].name))
            cr_assert_not_null(ck_find(&a, b.e[i].name), "%s has '%s', %s does not", pb, b.e[i].name, pa);
    const entry *x = ck_find(&a, "train.progress"), *y = ck_find(&b, "train.progress");
    if (x || y) {
        cr_assert(x && y && x->bytes == 56 && y->bytes == 56, "train.progress missing or of another size");
        static const char *what[] = { "step", "epoch", "batch", "runs", "best", "bad" };
        for (int k = 0; k < 6; k++)
            cr_assert_eq(le(x->data + 8 * k, 8), le(y->data + 8 * k, 8), "train.progress %s: %llu vs %llu", what[k],
                         (unsigned long long)le(x->data + 8 * k, 8), (unsigned long long)le(y->data + 8 * k, 8));
    }
    return compared;
}

static int count_prefix(const char *path, const char *prefix)
{
    ckfile c;
    ck_read(path, &c);
    int k = 0;
    for (int i = 0; i < c.n; i++) k += !strncmp(c.e[i].name, prefix, strlen(prefix));
    return k;
}

/* ======================================================================================
 * 1. Bad arguments: exit 2 and a usage hint on stderr
 * ==================================================================================== */

Test(cli, no_command)
{
    run r = recur_argv(NULL, 0);
    EXPECT_EXIT(r, 2);
    cr_assert(has(r.err, "usage: recur COMMAND"), SHOW(r));
    cr_assert(has(r.err, "train"), SHOW(r));
}

Test(cli, unknown_command)
{
    run r = recur("frobnicate", NULL);
    EXPECT_EXIT(r, 2);
    cr_assert(has(r.err, "unknown command 'frobnicate'"), SHOW(r));
    cr_assert(has(r.err, "usage:"), SHOW(r));
}

Test(cli, unknown_option)
{
    run r = recur("train", "--data", P("x.txt"), "--frobnicate", "3", NULL);
    EXPECT_EXIT(r, 2);
    cr_assert(has(r.err, "unknown option '--frobnicate'"), SHOW(r));
    cr_assert(has(r.err, "usage: recur train"), SHOW(r));
    cr_assert(!exists(P("x.txt")), "nothing should have been created");
}

Test(cli, option_missing_value)
{
    run r = recur("train", "--out", P("o"), "--hidden", NULL);
    EXPECT_EXIT(r, 2);
    cr_assert(has(r.err, "--hidden needs a value"), SHOW(r));
    cr_assert(has(r.err, "usage: recur train"), SHOW(r));
    cr_assert(!exists(P("o")), "a parse error must not create the run folder");

    run r2 = recur("eval", "--checkpoint", NULL);
    EXPECT_EXIT(r2, 2);
    cr_assert(has(r2.err, "--checkpoint needs a value"), SHOW(r2));

    run r3 = recur("train", "--config", NULL);
    EXPECT_EXIT(r3, 2);
    cr_assert(has(r3.err, "--config needs a file"), SHOW(r3));
}

Test(cli, non_numbers)
{
    static const char *cases[][3] = {
        { "--hidden", "abc", "'abc' is not an integer" }, { "--hidden", "12x", "not an integer" },
        { "--hidden", "", "not an integer" },            { "--hidden", "99999999999", "not an integer" },
        { "--lr", "fast", "'fast' is not a number" },    { "--lr", "nan", "not a number" },
        { "--steps", "1.5", "not an integer" },          { "--dropout", "0.1.2", "not a number" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        run r = recur("train", "--out", P("o"), cases[i][0], cases[i][1], NULL);
        EXPECT_EXIT(r, 2);
        cr_assert(has(r.err, cases[i][2]) && has(r.err, cases[i][0]), SHOW(r));
        cr_assert(has(r.err, "usage: recur train"), SHOW(r));
    }
    run r = recur("train", "--out", P("o"), "stray", NULL);
    EXPECT_EXIT(r, 2);
    cr_assert(has(r.err, "unexpected argument 'stray'"), SHOW(r));
    cr_assert(!exists(P("o")));
}

Test(cli, config_missing_file)
{
    run r = recur("train", "--config", P("nope.cfg"), NULL);
    EXPECT_EXIT(r, 2);
    cr_assert(has(r.err, "nope.cfg: cannot open config file"), SHOW(r));
    cr_assert(has(r.err, "usage: recur train"), SHOW(r));
}

Test(cli, config_bad_lines)
{
    static const char *cases[][3] = {
        { "# a comment\nhidden = 16\n\nthis line has no equals\n", ":4: expected 'key = value'", "" },
        { "hidden = 16\nfrobnicate = 2\n", ":2: unknown option 'frobnicate'", "" },
        { "layers = 1\nhidden = lots\n", ":2: --hidden: 'lots' is not an integer", "" },
        { "config = other.cfg\n", ":1: a config file cannot include another", "" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *cfg = P(fmt("bad%zu.cfg", i));
        spit_str(cfg, cases[i][0]);
        run r = recur("train", "--config", cfg, NULL);
        EXPECT_EXIT(r, 2);
        cr_assert(has(r.err, fmt("bad%zu.cfg%s", i, cases[i][1])), "case %zu: " SHOWF, i, SHOWA(r));
        cr_assert(has(r.err, "usage: recur train"), SHOW(r));
    }
}

Test(cli, help_and_version)
{
    run r = recur("--help", NULL);
    OK(r);
    cr_assert(has(r.out, "usage: recur COMMAND") && has(r.out, "train") && has(r.out, "eval") &&
                  has(r.out, "sample") && has(r.out, "plot"),
              SHOW(r));

    run t = recur("train", "--help", NULL);
    OK(t);
    static const char *opts[] = { "--data V", "--data-kind V", "--cell V", "--hidden V", "--layers V", "--dropout V",
                                  "--seq V", "--batch V", "--steps V", "--optim V", "--lr V", "--schedule V",
                                  "--seed V", "--out V", "--save-every V", "--eval-every V", "--resume",
                                  "--progress V", "--config FILE" };
    for (size_t i = 0; i < sizeof opts / sizeof *opts; i++) cr_assert(has(t.out, opts[i]), "no %s in " SHOWF, opts[i], SHOWA(t));
    cr_assert(has(t.out, "[128]"), "defaults are listed: " SHOW(t));
    cr_assert(!has(t.out, "--prime"), "sample's options are not train's: " SHOW(t));

    run e = recur("eval", "-h", NULL);
    OK(e);
    cr_assert(has(e.out, "--checkpoint V") && has(e.out, "--split V") && !has(e.out, "--lr V"), SHOW(e));

    run s = recur("sample", "--help", NULL);
    OK(s);
    cr_assert(has(s.out, "--prime V") && has(s.out, "--length V") && has(s.out, "--temperature V"), SHOW(s));

    run v = recur("version", NULL);
    OK(v);
    cr_assert(!strncmp(v.out, "recur ", 6), SHOW(v));
}

/* ======================================================================================
 * 2. Bad values: exit 1 with a clear message, no crash
 * ==================================================================================== */

Test(cli, bad_values)
{
    char *data = P("text.txt");
    gen_text(data, 4000, 1, 0);
    static const char *cases[][3] = {
        { "--cell", "nope", "--cell: unknown cell 'nope': the cells are lstm, gru" },
        { "--data-kind", "nope", "--data-kind 'nope' is not one of" },
        { "--optim", "nope", "--optim 'nope' is not one of" },
        { "--schedule", "nope", "--schedule 'nope' is not one of" },
        { "--hidden", "0", "--hidden 0 must be >= 1" },
        { "--layers", "0", "must be >= 1" },
        { "--batch", "0", "must be >= 1" },
        { "--init", "nope", "--init 'nope'" },
        { "--metrics", "nope", "--metrics 'nope'" },
        { "--loss-norm", "nope", "--loss-norm 'nope'" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        run r = recur("train", "--data", data, "--out", P("o"), SMALL, "--steps", "2", cases[i][0], cases[i][1], NULL);
        EXPECT_EXIT(r, 1);
        cr_assert(has(r.err, "recur train: ") && has(r.err, cases[i][2]), SHOW(r));
        cr_assert(!exists(P("o/last.ckpt")), "a failed run must not write a checkpoint: " SHOW(r));
    }
    run m = recur("train", "--data", P("missing.txt"), "--out", P("o"), SMALL, NULL);
    EXPECT_EXIT(m, 1);
    cr_assert(has(m.err, "missing.txt") && has(m.err, "No such file"), SHOW(m));

    spit_str(P("empty.txt"), "");
    run em = recur("train", "--data", P("empty.txt"), "--out", P("o"), SMALL, NULL);
    EXPECT_EXIT(em, 1);
    cr_assert(has(em.err, "empty"), SHOW(em));

    run bi = recur("train", "--data", data, "--out", P("o"), SMALL, "--bidirectional", NULL);
    EXPECT_EXIT(bi, 1);
    cr_assert(has(bi.err, "--bidirectional"), SHOW(bi));

    run nr = recur("train", "--out", P("fresh"), "--resume", NULL);
    EXPECT_EXIT(nr, 1);
    cr_assert(has(nr.err, "last.ckpt") && has(nr.err, "cannot open"), SHOW(nr));

    run e = recur("eval", "--checkpoint", P("missing.ckpt"), NULL);
    EXPECT_EXIT(e, 1);
    cr_assert(has(e.err, "recur eval: ") && has(e.err, "missing.ckpt"), SHOW(e));

    run e2 = recur("eval", "--out", P("nothing-here"), NULL);
    EXPECT_EXIT(e2, 1);
    cr_assert(has(e2.err, "nothing-here/last.ckpt"), SHOW(e2));

    run s = recur("sample", "--checkpoint", P("missing.ckpt"), NULL);
    EXPECT_EXIT(s, 1);
    cr_assert(has(s.err, "recur sample: ") && has(s.err, "missing.ckpt"), SHOW(s));

    run p = recur("plot", "--out", P("nothing-here"), NULL);
    EXPECT_EXIT(p, 1);
    cr_assert(has(p.err, "no metrics to plot"), SHOW(p));

    spit_str(P("not-a-ckpt"), "hello, world, this is not a checkpoint at all\n");
    run nc = recur("eval", "--checkpoint", P("not-a-ckpt"), NULL);
    EXPECT_EXIT(nc, 1);
    cr_assert(has(nc.err, "not a recur checkpoint"), SHOW(nc));
}

/* Bad values of eval and sample, given a real run. */
Test(cli, bad_values_eval_sample)
{
    char *data = P("text.txt"), *out = P("run");
    gen_text(data, 4000, 1, 0);
    run t = recur("train", "--data", data, "--out", out, SMALL, "--steps", "3", NULL);
    OK(t);
    run te = recur("eval", "--out", out, "--split", "test", NULL);
    EXPECT_EXIT(te, 1);
    cr_assert(has(te.err, "test part of the data is empty"), SHOW(te));
    run bs = recur("eval", "--out", out, "--split", "nope", NULL);
    cr_assert(bs.sig == 0 && bs.code != 0 && has(bs.err, "--split 'nope'"), SHOW(bs));
    run pr = recur("sample", "--out", out, "--prime", "xyz", "--length", "5", NULL);
    EXPECT_EXIT(pr, 1);
    cr_assert(has(pr.err, "--prime") && has(pr.err, "not in the vocabulary"), SHOW(pr));
    run nl = recur("sample", "--out", out, "--length", "-1", NULL);
    cr_assert(nl.sig == 0 && nl.code != 0 && has(nl.err, "--length"), SHOW(nl));
}

/* ======================================================================================
 * 3. Train / eval / sample / plot round trip on generated text
 * ==================================================================================== */

Test(cli, round_trip_chars)
{
    char *data = P("text.txt"), *out = P("run");
    gen_text(data, 20000, 7, 0);
    run t = recur("train", "--data", data, "--out", out, SMALL, "--steps", "60", "--eval-every", "20", NULL);
    OK(t);
    cr_assert(has(t.out, "chars, 1 x 16 lstm"), SHOW(t));
    cr_assert(has(t.out, "valid loss") && has(t.out, "(best)"), SHOW(t));
    cr_assert(has(t.out, "step limit after 60 updates"), SHOW(t));
    cr_assert(exists(P("run/last.ckpt")) && exists(P("run/best.ckpt")), "checkpoints missing");
    cr_assert_gt(count_prefix(P("run/last.ckpt"), "param/"), 0);
    cr_assert_gt(count_prefix(P("run/last.ckpt"), "state/"), 0, "a language model carries its state");

    /* metrics.csv: the run record, the header row, validation rows */
    char *m = slurp(P("run/metrics.csv"), NULL);
    cr_assert_not_null(m, "no metrics.csv");
    cr_assert(!strncmp(m, "# recur ", 8), "metrics.csv starts with the run record:\n%.400s", m);
    const char *nl = strchr(m, '\n');
    cr_assert_not_null(nl);
    char first[512];
    snprintf(first, sizeof first, "%.*s", (int)(nl - m), m);
    cr_assert(has(first, "(git ") && has(first, " on ") && has(first, " threads") && has(first, "seed 1") &&
                  has(first, "started "),
              "run record: %s", first);
    static const char *cfg[] = { "\n# data = ", "\n# data-kind = chars\n", "\n# hidden = 16\n", "\n# layers = 1\n",
                                 "\n# seq = 10\n", "\n# batch = 4\n", "\n# steps = 60\n", "\n# eval-every = 20\n",
                                 "\n# cell = lstm\n", "\n# optim = adam\n", "\n# seed = 1\n" };
    for (size_t i = 0; i < sizeof cfg / sizeof *cfg; i++) cr_assert(has(m, cfg[i]), "no '%s' in metrics.csv:\n%.3000s", cfg[i] + 1, m);
    const char *hdr = strstr(m, "\nkind,step,epoch,loss,metric_name,metric,lr,grad_norm");
    cr_assert_not_null(hdr, "no header row:\n%.3000s", m);
    for (const char *p = m; p < hdr; p = strchr(p, '\n') + 1) cr_assert_eq(*p, '#', "only '#' lines before the header");
    const char *hdr_end = strchr(hdr + 1, '\n');
    cr_assert(hdr_end && !strncmp(hdr_end - 23, ",tokens_per_s,elapsed_s", 23), "header row: %.300s", hdr + 1);
    cr_assert(has(hdr, "\nvalid,20,1,") && has(hdr, "\nvalid,40,1,") && has(hdr, "\nvalid,60,1,"),
              "validation rows at 20, 40, 60:\n%s", hdr);

    /* eval */
    run e = recur("eval", "--out", out, NULL);
    OK(e);
    cr_assert(has(e.out, "best.ckpt valid: loss "), SHOW(e));
    double loss = number_after(e.out, "loss "), bpc = number_after(e.out, "bpc ");
    cr_assert(isfinite(loss) && loss > 0 && loss < 3, SHOW(e));
    cr_assert(fabs(bpc - loss / 0.69314718055994531) < 2e-3, "bpc = loss / ln 2: " SHOW(e));
    /* best.ckpt holds the lowest validation loss; last.ckpt the model validated at 60 */
    double v[3];
    for (int i = 0; i < 3; i++) {
        char *key = fmt("\nvalid,%d,1,", 20 * (i + 1));
        v[i] = number_after(strstr(hdr, key), key);
    }
    double vmin = v[0] < v[1] ? (v[0] < v[2] ? v[0] : v[2]) : (v[1] < v[2] ? v[1] : v[2]);
    cr_assert(fabs(vmin - loss) < 1e-3, "eval of best.ckpt (%g) repeats the best validation (%g)", loss, vmin);
    run el = recur("eval", "--checkpoint", P("run/last.ckpt"), NULL);
    OK(el);
    cr_assert(fabs(number_after(el.out, "loss ") - v[2]) < 1e-3, "eval of last.ckpt repeats the validation at 60 (%g): " SHOWF,
              v[2], SHOWA(el));
    run et = recur("eval", "--checkpoint", P("run/last.ckpt"), "--split", "train", NULL);
    OK(et);
    cr_assert(has(et.out, "last.ckpt train: loss ") && has(et.out, "bpc "), SHOW(et));

    /* sample: the prime, then 50 characters of the data's alphabet */
    run s = recur("sample", "--out", out, "--length", "50", "--prime", "ab", NULL);
    OK(s);
    cr_assert(!strncmp(s.out, "ab", 2), "sample starts with the prime: " SHOW(s));
    cr_assert_eq(strlen(s.out), 2 + 50 + 1, "prime + 50 characters + newline: " SHOW(s));
    for (const char *c = s.out; *c; c++) cr_assert(strchr("abcdef \n", *c), "'%c' is not in the data: " SHOWF, *c, SHOWA(s));
    run s2 = recur("sample", "--out", out, "--length", "50", "--prime", "ab", NULL);
    OK(s2);
    cr_assert_str_eq(s.out, s2.out, "the same seed gives the same sample");
    run s0 = recur("sample", "--out", out, "--length", "30", NULL);
    OK(s0);
    cr_assert_eq(strlen(s0.out), 31, SHOW(s0));

    /* plot */
    if (access("/usr/bin/gnuplot", X_OK) != 0) {
        cr_log_warn("gnuplot is absent: the plot part of cli/round_trip_chars is skipped");
        return;
    }
    run p = recur("plot", "--out", out, NULL);
    OK(p);
    cr_assert(has(p.out, "curves.png"), SHOW(p));
    size_t n = 0;
    char *png = slurp(P("run/curves.png"), &n);
    cr_assert(png && n > 100 && !memcmp(png, "\x89PNG", 4), "curves.png is a PNG image");
    run ps = recur("plot", "--out", out, "--plot-out", P("run/c.svg"), NULL);
    OK(ps);
    char *svg = slurp(P("run/c.svg"), NULL);
    cr_assert(svg && has(svg, "<svg"), "c.svg is an SVG image");
    run pb = recur("plot", "--out", out, "--plot-out", P("run/c.gif"), NULL);
    EXPECT_EXIT(pb, 1);
    cr_assert(has(pb.err, ".png or .svg"), SHOW(pb));
}

/* The metrics of a short run hold its training loss: a run stopped by --steps before
 * the first 0.5 s report still records the loss of the updates it did. */
Test(cli, metrics_train_rows)
{
    char *data = P("text.txt"), *out = P("run");
    gen_text(data, 20000, 7, 0);
    run t = recur("train", "--data", data, "--out", out, SMALL, "--steps", "60", "--eval-every", "20", NULL);
    OK(t);
    char *m = slurp(P("run/metrics.csv"), NULL);
    cr_assert_not_null(m);
    cr_assert(has(m, "\ntrain,"), "metrics.csv of a 60-update run has no 'train' row (only validation rows):\n%s",
              strstr(m, "\nkind,") ? strstr(m, "\nkind,") + 1 : m);
    cr_assert(has(m, "\ntrain,60,"), "no 'train' row for the last update (60):\n%s", strstr(m, "\nkind,") + 1);
}

/* --metrics jsonl: the run record and the rows as JSON lines. */
Test(cli, metrics_jsonl)
{
    char *data = P("text.txt"), *out = P("run");
    gen_text(data, 4000, 1, 0);
    run t = recur("train", "--data", data, "--out", out, SMALL, "--steps", "10", "--eval-every", "5", "--metrics",
                  "jsonl", NULL);
    OK(t);
    char *m = slurp(P("run/metrics.jsonl"), NULL);
    cr_assert_not_null(m, "no metrics.jsonl");
    cr_assert(!strncmp(m, "{\"run\": {\"recur\": \"", 19), "run record first:\n%.300s", m);
    cr_assert(has(m, "\"git\": ") && has(m, "\"host\": ") && has(m, "\"threads\": ") && has(m, "\"seed\": 1,") &&
                  has(m, "\"config\": \"data = ") && has(m, "hidden = 16\\u000a"),
              "run record:\n%.600s", m);
    cr_assert(has(m, "\n{\"kind\": \"valid\", \"step\": 5,") && has(m, "\n{\"kind\": \"valid\", \"step\": 10,"), "%s", m);
    cr_assert(!exists(P("run/metrics.csv")));
    run e = recur("eval", "--out", out, NULL);
    OK(e);
}

/* recur eval lists --seq and --batch among its options (recur eval --help): they set
 * how the held-out data is batched, so they change a language model's loss (another
 * number of streams, other truncation points of the carried state). */
Test(cli, eval_batch_seq_options)
{
    char *data = P("text.txt"), *out = P("run");
    gen_text(data, 20000, 7, 0);
    run t = recur("train", "--data", data, "--out", out, SMALL, "--steps", "60", NULL);
    OK(t);
    run h = recur("eval", "--help", NULL);
    OK(h);
    cr_assert(has(h.out, "--seq V") && has(h.out, "--batch V"), SHOW(h));
    run e0 = recur("eval", "--out", out, NULL);
    run e1 = recur("eval", "--out", out, "--batch", "1", "--seq", "7", NULL);
    OK(e0);
    OK(e1);
    double l0 = number_after(e0.out, "loss "), l1 = number_after(e1.out, "loss ");
    cr_assert(isfinite(l0) && isfinite(l1), "%s\n%s", e0.out, e1.out);
    cr_assert(l0 != l1, "recur eval --batch 1 --seq 7 gives the loss of the stored batch 4 / seq 10 (%.4f): the "
                        "options are listed for eval but have no effect\n%s%s",
              l0, e0.out, e1.out);
}

/* recur sample rebuilds the model from the checkpoint alone (it stores the
 * configuration and the vocabulary): it does not need the training data any more. */
Test(cli, sample_without_the_data)
{
    char *data = P("text.txt"), *out = P("run");
    gen_text(data, 4000, 1, 0);
    run t = recur("train", "--data", data, "--out", out, SMALL, "--steps", "5", NULL);
    OK(t);
    cr_assert_gt(count_prefix(P("run/last.ckpt"), "recur.vocab"), 0, "the vocabulary is in the checkpoint");
    cr_assert_eq(unlink(data), 0);
    run s = recur("sample", "--out", out, "--length", "20", "--prime", "ab", NULL);
    cr_assert(s.sig == 0 && s.code == 0 && !strncmp(s.out, "ab", 2),
              "sampling from a checkpoint whose training file was moved away fails: " SHOW(s));
}

/* The words kind: perplexity, and a sample of words. */
Test(cli, round_trip_words)
{
    char *data = P("text.txt"), *out = P("run");
    gen_text(data, 20000, 3, 0);
    run t = recur("train", "--data", data, "--data-kind", "words", "--valid-frac", "0.1", "--out", out, SMALL,
                  "--steps", "200", "--lr", "0.01", "--eval-every", "100", NULL);
    OK(t);
    run e = recur("eval", "--out", out, NULL);
    OK(e);
    double ppl = number_after(e.out, "ppl "), loss = number_after(e.out, "loss ");
    cr_assert(isfinite(ppl) && fabs(ppl - exp_approx(loss)) < 0.01 * ppl, "ppl = exp(loss): " SHOW(e));
    cr_assert(ppl < 10, "perplexity %g not well below the 11-token vocabulary's uniform 11", ppl);
    run s = recur("sample", "--out", out, "--length", "12", "--prime", "abba cab", NULL);
    OK(s);
    cr_assert(!strncmp(s.out, "abba cab ", 9), SHOW(s));
}

/* ======================================================================================
 * 4. Resume == uninterrupted, bitwise
 * ==================================================================================== */

/* Trains `total` updates in one run (A) and in two (B: stop_at, then --resume), both
 * with the options given, and compares the checkpoints' state entries. */
static void resume_case(const char *tag, const char **opts, int nopts, int stop_at, int total, int compare_best)
{
    char *a = P(fmt("%s-A", tag)), *b = P(fmt("%s-B%d", tag, stop_at));
    char stot[16], sstop[16];
    snprintf(stot, sizeof stot, "%d", total);
    snprintf(sstop, sizeof sstop, "%d", stop_at);
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 0 && exists(fmt("%s/last.ckpt", a))) continue;   /* A is shared by the stop points */
        const char *argv[100] = { "train", "--out", pass ? b : a, "--steps", pass ? sstop : stot };
        int n = 5;
        for (int i = 0; i < nopts && n < 100; i++) argv[n++] = opts[i];
        run r = recur_argv(argv, n);
        OK(r);
    }
    run r = recur("train", "--out", b, "--resume", "--steps", stot, "--progress", "0", NULL);
    OK(r);
    cr_assert(has(r.out, fmt("resumed %s/last.ckpt", b)) && has(r.out, fmt("step %d\n", stop_at)), SHOW(r));
    cr_assert(has(r.out, fmt("after %d updates", total)), SHOW(r));
    int n = ck_same_state(fmt("%s/last.ckpt", a), fmt("%s/last.ckpt", b));
    cr_assert_gt(n, 10, "compared %d entries", n);
    if (compare_best) ck_same_state(fmt("%s/best.ckpt", a), fmt("%s/best.ckpt", b));
    /* the resumed run appends to its metrics, with one run record */
    char *m = slurp(fmt("%s/metrics.csv", b), NULL);
    cr_assert(m && strstr(m, "# recur ") == m && !strstr(m + 1, "# recur "), "one run record in the resumed metrics");
}

Test(cli, resume_chars)
{
    char *data = P("text.txt");
    gen_text(data, 20000, 11, 0);
    const char *opts[] = { "--data", data, SMALL, "--dropout", "0.1", "--save-every", "0" };
    int n = sizeof opts / sizeof *opts;
    resume_case("c", opts, n, 25, 60, 0);
    /* with validation in the middle (it saves and restores the carried state) */
    const char *opts2[] = { "--data", data, SMALL, "--dropout", "0.1", "--save-every", "0", "--eval-every", "20" };
    resume_case("cv", opts2, sizeof opts2 / sizeof *opts2, 25, 60, 1);
    resume_case("cv", opts2, sizeof opts2 / sizeof *opts2, 40, 60, 1);
}

/* Across an epoch boundary: the carried state is reset at each epoch's start. */
Test(cli, resume_chars_epochs)
{
    char *data = P("text.txt");
    gen_text(data, 2500, 5, 0);   /* 59 batches of 4 x 10 per epoch */
    const char *opts[] = { "--data", data, SMALL, "--dropout", "0.1", "--save-every", "0", "--eval-every", "13",
                           "--cell", "gru" };
    int n = sizeof opts / sizeof *opts;
    resume_case("e", opts, n, 58, 90, 1);
    resume_case("e", opts, n, 59, 90, 1);
    resume_case("e", opts, n, 70, 90, 1);
}

Test(cli, resume_words)
{
    char *data = P("text.txt");
    gen_text(data, 20000, 13, 0);
    const char *opts[] = { "--data", data, "--data-kind", "words", "--valid-frac", "0.1", SMALL, "--dropout", "0.1",
                           "--save-every", "0" };
    resume_case("w", opts, sizeof opts / sizeof *opts, 25, 60, 0);
}

/* Shuffled sequence sets: the data order of the epoch in progress is restored. */
Test(cli, resume_classify)
{
    char *tr = P("train.tsv"), *va = P("valid.tsv");
    gen_classify(tr, 200, 21);   /* 50 batches of 4 per epoch */
    gen_classify(va, 40, 22);
    const char *opts[] = { "--data", tr, "--valid", va, "--data-kind", "classify", SMALL, "--cell", "gru",
                           "--dropout", "0.1", "--save-every", "0", "--eval-every", "30" };
    int n = sizeof opts / sizeof *opts;
    resume_case("k", opts, n, 20, 120, 1);    /* inside epoch 1 */
    resume_case("k", opts, n, 50, 120, 1);    /* at the end of epoch 1 */
    resume_case("k", opts, n, 77, 120, 1);    /* inside epoch 2: its shuffled order */
    cr_assert_gt(count_prefix(P("k-A/last.ckpt"), "train.order"), 0, "the data order is in the checkpoint");
}

Test(cli, resume_music)
{
    char *data = P("music.json");
    tu_write_music_json(data, 31, 24, 6);   /* 6 batches of 4 per epoch */
    const char *opts[] = { "--data", data, "--data-kind", "music", SMALL, "--dropout", "0.1", "--save-every", "0",
                           "--epochs", "10" };
    int n = sizeof opts / sizeof *opts;
    resume_case("m", opts, n, 9, 20, 1);
    resume_case("m", opts, n, 14, 20, 1);
}

/* Runs `recur train --out <tag> opts`, keeps copies of its last.ckpt, best.ckpt and
 * metrics.csv, runs the same command with --resume, and requires that the rerun says
 * the run had already finished (naming the limit `opt`) and left the three files byte
 * for byte as they were (before the fix, a rerun past --steps trained one more update,
 * and so on). */
static void rerun_finished_case(const char *tag, const char **opts, int nopts, const char *opt)
{
    char *out = P(tag);
    const char *argv[64] = { "train", "--out", out };
    int n = 3;
    for (int i = 0; i < nopts && n < 62; i++) argv[n++] = opts[i];
    run first = recur_argv(argv, n);
    OK(first);
    static const char *const files[] = { "last.ckpt", "best.ckpt", "metrics.csv" };
    for (int k = 0; k < 3; k++) {
        cr_assert(exists(fmt("%s/%s", out, files[k])), "%s: the first run wrote no %s: " SHOWF, tag, files[k],
                  SHOWA(first));
        copy_file(fmt("%s/%s", out, files[k]), fmt("%s-%s", out, files[k]));
    }
    argv[n++] = "--resume";
    for (int again = 0; again < 2; again++) {
        run r = recur_argv(argv, n);
        OK(r);
        cr_assert(has(r.out, "already finished") && has(r.out, opt), "%s: " SHOWF, tag, SHOWA(r));
        for (int k = 0; k < 3; k++)
            cr_assert(same_bytes(fmt("%s/%s", out, files[k]), fmt("%s-%s", out, files[k])),
                      "%s: rerunning the finished command changed %s: " SHOWF, tag, files[k], SHOWA(r));
    }
}

/* Rerunning a finished command changes nothing, whichever limit finished it: --steps,
 * --epochs, --time-limit (the time trained in all) and early stopping (--patience). */
Test(cli, rerun_of_a_finished_run_changes_nothing)
{
    char *data = P("text.txt"), *small = P("small.txt");
    gen_text(data, 20000, 17, 0);
    gen_text(small, 2500, 5, 0);   /* 59 batches of 4 x 10 per epoch */
    const char *steps[] = { "--data", data, SMALL, "--steps", "10", "--eval-every", "5" };
    rerun_finished_case("steps", steps, sizeof steps / sizeof *steps, "--steps 10");
    const char *epochs[] = { "--data", small, SMALL, "--epochs", "1" };
    rerun_finished_case("epochs", epochs, sizeof epochs / sizeof *epochs, "all of --epochs 1");
    const char *timed[] = { "--data", data, SMALL, "--epochs", "100000", "--time-limit", "0.3", "--eval-every", "1" };
    rerun_finished_case("time", timed, sizeof timed / sizeof *timed, "--time-limit 0.3");
    const char *early[] = { "--data", data, SMALL, "--steps", "300", "--eval-every", "3", "--patience", "1", "--lr", "1" };
    rerun_finished_case("early", early, sizeof early / sizeof *early, "--patience 1");
    /* a larger limit continues the run */
    run more = recur("train", "--out", P("steps"), "--resume", "--steps", "12", NULL);
    OK(more);
    cr_assert(has(more.out, "after 12 updates"), SHOW(more));
}

/* Temporary files of checkpoint writes killed before they ended ("<ckpt>.tmp.<pid>" of
 * a pid no process has) are removed when a run starts or resumes; a live process's, and
 * every name that only looks like one, are kept. */
Test(cli, stale_checkpoint_temporaries_are_removed)
{
    char *data = P("text.txt"), *out = P("run"), *fresh = P("fresh");
    gen_text(data, 20000, 19, 0);
    pid_t dead = fork();   /* a pid that no process has any more */
    cr_assert_geq(dead, 0);
    if (dead == 0) _exit(0);
    cr_assert_eq(waitpid(dead, NULL, 0), dead);
    long me = (long)getpid();   /* this test: a live process, not the run */
    run t = recur("train", "--data", data, "--out", out, SMALL, "--steps", "3", "--eval-every", "2", NULL);
    OK(t);
    const char *stale[] = { fmt("last.ckpt.tmp.%ld", (long)dead), fmt("best.ckpt.tmp.%ld", (long)dead) };
    const char *kept[] = { fmt("last.ckpt.tmp.%ld", me), fmt("last.ckpt.tmp.%ldx", (long)dead),
                           fmt("last.ckpt.tmp.0%ld", (long)dead), fmt("last.ckpt.tmp.%ld.bak", (long)dead),
                           fmt("other.ckpt.tmp.%ld", (long)dead), fmt("last.ckpt.tmpx%ld", (long)dead), "last.ckpt.tmp." };
    for (size_t i = 0; i < 2; i++) spit_str(fmt("%s/%s", out, stale[i]), "half a checkpoint");
    for (size_t i = 0; i < sizeof kept / sizeof *kept; i++) spit_str(fmt("%s/%s", out, kept[i]), "not ours");
    run r = recur("train", "--out", out, "--resume", "--steps", "5", NULL);
    OK(r);
    cr_assert(has(r.out, "stale temporary file"), SHOW(r));
    for (size_t i = 0; i < 2; i++) cr_assert(!exists(fmt("%s/%s", out, stale[i])), "%s is still there: " SHOWF, stale[i], SHOWA(r));
    for (size_t i = 0; i < sizeof kept / sizeof *kept; i++)
        cr_assert(exists(fmt("%s/%s", out, kept[i])), "%s was removed: " SHOWF, kept[i], SHOWA(r));
    /* a new run in a folder holding one */
    cr_assert_eq(mkdir(fresh, 0755), 0);
    spit_str(fmt("%s/%s", fresh, stale[0]), "half a checkpoint");
    run f = recur("train", "--data", data, "--out", fresh, SMALL, "--steps", "2", NULL);
    OK(f);
    cr_assert(!exists(fmt("%s/%s", fresh, stale[0])), SHOW(f));
}

/* Every floating option of train, eval and sample (and a config file's keys) refuses
 * inf and nan, naming the option; negative values where they make no sense; --threads
 * and RC_NUM_THREADS above the bound of 4 per core online. Nothing is written. */
Test(cli, non_finite_negative_and_too_many)
{
    static const char *floats[] = { "--valid-frac", "--test-frac", "--dropout", "--forget-bias", "--init-scale",
                                    "--time-limit", "--lr", "--momentum", "--beta1", "--beta2", "--rho", "--eps",
                                    "--weight-decay", "--clip", "--weight-noise", "--decay-factor", "--min-lr-frac",
                                    "--temperature" };
    for (size_t i = 0; i < sizeof floats / sizeof *floats; i++)
        for (int v = 0; v < 3; v++) {
            const char *val = v == 0 ? "inf" : v == 1 ? "-inf" : "nan";
            const char *cmd = !strcmp(floats[i], "--temperature") ? "sample" : "train";
            run r = recur(cmd, "--out", P("o"), floats[i], val, NULL);
            EXPECT_EXIT(r, 2);
            cr_assert(has(r.err, floats[i]) && (has(r.err, "finite") || has(r.err, "not a number")), SHOW(r));
        }
    static const char *neg[][3] = {
        { "train", "--time-limit", "-1" }, { "train", "--momentum", "-0.5" }, { "train", "--weight-decay", "-1" },
        { "train", "--weight-noise", "-1" }, { "train", "--init-scale", "-1" }, { "train", "--decay-factor", "0" },
        { "train", "--min-lr-frac", "2" }, { "train", "--steps", "-5" }, { "train", "--epochs", "-1" },
        { "train", "--save-every", "-1" }, { "train", "--eval-every", "-1" }, { "train", "--patience", "-2" },
        { "train", "--threads", "-1" }, { "train", "--threads", "5000" }, { "eval", "--threads", "5000" },
        { "sample", "--threads", "100000" }, { "sample", "--temperature", "-1" }, { "sample", "--length", "-1" },
        { "train", "--lr", "0" }, { "train", "--dropout", "1" }, { "train", "--clip", "-1" },
    };
    for (size_t i = 0; i < sizeof neg / sizeof *neg; i++) {
        run r = recur(neg[i][0], "--out", P("o"), neg[i][1], neg[i][2], NULL);
        EXPECT_EXIT(r, 2);
        cr_assert(has(r.err, fmt("%s %s must be", neg[i][1], neg[i][2])), SHOW(r));
        if (!strcmp(neg[i][1], "--threads") && neg[i][2][0] != '-') cr_assert(has(r.err, "per core"), SHOW(r));
    }
    spit_str(P("inf.cfg"), "hidden = 16\ntime-limit = inf\n");
    run c = recur("train", "--config", P("inf.cfg"), "--out", P("o"), NULL);
    EXPECT_EXIT(c, 2);
    cr_assert(has(c.err, "inf.cfg:2: --time-limit inf must be a finite number"), SHOW(c));
    static const char *env[] = { "5000", "lots", "-3" };
    for (size_t i = 0; i < sizeof env / sizeof *env; i++) {
        setenv("RC_NUM_THREADS", env[i], 1);
        run r = recur("train", "--out", P("o"), "--steps", "1", NULL);
        unsetenv("RC_NUM_THREADS");
        EXPECT_EXIT(r, 2);
        cr_assert(has(r.err, fmt("RC_NUM_THREADS='%s'", env[i])) && has(r.err, "per core"), SHOW(r));
    }
    cr_assert(!exists(P("o")), "a refused command created its --out");
}

/* ======================================================================================
 * 5. Config file
 * ==================================================================================== */

Test(cli, config_file_and_overrides)
{
    char *data = P("text.txt"), *cfg = P("run.cfg");
    gen_text(data, 4000, 1, 0);
    spit_str(cfg, fmt("# a tiny run\n"
                      "data = %s   # the generated text\n"
                      "hidden = 12\n"
                      "  layers=1\n"
                      "cell = gru\n"
                      "lr = 0.005\n"
                      "seq = 10\n"
                      "batch = 4\n"
                      "\n"
                      "steps = 7\n"
                      "progress = 0\n"
                      "sample = 0\n"
                      "seed = 42\n",
                      data));
    /* before --config: overridden by the file; after it: overrides the file */
    run r = recur("train", "--cell", "rnn", "--seed", "5", "--config", cfg, "--hidden", "16", "--steps=3", "--out",
                  P("run"), NULL);
    OK(r);
    cr_assert(has(r.out, "1 x 16 gru"), SHOW(r));
    cr_assert(has(r.out, "after 3 updates"), SHOW(r));
    char *m = slurp(P("run/metrics.csv"), NULL);
    cr_assert_not_null(m);
    static const char *want[] = { "\n# hidden = 16\n", "\n# layers = 1\n", "\n# cell = gru\n", "\n# lr = 0.00500000",
                                  "\n# steps = 3\n", "\n# seed = 42\n", "\n# batch = 4\n", "\n# seq = 10\n" };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) cr_assert(has(m, want[i]), "no '%s' in the run record:\n%.2500s", want[i] + 1, m);
    cr_assert(has(m, fmt("\n# data = %s\n", data)), "the data path from the file (comment stripped)");
    cr_assert(has(m, "seed 42,"), "the record's first line names the seed:\n%.200s", m);

    /* --config=FILE form, and the stored configuration is what eval rebuilds from */
    run r2 = recur("train", fmt("--config=%s", cfg), "--out", P("run2"), NULL);
    OK(r2);
    cr_assert(has(r2.out, "1 x 12 gru") && has(r2.out, "after 7 updates"), SHOW(r2));
    run e = recur("eval", "--checkpoint", P("run2/last.ckpt"), NULL);
    OK(e);
    cr_assert(has(e.out, "loss "), SHOW(e));
}

/* ======================================================================================
 * 6. Corrupt checkpoints
 * ==================================================================================== */

static void corrupt_variants(const char *good, const char *dir, char names[][160], int *count)
{
    size_t n = 0;
    unsigned char *b = (unsigned char *)slurp(good, &n);
    cr_assert(b && n > 200);
    size_t cuts[] = { 0, 1, 8, 15, 16, 17, 30, 100, n / 3, n / 2, n - 21, n - 20, n - 13, n - 8, n - 1 };
    int k = 0;
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        snprintf(names[k], 160, "%s/cut%zu.ckpt", dir, cuts[i]);
        spit(names[k++], b, cuts[i]);
    }
    size_t flips[] = { 9, 13, 20, 40, n / 4, n / 2, n - 30, n - 15, n - 5 };
    for (size_t i = 0; i < sizeof flips / sizeof *flips; i++) {
        unsigned char *c = track(malloc(n));
        memcpy(c, b, n);
        c[flips[i]] ^= 0x41;
        snprintf(names[k], 160, "%s/flip%zu.ckpt", dir, flips[i]);
        spit(names[k++], c, n);
    }
    unsigned char *c = track(malloc(n + 1));
    memcpy(c, b, n);
    memcpy(c, "NOTACKPT", 8);
    snprintf(names[k], 160, "%s/magic.ckpt", dir);
    spit(names[k++], c, n);
    memcpy(c, b, n);
    c[n] = 'x';
    snprintf(names[k], 160, "%s/extra.ckpt", dir);
    spit(names[k++], c, n + 1);
    *count = k;
}

Test(cli, corrupt_checkpoint_eval)
{
    char *data = P("text.txt"), *out = P("run");
    gen_text(data, 4000, 1, 0);
    run t = recur("train", "--data", data, "--out", out, SMALL, "--steps", "5", NULL);
    OK(t);
    char names[32][160];
    int n = 0;
    corrupt_variants(P("run/last.ckpt"), g_dir, names, &n);
    for (int i = 0; i < n; i++) {
        run e = recur("eval", "--checkpoint", names[i], NULL);
        EXPECT_EXIT(e, 1);
        cr_assert(has(e.err, "recur eval: ") && has(e.err, names[i]) && strlen(e.err) > 30, SHOW(e));
        run s = recur("sample", "--checkpoint", names[i], "--length", "5", NULL);
        EXPECT_EXIT(s, 1);
        cr_assert(has(s.err, "recur sample: "), SHOW(s));
    }
    run e = recur("eval", "--checkpoint", P("flip9.ckpt"), NULL);
    cr_assert(has(e.err, "version") || has(e.err, "checksum"), SHOW(e));
    run e2 = recur("eval", "--checkpoint", P(fmt("cut%d.ckpt", 100)), NULL);
    cr_assert(has(e2.err, "truncated"), SHOW(e2));
    run e3 = recur("eval", "--checkpoint", P("magic.ckpt"), NULL);
    cr_assert(has(e3.err, "magic"), SHOW(e3));
}

Test(cli, corrupt_checkpoint_resume)
{
    char *data = P("text.txt"), *out = P("run");
    gen_text(data, 4000, 1, 0);
    run t = recur("train", "--data", data, "--out", out, SMALL, "--steps", "12", "--eval-every", "6", NULL);
    OK(t);
    cr_assert(exists(P("run/best.ckpt")));
    copy_file(P("run/last.ckpt"), P("good.ckpt"));
    copy_file(P("run/best.ckpt"), P("best.orig"));
    copy_file(P("run/metrics.csv"), P("metrics.orig"));
    char names[32][160];
    int n = 0;
    corrupt_variants(P("good.ckpt"), g_dir, names, &n);
    for (int i = 0; i < n; i++) {
        copy_file(names[i], P("run/last.ckpt"));
        run r = recur("train", "--out", out, "--resume", "--steps", "20", NULL);
        EXPECT_EXIT(r, 1);
        cr_assert(has(r.err, "recur train: ") && has(r.err, "last.ckpt"), SHOW(r));
        cr_assert(same_bytes(P("run/last.ckpt"), names[i]), "the corrupt last.ckpt was changed (%s)", names[i]);
        cr_assert(same_bytes(P("run/best.ckpt"), P("best.orig")), "best.ckpt was changed (%s)", names[i]);
        cr_assert(same_bytes(P("run/metrics.csv"), P("metrics.orig")), "metrics.csv was changed (%s)", names[i]);
    }
    /* the good one still resumes */
    copy_file(P("good.ckpt"), P("run/last.ckpt"));
    run r = recur("train", "--out", out, "--resume", "--steps", "20", NULL);
    OK(r);
    cr_assert(has(r.out, "after 20 updates"), SHOW(r));
}

/* A checkpoint evaluated on data of another vocabulary. */
Test(cli, eval_other_vocabulary)
{
    char *data = P("text.txt"), *upper = P("upper.txt"), *other = P("other.txt"), *out = P("run");
    gen_text(data, 4000, 1, 0);
    gen_text(upper, 4000, 1, 1);   /* the same number of distinct characters, other ones */
    spit_str(other, "0123456789 xyz\n0123456789 xyz\n0123456789 xyz\n0123456789 xyz\n0123456789 xyz\n"
                    "0123456789 xyz\n0123456789 xyz\n0123456789 xyz\n0123456789 xyz\n0123456789 xyz\n");
    run t = recur("train", "--data", data, "--out", out, SMALL, "--steps", "5", NULL);
    OK(t);
    run e = recur("eval", "--checkpoint", P("run/last.ckpt"), "--data", upper, NULL);
    EXPECT_EXIT(e, 1);
    cr_assert(has(e.err, "vocabulary"), "same size, other characters: " SHOW(e));
    run e2 = recur("eval", "--checkpoint", P("run/last.ckpt"), "--data", other, NULL);
    EXPECT_EXIT(e2, 1);
    cr_assert(has(e2.err, "vocab"), "another vocabulary size: " SHOW(e2));
    run s = recur("sample", "--checkpoint", P("run/last.ckpt"), "--data", upper, "--length", "5", NULL);
    EXPECT_EXIT(s, 1);
    cr_assert(has(s.err, "vocabulary"), SHOW(s));
    /* and a classify checkpoint on another label set */
    gen_classify(P("c.tsv"), 40, 1);
    spit_str(P("c2.tsv"), "X\ta b\nY\tc d\nX\te a\nY\tb b\n");
    run tc = recur("train", "--data", P("c.tsv"), "--valid", P("c.tsv"), "--data-kind", "classify", "--out", P("cls"),
                   SMALL, "--steps", "3", NULL);
    OK(tc);
    run ec = recur("eval", "--checkpoint", P("cls/last.ckpt"), "--data", P("c2.tsv"), "--valid", P("c2.tsv"), NULL);
    EXPECT_EXIT(ec, 1);
    cr_assert(strlen(ec.err) > 20, SHOW(ec));
}

/* ======================================================================================
 * 7. Ctrl-C and SIGTERM: save, say so, exit 130
 * ==================================================================================== */

/* Waits until the training run has printed its header (its signal handlers follow
 * immediately), then `extra` seconds. */
static void wait_started(run *r, double extra)
{
    double t0 = tu_monotonic_seconds();
    for (;;) {
        char *o = slurp(r->out_path, NULL);
        if (o && has(o, " per epoch, ")) break;
        if (waitpid(r->pid, NULL, WNOHANG) == r->pid) {
            g_bg = -1;
            cr_assert_fail("the run ended before it started training: %s", r->cmd);
        }
        cr_assert(tu_monotonic_seconds() - t0 < 10, "the run did not start within 10 s");
        tu_sleep_seconds(0.01);
    }
    tu_sleep_seconds(extra);
}

static void interrupt_case(int sig)
{
    char *data = P("text.txt"), *out = P("run");
    gen_text(data, 20000, 3, 0);
    run r;
    start(&r, "train", "--data", data, "--out", out, SMALL, "--epochs", "100000", "--time-limit", "60", "--eval-every",
          "200", NULL);
    wait_started(&r, 0.4);
    double t0 = tu_monotonic_seconds();
    cr_assert_eq(kill(r.pid, sig), 0);
    finish(&r, 10);
    double took = tu_monotonic_seconds() - t0;
    EXPECT_EXIT(r, 130);
    cr_assert(took < 3, "it took %.1f s to stop", took);
    cr_assert(has(r.out, "interrupted after "), SHOW(r));
    double steps = number_after(r.out, "interrupted after ");
    cr_assert(steps >= 1, SHOW(r));
    cr_assert(exists(P("run/last.ckpt")), "no last.ckpt after the interrupt");
    run e = recur("eval", "--checkpoint", P("run/last.ckpt"), NULL);
    OK(e);
    cr_assert(has(e.out, "loss ") && has(e.out, "bpc "), SHOW(e));
    /* it resumes from there */
    char *more = fmt("%d", (int)steps + 5);
    run c = recur("train", "--out", out, "--resume", "--steps", more, NULL);
    OK(c);
    cr_assert(has(c.out, fmt("step %d\n", (int)steps)) && has(c.out, fmt("after %s updates", more)), SHOW(c));
}

Test(cli, ctrl_c) { interrupt_case(SIGINT); }
Test(cli, sigterm) { interrupt_case(SIGTERM); }

/* ======================================================================================
 * 8. SIGKILL during training leaves a loadable last.ckpt
 * ==================================================================================== */

Test(cli, sigkill_leaves_loadable_checkpoint)
{
    char *data = P("text.txt");
    gen_text(data, 20000, 9, 0);
    double delays[] = { 0.3, 0.13, 0.21 };
    for (int i = 0; i < 3; i++) {
        char *out = P(fmt("run%d", i));
        run r;
        start(&r, "train", "--data", data, "--out", out, SMALL, "--epochs", "100000", "--time-limit", "60",
              "--save-every", "1", "--eval-every", "50", NULL);
        wait_started(&r, 0.0);
        double t0 = tu_monotonic_seconds();
        while (!exists(fmt("%s/last.ckpt", out)) && tu_monotonic_seconds() - t0 < 10) tu_sleep_seconds(0.005);
        cr_assert(exists(fmt("%s/last.ckpt", out)), "no last.ckpt with --save-every 1");
        tu_sleep_seconds(delays[i]);
        cr_assert_eq(kill(r.pid, SIGKILL), 0);
        finish(&r, 10);
        cr_assert_eq(r.sig, SIGKILL, SHOW(r));
        cr_assert_gt(count_prefix(fmt("%s/last.ckpt", out), "param/"), 0);   /* intact, CRC included */
        run e = recur("eval", "--checkpoint", fmt("%s/last.ckpt", out), NULL);
        OK(e);
        cr_assert(has(e.out, "loss "), SHOW(e));
        /* and training resumes from it (--time-limit counts the time already trained) */
        run c2 = recur("train", "--out", out, "--resume", "--steps", "100000", "--time-limit", "0.2", NULL);
        OK(c2);
        cr_assert(has(c2.out, "resumed "), SHOW(c2));
    }
}

/* ======================================================================================
 * 9. Small tasks trained through the CLI
 * ==================================================================================== */

Test(cli, classify_first_token_gru)
{
    char *tr = P("train.tsv"), *va = P("valid.tsv");
    gen_classify(tr, 400, 101);
    gen_classify(va, 100, 202);
    run t = recur("train", "--data", tr, "--valid", va, "--data-kind", "classify", "--cell", "gru", "--hidden", "16",
                  "--layers", "1", "--batch", "16", "--lr", "0.01", "--epochs", "15", "--progress", "0", "--out",
                  P("run"), NULL);
    OK(t);   /* (no time bound: speed is the benchmarks' business, and ASan runs slow) */
    cr_assert(has(t.out, "classify, 1 x 16 gru"), SHOW(t));
    run e = recur("eval", "--out", P("run"), NULL);
    OK(e);
    double acc = number_after(e.out, " acc ");
    cr_assert(acc >= 0.95, "validation accuracy %g < 0.95: " SHOWF, acc, SHOWA(e));
    double loss = number_after(e.out, "loss ");
    cr_assert(loss < 0.3, SHOW(e));
    run s = recur("sample", "--out", P("run"), "--length", "5", NULL);
    EXPECT_EXIT(s, 1);
    cr_assert(has(s.err, "needs a text model"), SHOW(s));
}

Test(cli, music_run)
{
    char *data = P("music.json");
    tu_write_music_json(data, 5, 24, 6);
    run t = recur("train", "--data", data, "--data-kind", "music", "--out", P("run"), SMALL, "--epochs", "15",
                  "--lr", "0.01", NULL);
    OK(t);
    cr_assert(has(t.out, "music, 1 x 16 lstm") && has(t.out, "valid loss"), SHOW(t));
    run e = recur("eval", "--out", P("run"), NULL);
    OK(e);
    double nll = number_after(e.out, "nll "), loss = number_after(e.out, "loss ");
    cr_assert(isfinite(nll) && nll > 0 && fabs(nll - loss) < 1e-3, SHOW(e));
    /* 88 independent keys at p = 0.5 cost 88 ln 2 = 61 nats a frame */
    cr_assert(nll < 30, "music nll %g did not fall well below 61", nll);
}

Test(cli, csv_run)
{
    char *data = P("series.csv");
    gen_csv(data, 400);
    run t = recur("train", "--data", data, "--data-kind", "csv", "--valid-frac", "0.2", "--out", P("run"), SMALL,
                  "--epochs", "20", "--lr", "0.01", NULL);
    OK(t);
    cr_assert(has(t.out, "csv, 1 x 16 lstm") && has(t.out, "valid loss"), SHOW(t));
    run e = recur("eval", "--out", P("run"), NULL);
    OK(e);
    double mse = number_after(e.out, "mse ");
    cr_assert(isfinite(mse) && mse >= 0, SHOW(e));
    cr_assert(mse < 0.2, "mse %g on a sine/cosine series (variance 0.5)", mse);
    run bad = recur("train", "--data", data, "--data-kind", "csv", "--out", P("run2"), SMALL, "--seq", "1000", NULL);
    EXPECT_EXIT(bad, 1);
    cr_assert(has(bad.err, "--seq"), SHOW(bad));
}

Test(cli, tags_run)
{
    tu_write_tag_lines(P("train.txt"), 200, 7);
    tu_write_tag_lines(P("valid.txt"), 50, 8);
    run t = recur("train", "--data", P("train.txt"), "--valid", P("valid.txt"), "--data-kind", "tags", "--out",
                  P("run"), SMALL, "--batch", "8", "--epochs", "6", "--lr", "0.02", NULL);
    OK(t);
    run e = recur("eval", "--out", P("run"), NULL);
    OK(e);
    double acc = number_after(e.out, " acc ");
    cr_assert(acc >= 0.95, "tagging each word with its capital: acc %g: " SHOWF, acc, SHOWA(e));
}

/* ======================================================================================
 * 9. Sizes come from the model and the data, not from guesses
 * ==================================================================================== */

/* A cell of 70 weight matrices in 64 layers: 4,483 parameter tensors and 66 parameter
 * groups (embed, l0..l63, out), each with its own gradient-norm column. */
Test(cli, many_parameter_tensors)
{
    char *cell = P("wide.cell"), *data = P("text.txt");
    FILE *f = fopen(cell, "w");
    cr_assert_not_null(f);
    fprintf(f, "cell wide (x) -> h\n  h' = tanh(U @ h");
    for (int i = 0; i < 69; i++) fprintf(f, " + W%d @ x", i);
    fprintf(f, ")\n");
    cr_assert_eq(fclose(f), 0);
    gen_text(data, 3000, 3, 0);
    run t = recur("train", "--data", data, "--out", P("run"), SMALL, "--cell", cell, "--layers", "64", "--hidden", "2",
                  "--embed", "2", "--seq", "2", "--batch", "1", "--steps", "2", "--eval-every", "0", NULL);
    OK(t);
    char *m = slurp(P("run/metrics.csv"), NULL);
    cr_assert_not_null(m);
    const char *hdr = strstr(m, "\nkind,");
    cr_assert_not_null(hdr, "%s", m);
    cr_assert(has(hdr, ",gn_embed,gn_l0,gn_l1,") && has(hdr, ",gn_l62,gn_l63,gn_out,tokens_per_s,elapsed_s\n"),
              "one gradient-norm column per group: %.2000s", hdr);
}

/* Validation in the middle of an epoch saves and restores the carried state of every
 * layer: 40 LSTM layers carry 80 states. Training with and without such validations
 * ends in the same parameters and carried state. */
Test(cli, mid_epoch_validation_keeps_deep_state)
{
    char *data = P("text.txt");
    gen_text(data, 20000, 17, 0);
    run a = recur("train", "--data", data, "--out", P("a"), SMALL, "--layers", "40", "--hidden", "4", "--steps", "9",
                  "--eval-every", "0", "--valid-frac", "0.05", NULL);
    OK(a);
    run b = recur("train", "--data", data, "--out", P("b"), SMALL, "--layers", "40", "--hidden", "4", "--steps", "9",
                  "--eval-every", "3", "--valid-frac", "0.05", NULL);
    OK(b);
    cr_assert(has(b.out, "valid loss"), SHOW(b));
    ckfile x, y;
    ck_read(P("a/last.ckpt"), &x);
    ck_read(P("b/last.ckpt"), &y);
    int n = 0;
    for (int i = 0; i < x.n; i++) {
        const entry *e = &x.e[i], *f = ck_find(&y, e->name);
        if (strncmp(e->name, "param/", 6) && strncmp(e->name, "state/", 6)) continue;
        cr_assert(f && f->bytes == e->bytes, "'%s' missing or of another size", e->name);
        cr_assert(memcmp(e->data, f->data, (size_t)e->bytes) == 0,
                  "'%s' differs after validations in the middle of the epoch", e->name);
        n++;
    }
    cr_assert_gt(n, 80 + 40 * 8, "compared %d entries", n);
}

/* recur compare takes every cell it is given (not the first 16), and reads back the
 * metrics of runs with many gradient-norm columns (60 layers: 62 groups, 72 columns). */
Test(cli, compare_many_cells_and_columns)
{
    const char *args[40] = { "compare" };
    int n = 1;
    for (int i = 0; i < 17; i++) args[n++] = "rnn";
    const char *tail[] = { "--hidden", "4", "--seq", "3", "--batch", "2" };
    for (size_t i = 0; i < sizeof tail / sizeof *tail; i++) args[n++] = tail[i];
    run r = recur_argv(args, n);
    OK(r);
    cr_assert(has(r.out, "rnn-16") && has(r.out, "rnn-17"), "17 cells compared: " SHOW(r));
    char *data = P("text.txt");
    gen_text(data, 3000, 9, 0);
    run t = recur("compare", "rnn", "gru", "--train", data, "--out", P("cmp"), "--layers", "60", "--hidden", "2",
                  "--seq", "2", "--batch", "1", "--steps", "2", "--progress", "0", NULL);
    OK(t);
    const char *table = strstr(t.out, "tokens/s");
    cr_assert_not_null(table, SHOW(t));
    cr_assert(!has(table, "nan") && !has(table, "training failed"), "tokens/s of every run read back: " SHOW(t));
    /* a long --out holds its run folders (it was cut at 900 characters), and one whose run
     * folders would not fit is refused */
    char *deep = fmt("%s/cmp", g_dir);
    while (strlen(deep) < 1021) deep = fmt("%s/%0200d", deep, 0);
    deep[1010] = 0;
    run lo = recur("compare", "rnn", "gru", "--train", data, "--out", deep, "--hidden", "2", "--seq", "2", "--batch", "1",
                   "--steps", "1", "--progress", "0", NULL);
    OK(lo);
    cr_assert(exists(fmt("%s/rnn/last.ckpt", deep)) && exists(fmt("%s/gru/last.ckpt", deep)), SHOW(lo));
    deep[1010] = '0';
    deep[1021] = 0;
    run lo2 = recur("compare", "rnn", "gru", "--train", data, "--out", deep, "--hidden", "2", "--seq", "2", "--batch",
                    "1", "--steps", "1", "--progress", "0", NULL);
    EXPECT_EXIT(lo2, 1);
    cr_assert(has(lo2.err, "longer than"), SHOW(lo2));
    /* and inspect --gradient-flow: every cell of the list */
    char list[200] = "rnn";
    for (int i = 1; i < 17; i++) strcat(list, ",rnn");
    run g = recur("inspect", "--gradient-flow", "--cells", list, "--seq", "3", "--batch", "2", "--hidden", "4", NULL);
    OK(g);
    const char *sum = strstr(g.out, "summary:");
    cr_assert_not_null(sum, SHOW(g));
    int rows = 0;
    for (const char *p = sum; (p = strstr(p, "\n  rnn ")) != NULL; p++) rows++;
    cr_assert_eq(rows, 17, "17 cells in the gradient-flow summary, got %d: " SHOWF, rows, SHOWA(g));
}

/* CSV split fractions are checked like the text corpora's: each in [0, 1), a sum below
 * 1 (a negative one read before the rows; two of 0.7 made a training part of -120 rows). */
Test(cli, csv_bad_fractions)
{
    char *data = P("series.csv");
    gen_csv(data, 400);
    /* each fraction out of [0, 1) is refused as an option (exit 2); a sum of 1 or more by the data */
    static const char *cases[][3] = { { "-1", "0", "--valid-frac -1" }, { "0.7", "0.7", "--valid-frac" },
                                      { "0", "1", "--test-frac 1" }, { "1.5", "0", "--valid-frac 1.5" } };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        run r = recur("train", "--data", data, "--data-kind", "csv", "--valid-frac", cases[i][0], "--test-frac",
                      cases[i][1], "--out", P("run"), SMALL, "--steps", "1", NULL);
        EXPECT_EXIT(r, i == 1 ? 1 : 2);
        cr_assert(has(r.err, cases[i][2]) && has(r.err, "[0, 1)") && !has(r.err, "steps"), SHOW(r));
    }
    run ok = recur("train", "--data", data, "--data-kind", "csv", "--valid-frac", "0.2", "--test-frac", "0.1", "--out",
                   P("run"), SMALL, "--steps", "1", NULL);
    OK(ok);
}

/* A folder of text and an --out that is that folder (or inside it, or a link to it):
 * refused before anything is written, since the run's corpus.txt, checkpoints and
 * metrics would join the corpus (corpus.txt reading itself grew without bound). */
Test(cli, out_inside_data_folder)
{
    char *dir = P("texts");
    cr_assert_eq(mkdir(dir, 0777), 0);
    gen_text(P("texts/a.txt"), 3000, 1, 0);
    gen_text(P("texts/b.txt"), 3000, 2, 0);
    cr_assert_eq(symlink(dir, P("link")), 0);
    const char *outs[] = { dir, P("texts/"), P("texts/run"), P("texts/new/deeper"), P("link"), P("link/run"),
                           P("texts/../texts"), fmt("%s/./texts/x/..", g_dir) };
    for (size_t i = 0; i < sizeof outs / sizeof *outs; i++) {
        run r = recur("train", "--data", dir, "--out", outs[i], SMALL, "--steps", "2", NULL);
        EXPECT_EXIT(r, 1);
        cr_assert(has(r.err, "data folder") && has(r.err, "--out"), SHOW(r));
        cr_assert(!exists(P("texts/corpus.txt")) && !exists(P("texts/last.ckpt")) && !exists(P("texts/run")) &&
                      !exists(P("texts/new")),
                  "nothing written into the data folder: " SHOW(r));
    }
    /* through a relative path too, and the same refusal from eval */
    run ok = recur("train", "--data", dir, "--out", P("run"), SMALL, "--steps", "2", NULL);
    OK(ok);
    run e = recur("eval", "--out", P("run"), "--data", dir, "--checkpoint", P("run/last.ckpt"), NULL);
    OK(e);
    cr_assert_eq(chdir(g_dir), 0);
    run rel = recur("train", "--data", "texts", "--out", "texts/sub/..", SMALL, "--steps", "2", NULL);
    EXPECT_EXIT(rel, 1);
    cr_assert(has(rel.err, "data folder"), SHOW(rel));
    run sib = recur("train", "--data", "texts", "--out", "texts2", SMALL, "--steps", "2", NULL);
    OK(sib);   /* a sibling whose name starts with the data folder's */
}

/* ---- a strict JSON reader (RFC 8259 values: no nan, inf or other bare words) ---------- */

static const char *json_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    return p;
}

/* The end of the JSON value at p, or NULL when there is none. */
static const char *json_value(const char *p, int depth)
{
    p = json_ws(p);
    if (depth > 64) return NULL;
    if (*p == '"') {
        for (p++; *p && *p != '"'; p++) {
            if ((unsigned char)*p < 0x20) return NULL;
            if (*p == '\\' && !*++p) return NULL;
        }
        return *p == '"' ? p + 1 : NULL;
    }
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        p = json_ws(p + 1);
        if (*p == close) return p + 1;
        for (;;) {
            if (close == '}') {
                if (*p != '"' || !(p = json_value(p, depth + 1))) return NULL;
                p = json_ws(p);
                if (*p++ != ':') return NULL;
            }
            if (!(p = json_value(p, depth + 1))) return NULL;
            p = json_ws(p);
            if (*p == close) return p + 1;
            if (*p++ != ',') return NULL;
            p = json_ws(p);
        }
    }
    if (!strncmp(p, "null", 4)) return p + 4;
    if (!strncmp(p, "true", 4)) return p + 4;
    if (!strncmp(p, "false", 5)) return p + 5;
    const char *s = p;
    if (*p == '-') p++;
    if (*p == '0') p++;
    else if (*p >= '1' && *p <= '9') while (*p >= '0' && *p <= '9') p++;
    else return NULL;
    if (*p == '.') {
        if (!(*++p >= '0' && *p <= '9')) return NULL;
        while (*p >= '0' && *p <= '9') p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!(*p >= '0' && *p <= '9')) return NULL;
        while (*p >= '0' && *p <= '9') p++;
    }
    return p > s ? p : NULL;
}

/* Every line of path is one JSON object; returns the number of lines. */
static int check_jsonl(const char *path)
{
    char *m = slurp(path, NULL);
    cr_assert_not_null(m, "no %s", path);
    int n = 0;
    for (char *line = m, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        cr_assert_not_null(nl, "%s: the last line has no newline", path);
        *nl = 0;
        const char *end = json_value(line, 0);
        cr_assert(line[0] == '{' && end && *json_ws(end) == 0, "%s line %d is not JSON: %s", path, n + 1, line);
        if (!strncmp(line, "{\"kind\"", 7))   /* rows (the run record holds paths, which may spell anything) */
            cr_assert(!has(line, "nan") && !has(line, "inf"), "%s line %d: %s", path, n + 1, line);
        n++;
    }
    return n;
}

/* JSON-lines metrics are JSON also where a number is not finite (the accuracy of a
 * training row of classify and tags runs): null, not nan. */
Test(cli, metrics_jsonl_is_json)
{
    gen_classify(P("c.tsv"), 80, 3);
    run t = recur("train", "--data", P("c.tsv"), "--valid", P("c.tsv"), "--data-kind", "classify", "--out", P("cls"),
                  SMALL, "--steps", "12", "--eval-every", "6", "--metrics", "jsonl", NULL);
    OK(t);
    cr_assert_geq(check_jsonl(P("cls/metrics.jsonl")), 4);
    cr_assert(has(slurp(P("cls/metrics.jsonl"), NULL), "\"acc\": null"), "the training rows' accuracy is null");
    tu_write_tag_lines(P("t.txt"), 60, 4);
    run g = recur("train", "--data", P("t.txt"), "--valid", P("t.txt"), "--data-kind", "tags", "--out", P("tags"),
                  SMALL, "--steps", "8", "--eval-every", "4", "--metrics", "jsonl", NULL);
    OK(g);
    cr_assert_geq(check_jsonl(P("tags/metrics.jsonl")), 3);
    char *data = P("text.txt");
    gen_text(data, 4000, 1, 0);
    run c = recur("train", "--data", data, "--out", P("chars"), SMALL, "--steps", "6", "--eval-every", "3", "--metrics",
                  "jsonl", NULL);
    OK(c);
    cr_assert_geq(check_jsonl(P("chars/metrics.jsonl")), 3);
}

/* Labels renamed or reordered between training and evaluation (or resuming) would
 * silently swap the model's classes: the label set is checked like the vocabulary,
 * and the message names the first label that differs. */
Test(cli, eval_resume_other_labels)
{
    gen_classify(P("c.tsv"), 60, 5);
    char *orig = slurp(P("c.tsv"), NULL), *renamed = fmt("%s", orig);
    for (char *p = renamed; (p = strstr(p, "La\t")) != NULL; p++) p[1] = 'z';   /* La -> Lz: the same count */
    spit_str(P("r.tsv"), renamed);
    run t = recur("train", "--data", P("c.tsv"), "--valid", P("c.tsv"), "--data-kind", "classify", "--out", P("cls"),
                  SMALL, "--steps", "3", NULL);
    OK(t);
    run same = recur("eval", "--checkpoint", P("cls/last.ckpt"), "--data", P("c.tsv"), "--valid", P("c.tsv"), NULL);
    OK(same);
    run e = recur("eval", "--checkpoint", P("cls/last.ckpt"), "--data", P("r.tsv"), "--valid", P("r.tsv"), NULL);
    EXPECT_EXIT(e, 1);
    cr_assert(has(e.err, "label") && has(e.err, "'La'"), "the first differing label named: " SHOW(e));
    run r = recur("train", "--out", P("cls"), "--resume", "--data", P("r.tsv"), "--valid", P("r.tsv"), "--steps", "6",
                  NULL);
    EXPECT_EXIT(r, 1);
    cr_assert(has(r.err, "label") && has(r.err, "'La'"), SHOW(r));
    /* tags: a tag renamed */
    tu_write_tag_lines(P("t.txt"), 40, 6);
    char *tags = fmt("%s", slurp(P("t.txt"), NULL));
    for (char *p = tags; (p = strstr(p, "/A")) != NULL; p++) p[1] = 'Q';
    spit_str(P("t2.txt"), tags);
    run tt = recur("train", "--data", P("t.txt"), "--valid", P("t.txt"), "--data-kind", "tags", "--out", P("tags"),
                   SMALL, "--steps", "3", NULL);
    OK(tt);
    run et = recur("eval", "--checkpoint", P("tags/last.ckpt"), "--data", P("t2.txt"), "--valid", P("t2.txt"), NULL);
    EXPECT_EXIT(et, 1);
    cr_assert(has(et.err, "label") && has(et.err, "'A'"), SHOW(et));
}

/* Without --threads or RC_NUM_THREADS, recur train takes the cores free at start: with
 * every core busy it takes one thread (two threads on two busy cores made the demo 3-11x
 * slower: bench/contention.sh), says why, and a resume keeps the run's count. */
Test(cli, threads_follow_the_free_cores)
{
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    cr_assert(online >= 1 && online <= 64, "online cores: %ld", online);
    if (online < 2) cr_skip_test("one core: there is no choice to make");
    const char *data = P("text.txt");
    tu_write_word_text(data, 6000, 5, 0, 1);
    pid_t busy[64];
    for (long i = 0; i < online; i++) {
        busy[i] = fork();
        cr_assert_geq(busy[i], 0, "fork: %s", strerror(errno));
        if (busy[i] == 0) {
            for (volatile unsigned long k = 0;; k++) {}
        }
    }
    g_auto_threads = 1;
    run a = recur("train", "--data", data, "--out", P("auto"), "--hidden", "8", "--layers", "1", "--seq", "10",
                  "--batch", "4", "--steps", "2", "--sample", "0", NULL);
    for (long i = 0; i < online; i++) kill(busy[i], SIGKILL);
    for (long i = 0; i < online; i++) waitpid(busy[i], NULL, 0);
    run b = recur("train", "--data", data, "--out", P("auto"), "--steps", "3", "--resume", "--sample", "0", NULL);
    g_auto_threads = 0;
    OK(a);
    cr_assert(has(a.out, ", 1 threads (1 of ") && has(a.out, "cores free at start"), SHOW(a));
    OK(b);
    cr_assert(has(b.out, ", 1 threads (the run's own count, kept on resume"), SHOW(b));
}

/* ---- transcription kinds (pen, lines): CTC from the command line ---------------------- */

Test(cli, pen_train_eval_cer)
{
    char *root = P("pen");
    cr_assert_eq(mkdir(root, 0777), 0);
    tu_write_pen_dir(fmt("%s/train", root), 24, 1);
    int nvalid = tu_write_pen_dir(fmt("%s/valid", root), 6, 2);
    int ntest = tu_write_pen_dir(fmt("%s/test", root), 5, 3);
    char *out = P("pen-run");
    run r = recur("train", "--data", root, "--data-kind", "pen", "--out", out, SMALL, "--bidirectional", "--epochs", "2",
                  NULL);
    OK(r);
    cr_assert(has(r.out, "cer "), "the validation metric is the CER: " SHOW(r));
    char *m = slurp(fmt("%s/metrics.csv", out), NULL);
    cr_assert(m && has(m, "cer"), "the metrics log names the CER");
    /* eval counts every reference character of the split, and the words */
    r = recur("eval", "--out", out, "--split", "test", NULL);
    OK(r);
    cr_assert(has(r.out, fmt("in %d, ", ntest)) && has(r.out, "wer "), "test has %d characters: " SHOW(r), ntest);
    r = recur("eval", "--out", out, NULL);
    OK(r);
    cr_assert(has(r.out, fmt("in %d, ", nvalid)), "valid has %d characters: " SHOW(r), nvalid);
    double cer = number_after(r.out, "cer ");
    cr_assert(cer >= 0 && isfinite(cer), SHOW(r));
    /* a training folder whose alphabet changed no longer matches the checkpoint's classes */
    spit_str(fmt("%s/train/s000.gt.txt", root), "aXb\n");
    spit_str(fmt("%s/valid/s000.gt.txt", root), "aXb\n");
    r = recur("eval", "--out", out, NULL);
    cr_assert(r.code != 0 && r.sig == 0, SHOW(r));
    /* a file where a folder is read; a folder without samples */
    r = recur("train", "--data", fmt("%s/train/s001.pen", root), "--data-kind", "pen", "--out", P("pen-x"), NULL);
    EXPECT_EXIT(r, 1);
    cr_assert(has(r.err, "is not a folder") && has(r.err, "--data-kind pen"), SHOW(r));
    cr_assert_eq(mkdir(P("empty"), 0777), 0);
    r = recur("train", "--data", P("empty"), "--data-kind", "pen", "--out", P("pen-y"), NULL);
    cr_assert(r.code != 0 && r.sig == 0 && r.err[0], SHOW(r));
}

/* Without valid/ the last --valid-frac of the training samples are held out; --valid
 * names a folder (a file is refused); a resumed pen run continues exactly. */
Test(cli, pen_held_out_and_resume)
{
    char *dir = P("pen-flat");
    tu_write_pen_dir(dir, 40, 7);
    run r = recur("train", "--data", dir, "--data-kind", "pen", "--out", P("pf"), SMALL, "--valid-frac", "0.25",
                  "--epochs", "1", NULL);
    OK(r);
    cr_assert(has(r.out, "8 batches of 4"), "30 of 40 samples train: " SHOW(r));
    r = recur("train", "--data", dir, "--data-kind", "pen", "--valid", fmt("%s/s000.pen", dir), "--out", P("pg"), SMALL,
              NULL);
    cr_assert(r.code != 0 && has(r.err, "must be a folder"), SHOW(r));
    tu_write_pen_dir(P("pen-one"), 1, 9);   /* one sample cannot be both trained on and held out */
    r = recur("train", "--data", P("pen-one"), "--data-kind", "pen", "--out", P("ph"), SMALL, NULL);
    cr_assert(r.code != 0 && has(r.err, "too few to hold out"), SHOW(r));
    const char *opts[] = { "--data", dir, "--data-kind", "pen", SMALL, "--bidirectional", "--save-every", "0",
                           "--eval-every", "5" };
    int n = sizeof opts / sizeof *opts;
    resume_case("pr", opts, n, 7, 20, 1);
}

/* A text folder as --data with a --valid file: the folder is still joined (task_load
 * took the folder test from --valid's stat before, and read the folder as a file). */
Test(cli, folder_data_with_valid_file)
{
    char *dir = P("texts");
    cr_assert_eq(mkdir(dir, 0777), 0);
    gen_text(fmt("%s/a.txt", dir), 3000, 5, 0);
    gen_text(P("valid.txt"), 800, 6, 0);
    run r = recur("train", "--data", dir, "--valid", P("valid.txt"), "--out", P("fv"), SMALL, "--epochs", "1", NULL);
    OK(r);
    cr_assert(exists(P("fv/corpus.txt")), "the folder was joined");
}

/* ---- decoding and alignment of the transcription kinds (eval --beam, recur align) ------ */

/* The character edits and reference characters of an eval line ("(E character edits in
 * R, ..."); -1 when absent. */
static void eval_counts(const char *out, double *edits, double *ref)
{
    const char *p = out ? strstr(out, "character edits in ") : NULL;
    *edits = *ref = -1;
    if (!p) return;
    const char *q = p;
    while (q > out && q[-1] != '(') q--;
    *edits = strtod(q, NULL);
    *ref = strtod(p + strlen("character edits in "), NULL);
}

/* A pen data set (train/ valid/ test/ of tu_write_pen_dir) and a tiny BLSTM-CTC run on
 * it; *ntest gets the test transcripts' characters. */
static char *pen_run(const char *tag, int *ntest)
{
    char *root = P(fmt("%s-data", tag)), *out = P(tag);
    cr_assert_eq(mkdir(root, 0777), 0);
    tu_write_pen_dir(fmt("%s/train", root), 24, 1);
    tu_write_pen_dir(fmt("%s/valid", root), 6, 2);
    *ntest = tu_write_pen_dir(fmt("%s/test", root), 5, 3);
    run r = recur("train", "--data", root, "--data-kind", "pen", "--out", out, SMALL, "--bidirectional", "--epochs", "2",
                  NULL);
    OK(r);
    return out;
}

/* eval --beam W decodes by prefix beam search, says so, and scores the same references
 * as greedy decoding; --lm fuses a character model; misused options and runs of the
 * wrong kind are refused with what was wrong. */
Test(cli, pen_eval_beam)
{
    int ntest;
    char *out = pen_run("pb", &ntest);
    run r = recur("eval", "--out", out, "--split", "test", NULL);
    OK(r);
    cr_assert(has(r.out, "[greedy decoding]") && has(r.out, fmt("in %d, ", ntest)), SHOW(r));
    const char *widths[] = { "1", "16" };
    for (int i = 0; i < 2; i++) {
        r = recur("eval", "--out", out, "--split", "test", "--beam", widths[i], NULL);
        OK(r);
        cr_assert(has(r.out, fmt("[prefix beam search, width %s]", widths[i])), SHOW(r));
        double e, n;
        eval_counts(r.out, &e, &n);
        cr_assert(n == ntest && e >= 0 && e <= 2 * n, "every test character counted once: " SHOW(r));
        cr_assert(isfinite(number_after(r.out, "cer ")), SHOW(r));
    }
    /* a character language model (text of a-f and spaces: every character of "ab c") */
    gen_text(P("lm.txt"), 3000, 5, 0);
    r = recur("train", "--data", P("lm.txt"), "--out", P("lm"), SMALL, "--epochs", "1", NULL);
    OK(r);
    r = recur("eval", "--out", out, "--split", "test", "--beam", "4", "--lm", P("lm"), NULL);
    OK(r);
    cr_assert(has(r.out, fmt("language model %s/best.ckpt (alpha 0.5, beta 0)", P("lm"))) &&
              has(r.out, fmt("in %d, ", ntest)), SHOW(r));
    r = recur("eval", "--out", out, "--split", "test", "--beam", "4", "--lm", P("lm/last.ckpt"), NULL);
    OK(r);   /* a checkpoint file names the LM too */
    /* options that need others: refused before any run is read (exit 2) */
    r = recur("eval", "--out", out, "--lm", P("lm"), NULL);
    EXPECT_EXIT(r, 2);
    cr_assert(has(r.err, "--beam"), SHOW(r));
    r = recur("eval", "--out", out, "--beam", "4", "--lm-alpha", "1", NULL);
    EXPECT_EXIT(r, 2);
    cr_assert(has(r.err, "--lm-alpha") && has(r.err, "--lm RUN"), SHOW(r));
    r = recur("eval", "--out", out, "--lm-beta", "1", NULL);
    EXPECT_EXIT(r, 2);
    r = recur("eval", "--out", out, "--beam", "-1", NULL);
    EXPECT_EXIT(r, 2);
    /* --beam on a run that is not a transcription */
    r = recur("eval", "--out", P("lm"), "--beam", "4", NULL);
    EXPECT_EXIT(r, 1);
    cr_assert(has(r.err, "--data-kind chars run") && has(r.err, "--beam decodes") && has(r.err, "pen, lines"), SHOW(r));
    /* --lm: a missing path, a run that is not a character model, an LM without a character */
    r = recur("eval", "--out", out, "--beam", "4", "--lm", P("nope"), NULL);
    EXPECT_EXIT(r, 1);
    cr_assert(has(r.err, fmt("--lm %s: No such file", P("nope"))), SHOW(r));
    r = recur("eval", "--out", out, "--beam", "4", "--lm", out, NULL);
    EXPECT_EXIT(r, 1);
    cr_assert(has(r.err, "--data-kind pen run") && has(r.err, "character language model"), SHOW(r));
    r = recur("train", "--data", P("lm.txt"), "--data-kind", "words", "--out", P("wlm"), SMALL, "--epochs", "1", NULL);
    OK(r);
    r = recur("eval", "--out", out, "--beam", "4", "--lm", P("wlm"), NULL);
    EXPECT_EXIT(r, 1);
    cr_assert(has(r.err, "--data-kind words run, not a character language model"), SHOW(r));
    gen_text(P("upper.txt"), 3000, 5, 1);   /* capitals: no 'a' */
    r = recur("train", "--data", P("upper.txt"), "--out", P("ulm"), SMALL, "--epochs", "1", NULL);
    OK(r);
    r = recur("eval", "--out", out, "--beam", "4", "--lm", P("ulm"), NULL);
    EXPECT_EXIT(r, 1);
    cr_assert(has(r.err, "has no character 'a' (U+0061)"), SHOW(r));
}

/* Shallow fusion helps where only context can: ' ' and 'c' are the same stroke
 * (tu_write_pen_sample) and the training text puts them anywhere, so the model alone
 * guesses between them; in the test lines 'c' follows 'a' and ' ' follows 'b', which a
 * character model of those lines learns. Alpha 0 (and beta 0) is the beam without it. */
Test(cli, pen_lm_fusion)
{
    char *root = P("fu");
    cr_assert_eq(mkdir(root, 0777), 0);
    tu_write_pen_dir(fmt("%s/train", root), 60, 1);
    tu_write_pen_dir(fmt("%s/valid", root), 6, 2);
    static const char *lines[] = { "acb", "b a", "ab ba", "bacab", "acab", "bb a", "ab acb", "b acb" };
    int nl = sizeof lines / sizeof *lines;
    cr_assert_eq(mkdir(fmt("%s/test", root), 0777), 0);
    for (int i = 0; i < nl; i++) tu_write_pen_sample(fmt("%s/test", root), fmt("t%02d", i), lines[i]);
    FILE *f = fopen(P("lines.txt"), "w");
    cr_assert_not_null(f);
    uint32_t seed = 5;
    for (int k = 0; k < 40 * nl; k++) fprintf(f, "%s\n", lines[tu_lcg_next(&seed) % (uint32_t)nl]);
    cr_assert_eq(fclose(f), 0);
    run r = recur("train", "--data", root, "--data-kind", "pen", "--out", P("fr"), SMALL, "--bidirectional",
                  "--epochs", "15", "--lr", "0.01", NULL);
    OK(r);
    r = recur("train", "--data", P("lines.txt"), "--out", P("flm"), SMALL, "--epochs", "3", "--lr", "0.01", NULL);
    OK(r);
    double e0, e1, ea, n0, n1, na;
    r = recur("eval", "--out", P("fr"), "--split", "test", "--beam", "8", NULL);
    OK(r);
    eval_counts(r.out, &e0, &n0);
    run f1 = recur("eval", "--out", P("fr"), "--split", "test", "--beam", "8", "--lm", P("flm"), NULL);
    OK(f1);
    eval_counts(f1.out, &e1, &n1);
    run fa = recur("eval", "--out", P("fr"), "--split", "test", "--beam", "8", "--lm", P("flm"), "--lm-alpha", "0", NULL);
    OK(fa);
    eval_counts(fa.out, &ea, &na);
    cr_assert(n0 > 0 && n0 == n1 && n0 == na, "the same references: " SHOW(r));
    cr_assert(e0 > 0, "the model alone cannot tell ' ' from 'c': " SHOW(r));
    cr_assert(e1 < e0, "the language model of the lines corrects some: %.0f edits with it, %.0f without\n" SHOWF,
              e1, e0, SHOWA(f1));
    cr_assert(ea == e0, "alpha 0 is the beam alone: " SHOW(fa));
}

/* The rows of `recur align --format tsv` output for sample `path`: checks every row of
 * it (label indices in order, the characters spell the transcript in dir/NAME.gt.txt,
 * first <= last < the next label's first, last < frames, one finite log p <= 0) and
 * returns how many samples the output holds. */
static int check_align_tsv(const char *out, int frames_per_char)
{
    const char *hdr = "sample\tlabel\tchar\tfirst\tlast\tlogp\n";
    cr_assert(!strncmp(out, hdr, strlen(hdr)), "the header: %.200s", out);
    const char *p = out + strlen(hdr);
    char cur[512] = "", text[64] = "";
    int nsamples = 0, k = 0, prev_last = -1;
    double lp = 0;
    while (*p) {
        char name[512], ch[8];
        const char *col[6];   /* split at tabs by hand: a scanf "\t" would also eat a ' ' label */
        col[0] = p;
        for (int c = 1; c < 6; c++) {
            const char *tab = strchr(col[c - 1], '\t');
            cr_assert(tab && tab < strchr(p, '\n'), "6 columns: %.200s", p);
            col[c] = tab + 1;
        }
        size_t nlen = (size_t)(col[1] - 1 - col[0]), clen = (size_t)(col[3] - 1 - col[2]);
        cr_assert(nlen < sizeof name && clen < sizeof ch, "a row: %.200s", p);
        memcpy(name, col[0], nlen);
        name[nlen] = 0;
        memcpy(ch, col[2], clen);
        ch[clen] = 0;
        char *end;
        int idx = (int)strtol(col[1], NULL, 10), first = (int)strtol(col[3], NULL, 10),
            last = (int)strtol(col[4], NULL, 10);
        double l = strtod(col[5], &end);
        cr_assert(end > col[5] && *end == '\n', "a row: %.200s", p);
        p = end + 1;
        if (strcmp(name, cur)) {   /* a new sample: the previous spelled its whole transcript */
            cr_assert(!cur[0] || (int)strlen(text) == k, "%s: %d labels of \"%s\"", cur, k, text);
            snprintf(cur, sizeof cur, "%s", name);
            char *gt = slurp(fmt("%.*s.gt.txt", (int)(strlen(name) - 4), name), NULL);
            cr_assert_not_null(gt, "%s: the sample's transcript", name);
            snprintf(text, sizeof text, "%.*s", (int)strcspn(gt, "\n"), gt);
            nsamples++;
            k = 0;
            prev_last = -1;
            lp = l;
        }
        cr_assert_eq(idx, k, "%s: label %d in order", name, k);
        cr_assert(k < (int)strlen(text) && ch[0] == text[k] && !ch[1], "%s: label %d is '%s' of \"%s\"", name, k, ch,
                  text);
        cr_assert(prev_last < first && first <= last && last < frames_per_char * (int)strlen(text),
                  "%s: label %d at %d-%d after %d", name, k, first, last, prev_last);
        cr_assert(l == lp && isfinite(l) && l <= 0, "%s: one log p", name);
        prev_last = last;
        k++;
    }
    cr_assert(!cur[0] || (int)strlen(text) == k, "%s: %d labels of \"%s\"", cur, k, text);
    return nsamples;
}

/* recur align: each label's frames, as text and as TSV; --name, --limit; a held-out
 * split names its own files; what it refuses. */
Test(cli, pen_align)
{
    int ntest;
    char *out = pen_run("al", &ntest);
    char *test = P("al-data/test");
    run r = recur("align", "--out", out, "--split", "test", "--format", "tsv", NULL);
    OK(r);
    cr_assert_eq(check_align_tsv(r.out, 3), 5, "every test sample: " SHOW(r));
    for (int i = 0; i < 5; i++) cr_assert(has(r.out, fmt("%s/s%03d.pen\t0\t", test, i)), SHOW(r));
    /* the text form: a line per sample with its transcript, a line per label */
    r = recur("align", "--out", out, "--split", "test", NULL);
    OK(r);
    cr_assert(has(r.out, "frames are the points of the trajectory") && has(r.out, "5 samples"), SHOW(r));
    int labels = 0;
    for (const char *p = r.out; (p = strstr(p, "\n  '")); p++) labels++;
    cr_assert_eq(labels, ntest, "a line per test character: " SHOW(r));
    char *s2 = slurp(fmt("%s/s002.gt.txt", test), NULL);
    cr_assert(has(r.out, fmt("%s/s002.pen: \"%.*s\", ", test, (int)strcspn(s2, "\n"), s2)), SHOW(r));
    /* one sample by its path, file name or NAME; the first N */
    const char *names[] = { fmt("%s/s002.pen", test), "s002.pen", "s002" };
    char *one = NULL;
    for (int i = 0; i < 3; i++) {
        r = recur("align", "--out", out, "--split", "test", "--format", "tsv", "--name", names[i], NULL);
        OK(r);
        cr_assert_eq(check_align_tsv(r.out, 3), 1, SHOW(r));
        cr_assert(has(r.out, "s002.pen\t0\t"), SHOW(r));
        if (one) cr_assert_str_eq(r.out, one, "the same sample by each of its names");
        one = r.out;
    }
    r = recur("align", "--out", out, "--split", "test", "--format", "tsv", "--limit", "2", NULL);
    OK(r);
    cr_assert(check_align_tsv(r.out, 3) == 2 && has(r.out, "s001.pen") && !has(r.out, "s002.pen"), SHOW(r));
    r = recur("align", "--out", out, "--split", "test", "--name", "s099", NULL);
    EXPECT_EXIT(r, 1);
    cr_assert(has(r.err, "--name 's099': no sample of the test split"), SHOW(r));
    /* options refused before the run is read */
    r = recur("align", "--out", out, "--name", "s001", "--limit", "1", NULL);
    EXPECT_EXIT(r, 2);
    r = recur("align", "--out", out, "--format", "xml", NULL);
    EXPECT_EXIT(r, 2);
    cr_assert(has(r.err, "--format 'xml'"), SHOW(r));
    r = recur("align", "--out", out, "--split", "dev", NULL);
    EXPECT_EXIT(r, 2);
    /* a held-out split (the last --valid-frac of the folder) names the held-out files */
    tu_write_pen_dir(P("flat"), 12, 4);
    r = recur("train", "--data", P("flat"), "--data-kind", "pen", "--out", P("hr"), SMALL, "--valid-frac", "0.25",
              "--epochs", "1", NULL);
    OK(r);
    r = recur("align", "--out", P("hr"), "--format", "tsv", NULL);
    OK(r);
    cr_assert_eq(check_align_tsv(r.out, 3), 3, SHOW(r));
    cr_assert(has(r.out, "flat/s009.pen\t0\t") && has(r.out, "flat/s011.pen\t0\t") && !has(r.out, "s008"), SHOW(r));
    /* a run that is not a transcription */
    gen_text(P("t.txt"), 2000, 3, 0);
    r = recur("train", "--data", P("t.txt"), "--out", P("cr"), SMALL, "--epochs", "1", NULL);
    OK(r);
    r = recur("align", "--out", P("cr"), NULL);
    EXPECT_EXIT(r, 1);
    cr_assert(has(r.err, "--data-kind chars run") && has(r.err, "recur align aligns"), SHOW(r));
    /* a transcript longer than its frames allow: refused naming the file, no crash */
    spit_str(fmt("%s/s000.pen", test), "#pen 1 x y end\n0 0 1\n");
    r = recur("align", "--out", out, "--split", "test", NULL);
    EXPECT_EXIT(r, 1);
    cr_assert(has(r.err, "s000") && r.sig == 0, SHOW(r));
}

/* A line image dir/NAME.png (8 rows, 3 columns per character: 'a' ink in the top half,
 * 'b' in the bottom half, others in the middle) with NAME.gt.txt; 0, or -1 with err
 * when recur has no PNG writer (built without libpng). */
static int write_line_sample(const char *dir, const char *name, const char *text, char *err, size_t len)
{
    int W = 3 * (int)strlen(text), H = 8;
    unsigned char *px = track(malloc((size_t)W * H));
    memset(px, 255, (size_t)W * H);
    for (int c = 0; c < W; c++) {
        char ch = text[c / 3];
        int r0 = ch == 'a' ? 0 : ch == 'b' ? 4 : 2;
        for (int r = r0; r < r0 + 4; r++) px[r * W + c] = 0;
    }
    if (rc_gen_line_write_png(fmt("%s/%s.png", dir, name), px, W, H, err, len) != RC_OK) return -1;
    spit_str(fmt("%s/%s.gt.txt", dir, name), fmt("%s\n", text));
    return 0;
}

/* recur align on line images: frames are pixel columns, samples named by their images. */
Test(cli, lines_align)
{
    static const char *texts[] = { "ab", "ba", "aab", "bab", "abba", "ba ab", "a b", "bb", "aba", "ab b" };
    int n = sizeof texts / sizeof *texts;
    char *dir = P("lines");
    cr_assert_eq(mkdir(dir, 0777), 0);
    char err[512];
    for (int i = 0; i < n; i++)
        if (write_line_sample(dir, fmt("l%02d", i), texts[i], err, sizeof err) != 0) cr_skip_test("%s", err);
    run r = recur("train", "--data", dir, "--data-kind", "lines", "--line-height", "8", "--valid-frac", "0.3",
                  "--out", P("lr"), SMALL, "--bidirectional", "--epochs", "1", NULL);
    OK(r);
    r = recur("align", "--out", P("lr"), "--format", "tsv", NULL);
    OK(r);
    cr_assert_eq(check_align_tsv(r.out, 3), 3, SHOW(r));   /* l07, l08, l09 held out */
    cr_assert(has(r.out, fmt("%s/l07.png\t0\t", dir)) && has(r.out, fmt("%s/l09.png\t0\t", dir)), SHOW(r));
    r = recur("align", "--out", P("lr"), "--name", "l08", NULL);
    OK(r);
    cr_assert(has(r.out, "frames are the pixel columns") && has(r.out, fmt("%s/l08.png: \"aba\", 3 labels in 9 frames",
                                                                           dir)), SHOW(r));
}
