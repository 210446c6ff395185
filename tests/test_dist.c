/* Data-parallel recur train under MPI (tools/dist.c, tools/train_dist.c): the recur
 * binary run by `mpirun --oversubscribe --allow-run-as-root -np 2` on this machine
 * against one process with the same options, comparing the checkpoints' weights,
 * optimiser state and carried state after 20 updates (within 1e-6 of each tensor's
 * largest magnitude for the weights: the ranks sum their rows' gradients in another
 * order than one process does); `mpirun -np 1` bitwise the same as one process;
 * checkpoints written by rank 0 and resumed under 2 or 1 processes; Ctrl-C; and
 * mistakes (a batch smaller than the process count) that end with a message and no
 * hang; processes given different settings, data or checkpoints (MPMD launches
 * `-np 1 A : -np 1 B`) refused at the start with a message naming the difference; and
 * tools/dist.c's collectives refusing calls of other sizes or kinds per rank (through
 * tests/dist_probe.c). Every run has a timeout (the whole process group is killed at it).
 *
 * These tests need a recur built with MPI (meson -Dmpi=auto finds OpenMPI: Debian
 * libopenmpi-dev openmpi-bin) and mpirun in PATH; a build without MPI skips them and
 * checks instead that recur refuses to run as several processes. RECUR_TEST_EXE
 * overrides the binary as in test_cli.c. */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "ckpt.h"
#include "test_util.h"

/* The options of every run here: tiny models, no live output, no periodic saves. */
#define TINY "--hidden", "16", "--layers", "1", "--seq", "10", "--progress", "0", "--sample", "0", "--save-every", "0"

static char g_dir[64];
static pid_t g_bg = -1;   /* a run in the background: its process group is killed by the fixture */
static char g_paths[64][160];
static int g_npaths;

static void setup(void)
{
    tu_make_temp_dir(g_dir, sizeof g_dir, "/tmp/recur-dist-");
    g_bg = -1;
    g_npaths = 0;
}

static void teardown(void)
{
    if (g_bg > 0) {
        kill(-g_bg, SIGKILL);
        waitpid(g_bg, NULL, 0);
        g_bg = -1;
    }
    if (g_dir[0]) tu_remove_tree(g_dir);
    g_dir[0] = 0;
}

TestSuite(dist, .init = setup, .fini = teardown, .timeout = 180);

/* A path inside the test's folder (static storage, up to 64 per test). */
static const char *P(const char *name)
{
    cr_assert_lt(g_npaths, 64);
    char *p = g_paths[g_npaths++];
    snprintf(p, sizeof g_paths[0], "%s/%s", g_dir, name);
    return p;
}

/* ---- generated data (more in test_util.c) ------------------------------------------- */

/* Text of words of a-f without a final newline (unlike test_cli.c's). */
static void gen_text(const char *path, size_t bytes, uint32_t seed)
{
    tu_write_word_text(path, bytes, seed, 0, 0);
}

/* ---- running programs ---------------------------------------------------------------- */

typedef struct run {
    int code, sig, timed_out;
    char out[8192], err[8192], cmd[1024];
    pid_t pid;
    double t0;
    char out_path[160], err_path[160];
} run;

static void slurp_into(const char *path, char *buf, size_t cap)
{
    buf[0] = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return;
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = 0;
    fclose(f);
}

/* Starts argv (NULL-terminated; argv[0] searched in PATH) in its own process group,
 * stdout and stderr to files. */
static void start_argv(run *r, const char *const *argv)
{
    static int k;
    memset(r, 0, sizeof *r);
    for (int i = 0; argv[i]; i++) {
        strncat(r->cmd, argv[i], sizeof r->cmd - strlen(r->cmd) - 2);
        strcat(r->cmd, " ");
    }
    snprintf(r->out_path, sizeof r->out_path, "%s/run%d.out", g_dir, k);
    snprintf(r->err_path, sizeof r->err_path, "%s/run%d.err", g_dir, k++);
    fflush(stdout);
    fflush(stderr);
    r->t0 = tu_monotonic_seconds();
    pid_t pid = fork();
    cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        setpgid(0, 0);
        tu_child_redirect(r->out_path, r->err_path);
        /* a fixed thread count, not recur's choice from the machine's load (tools/threads.c),
         * so that runs compared with each other compute alike; under mpirun -np 2 on two
         * cores it is the cores-over-processes count recur would take */
        if (!getenv("RC_NUM_THREADS")) setenv("RC_NUM_THREADS", "1", 1);
        if (!strcmp(argv[0], "mpirun")) tu_mpi_child_env();
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    setpgid(pid, pid);
    r->pid = pid;
    g_bg = pid;
}

/* Waits up to timeout seconds (then kills the process group and fails the test). */
static void finish(run *r, double timeout)
{
    int st = 0;
    r->timed_out = tu_wait_child(r->pid, -r->pid, r->t0, timeout, 0.005, &st);
    kill(-r->pid, SIGKILL);   /* nothing of the group may outlive it */
    g_bg = -1;
    r->code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    r->sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
    slurp_into(r->out_path, r->out, sizeof r->out);
    slurp_into(r->err_path, r->err, sizeof r->err);
    cr_assert_neq(r->code, 127, "cannot run %s (mpirun: apt-get install openmpi-bin; recur: ninja -C build)", r->cmd);
    cr_assert(!r->timed_out, "%s: did not finish within %.0f s (a hang)\nstdout: %s\nstderr: %s", r->cmd, timeout,
              r->out, r->err);
}

