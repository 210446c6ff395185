/* recur search (tools/cmd_search.c), run as a child process like tests/test_cli.c:
 * well-formed rows and files, no cell twice, resume after SIGKILL gives the rows of an
 * uninterrupted run, Ctrl-C leaves whole rows and exit 130, --status, bad options, one
 * search per folder, mpirun -np 2 giving the rows of one process; a killed worker rank:
 * with Open MPI's default the job ends and the same command resumes to the rows of one
 * process, with orte_enable_recovery the search goes on without it (its candidate
 * reissued); a hung worker taken as gone; a lost rank 0 ends the job; the chars
 * and music tasks on small generated files, and arith,chars together (the normalised
 * score); a missing or bad data file refused before any training. Every run is tiny (a few updates per
 * learning rate, a small test set). The binary is RECUR_EXE, or RECUR_TEST_EXE. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test_util.h"

static char g_dir[64];
static pid_t g_bg = -1;

static void setup(void)
{
    tu_make_temp_dir(g_dir, sizeof g_dir, "/tmp/recur-search-");
    g_bg = -1;
}

static void teardown(void)
{
    if (g_bg > 0) {
        kill(-g_bg, SIGKILL);
        waitpid(g_bg, NULL, 0);
    }
    if (g_dir[0]) tu_remove_tree(g_dir);
    g_dir[0] = 0;
}

TestSuite(search, .init = setup, .fini = teardown, .timeout = 120);

typedef struct run { pid_t pid; int code, sig; char out[8192], err[8192]; } run;

/* Starts `argv` (argv[0] "recur" means the binary under test) in its own process group. */
static void start(run *r, const char *const *argv)
{
    memset(r, 0, sizeof *r);
    char op[128], ep[128];
    snprintf(op, sizeof op, "%s/out.txt", g_dir);
    snprintf(ep, sizeof ep, "%s/err.txt", g_dir);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        setpgid(0, 0);
        int o = open(op, O_WRONLY | O_CREAT | O_TRUNC, 0644), e = open(ep, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (o < 0 || e < 0) _exit(126);
        dup2(o, 1);
        dup2(e, 2);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        if (!strcmp(argv[0], "mpirun")) tu_mpi_child_env();
        const char *const *a = argv;
        if (!strcmp(argv[0], "recur")) {
            const char **b = calloc(64, sizeof *b);
            if (!b) _exit(126);
            b[0] = tu_recur_exe();
            for (int i = 1; argv[i] && i < 63; i++) b[i] = argv[i];
            a = b;
        }
        execvp(a[0], (char *const *)a);
        _exit(127);
    }
    setpgid(pid, pid);
    r->pid = g_bg = pid;
}

static void finish(run *r)
{
    int st = 0;
    waitpid(r->pid, &st, 0);
    kill(-r->pid, SIGKILL);
    g_bg = -1;
    r->code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    r->sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
    char p[128];
    snprintf(p, sizeof p, "%s/out.txt", g_dir);
    char *s = tu_read_file(p, NULL);
    snprintf(r->out, sizeof r->out, "%s", s ? s : "");
    free(s);
    snprintf(p, sizeof p, "%s/err.txt", g_dir);
    s = tu_read_file(p, NULL);
    snprintf(r->err, sizeof r->err, "%s", s ? s : "");
    free(s);
    cr_assert_neq(r->code, 127, "cannot run %s", tu_recur_exe());
}

static void run_to_end(run *r, const char *const *argv)
{
    start(r, argv);
    finish(r);
}

#define SHOW(r) "exit %d signal %d\nstdout: %.3000s\nstderr: %.3000s", (r).code, (r).sig, (r).out, (r).err
/* The same after a prefix of one string: SHOW_AFTER("case", r) */
#define SHOW_AFTER(what, r) "%s: exit %d signal %d\nstdout: %.3000s\nstderr: %.3000s", (what), (r).code, (r).sig, (r).out, (r).err
#define OK(r) cr_assert((r).code == 0 && (r).sig == 0, SHOW(r))

/* The tiny protocol of every test: 2 learning rates x 6 updates, promotion 6 updates x 2. */
#define TINY "--steps", "6", "--lrs", "1e-2,3e-2", "--promote-steps", "6", "--promote-seeds", "2", "--test", "32", \
             "--batch", "8", "--threads", "1", "--params", "3000", "--batch-candidates", "3"

static char *path_in(const char *dir, const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s/%s", g_dir, dir, name);
    return buf[k];
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; s && *s; s++) n += *s == '\n';
    return n;
}

static long row_id(const char *line)
{
    const char *p = strstr(line, "\"id\":");
    return p ? strtol(p + 5, NULL, 10) : -1;
}

static int row_id_cmp(const void *a, const void *b)
{
    long x = row_id(*(char *const *)a), y = row_id(*(char *const *)b);
    return (x > y) - (x < y);
}

/* The rows of a search by id (rank 0 appends a batch's finished rows; after an
 * interruption the rest of the batch comes later, and every reader sorts by id), without
 * their timings ("wall_s" .. "error" cut): one string. */
static char *rows_key(const char *dir)
{
    char *s = tu_read_file(path_in(dir, "candidates.jsonl"), NULL);
    cr_assert_not_null(s, "%s: no candidates.jsonl", dir);
    size_t n = strlen(s);
    int nl_count = count_lines(s), k = 0;
    char **lines = calloc((size_t)nl_count + 1, sizeof *lines);
    char *out = malloc(n + 1), *w = out;
    cr_assert(out && lines);
    for (char *line = s; *line;) {
        char *nl = strchr(line, '\n');
        cr_assert_not_null(nl, "%s: a row without its newline", dir);
        *nl = 0;
        lines[k++] = line;
        line = nl + 1;
    }
    qsort(lines, (size_t)k, sizeof *lines, row_id_cmp);
    for (int i = 0; i < k; i++) {
        char *line = lines[i];
        char *a = strstr(line, ",\"wall_s\":"), *b = strstr(line, ",\"error\":");
        cr_assert(a && b && a < b, "%s: a row without wall_s/error: %s", dir, line);
        memcpy(w, line, (size_t)(a - line));
        w += a - line;
        w += sprintf(w, "%s\n", b);
    }
    *w = 0;
    free(lines);
    free(s);
    return out;
}