#define SHOWF "%s\n  exit %d, signal %d\n  stdout: %.2000s\n  stderr: %.2000s"
#define SHOWA(r) (r).cmd, (r).code, (r).sig, (r).out, (r).err
#define OK(r) cr_assert((r).sig == 0 && (r).code == 0, "expected success: " SHOWF, SHOWA(r))

/* argv of recur train under `mpirun -np np` (np > 0) or alone (np == 0), then the
 * options (NULL-terminated). */
static void train_argv(const char **argv, int max, int np, va_list ap)
{
    static char nps[16];
    int n = 0;
    if (np > 0) {
        snprintf(nps, sizeof nps, "%d", np);
        const char *m[] = { "mpirun", "--oversubscribe", "--allow-run-as-root", "-np", nps };
        for (int i = 0; i < 5; i++) argv[n++] = m[i];
    }
    argv[n++] = tu_recur_exe();
    argv[n++] = "train";
    for (const char *a = va_arg(ap, const char *); a; a = va_arg(ap, const char *)) {
        cr_assert_lt(n, max - 1, "too many arguments");
        argv[n++] = a;
    }
    argv[n] = NULL;
}

static void start_train(run *r, int np, ...)
{
    const char *argv[128];
    va_list ap;
    va_start(ap, np);
    train_argv(argv, 128, np, ap);
    va_end(ap);
    start_argv(r, argv);
}

/* recur train under np processes (0: one, without mpirun), to its end (60 s at most). */
static run train(int np, ...)
{
    const char *argv[128];
    va_list ap;
    va_start(ap, np);
    train_argv(argv, 128, np, ap);
    va_end(ap);
    run r;
    start_argv(&r, argv);
    finish(&r, 60);
    return r;
}

/* ---- checkpoints ----------------------------------------------------------------------- */