/* Every row complete and the hashes distinct; returns the number of rows. */
static int check_rows(const char *dir)
{
    char *s = tu_read_file(path_in(dir, "candidates.jsonl"), NULL);
    cr_assert_not_null(s);
    int n = 0;
    char hashes[256][17];
    for (char *line = s; *line;) {
        char *nl = strchr(line, '\n');
        cr_assert_not_null(nl, "a row cut short: %s", line);
        *nl = 0;
        cr_assert(line[0] == '{' && nl[-1] == '}', "not a JSON object: %s", line);
        static const char *keys[] = { "\"id\":", "\"parent\":", "\"kind\":", "\"hash\":\"", "\"hidden\":", "\"params\":",
                                      "\"score\":", "\"lr_scores\":[", "\"promoted\":", "\"wall_s\":", "\"text\":\"cell " };
        for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) cr_assert_not_null(strstr(line, keys[k]), "%s missing: %s", keys[k], line);
        char *h = strstr(line, "\"hash\":\"") + 8;
        cr_assert_lt(n, 256);
        memcpy(hashes[n], h, 16);
        hashes[n][16] = 0;
        for (int j = 0; j < n; j++) cr_assert_str_neq(hashes[j], hashes[n], "the cell %s twice (rows %d and %d)", hashes[n], j, n);
        n++;
        line = nl + 1;
    }
    free(s);
    char *csv = tu_read_file(path_in(dir, "candidates.csv"), NULL);
    cr_assert_not_null(csv);
    cr_assert_eq(strncmp(csv, "id,parent,kind,hash,", 20), 0, "csv header: %.100s", csv);
    /* the cell text spans lines inside its quotes: count rows by lines starting a row */
    int rows = 0;
    int inq = 0;
    for (char *p = csv; *p; p++) {
        if (*p == '"') inq = !inq;
        if (*p == '\n' && !inq) rows++;
    }
    free(csv);
    cr_assert_eq(rows, n + 1, "csv rows %d, jsonl rows %d", rows - 1, n);
    return n;
}

Test(search, writes_rows_and_files)
{
    run r;
    char out[128];
    snprintf(out, sizeof out, "%s/s", g_dir);
    const char *argv[] = { "recur", "search", "--out", out, "--budget", "5", TINY, NULL };
    run_to_end(&r, argv);
    OK(r);
    cr_assert_eq(check_rows("s"), 2 + 5, "2 baselines + 5 candidates");
    char *conf = tu_read_file(path_in("s", "search.conf"), NULL);
    cr_assert(conf && strstr(conf, "params 3000\n") && strstr(conf, "seed-cells lstm,gru\n"), "%s", conf ? conf : "");
    free(conf);
    char *keys = rows_key("s");
    DIR *d = opendir(path_in("s", "top"));
    cr_assert_not_null(d);
    int ntop = 0;
    for (struct dirent *e; (e = readdir(d));) ntop += !strncmp(e->d_name, "rank-", 5);
    closedir(d);
    cr_assert_eq(ntop, 7, "top/ holds %d cells", ntop);
    cr_assert_not_null(strstr(keys, "\"kind\":\"seed:lstm\""));
    free(keys);
}

Test(search, resume_after_kill_gives_the_same_rows)
{
    run r;
    char a[128], b[128];
    snprintf(a, sizeof a, "%s/a", g_dir);
    snprintf(b, sizeof b, "%s/b", g_dir);
    const char *argv_a[] = { "recur", "search", "--out", a, "--budget", "9", TINY, NULL };
    run_to_end(&r, argv_a);
    OK(r);
    const char *argv_b[] = { "recur", "search", "--out", b, "--budget", "9", TINY, NULL };
    start(&r, argv_b);
    /* killed after a few rows, mid-batch or between batches */
    int killed = 0;
    for (int i = 0; i < 20000; i++) {
        char *s = tu_read_file(path_in("b", "candidates.jsonl"), NULL);
        int n = count_lines(s);
        free(s);
        if (n >= 5) {
            kill(-r.pid, SIGKILL);
            killed = 1;
            break;
        }
        if (waitpid(r.pid, NULL, WNOHANG) == r.pid) break;
        tu_sleep_seconds(0.001);
    }
    finish(&r);
    cr_assert(killed, "the run ended before it could be killed");
    char *s = tu_read_file(path_in("b", "candidates.jsonl"), NULL);
    int n = count_lines(s);
    free(s);
    cr_assert_lt(n, 11, "killed after all rows");
    run_to_end(&r, argv_b);   /* the same command resumes */
    OK(r);
    cr_assert_not_null(strstr(r.out, "resuming after"), "%s", r.out);
    check_rows("b");
    char *ka = rows_key("a"), *kb = rows_key("b");
    cr_assert_str_eq(kb, ka, "resumed rows differ from an uninterrupted run's");
    free(ka);
    free(kb);
}

Test(search, ctrl_c_leaves_whole_rows_and_resumes)
{
    run r;
    char out[128];
    snprintf(out, sizeof out, "%s/s", g_dir);
    const char *argv[] = { "recur", "search", "--out", out, "--budget", "40", TINY, NULL };
    start(&r, argv);
    for (int i = 0; i < 20000; i++) {
        char *s = tu_read_file(path_in("s", "candidates.jsonl"), NULL);
        int n = count_lines(s);
        free(s);
        if (n >= 3) break;
        tu_sleep_seconds(0.001);
    }
    kill(r.pid, SIGINT);
    finish(&r);
    cr_assert_eq(r.code, 130, SHOW(r));
    cr_assert_not_null(strstr(r.err, "interrupted"), "%s", r.err);
    int n = check_rows("s");
    cr_assert_lt(n, 42, "interrupted after all rows");
    const char *again[] = { "recur", "search", "--out", out, "--budget", "4", NULL };   /* the protocol from search.conf */
    run_to_end(&r, again);
    OK(r);
    check_rows("s");
}