static int has_prefix(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

/* Compares two checkpoints: the same entries of the same shapes; the training counters
 * (step, epoch, batch, dropout runs, validations since the best) and the optimiser's
 * step counter equal; every float tensor of the weights (param/) within w_tol, of the
 * optimiser (optim/) and of the carried state (state/) within s_tol, each as
 * max |a - b| / max |a| over the tensor. Returns the largest such ratio of the weights
 * (*worst_state: of the others); 0 and 0 for bitwise equality when both tolerances are 0. */
static double ck_compare(const char *pa, const char *pb, double w_tol, double s_tol, double *worst_state)
{
    ckpt a, b;
    char err[512];
    ckpt_init(&a);
    ckpt_init(&b);
    cr_assert_eq(ckpt_read(pa, &a, err, sizeof err), 0, "%s", err);
    cr_assert_eq(ckpt_read(pb, &b, err, sizeof err), 0, "%s", err);
    double worst = 0, wstate = 0;
    int params = 0;
    for (int i = 0; i < a.n; i++) {
        const ckpt_entry *x = &a.e[i], *y = ckpt_find(&b, x->name);
        cr_assert_not_null(y, "%s has '%s', %s does not", pa, x->name, pb);
        if (x->type == CKPT_TEXT) continue;   /* the configuration names its own --out */
        cr_assert(x->type == y->type && x->ndim == y->ndim && ckpt_count(x) == ckpt_count(y),
                  "'%s': another type or shape in %s and %s", x->name, pa, pb);
        for (int d = 0; d < x->ndim; d++) cr_assert_eq(x->shape[d], y->shape[d], "'%s' dimension %d", x->name, d);
        if (!strcmp(x->name, "train.progress")) {
            const uint64_t *p = x->data, *q = y->data;
            static const char *what[] = { "step", "epoch", "batch", "runs", "best", "bad" };
            for (int k = 0; k < 6; k++)
                if (k != 4) cr_assert_eq(p[k], q[k], "train.progress %s: %llu vs %llu", what[k], (unsigned long long)p[k],
                                         (unsigned long long)q[k]);
        } else if (!strcmp(x->name, "optim.scalars") || !strcmp(x->name, "train.order")) {
            cr_assert(memcmp(x->data, y->data, ckpt_count(x) * (x->type == CKPT_U64 ? 8 : 4)) == 0, "'%s' differs",
                      x->name);
        } else if (x->type == CKPT_F32) {
            const float *p = x->data, *q = y->data;
            double big = 0, diff = 0;
            for (size_t k = 0; k < ckpt_count(x); k++) {
                cr_assert(isfinite(p[k]) && isfinite(q[k]), "'%s'[%zu] is not finite", x->name, k);
                big = fmax(big, fabs(p[k]));
                diff = fmax(diff, fabs((double)p[k] - (double)q[k]));
            }
            double rel = big > 0 ? diff / big : diff;
            int is_param = has_prefix(x->name, "param/");
            params += is_param;
            double tol = is_param ? w_tol : s_tol;
            cr_assert(rel <= tol, "'%s' differs between %s and %s: max |a - b| = %g, %g of max |a| = %g (tolerance %g)",
                      x->name, pa, pb, diff, rel, big, tol);
            if (is_param) worst = fmax(worst, rel);
            else wstate = fmax(wstate, rel);
        }
    }
    cr_assert_eq(a.n, b.n, "%s has %d entries, %s %d", pa, a.n, pb, b.n);
    cr_assert_gt(params, 2, "only %d weight tensors compared", params);
    ckpt_free(&a);
    ckpt_free(&b);
    if (worst_state) *worst_state = wstate;
    return worst;
}

static uint64_t ck_u64(const char *path, const char *name, int k)
{
    ckpt c;
    char err[512];
    ckpt_init(&c);
    cr_assert_eq(ckpt_read(path, &c, err, sizeof err), 0, "%s", err);
    const ckpt_entry *e = ckpt_find(&c, name);
    cr_assert(e && e->type == CKPT_U64 && (size_t)k < ckpt_count(e), "%s: no %s", path, name);
    uint64_t v = ((const uint64_t *)e->data)[k];
    ckpt_free(&c);
    return v;
}

/* The tolerances: weights within 1e-6 of each tensor's largest magnitude (measured: a
 * few 1e-7), the optimiser's moments and the carried state within 1e-5. */
#define W_TOL 1e-6
#define S_TOL 1e-5

#ifdef RC_TEST_HAVE_MPI
#define NEED_MPI() ((void)0)
#else
#define NEED_MPI() cr_skip_test("recur was built without MPI (meson -Dmpi=auto found none)")
#endif

/* 20 updates in one process and under 2, compared; also -np 1 against one process, bitwise. */
static void lm_case(const char *tag, const char *optim, const char *lr, const char *batch, double w_tol)
{
    const char *data = P("text.txt");
    gen_text(data, 20000, 11);
    const char *one = P(tag), *two = P("two"), *npone = P("np1");
    char o2[180];
    snprintf(o2, sizeof o2, "%s-2", two);
    run a = train(0, "--data", data, "--out", one, TINY, "--batch", batch, "--optim", optim, "--lr", lr, "--steps", "20",
                  "--eval-every", "7", NULL);
    OK(a);
    run b = train(2, "--data", data, "--out", o2, TINY, "--batch", batch, "--optim", optim, "--lr", lr, "--steps", "20",
                  "--eval-every", "7", NULL);
    OK(b);
    cr_assert(strstr(b.out, "in each of 2 processes") && strstr(b.out, "after 20 updates"), SHOWF, SHOWA(b));
    const char *h = strstr(b.out, " per epoch, ");
    cr_assert(h && !strstr(h + 1, " per epoch, "), "one process prints: " SHOWF, SHOWA(b));
    char la[300], lb[300];
    snprintf(la, sizeof la, "%s/last.ckpt", one);
    snprintf(lb, sizeof lb, "%s/last.ckpt", o2);
    double ws, w = ck_compare(la, lb, w_tol, S_TOL, &ws);
    cr_log_info("dist %s (%s, batch %s): 1 vs 2 processes after 20 updates: weights within %.3g, optimiser and "
                "carried state within %.3g of each tensor's largest magnitude\n", tag, optim, batch, w, ws);
    cr_assert_eq(ck_u64(lb, "train.progress", 0), 20);
    snprintf(la, sizeof la, "%s/best.ckpt", one);
    snprintf(lb, sizeof lb, "%s/best.ckpt", o2);
    ck_compare(la, lb, w_tol, S_TOL, NULL);
    /* mpirun -np 1 is one process: bitwise the same */
    run c = train(1, "--data", data, "--out", npone, TINY, "--batch", batch, "--optim", optim, "--lr", lr, "--steps", "20",
                  "--eval-every", "7", NULL);
    OK(c);
    snprintf(la, sizeof la, "%s/last.ckpt", one);
    snprintf(lb, sizeof lb, "%s/last.ckpt", npone);
    cr_assert_eq(ck_compare(la, lb, 0, 0, NULL), 0);
}

/* A character language model (2 x 2 streams, each rank carrying its own), SGD. */
Test(dist, lm_sgd)
{
    NEED_MPI();
    lm_case("sgd", "sgd", "0.5", "4", W_TOL);
}

/* Adam, and a batch of 5 streams: shares of 2 and 3 (uneven). The weights within 1e-5:
 * Adam's update lr * m / (sqrt(v) + eps) is steep where a gradient element is near eps,
 * and such an element is a sum that cancelled, whose last bits depend on the order of
 * the rows. Measured on this data: 4.0e-6 of W_hf's largest weight after the first
 * update with eps 1e-8, 1.6e-6 with eps 1e-6, 2.4e-7 with eps 1e-4 (SGD: 1.5e-7). */
Test(dist, lm_adam_uneven)
{
    NEED_MPI();
    lm_case("adam", "adam", "0.01", "5", 1e-5);
}

/* Sequence sets: tagging with sequences of 3..8 steps (per-step targets, so the ranks'
 * target counts differ) in shuffled batches of 5 (shares of 2 and 3); 41 sequences, so
 * each epoch's last batch has one and rank 1 has none. 20 updates cross two epochs. */
Test(dist, tags_uneven_and_empty_share)
{
    NEED_MPI();
    tu_write_tag_lines(P("t.txt"), 41, 4);
    tu_write_tag_lines(P("v.txt"), 10, 5);
    const char *o1 = P("one"), *o2 = P("two");
    for (int np = 0; np <= 2; np += 2) {
        run r = train(np, "--data", P("t.txt"), "--valid", P("v.txt"), "--data-kind", "tags", "--out", np ? o2 : o1, TINY,
                      "--batch", "5", "--optim", "sgd", "--lr", "0.5", "--steps", "20", NULL);
        OK(r);
    }
    double ws, w = ck_compare(P("one/last.ckpt"), P("two/last.ckpt"), W_TOL, S_TOL, &ws);
    cr_log_info("dist tags: 1 vs 2 processes after 20 updates: weights within %.3g, optimiser within %.3g\n", w, ws);
    cr_assert_eq(ck_u64(P("two/last.ckpt"), "train.progress", 1), 2, "the run reached its third epoch");
}

/* Music (sigmoid head) with the loss normalised per sequence, SGD with momentum,
 * clipping (the norm is of the summed gradient, the same on every rank). */
Test(dist, music_sequences_norm)
{
    NEED_MPI();
    tu_write_music_json(P("m.json"), 31, 23, 4);
    const char *o1 = P("one"), *o2 = P("two");
    for (int np = 0; np <= 2; np += 2) {
        run r = train(np, "--data", P("m.json"), "--data-kind", "music", "--out", np ? o2 : o1, TINY, "--batch", "4",
                      "--loss-norm", "sequences", "--optim", "sgd", "--momentum", "0.9", "--lr", "0.1", "--clip", "0.5",
                      "--steps", "20",
                      NULL);
        OK(r);
    }
    double ws, w = ck_compare(P("one/last.ckpt"), P("two/last.ckpt"), W_TOL, S_TOL, &ws);
    cr_log_info("dist music: 1 vs 2 processes after 20 updates: weights within %.3g, optimiser within %.3g\n", w, ws);
}

/* CTC (the pen kind, a bidirectional model): each rank's samples have their own label
 * counts, so the per-label mean needs the counts of both ranks; also the plain sum. */
Test(dist, pen_ctc_norms)
{
    NEED_MPI();
    cr_assert_eq(mkdir(P("pen"), 0777), 0);
    tu_write_pen_dir(P("pen/train"), 23, 3);
    tu_write_pen_dir(P("pen/valid"), 6, 4);
    const char *norms[] = { "steps", "sum" };
    for (int k = 0; k < 2; k++) {
        char o1[200], o2[200];
        snprintf(o1, sizeof o1, "%s-%s", P("one"), norms[k]);
        snprintf(o2, sizeof o2, "%s-%s", P("two"), norms[k]);
        for (int np = 0; np <= 2; np += 2) {
            run r = train(np, "--data", P("pen"), "--data-kind", "pen", "--out", np ? o2 : o1, TINY, "--bidirectional",
                          "--batch", "5", "--loss-norm", norms[k], "--optim", "sgd", "--lr", "0.05", "--steps", "12", NULL);
            OK(r);
        }
        char la[300], lb[300];
        snprintf(la, sizeof la, "%s/last.ckpt", o1);
        snprintf(lb, sizeof lb, "%s/last.ckpt", o2);
        double ws, w = ck_compare(la, lb, W_TOL, S_TOL, &ws);
        cr_log_info("dist pen (CTC, --loss-norm %s): 1 vs 2 processes after 12 updates: weights within %.3g\n", norms[k], w);
    }
}

/* Checkpoints under mpirun hold every stream's state (rank 0 gathers it) and resume
 * under 2 processes or 1 as the uninterrupted run goes on. */
Test(dist, checkpoint_resume)
{
    NEED_MPI();
    const char *data = P("text.txt");
    gen_text(data, 20000, 7);
    const char *one = P("one"), *two = P("two"), *back = P("back");
#define OPTS "--data", data, TINY, "--batch", "5", "--optim", "sgd", "--momentum", "0.9", "--lr", "0.3", "--eval-every", "7"
    run a = train(0, OPTS, "--out", one, "--steps", "20", NULL);
    OK(a);
    for (int k = 0; k < 2; k++) {
        const char *out = k ? back : two;
        run r = train(2, OPTS, "--out", out, "--steps", "12", NULL);
        OK(r);
        char ck[300];
        snprintf(ck, sizeof ck, "%s/last.ckpt", out);
        cr_assert_eq(ck_u64(ck, "train.progress", 0), 12);
        /* resumed under 2 processes, or under 1 */
        run s = train(k ? 0 : 2, "--out", out, "--resume", "--steps", "20", "--progress", "0", NULL);
        OK(s);
        cr_assert(strstr(s.out, "resumed ") && strstr(s.out, "step 12\n") && strstr(s.out, "after 20 updates"), SHOWF,
                  SHOWA(s));
        char a[300], b[300];
        snprintf(a, sizeof a, "%s/last.ckpt", one);
        snprintf(b, sizeof b, "%s/last.ckpt", out);
        double ws, w = ck_compare(a, b, W_TOL, S_TOL, &ws);
        cr_log_info("dist resume under %d: weights within %.3g, optimiser and state within %.3g\n", k ? 1 : 2, w, ws);
        snprintf(a, sizeof a, "%s/best.ckpt", one);
        snprintf(b, sizeof b, "%s/best.ckpt", out);
        ck_compare(a, b, W_TOL, S_TOL, NULL);
    }
    /* a one-process checkpoint resumes under 2 */
    run f = train(0, OPTS, "--out", P("fromone"), "--steps", "12", NULL);
    OK(f);
    run g = train(2, "--out", P("fromone"), "--resume", "--steps", "20", "--progress", "0", NULL);
    OK(g);
    ck_compare(P("one/last.ckpt"), P("fromone/last.ckpt"), W_TOL, S_TOL, NULL);
#undef OPTS
}

/* Mistakes end every process with a message and a failing status, without a hang. */
Test(dist, bad_uses)
{
    NEED_MPI();
    const char *data = P("text.txt");
    gen_text(data, 5000, 3);
    run r = train(2, "--data", data, "--out", P("b1"), TINY, "--batch", "1", "--steps", "5", NULL);
    cr_assert(r.code != 0 && strstr(r.err, "--batch 1 is smaller than the 2 processes"), SHOWF, SHOWA(r));
    tu_write_tag_lines(P("t.txt"), 3, 1);
    run t = train(2, "--data", P("t.txt"), "--valid", P("t.txt"), "--data-kind", "tags", "--out", P("b2"), TINY,
                  "--batch", "1", "--steps", "5", NULL);
    cr_assert(t.code != 0 && strstr(t.err, "sequences) and needs at least one"), SHOWF, SHOWA(t));
    /* an error in every process (a missing file) */
    run m = train(2, "--data", P("missing.txt"), "--out", P("b3"), TINY, "--batch", "4", NULL);
    cr_assert(m.code != 0 && strstr(m.err, "missing.txt"), SHOWF, SHOWA(m));
    /* a resume that fails on the checkpoint */
    run n = train(2, "--out", P("b4"), "--resume", "--data", data, TINY, NULL);
    cr_assert(n.code != 0 && strstr(n.err, "last.ckpt"), SHOWF, SHOWA(n));
}

/* The processes mpirun started (its children): up to max pids, their number. */
static int children_of(pid_t pid, pid_t *out, int max)
{
    char path[128], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)pid, (int)pid);
    slurp_into(path, buf, sizeof buf);
    int n = 0;
    for (char *p = buf, *end; n < max; p = end) {
        long v = strtol(p, &end, 10);
        if (end == p) break;
        out[n++] = (pid_t)v;
    }
    return n;
}

/* A stop request: SIGINT to mpirun (it passes it on to every process), or SIGTERM to one
 * process only (as a batch system might send): every process stops after the same
 * update, rank 0 writes last.ckpt, the run resumes from it. */
static void interrupt_case(int one_rank)
{
    const char *data = P("text.txt"), *out = P("run");
    gen_text(data, 20000, 5);
    run r;
    start_train(&r, 2, "--data", data, "--out", out, TINY, "--batch", "4", "--epochs", "100000", "--time-limit", "60",
                "--eval-every", "300", NULL);
    double t0 = tu_monotonic_seconds();
    for (char buf[4096];;) {   /* until it trains */
        slurp_into(r.out_path, buf, sizeof buf);
        if (strstr(buf, " per epoch, ")) break;
        cr_assert(waitpid(r.pid, NULL, WNOHANG) == 0, "the run ended before it trained");
        cr_assert(tu_monotonic_seconds() - t0 < 30, "the run did not start within 30 s");
        tu_sleep_seconds(0.02);
    }
    tu_sleep_seconds(0.5);
    if (one_rank) {
        pid_t kids[8];
        int n = children_of(r.pid, kids, 8);
        cr_assert_eq(n, 2, "mpirun has %d children, not the 2 processes", n);
        cr_assert_eq(kill(kids[1], SIGTERM), 0);
    } else cr_assert_eq(kill(r.pid, SIGINT), 0);
    finish(&r, 20);
    cr_assert(strstr(r.out, "interrupted after "), SHOWF, SHOWA(r));
    cr_assert(r.code != 0, "an interrupted run does not exit 0: " SHOWF, SHOWA(r));
    uint64_t steps = ck_u64(P("run/last.ckpt"), "train.progress", 0);
    cr_assert_gt(steps, 0);
    char more[32];
    snprintf(more, sizeof more, "%llu", (unsigned long long)steps + 5);
    run c = train(2, "--out", out, "--resume", "--steps", more, "--progress", "0", NULL);
    OK(c);
    cr_assert_eq(ck_u64(P("run/last.ckpt"), "train.progress", 0), steps + 5);
}