Test(search, one_search_per_folder)
{
    run r, r2;
    char out[128];
    snprintf(out, sizeof out, "%s/s", g_dir);
    const char *argv[] = { "recur", "search", "--out", out, "--budget", "400", TINY, NULL };
    start(&r, argv);
    for (int i = 0; i < 20000; i++) {   /* running once its first row is written */
        char *s = tu_read_file(path_in("s", "candidates.jsonl"), NULL);
        int n = count_lines(s);
        free(s);
        if (n >= 1) break;
        tu_sleep_seconds(0.001);
    }
    pid_t first = r.pid;
    run_to_end(&r2, argv);
    kill(-first, SIGKILL);
    waitpid(first, NULL, 0);
    cr_assert_eq(r2.code, 1, SHOW(r2));
    cr_assert_not_null(strstr(r2.err, "another recur search is running"), "%s", r2.err);
}

/* A cell whose training fails (h * (h - n) grows without bound: the gradient becomes
 * NaN at the first update) scores 0 with the reason in its row's error. */
Test(search, failed_training_names_the_reason)
{
    char cell[128], out[128];
    snprintf(cell, sizeof cell, "%s/bad.cell", g_dir);
    snprintf(out, sizeof out, "%s/s", g_dir);
    FILE *f = fopen(cell, "w");
    cr_assert_not_null(f);
    fputs("cell bad (x) -> h\n  hidden 65\n  r = sigmoid(W_xr @ x + W_hr @ h + b_r)\n"
          "  n = tanh(W_xn @ x + b_xn + r * (W_hn @ h + b_hn))\n  h' = n + h * (h - n)\n", f);
    cr_assert_eq(fclose(f), 0);
    run r;
    const char *argv[] = { "recur", "search", "--out", out, "--seed-cells", cell, "--budget", "0", "--steps", "3",
                           "--lrs", "1e-2", "--promote-steps", "3", "--promote-seeds", "1", "--test", "16", "--batch", "8",
                           "--threads", "1", "--params", "20000", NULL };
    run_to_end(&r, argv);
    OK(r);
    char *s = tu_read_file(path_in("s", "candidates.jsonl"), NULL);
    cr_assert_not_null(s);
    cr_assert(strstr(s, "\"error\":\"lr 0.01: update 1, optimiser step: ") && strstr(s, "not finite") &&
              strstr(s, "\"short\":0,"), "%s", s);
    free(s);
}

Test(search, status_table)
{
    run r;
    char out[128];
    snprintf(out, sizeof out, "%s/s", g_dir);
    const char *argv[] = { "recur", "search", "--out", out, "--budget", "3", TINY, NULL };
    run_to_end(&r, argv);
    OK(r);
    const char *st[] = { "recur", "search", "--status", out, NULL };
    run_to_end(&r, st);
    OK(r);
    cr_assert(strstr(r.out, "2 baselines, 3 candidates") && strstr(r.out, "seed:lstm") && strstr(r.out, "seed:gru") &&
              strstr(r.out, "rank") && strstr(r.out, "best baseline score"), "%s", r.out);
    const char *none[] = { "recur", "search", "--status", g_dir, NULL };
    run_to_end(&r, none);
    cr_assert_eq(r.code, 1, SHOW(r));
    cr_assert_not_null(strstr(r.err, "no search here"), "%s", r.err);
}