Test(dist, interrupt_mpirun)
{
    NEED_MPI();
    interrupt_case(0);
}

Test(dist, terminate_one_process)
{
    NEED_MPI();
    interrupt_case(1);
}

/* Built without MPI: started by a launcher as 2 processes, recur refuses (each would
 * train alone and write the same files); as one it trains. */
Test(dist, without_mpi_refuses_several)
{
#ifdef RC_TEST_HAVE_MPI
    cr_skip_test("recur was built with MPI");
#else
    const char *data = P("text.txt");
    gen_text(data, 5000, 3);
    setenv("OMPI_COMM_WORLD_SIZE", "2", 1);
    run r = train(0, "--data", data, "--out", P("x"), TINY, "--batch", "4", "--steps", "3", NULL);
    setenv("OMPI_COMM_WORLD_SIZE", "1", 1);
    run s = train(0, "--data", data, "--out", P("y"), TINY, "--batch", "4", "--steps", "3", NULL);
    unsetenv("OMPI_COMM_WORLD_SIZE");
    cr_assert(r.code == 1 && strstr(r.err, "built without MPI"), SHOWF, SHOWA(r));
    OK(s);
#endif
}

/* A folder of text under mpirun: every process writes <out>/corpus.txt, each under its
 * own name then renamed, so none reads another's half-written copy (they used to write
 * one file together). The run works as one process's does, and no partial file stays. */
Test(dist, folder_corpus)
{
    NEED_MPI();
    const char *dir = P("texts");
    cr_assert_eq(mkdir(dir, 0777), 0);
    char f[300];
    size_t total = 0;
    for (int i = 0; i < 6; i++) {
        snprintf(f, sizeof f, "%s/part%d.txt", dir, i);
        gen_text(f, 40000, 30 + (uint32_t)i);
        total += 40000;
    }
    const char *one = P("fone"), *two = P("ftwo");
    run a = train(0, "--data", dir, "--out", one, TINY, "--batch", "4", "--optim", "sgd", "--lr", "0.5", "--steps", "10", NULL);
    OK(a);
    run b = train(2, "--data", dir, "--out", two, TINY, "--batch", "4", "--optim", "sgd", "--lr", "0.5", "--steps", "10", NULL);
    OK(b);
    char c[300], c1[300];
    snprintf(c, sizeof c, "%s/corpus.txt", two);
    snprintf(c1, sizeof c1, "%s/corpus.txt", one);
    struct stat st, st1;
    cr_assert_eq(stat(c, &st), 0);
    cr_assert_eq(stat(c1, &st1), 0);
    cr_assert((size_t)st1.st_size >= total);
    cr_assert_eq(st.st_size, st1.st_size, "corpus.txt holds %lld bytes, one process's %lld", (long long)st.st_size,
                 (long long)st1.st_size);
    DIR *d = opendir(two);
    cr_assert(d);
    for (struct dirent *e; (e = readdir(d));) cr_assert(!strstr(e->d_name, ".tmp"), "left behind: %s", e->d_name);
    closedir(d);
    char la[300], lb[300];
    snprintf(la, sizeof la, "%s/last.ckpt", one);
    snprintf(lb, sizeof lb, "%s/last.ckpt", two);
    ck_compare(la, lb, W_TOL, S_TOL, NULL);
}

/* ---- processes given different settings: MPMD launches `-np 1 A : -np 1 B` ------------ */

/* recur train under mpirun as two app contexts of one process each: rank 0 gets `common`
 * then `a`, rank 1 `common` then `b` (NULL-terminated lists); to its end, 60 s at most
 * (a hang fails the test). */