Test(search, bad_options)
{
    char out[128];
    snprintf(out, sizeof out, "%s/s", g_dir);
    static const struct { const char *opt, *val, *says; } bad[] = {
        { "--tasks", "sums", "unknown task 'sums'" },
        { "--tasks", "music", "--tasks music needs its data: --task-data music=" },
        { "--tasks", "arith,arith", "arith twice" },
        { "--tasks", "arith,", "comma-separated" },
        { "--task-data", "words=x.txt", "'words=x.txt' is not chars=PATH or music=PATH" },
        { "--seed-cells", "lstm,foo", "unknown cell 'foo'" },
        { "--seed-cells", "lstm,lstm", "lstm twice" },
        { "--params", "50", "--params 50 is too small" },
        { "--params", "100", "more than 10% off" },
        { "--lrs", "1e-2,x", "'x' is not a positive number" },
        { "--steps", "0", "must be >= 1" },
        { "--budget", "many", "not an integer" },
        { "--rank-timeout", "0", "--rank-timeout must be a positive number of seconds" },
        { "--rank-timeout", "inf", "--rank-timeout 'inf': not a finite number" },
        { "--frobnicate", "1", "unknown option '--frobnicate'" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        run r;
        const char *argv[] = { "recur", "search", "--out", out, bad[i].opt, bad[i].val, NULL };
        run_to_end(&r, argv);
        cr_assert_eq(r.code, 2, SHOW_AFTER(bad[i].opt, r));
        cr_assert_not_null(strstr(r.err, bad[i].says), "%s %s: %s", bad[i].opt, bad[i].val, r.err);
        cr_assert_neq(access(out, F_OK), 0, "%s %s: the folder was created", bad[i].opt, bad[i].val);
    }
    run r;
    const char *noout[] = { "recur", "search", "--budget", "3", NULL };
    run_to_end(&r, noout);
    cr_assert_eq(r.code, 2, SHOW(r));
    cr_assert_not_null(strstr(r.err, "--out DIR is required"), "%s", r.err);
    /* a resume with another protocol */
    const char *first[] = { "recur", "search", "--out", out, "--budget", "1", TINY, NULL };
    run_to_end(&r, first);
    OK(r);
    const char *other[] = { "recur", "search", "--out", out, "--budget", "2", "--params", "4000", NULL };
    run_to_end(&r, other);
    cr_assert_eq(r.code, 2, SHOW(r));
    cr_assert_not_null(strstr(r.err, "--params 4000 differs from the search"), "%s", r.err);
}

#ifdef RC_TEST_HAVE_MPI
Test(search, mpirun_np2_gives_the_rows_of_one_process)
{
    run r;
    char a[128], b[128];
    snprintf(a, sizeof a, "%s/a", g_dir);
    snprintf(b, sizeof b, "%s/b", g_dir);
    const char *one[] = { "recur", "search", "--out", a, "--budget", "7", TINY, NULL };
    run_to_end(&r, one);
    OK(r);
    const char *two[] = { "mpirun", "--oversubscribe", "--allow-run-as-root", "-np", "2", tu_recur_exe(), "search", "--out", b,
                          "--budget", "7", TINY, NULL };
    run_to_end(&r, two);
    OK(r);
    char *ka = rows_key("a"), *kb = rows_key("b");
    cr_assert_str_eq(kb, ka, "mpirun -np 2 rows differ from one process's");
    free(ka);
    free(kb);
}

/* The pid of rank `rank` among the children of `parent` (its environment says
 * OMPI_COMM_WORLD_RANK), or -1. */
static pid_t rank_pid(pid_t parent, int rank)
{
    DIR *d = opendir("/proc");
    pid_t found = -1;
    char want[64];
    snprintf(want, sizeof want, "OMPI_COMM_WORLD_RANK=%d", rank);
    for (struct dirent *e; d && found < 0 && (e = readdir(d));) {
        char path[300];
        pid_t pid = (pid_t)atoi(e->d_name);
        if (pid <= 0) continue;
        snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
        FILE *f = fopen(path, "r");
        int ppid = -1;
        if (!f) continue;
        if (fscanf(f, "%*d %*s %*c %d", &ppid) != 1) ppid = -1;
        fclose(f);
        if (ppid != parent) continue;
        snprintf(path, sizeof path, "/proc/%d/environ", (int)pid);
        f = fopen(path, "rb");
        if (!f) continue;
        char buf[65536];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        for (size_t i = 0; i < n; i += strlen(buf + i) + 1) {
            buf[n] = 0;
            if (!strcmp(buf + i, want)) found = pid;
        }
    }
    if (d) closedir(d);
    return found;
}

/* A worker rank killed mid-search ends the job (OpenMPI's default); the same command
 * then resumes from rank 0's files, and the rows are those of one uninterrupted process. */
Test(search, killed_worker_rank_then_resume_gives_the_same_rows)
{
    run r;
    char a[128], b[128];
    snprintf(a, sizeof a, "%s/a", g_dir);
    snprintf(b, sizeof b, "%s/b", g_dir);
    const char *one[] = { "recur", "search", "--out", a, "--budget", "9", TINY, NULL };
    run_to_end(&r, one);
    OK(r);
    const char *two[] = { "mpirun", "--oversubscribe", "--allow-run-as-root", "-np", "2", tu_recur_exe(), "search", "--out", b,
                          "--budget", "9", TINY, NULL };
    start(&r, two);
    int killed = 0;
    for (int i = 0; i < 20000 && !killed; i++) {
        char *s = tu_read_file(path_in("b", "candidates.jsonl"), NULL);
        int n = count_lines(s);
        free(s);
        if (n >= 2) {
            pid_t w = rank_pid(r.pid, 1);
            if (w > 0) killed = kill(w, SIGKILL) == 0;
        }
        if (waitpid(r.pid, NULL, WNOHANG) == r.pid) break;
        tu_sleep_seconds(0.001);
    }
    finish(&r);
    cr_assert(killed, "rank 1 was not found or the job ended first: " SHOW(r));
    cr_assert(r.code != 0 || r.sig != 0, "the job went on without rank 1: " SHOW(r));
    run_to_end(&r, two);
    OK(r);
    check_rows("b");
    char *ka = rows_key("a"), *kb = rows_key("b");
    cr_assert_str_eq(kb, ka, "rows after a killed rank and a resume differ from one process's");
    free(ka);
    free(kb);
}

/* Starts `mpirun [--mca orte_enable_recovery 1] -np 3 recur search` into g_dir/b and sends
 * `sig` to rank `rank` once the baselines' rows are written (candidates remain, so every
 * rank still gets work). Returns whether it was sent. */
static int start_and_signal_rank(run *r, int recovery, int rank, int sig, const char *timeout)
{
    char b[128];
    snprintf(b, sizeof b, "%s/b", g_dir);
    const char *rec[] = { "mpirun", "--oversubscribe", "--allow-run-as-root", "--mca", "orte_enable_recovery", "1",
                          "-np", "3", tu_recur_exe(), "search", "--out", b, "--budget", "9", "--rank-timeout", timeout,
                          TINY, NULL };
    const char **argv = recovery ? rec : rec + 3;
    if (!recovery) argv[0] = "mpirun", argv[1] = "--oversubscribe", argv[2] = "--allow-run-as-root";
    start(r, argv);
    for (int i = 0; i < 20000; i++) {
        char *s = tu_read_file(path_in("b", "candidates.jsonl"), NULL);
        int n = count_lines(s);
        free(s);
        if (n >= 2) {
            pid_t w = rank_pid(r->pid, rank);
            if (w > 0 && kill(w, sig) == 0) return 1;
        }
        if (waitpid(r->pid, NULL, WNOHANG) == r->pid) return 0;
        tu_sleep_seconds(0.001);
    }
    return 0;
}

/* Under orte_enable_recovery mpirun exits 0 whatever its processes did, so a
 * sanitizer's report in a child (when the suite runs under ASan/UBSan) is looked for in
 * its output instead of its exit status. */
static void no_sanitizer_report(const run *r)
{
    cr_assert_null(strstr(r->err, "Sanitizer"), SHOW(*r));
    cr_assert_null(strstr(r->err, "runtime error:"), SHOW(*r));
}

/* The rows of one uninterrupted process with the same protocol, in g_dir/a. */
static char *one_process_rows(void)
{
    run r;
    char a[128];
    snprintf(a, sizeof a, "%s/a", g_dir);
    const char *one[] = { "recur", "search", "--out", a, "--budget", "9", TINY, NULL };
    run_to_end(&r, one);
    OK(r);
    return rows_key("a");
}

/* g_dir/b's rows are whole and equal to ka (one process's rows, freed here). */
static void expect_rows(char *ka, const char *after)
{
    check_rows("b");
    char *kb = rows_key("b");
    cr_assert_str_eq(kb, ka, "rows after %s differ from one process's", after);
    free(ka);
    free(kb);
}

/* When the launcher lets the job go on (Open MPI: orte_enable_recovery), a worker killed
 * mid-search loses only its candidate: rank 0 notices its silence, hands the candidate to
 * another rank, and the search ends by itself with the rows of one process. */
Test(search, killed_worker_rank_loses_only_its_candidate)
{
    char *ka = one_process_rows();
    run r;
    int sent = start_and_signal_rank(&r, 1, 1, SIGKILL, "4");
    finish(&r);
    cr_assert(sent, "rank 1 was not found or the job ended first: " SHOW(r));
    OK(r);
    cr_assert_not_null(strstr(r.err, "rank 1 silent for"), SHOW(r));
    cr_assert_not_null(strstr(r.out, "search "), SHOW(r));
    cr_assert_not_null(strstr(r.out, ": done ("), "the search did not finish by itself: " SHOW(r));
    no_sanitizer_report(&r);
    expect_rows(ka, "a killed rank");
}

/* A worker that hangs (stopped) is taken as gone after --rank-timeout, its candidate
 * evaluated elsewhere, and the search completes; the ranks then leave without
 * MPI_Finalize, so Open MPI's default ends the job (its exit status is Open MPI's: 1,
 * "a process ended without MPI_Finalize") instead of waiting for the stopped rank. */
Test(search, hung_worker_rank_loses_only_its_candidate)
{
    char *ka = one_process_rows();
    run r;
    int sent = start_and_signal_rank(&r, 0, 2, SIGSTOP, "4");
    finish(&r);
    cr_assert(sent, "rank 2 was not found or the job ended first: " SHOW(r));
    cr_assert_not_null(strstr(r.err, "rank 2 silent for"), SHOW(r));
    cr_assert_not_null(strstr(r.out, ": done ("), "the search did not finish: " SHOW(r));
    cr_assert_not_null(strstr(r.out, "taken as gone, so this job ends without MPI_Finalize"), SHOW(r));
    no_sanitizer_report(&r);
    expect_rows(ka, "a hung rank");
}

/* Rank 0 killed: the workers notice its silence and end the job instead of waiting for
 * ever; the same command resumes to the rows of one process. */
Test(search, killed_rank_0_ends_the_job_and_resume_gives_the_same_rows)
{
    char *ka = one_process_rows();
    run r;
    int sent = start_and_signal_rank(&r, 1, 0, SIGKILL, "4");
    finish(&r);   /* returns: the workers did not wait for ever (the suite's timeout) */
    cr_assert(sent, "rank 0 was not found or the job ended first: " SHOW(r));
    cr_assert_not_null(strstr(r.err, "rank 0 silent for"), "no worker said rank 0 was gone: " SHOW(r));
    no_sanitizer_report(&r);
    char b[128];
    snprintf(b, sizeof b, "%s/b", g_dir);
    const char *again[] = { "mpirun", "--oversubscribe", "--allow-run-as-root", "-np", "2", tu_recur_exe(), "search",
                            "--out", b, "--budget", "9", TINY, NULL };
    run_to_end(&r, again);
    OK(r);
    expect_rows(ka, "a lost rank 0 and a resume");
}
#else
Test(search, killed_worker_rank_loses_only_its_candidate)
{
    cr_skip_test("recur was built without MPI (meson -Dmpi=auto found none)");
}

Test(search, hung_worker_rank_loses_only_its_candidate)
{
    cr_skip_test("recur was built without MPI (meson -Dmpi=auto found none)");
}

Test(search, killed_rank_0_ends_the_job_and_resume_gives_the_same_rows)
{
    cr_skip_test("recur was built without MPI (meson -Dmpi=auto found none)");
}

Test(search, mpirun_np2_gives_the_rows_of_one_process)
{
    cr_skip_test("recur was built without MPI (meson -Dmpi=auto found none)");
}

Test(search, killed_worker_rank_then_resume_gives_the_same_rows)
{
    cr_skip_test("recur was built without MPI (meson -Dmpi=auto found none)");
}
#endif

/* ---- the data tasks -------------------------------------------------------------------- */

/* Writes text to g_dir/name; returns the path (static buffer per call site: copy it). */
static char *write_in(const char *name, const char *text)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
    return path;
}