static run train_mpmd(const char *const *common, const char *const *a, const char *const *b)
{
    const char *argv[128];
    int n = 0;
    argv[n++] = "mpirun";
    argv[n++] = "--oversubscribe";
    argv[n++] = "--allow-run-as-root";
    for (int k = 0; k < 2; k++) {
        if (k) argv[n++] = ":";
        argv[n++] = "-np";
        argv[n++] = "1";
        argv[n++] = tu_recur_exe();
        argv[n++] = "train";
        for (const char *const *p = common; *p; p++) {
            cr_assert_lt(n, 120, "too many arguments");
            argv[n++] = *p;
        }
        for (const char *const *p = k ? b : a; *p; p++) {
            cr_assert_lt(n, 120, "too many arguments");
            argv[n++] = *p;
        }
    }
    argv[n] = NULL;
    run r;
    start_argv(&r, argv);
    finish(&r, 60);
    return r;
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* A refused start: a failing status without a signal, the message `want`, no crash
 * report (before the ranks compared their settings, --hidden 32 against 16 ended in
 * "malloc(): corrupted top size" inside the gradient sum). */
static void refused(const run *r, const char *want)
{
    cr_assert(r->code != 0 && r->sig == 0 && strstr(r->err, want), "expected a refusal saying '%s': " SHOWF, want,
              SHOWA(*r));
    cr_assert(!strstr(r->err, "AddressSanitizer") && !strstr(r->err, "corrupted") && !strstr(r->err, "Signal:") &&
              !strstr(r->err, "MPI_ERR"), "a crash, not a refusal: " SHOWF, SHOWA(*r));
}

/* Every option that changes the model, the batches or the data, and the data itself:
 * each difference is refused with a message naming it, before anything is trained or
 * written in --out; options that do not change the training (--threads) may differ. */
Test(dist, different_settings_refused)
{
    NEED_MPI();
    const char *data = P("text.txt"), *other = P("other.txt"), *dir = P("texts");
    gen_text(data, 20000, 11);
    gen_text(other, 20000, 12);   /* the same characters, other text */
    cr_assert_eq(mkdir(dir, 0777), 0);
    gen_text(P("texts/part.txt"), 20000, 11);
    static const struct {
        const char *a[3], *b[3], *want;
    } cases[] = {
        { { "--hidden", "32" }, { "--hidden", "16" }, "--hidden differs: process 0 has 32, process 1 has 16" },
        { { "--batch", "4" }, { "--batch", "6" }, "--batch differs: process 0 has 4, process 1 has 6" },
        { { "--cell", "lstm" }, { "--cell", "gru" }, "--cell differs: process 0 has lstm, process 1 has gru" },
        { { "--seq", "10" }, { "--seq", "12" }, "--seq differs: process 0 has 10, process 1 has 12" },
        { { "--lr", "0.01" }, { "--lr", "0.02" }, "--lr differs: process 0 has 0.01, process 1 has 0.02" },
        { { "--data", NULL }, { "--data", NULL }, "the training data (as loaded) differs: process 0 has " },
        { { "--data", NULL }, { "--data", NULL }, "whether --data is a folder differs: process 0 has no, process 1 has yes" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char out[40];
        snprintf(out, sizeof out, "case%zu", i);
        const char *o = P(out), *common[] = { "--data", data, "--out", o, TINY, "--batch", "4", "--steps", "3", NULL };
        const char *a[3] = { cases[i].a[0], cases[i].a[1], NULL }, *b[3] = { cases[i].b[0], cases[i].b[1], NULL };
        if (!strcmp(a[0], "--data")) {
            a[1] = data;
            b[1] = strstr(cases[i].want, "folder") ? dir : other;
        }
        run r = train_mpmd(common, a, b);
        refused(&r, cases[i].want);
        cr_assert(strstr(r.err, "nothing was trained, no checkpoint or log written"), SHOWF, SHOWA(r));
        char f[300];
        static const char *const written[] = { "last.ckpt", "best.ckpt", "metrics.csv" };
        for (int k = 0; k < 3; k++) {
            snprintf(f, sizeof f, "%s/%s", o, written[k]);
            cr_assert(!exists(f), "%s was written by a refused run: " SHOWF, f, SHOWA(r));
        }
    }
    /* the same settings train as before, --threads may differ */
    const char *o = P("same"), *two = P("two");
    const char *common[] = { "--data", data, "--out", o, TINY, "--batch", "4", "--steps", "3", NULL };
    const char *a[] = { "--threads", "1", NULL }, *b[] = { NULL };
    run r = train_mpmd(common, a, b);
    OK(r);
    run s = train(2, "--data", data, "--out", two, TINY, "--batch", "4", "--steps", "3", NULL);
    OK(s);
    cr_assert_eq(ck_u64(P("same/last.ckpt"), "train.progress", 0), 3);
    ck_compare(P("two/last.ckpt"), P("same/last.ckpt"), W_TOL, S_TOL, NULL);
}

/* A resume where the processes read other checkpoints (on several hosts: one path,
 * other contents per host; here two --out folders, as --out is rank 0's alone), or are
 * given another option, is refused and leaves the run's files as they were. */
Test(dist, resume_with_different_checkpoint_refused)
{
    NEED_MPI();
    const char *data = P("text.txt");
    gen_text(data, 20000, 7);
    const char *A = P("A"), *B = P("B");
    run a = train(2, "--data", data, "--out", A, TINY, "--batch", "4", "--steps", "4", NULL);
    OK(a);
    run b = train(2, "--data", data, "--out", B, TINY, "--batch", "4", "--steps", "6", NULL);
    OK(b);
    size_t n0, m0;
    char *ck0 = tu_read_file(P("A/last.ckpt"), &n0), *mx0 = tu_read_file(P("A/metrics.csv"), &m0);
    cr_assert(ck0 && mx0);
    const char *common[] = { "--resume", "--steps", "8", "--progress", "0", NULL };
    const char *ra[] = { "--out", A, NULL }, *rb[] = { "--out", B, NULL };
    run r = train_mpmd(common, ra, rb);
    refused(&r, "the checkpoint (--resume) differs: process 0 has ");
    const char *rc[] = { "--out", A, "--lr", "0.5", NULL };
    run s = train_mpmd(common, ra, rc);
    refused(&s, "--lr differs: process 0 has 0.002, process 1 has 0.5");
    size_t n1, m1;
    char *ck1 = tu_read_file(P("A/last.ckpt"), &n1), *mx1 = tu_read_file(P("A/metrics.csv"), &m1);
    cr_assert(ck1 && mx1);
    cr_assert(n1 == n0 && !memcmp(ck0, ck1, n0), "last.ckpt changed by a refused resume");
    cr_assert(m1 == m0 && !memcmp(mx0, mx1, m0), "metrics.csv changed by a refused resume");
    free(ck0);
    free(ck1);
    free(mx0);
    free(mx1);
    /* with the same settings it resumes */
    const char *same[] = { "--out", A, NULL };
    run t = train_mpmd(common, same, same);
    OK(t);
    cr_assert_eq(ck_u64(P("A/last.ckpt"), "train.progress", 0), 8);
}

/* tools/dist.c's collectives check, before moving data, that every rank is in the same
 * collective with the same size: dist-probe (tests/dist_probe.c) calls them with other
 * sizes or other collectives per rank. Each mismatch is an error on both ranks naming
 * both calls, later collectives return at once, and the processes end without a hang. */
Test(dist, collectives_check_sizes)
{
    NEED_MPI();
#ifndef RC_TEST_DIST_PROBE
    cr_skip_test("no dist-probe in this build");
#else
    static const struct {
        const char *a, *b, *want;
    } cases[] = {
        { "floats:8840", "floats:2376", "error: dist_sum_floats: process 0 passes 8840 values, process 1 passes 2376" },
        { "floats:0", "floats:5", "error: dist_sum_floats: process 0 passes 0 values, process 1 passes 5" },
        { "doubles:7", "doubles:9", "error: dist_sum_doubles: process 0 passes 7 values, process 1 passes 9" },
        { "bcast:16", "bcast:8", "error: dist_bcast: process 0 passes 16 bytes, process 1 passes 8" },
        { "gather:1", "gather:3", "error: dist_gather: process 1 of 2 cannot take part: it passes 3 bytes where the "
                                  "counts say 2" },
        { "bcast:8", "floats:8", "error: the processes are out of step: process 0 is in dist_bcast of 8 bytes, "
                                 "process 1 in dist_sum_floats of 8 values" },
        { "failed:1", "barrier:0", "error: the processes are out of step: process 0 is in dist_first_failed, process 1 "
                                   "in dist_barrier" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *argv[] = { "mpirun", "--oversubscribe", "--allow-run-as-root", "-np", "1", RC_TEST_DIST_PROBE,
                               cases[i].a, "barrier:0", ":", "-np", "1", RC_TEST_DIST_PROBE, cases[i].b, "barrier:0",
                               NULL };
        run r;
        start_argv(&r, argv);
        finish(&r, 30);
        OK(r);
        const char *first = strstr(r.out, cases[i].want);
        cr_assert(first && strstr(first + 1, cases[i].want), "both ranks say '%s': " SHOWF, cases[i].want, SHOWA(r));
        int later = 0;
        for (const char *p = r.out; (p = strstr(p, "dist_barrier: ")); p++) later++;
        if (!strstr(cases[i].want, "cannot take part"))   /* out of step: the next collective is not run */
            cr_assert(strstr(r.out, "error: dist_barrier: not run: the processes were found out of step before"), SHOWF,
                      SHOWA(r));
        else cr_assert_eq(later, 0, "in step after a rank's trouble: the barrier runs: " SHOWF, SHOWA(r));
        cr_assert(!strstr(r.err, "AddressSanitizer") && !strstr(r.err, "MPI_ERR"), SHOWF, SHOWA(r));
    }
    /* in step: the sums, broadcast and gather move the data */
    const char *argv[] = { "mpirun", "--oversubscribe", "--allow-run-as-root", "-np", "1", RC_TEST_DIST_PROBE,
                           "floats:100000", "doubles:5", "bcast:64", "gather:1", "failed:0", ":", "-np", "1",
                           RC_TEST_DIST_PROBE, "floats:100000", "doubles:5", "bcast:64", "gather:2", "failed:1", NULL };
    run r;
    start_argv(&r, argv);
    finish(&r, 30);
    OK(r);
    cr_assert(!strstr(r.out, "error") && !strstr(r.out, "wrong"), SHOWF, SHOWA(r));
    int sums = 0;
    for (const char *p = r.out; (p = strstr(p, "ok sum")); p++) sums++;
    cr_assert_eq(sums, 4, SHOWF, SHOWA(r));
    cr_assert(strstr(r.out, "ok first 1"), "dist_first_failed names rank 1: " SHOWF, SHOWA(r));
#endif
}

/* recur search under mpirun: a worker given another protocol option or other data
 * would score candidates on another problem (before: silently, into rank 0's rows); it
 * is refused before anything is evaluated, and the search's folder is not written. */
Test(dist, search_different_settings_refused)
{
    NEED_MPI();
    const char *data = P("text.txt"), *other = P("other.txt");
    gen_text(data, 20000, 11);
    gen_text(other, 20000, 12);
    static const struct {
        const char *a[2], *b[2], *want;
    } cases[] = {
        { { "--steps", "6" }, { "--steps", "7" }, "--steps differs: process 0 has 6, process 1 has 7" },
        { { "--task-data", NULL }, { "--task-data", NULL },
          "--tasks chars: the training data (as loaded) differs: process 0 has " },
    };
    for (int i = 0; i < 2; i++) {
        char out[40], ta[200], tb[200];
        snprintf(out, sizeof out, "search%d", i);
        snprintf(ta, sizeof ta, "chars=%s", data);
        snprintf(tb, sizeof tb, "chars=%s", i ? other : data);
        const char *o = P(out), *a1 = cases[i].a[1] ? cases[i].a[1] : ta, *b1 = cases[i].b[1] ? cases[i].b[1] : tb;
        const char *argv[80];
        int n = 0;
        argv[n++] = "mpirun";
        argv[n++] = "--oversubscribe";
        argv[n++] = "--allow-run-as-root";
        for (int k = 0; k < 2; k++) {
            const char *common[] = { "-np", "1", tu_recur_exe(), "search", "--out", o, "--tasks", "chars", "--task-data",
                                     ta, "--seq", "10", "--steps", "6", "--lrs", "1e-2", "--promote-steps", "6",
                                     "--promote-seeds", "2", "--batch", "8", "--threads", "1", "--params", "3000",
                                     "--batch-candidates", "2", "--budget", "1", "--progress", "0" };
            if (k) argv[n++] = ":";
            for (size_t j = 0; j < sizeof common / sizeof *common; j++) argv[n++] = common[j];
            argv[n++] = k ? cases[i].b[0] : cases[i].a[0];
            argv[n++] = k ? b1 : a1;
        }
        argv[n] = NULL;
        run r;
        start_argv(&r, argv);
        finish(&r, 60);
        refused(&r, cases[i].want);
        char f[300];
        snprintf(f, sizeof f, "%s/candidates.jsonl", o);
        cr_assert(!exists(f), "a refused search wrote %s: " SHOWF, f, SHOWA(r));
    }
}