/* A small corpus of words from a fixed generator: n characters. */
static char *make_corpus(const char *name, int n)
{
    static const char *words[] = { "the ", "cat ", "sat ", "on ", "a ", "mat ", "and ", "dog ", "ran.\n", "far " };
    char *t = malloc((size_t)n + 16);
    cr_assert_not_null(t);
    unsigned s = 7;
    int k = 0;
    while (k < n) {
        s = s * 1103515245u + 12345u;
        const char *w = words[(s >> 16) % 10];
        for (const char *c = w; *c && k < n; c++) t[k++] = *c;
    }
    t[k] = 0;
    char *p = strdup(write_in(name, t));
    free(t);
    return p;
}

/* A small piano-roll JSON (the format of train/data_seq.c): train and valid sequences of
 * rising chords. */
static char *make_music(const char *name)
{
    char buf[16384];
    size_t n = 0;
    n += (size_t)snprintf(buf + n, sizeof buf - n, "{\"train\":[");
    for (int q = 0; q < 6; q++) {
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s[", q ? "," : "");
        for (int f = 0; f < 12; f++)
            n += (size_t)snprintf(buf + n, sizeof buf - n, "%s[%d,%d,%d]", f ? "," : "", 48 + (q + f) % 12,
                                  52 + (q + f) % 12, 55 + (q + f) % 12);
        n += (size_t)snprintf(buf + n, sizeof buf - n, "]");
    }
    n += (size_t)snprintf(buf + n, sizeof buf - n, "],\"valid\":[[");
    for (int f = 0; f < 12; f++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s[%d,%d]", f ? "," : "", 60 + f % 12, 64 + f % 12);
    n += (size_t)snprintf(buf + n, sizeof buf - n, "]]}\n");
    return strdup(write_in(name, buf));
}

/* The number after "key": in a JSON row (NAN for null). */
static double row_num(const char *line, const char *key)
{
    char k[64];
    snprintf(k, sizeof k, "\"%s\":", key);
    const char *p = strstr(line, k);
    cr_assert_not_null(p, "no %s in %s", key, line);
    p += strlen(k);
    return !strncmp(p, "null", 4) ? NAN : strtod(p, NULL);
}

/* The array after "key": (at most cap numbers); returns how many. */
static int row_arr(const char *line, const char *key, double *x, int cap)
{
    char k[64];
    snprintf(k, sizeof k, "\"%s\":[", key);
    const char *p = strstr(line, k);
    cr_assert_not_null(p, "no %s in %s", key, line);
    p += strlen(k);
    int n = 0;
    while (*p && *p != ']') {
        char *e;
        double v = strtod(p, &e);
        if (!strncmp(p, "null", 4)) v = NAN, e = (char *)p + 4;
        cr_assert(e != p, "%s: not a number at %s", key, p);
        if (n < cap) x[n++] = v;
        p = *e == ',' ? e + 1 : e;
    }
    return n;
}

typedef struct { double score, shrt, lng, ts[3], tl[3]; long parent; int promoted, nt; } row;

/* The rows of dir (at most cap). */
static int read_rows(const char *dir, row *r, int cap)
{
    char *s = tu_read_file(path_in(dir, "candidates.jsonl"), NULL);
    cr_assert_not_null(s);
    int n = 0;
    for (char *line = s; *line && n < cap;) {
        char *nl = strchr(line, '\n');
        cr_assert_not_null(nl);
        *nl = 0;
        row *x = &r[n++];
        x->score = row_num(line, "score");
        x->shrt = row_num(line, "short");
        x->lng = row_num(line, "long");
        x->parent = (long)row_num(line, "parent");
        x->promoted = (int)row_num(line, "promoted");
        x->nt = row_arr(line, "task_short", x->ts, 3);
        cr_assert_eq(row_arr(line, "task_long", x->tl, 3), x->nt);
        cr_assert(strstr(line, "\"error\":\"\""), "an evaluation failed: %s", line);
        line = nl + 1;
    }
    free(s);
    return n;
}

Test(search, chars_task_scores_one_over_bpc)
{
    char out[128], td[512];
    snprintf(out, sizeof out, "%s/s", g_dir);
    char *corpus = make_corpus("c.txt", 6000);
    snprintf(td, sizeof td, "chars=%s", corpus);
    run r;
    const char *argv[] = { "recur", "search", "--out", out, "--budget", "3", "--tasks", "chars", "--task-data", td,
                           "--seq", "8", TINY, NULL };
    run_to_end(&r, argv);
    OK(r);
    cr_assert_eq(check_rows("s"), 2 + 3);
    row rows[8];
    int n = read_rows("s", rows, 8);
    for (int i = 0; i < n; i++) {
        cr_assert_eq(rows[i].nt, 1);
        /* 1 / bpc: a model of ~20 characters starts near log2(20) = 4.3 bits */
        cr_assert(rows[i].score > 1.0 / 8 && rows[i].score < 1.0, "row %d: score %g", i, rows[i].score);
        cr_assert_float_eq(rows[i].shrt, rows[i].ts[0], 1e-12);
    }
    char *keys = rows_key("s");
    cr_assert_not_null(strstr(keys, "\"arith\":null"), "a chars search has no arith score");
    cr_assert_not_null(strstr(keys, "\"tasks\":\"chars\""));
    free(keys);
    free(corpus);
}

Test(search, music_task_scores_one_over_nll)
{
    char out[128], td[512];
    snprintf(out, sizeof out, "%s/s", g_dir);
    char *m = make_music("m.json");
    snprintf(td, sizeof td, "music=%s", m);
    run r;
    const char *argv[] = { "recur", "search", "--out", out, "--budget", "2", "--tasks", "music", "--task-data", td,
                           "--seq", "8", TINY, NULL };
    run_to_end(&r, argv);
    OK(r);
    cr_assert_eq(check_rows("s"), 2 + 2);
    row rows[8];
    int n = read_rows("s", rows, 8);
    for (int i = 0; i < n; i++) {
        /* 1 / NLL per frame of 88 sigmoid units: 88 ln 2 = 61 nats untrained */
        cr_assert(rows[i].score > 1.0 / 80 && rows[i].score < 1.0, "row %d: score %g", i, rows[i].score);
        cr_assert_eq(rows[i].nt, 1);
    }
    free(m);
}

Test(search, arith_and_chars_rank_by_the_normalised_mean)
{
    char out[128], td[512];
    snprintf(out, sizeof out, "%s/s", g_dir);
    char *corpus = make_corpus("c.txt", 6000);
    snprintf(td, sizeof td, "chars=%s", corpus);
    run r;
    const char *argv[] = { "recur", "search", "--out", out, "--budget", "3", "--tasks", "arith,chars", "--task-data",
                           td, "--seq", "8", TINY, NULL };
    run_to_end(&r, argv);
    OK(r);
    row rows[8];
    int n = read_rows("s", rows, 8);
    cr_assert_eq(n, 2 + 3);
    double rs[2] = { 0, 0 }, rl[2] = { 0, 0 };   /* the best baseline per task */
    for (int i = 0; i < n; i++) {
        cr_assert_eq(rows[i].nt, 2, "row %d carries %d task scores", i, rows[i].nt);
        if (rows[i].parent >= 0) continue;
        cr_assert(rows[i].promoted);
        for (int t = 0; t < 2; t++) {
            rs[t] = rows[i].ts[t] > rs[t] ? rows[i].ts[t] : rs[t];
            rl[t] = rows[i].tl[t] > rl[t] ? rows[i].tl[t] : rl[t];
        }
    }
    cr_assert(rs[0] > 0 && rs[1] > 0 && rl[0] > 0 && rl[1] > 0);
    for (int i = 0; i < n; i++) {
        const row *x = &rows[i];
        double ns = (x->ts[0] / rs[0] + x->ts[1] / rs[1]) / 2;
        cr_assert_float_eq(x->shrt, ns, 1e-9, "row %d: short %g, the normalised mean %g", i, x->shrt, ns);
        if (x->promoted) {
            double nl = (x->tl[0] / rl[0] + x->tl[1] / rl[1]) / 2;
            cr_assert_float_eq(x->score, nl, 1e-9, "row %d: score %g, the normalised mean %g", i, x->score, nl);
        } else cr_assert_float_eq(x->score, ns, 1e-9);
        cr_assert(x->score <= 1 + 1e-12 || x->parent >= 0, "a baseline cannot beat the best baselines");
    }
    const char *st[] = { "recur", "search", "--status", out, NULL };
    run_to_end(&r, st);
    OK(r);
    cr_assert(strstr(r.out, "per task") && strstr(r.out, "  arith ") && strstr(r.out, "  chars "), "%s", r.out);
    char *csv = tu_read_file(path_in("s", "candidates.csv"), NULL);
    cr_assert(csv && strstr(csv, ",tasks,task_short,task_long,") && strstr(csv, ",arith,chars,"), "%s", csv ? csv : "");
    free(csv);
    free(corpus);
}

Test(search, missing_or_bad_task_data_is_refused_before_training)
{
    char out[128], td[512];
    snprintf(out, sizeof out, "%s/s", g_dir);
    char *bad = strdup(write_in("bad.json", "{\"train\": [[[60]], oops"));
    char *tiny = make_corpus("tiny.txt", 40);
    struct { const char *tasks, *data, *says; } cases[] = {
        { "chars", "chars=/nonexistent/corpus.txt", "/nonexistent/corpus.txt: No such file" },
        { "arith,music", bad, "bad.json" },
        { "chars", tiny, "too few" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        if (cases[i].data == bad) snprintf(td, sizeof td, "music=%s", bad);
        else if (cases[i].data == tiny) snprintf(td, sizeof td, "chars=%s", tiny);
        else snprintf(td, sizeof td, "%s", cases[i].data);
        run r;
        const char *argv[] = { "recur", "search", "--out", out, "--tasks", cases[i].tasks, "--task-data", td, TINY,
                               NULL };
        run_to_end(&r, argv);
        cr_assert_eq(r.code, 2, SHOW_AFTER(cases[i].tasks, r));
        cr_assert_not_null(strstr(r.err, cases[i].says), "%s: %s", td, r.err);
        cr_assert_neq(access(out, F_OK), 0, "%s: the folder was created", td);
    }
    free(bad);
    free(tiny);
}

/* A search of arith,chars continued with a larger --budget gives the rows of one run:
 * the normalised scores and the promotions come from the stored per-task scores. */
Test(search, arith_and_chars_resume_gives_the_same_rows)
{
    char a[128], b[128], td[512];
    snprintf(a, sizeof a, "%s/a", g_dir);
    snprintf(b, sizeof b, "%s/b", g_dir);
    char *corpus = make_corpus("c.txt", 6000);
    snprintf(td, sizeof td, "chars=%s", corpus);
    run r;
    const char *argv_a[] = { "recur", "search", "--out", a, "--budget", "6", "--tasks", "arith,chars", "--task-data",
                             td, "--seq", "8", TINY, NULL };
    run_to_end(&r, argv_a);
    OK(r);
    const char *argv_b1[] = { "recur", "search", "--out", b, "--budget", "3", "--tasks", "arith,chars", "--task-data",
                              td, "--seq", "8", TINY, NULL };
    run_to_end(&r, argv_b1);
    OK(r);
    const char *argv_b2[] = { "recur", "search", "--out", b, "--budget", "6", NULL };
    run_to_end(&r, argv_b2);
    OK(r);
    cr_assert_not_null(strstr(r.out, "resuming after"), "%s", r.out);
    char *ka = rows_key("a"), *kb = rows_key("b");
    cr_assert_str_eq(kb, ka, "resumed rows differ from an uninterrupted run's");
    free(ka);
    free(kb);
    free(corpus);
}

/* ---- a search folder that cannot be trusted -------------------------------------------- */

/* The lines of DIR/candidates.jsonl (without their newlines), *n of them; free lines[0]
 * then lines. */
static char **jsonl_lines(const char *dir, int *n)
{
    char *s = tu_read_file(path_in(dir, "candidates.jsonl"), NULL);
    cr_assert_not_null(s);
    char **lines = calloc((size_t)count_lines(s) + 1, sizeof *lines);
    cr_assert_not_null(lines);
    *n = 0;
    for (char *line = s; *line;) {
        char *nl = strchr(line, '\n');
        cr_assert_not_null(nl);
        *nl = 0;
        lines[(*n)++] = line;
        line = nl + 1;
    }
    if (!*n) lines[0] = s;
    return lines;
}

static void write_lines(const char *dir, char **lines, int n)
{
    FILE *f = fopen(path_in(dir, "candidates.jsonl"), "w");
    cr_assert_not_null(f);
    for (int i = 0; i < n; i++) fprintf(f, "%s\n", lines[i]);
    cr_assert_eq(fclose(f), 0);
}

/* A folder with rows and no search.conf (deleted, or not copied along) is refused: a
 * new search there would mix its protocol with the rows' (before the fix it did). */
Test(search, rows_without_search_conf_are_refused)
{
    run r;
    char out[128];
    snprintf(out, sizeof out, "%s/s", g_dir);
    const char *argv[] = { "recur", "search", "--out", out, "--budget", "3", TINY, NULL };
    run_to_end(&r, argv);
    OK(r);
    char *rows = tu_read_file(path_in("s", "candidates.jsonl"), NULL), *csv = tu_read_file(path_in("s", "candidates.csv"), NULL);
    char *conf = tu_read_file(path_in("s", "search.conf"), NULL);
    cr_assert(rows && csv && conf);
    cr_assert_eq(unlink(path_in("s", "search.conf")), 0);
    const char *more[] = { "recur", "search", "--out", out, "--budget", "6", TINY, "--steps", "7", NULL };
    for (int pass = 0; pass < 2; pass++) {   /* 2: candidates.csv alone holds the rows */
        if (pass == 1) cr_assert_eq(unlink(path_in("s", "candidates.jsonl")), 0);
        run_to_end(&r, more);
        cr_assert_eq(r.code, 1, SHOW(r));
        cr_assert(strstr(r.err, out) && strstr(r.err, "no search.conf") && strstr(r.err, "another --out"), "%s", r.err);
        cr_assert_neq(access(path_in("s", "search.conf"), F_OK), 0, "a search.conf was written");
        char *now = tu_read_file(path_in("s", "candidates.csv"), NULL);
        cr_assert(now && !strcmp(now, csv), "candidates.csv changed");
        free(now);
    }
    write_in("s/candidates.jsonl", rows);   /* put back: the same command resumes */
    write_in("s/search.conf", conf);
    run_to_end(&r, argv);
    OK(r);
    cr_assert_not_null(strstr(r.out, "resuming after 5 finished rows"), "%s", r.out);
    free(rows);
    free(csv);
    free(conf);
}

/* A line that is not one intact row is refused on resume, naming the line, with nothing
 * changed (before the fix a line spliced from two half lines loaded as one row: its id
 * and hash from one candidate, its text from another): the spliced lines (cut before
 * "hidden", and before "hash", where the hash matches the text it came with) and a row
 * whose text is another row's (well-formed, its hash not its text's). --status shows the
 * other rows with a warning. Deleting the line makes the search evaluate that
 * candidate again, to the rows of an uninterrupted search. */
Test(search, a_spliced_or_edited_row_is_refused)
{
    run r;
    char out[128];
    snprintf(out, sizeof out, "%s/s", g_dir);
    const char *argv[] = { "recur", "search", "--out", out, "--budget", "3", TINY, NULL };
    run_to_end(&r, argv);
    OK(r);
    char *good = rows_key("s"), *conf = tu_read_file(path_in("s", "search.conf"), NULL);
    int n;
    char **lines = jsonl_lines("s", &n);
    cr_assert_eq(n, 5);
    char *a = lines[2], *b = lines[3];
    static const char *const cuts[] = { "\"hidden\":", "\"hash\":" };
    for (int k = 0; k < 3; k++) {
        char *edited[5] = { lines[0], lines[1], NULL, lines[3], lines[4] }, *bad;
        int ne = 5;
        const char *says;
        if (k < 2) {   /* a's start cut before cuts[k], then the whole of b: lines 3 and 4 become one */
            size_t at = (size_t)(strstr(a, cuts[k]) - a);
            bad = malloc(at + strlen(b) + 1);
            cr_assert_not_null(bad);
            memcpy(bad, a, at);
            strcpy(bad + at, b);
            edited[3] = lines[4];
            ne = 4;
            says = "a second row starts inside it (two half lines spliced";
        } else {   /* a with b's text */
            size_t at = (size_t)(strstr(a, ",\"text\":") - a);
            const char *bt = strstr(b, ",\"text\":");
            bad = malloc(at + strlen(bt) + 1);
            cr_assert_not_null(bad);
            memcpy(bad, a, at);
            strcpy(bad + at, bt);
            says = "is not the canonical hash of its text";
        }
        edited[2] = bad;
        write_lines("s", edited, ne);
        char *before = tu_read_file(path_in("s", "candidates.jsonl"), NULL);
        run_to_end(&r, argv);
        cr_assert_eq(r.code, 1, SHOW_AFTER(k == 0 ? "spliced before hidden" : k == 1 ? "spliced before hash" : "another's text", r));
        cr_assert(strstr(r.err, "candidates.jsonl:3: ") && strstr(r.err, says) && strstr(r.err, "delete that line"),
                  "case %d: %s", k, r.err);
        char *after = tu_read_file(path_in("s", "candidates.jsonl"), NULL), *conf_after = tu_read_file(path_in("s", "search.conf"), NULL);
        cr_assert(after && !strcmp(after, before), "case %d: candidates.jsonl changed", k);
        cr_assert(conf_after && !strcmp(conf_after, conf), "case %d: search.conf changed", k);
        free(after);
        free(conf_after);
        free(before);
        const char *st[] = { "recur", "search", "--status", out, NULL };
        run_to_end(&r, st);
        OK(r);
        cr_assert(strstr(r.err, "warning") && strstr(r.err, "candidates.jsonl:3: ") && strstr(r.out, "2 baselines"),
                  "case %d: %s\n%s", k, r.err, r.out);
        free(bad);
    }
    char *kept[4] = { lines[0], lines[1], lines[3], lines[4] };   /* the bad line deleted */
    write_lines("s", kept, 4);
    run_to_end(&r, argv);
    OK(r);
    char *now = rows_key("s");
    cr_assert_str_eq(now, good, "the candidate evaluated again differs");
    free(now);
    free(good);
    free(conf);
    free(lines[0]);
    free(lines);
}

/* The floating options refuse nan and inf (before the fix --time-limit nan ran as no
 * limit), --threads and RC_NUM_THREADS above 4 per core online; nothing is created. */
Test(search, non_finite_numbers_and_too_many_threads)
{
    char out[128];
    snprintf(out, sizeof out, "%s/s", g_dir);
    static const struct { const char *opt, *val, *says; } bad[] = {
        { "--time-limit", "nan", "--time-limit 'nan': not a finite number" },
        { "--time-limit", "inf", "--time-limit 'inf': not a finite number" },
        { "--time-limit", "-1", "--time-limit must be >= 0" },
        { "--rank-timeout", "nan", "--rank-timeout 'nan': not a finite number" },
        { "--threads", "5000", "--threads 5000: at most" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        run r;
        const char *argv[] = { "recur", "search", "--out", out, "--budget", "0", TINY, bad[i].opt, bad[i].val, NULL };
        run_to_end(&r, argv);
        cr_assert_eq(r.code, 2, SHOW_AFTER(bad[i].opt, r));
        cr_assert_not_null(strstr(r.err, bad[i].says), "%s %s: %s", bad[i].opt, bad[i].val, r.err);
        cr_assert_neq(access(out, F_OK), 0, "%s %s: the folder was created", bad[i].opt, bad[i].val);
    }
    setenv("RC_NUM_THREADS", "5000", 1);
    run r;
    const char *argv[] = { "recur", "search", "--out", out, "--budget", "0", TINY, NULL };
    run_to_end(&r, argv);
    unsetenv("RC_NUM_THREADS");
    cr_assert_eq(r.code, 2, SHOW(r));
    cr_assert_not_null(strstr(r.err, "RC_NUM_THREADS='5000'"), "%s", r.err);
    cr_assert_neq(access(out, F_OK), 0, "the folder was created");
}
