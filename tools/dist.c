/* Several processes (MPI) for the recur command, or single-process stand-ins (dist.h). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "dist.h"
#ifdef RC_HAVE_MPI
#include <mpi.h>
#endif

static int g_init, g_rank, g_size = 1, g_local = 1;
static char *g_forgot;   /* [size] ranks given up on (dist_forget); NULL alone */
#ifdef RC_HAVE_MPI
static int g_mpi;   /* MPI_Init was called */
/* A copy of the world for point-to-point messages, whose errors return (the world's
 * end the job): a peer that died must not take its survivors with it. */
static MPI_Comm g_p2p = MPI_COMM_NULL;
/* Set when a check found the ranks in different collectives or with different sizes:
 * from then on no collective moves data (each returns -1 at once), so every rank
 * reaches its way out without waiting for another. */
static int g_broken;
static int finalize_check(void);
#endif

/* The number of processes an MPI launcher says it started (0: no launcher). */
static long launched_size(void)
{
    static const char *vars[] = { "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS" };
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
        const char *v = getenv(vars[i]);
        if (v && v[0]) return strtol(v, NULL, 10) > 0 ? strtol(v, NULL, 10) : 1;
    }
    return getenv("PMIX_RANK") || getenv("PMI_RANK") ? 1 : 0;
}

int dist_have_mpi(void)
{
#ifdef RC_HAVE_MPI
    return 1;
#else
    return 0;
#endif
}

int dist_init(int *argc, char ***argv, char *msg, size_t len)
{
    if (g_init) return 0;
    long n = launched_size();
#ifdef RC_HAVE_MPI
    if (n > 0) {
        int provided = 0;
        if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
            snprintf(msg, len, "MPI_Init failed");
            return -1;
        }
        g_mpi = 1;
        MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
        MPI_Comm_size(MPI_COMM_WORLD, &g_size);
        MPI_Comm local;
        if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local) == MPI_SUCCESS) {
            MPI_Comm_size(local, &g_local);
            MPI_Comm_free(&local);
        }
        if (MPI_Comm_dup(MPI_COMM_WORLD, &g_p2p) != MPI_SUCCESS ||
            MPI_Comm_set_errhandler(g_p2p, MPI_ERRORS_RETURN) != MPI_SUCCESS) {
            snprintf(msg, len, "MPI: cannot make the point-to-point communicator");
            return -1;
        }
        if (!(g_forgot = calloc((size_t)g_size, 1))) {
            snprintf(msg, len, "out of memory for %d ranks", g_size);
            return -1;
        }
    }
#else
    (void)argc;
    (void)argv;
    if (n > 1) {
        snprintf(msg, len, "an MPI launcher started %ld processes, but this recur was built without MPI (each would "
                 "train alone and write the same files): install MPI (Debian: libopenmpi-dev openmpi-bin) and "
                 "reconfigure with meson -Dmpi=enabled, or run one process", n);
        return -1;
    }
#endif
    g_init = 1;
    return 0;
}

void dist_finalize(void)
{
#ifdef RC_HAVE_MPI
    if (g_mpi) {
        finalize_check();   /* the last barrier, unless the ranks are out of step */
        g_broken = 0;
        if (g_p2p != MPI_COMM_NULL) MPI_Comm_free(&g_p2p);
        g_p2p = MPI_COMM_NULL;
        MPI_Finalize();
        g_mpi = 0;
    }
#endif
    free(g_forgot);
    g_forgot = NULL;
    g_rank = 0;
    g_size = g_local = 1;
    g_init = 0;
}

_Noreturn void dist_abort(int code)
{
    fflush(stdout);
    fflush(stderr);
#ifdef RC_HAVE_MPI
    if (g_mpi) MPI_Abort(MPI_COMM_WORLD, code);
#endif
    exit(code);
}

int dist_rank(void) { return g_rank; }
int dist_size(void) { return g_size; }
int dist_local_size(void) { return g_local; }

/* ---- the collectives: each first checks that every rank is in the same one ----------- */

#ifdef RC_HAVE_MPI
/* Which collective a rank is in, for the check and its messages. */
enum { C_SUM_FLOATS = 1, C_SUM_DOUBLES, C_BCAST, C_GATHER, C_FIRST_FAILED, C_BARRIER, C_FINALIZE };
static const char *const c_name[] = { "", "dist_sum_floats", "dist_sum_doubles", "dist_bcast", "dist_gather",
                                      "dist_first_failed", "dist_barrier", "dist_finalize" };
static const char *const c_unit[] = { "", "values", "values", "bytes", "bytes", "", "", "" };
/* Why a rank cannot take part in a collective it is in step with (found before any data
 * moves, so the others are told instead of left waiting). */
enum { BAD_NONE, BAD_TOO_BIG, BAD_NOMEM, BAD_ROOT, BAD_COUNT };

/* A collective as one rank calls it: what must be the same on every rank (kind, size,
 * aux: the root, or a digest of root and counts), and its own trouble (bad[0] a BAD_*,
 * bad[1..2] numbers for the message). */
typedef struct call {
    int kind;
    long long n, aux;
    long long bad[3];
} call;

static long long ll_of(size_t n) { return n > (size_t)LLONG_MAX ? LLONG_MAX : (long long)n; }

/* "dist_sum_floats of 2376 values" */
static void call_text(const long long *k, char *buf, size_t len)
{
    int kind = k[0] >= C_SUM_FLOATS && k[0] <= C_FINALIZE ? (int)k[0] : 0;
    if (c_unit[kind][0]) snprintf(buf, len, "%s of %lld %s", c_name[kind], k[1], c_unit[kind]);
    else snprintf(buf, len, "%s", kind ? c_name[kind] : "an unknown collective");
}

/* One small sum over the ranks: 0 when every rank is in c's collective with c's size and
 * aux (*first_mark: the lowest rank that passed mark, or -1). Otherwise -1 with msg on
 * every rank naming the first rank unlike rank 0 and both calls, and the job's
 * collectives are broken (g_broken). Every rank takes the same way out of here. */
static int check(const call *c, int mark, int *first_mark, char *msg, size_t len)
{
    long long v[7] = { c->kind, -c->kind, c->n, -c->n, c->aux, -c->aux, -(long long)(mark ? g_rank : g_size) }, r[7];
    MPI_Allreduce(v, r, 7, MPI_LONG_LONG, MPI_MAX, MPI_COMM_WORLD);
    *first_mark = -r[6] < g_size ? (int)-r[6] : -1;
    if (r[0] == -r[1] && r[2] == -r[3] && r[4] == -r[5]) return 0;
    /* out of step: rank 0's call, the first rank whose call is another, and that call */
    long long c0[3] = { c->kind, c->n, c->aux }, cd[3] = { c->kind, c->n, c->aux };
    MPI_Bcast(c0, 3, MPI_LONG_LONG, 0, MPI_COMM_WORLD);
    int unlike = c0[0] != c->kind || c0[1] != c->n || c0[2] != c->aux ? g_rank : g_size, d = g_size;
    MPI_Allreduce(&unlike, &d, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (d < g_size) MPI_Bcast(cd, 3, MPI_LONG_LONG, d, MPI_COMM_WORLD);
    g_broken = 1;
    char a[96], b[96];
    call_text(c0, a, sizeof a);
    call_text(cd, b, sizeof b);
    if (c0[0] == cd[0] && c0[1] != cd[1])
        snprintf(msg, len, "%s: process 0 passes %lld %s, process %d passes %lld: the processes do not hold the same "
                 "model or batches (were they given different settings?); nothing was moved", c_name[c0[0]], c0[1],
                 c_unit[c0[0]], d, cd[1]);
    else if (c0[0] == cd[0])
        snprintf(msg, len, "%s: process 0 and process %d name another root or other counts; nothing was moved",
                 c_name[c0[0]], d);
    else
        snprintf(msg, len, "the processes are out of step: process 0 is in %s, process %d in %s (were they given "
                 "different settings?); nothing was moved", a, d, b);
    return -1;
}

/* The start of every collective: 0 when every rank is in step and able to take part;
 * else -1 with the same msg on every rank (a rank's trouble, or check's message). */
static int begin(const call *c, char *msg, size_t len)
{
    if (g_broken) {
        snprintf(msg, len, "%s: not run: the processes were found out of step before", c_name[c->kind]);
        return -1;
    }
    int first;
    if (check(c, c->bad[0] != BAD_NONE, &first, msg, len) != 0) return -1;
    if (first < 0) return 0;
    long long why[3] = { c->bad[0], c->bad[1], c->bad[2] };
    MPI_Bcast(why, 3, MPI_LONG_LONG, first, MPI_COMM_WORLD);
    int k = snprintf(msg, len, "%s: process %d of %d cannot take part: ", c_name[c->kind], first, g_size);
    if (k < 0 || (size_t)k >= len) return -1;
    char *m = msg + k;
    size_t ml = len - (size_t)k;
    const char *u = c_unit[c->kind];
    if (why[0] == BAD_TOO_BIG) snprintf(m, ml, "%lld %s exceed MPI's int counts (%d)", why[1], u, INT_MAX);
    else if (why[0] == BAD_NOMEM) snprintf(m, ml, "out of memory for %lld %s of scratch", why[1], u);
    else if (why[0] == BAD_ROOT) snprintf(m, ml, "root %lld is not a rank of %d", why[1], g_size);
    else snprintf(m, ml, "it passes %lld bytes where the counts say %lld", why[1], why[2]);
    return -1;
}

static void set_bad(call *c, int why, long long a, long long b)
{
    if (c->bad[0] != BAD_NONE) return;   /* the first reason found */
    c->bad[0] = why;
    c->bad[1] = a;
    c->bad[2] = b;
}
#endif

int dist_sum_floats(float *x, size_t n, char *msg, size_t len)
{
    if (g_size <= 1) return 0;
#ifdef RC_HAVE_MPI
    /* Reduce-scatter (each rank sums one chunk of every rank's array, in rank order),
     * then all-gather the chunks: O(n) memory and traffic per rank, and a fixed order. */
    call c = { .kind = C_SUM_FLOATS, .n = ll_of(n) };
    int N = g_size, *cnt = NULL, mine = 0;
    float *part = NULL;
    if (n > (size_t)INT_MAX - (size_t)N) set_bad(&c, BAD_TOO_BIG, ll_of(n), 0);
    else if ((cnt = malloc(4 * (size_t)N * sizeof *cnt))) {
        for (int k = 0; k < N; k++) {
            size_t a = n * (size_t)k / (size_t)N, b = n * (size_t)(k + 1) / (size_t)N;
            cnt[k] = (int)(b - a);
            cnt[N + k] = (int)a;
        }
        mine = cnt[g_rank];
        part = malloc(((size_t)mine * (size_t)N + 1) * sizeof *part);
    }
    if (c.bad[0] == BAD_NONE && (!cnt || !part)) set_bad(&c, BAD_NOMEM, ll_of(n + 4 * (size_t)N), 0);
    int rc = begin(&c, msg, len);
    if (rc == 0 && n > 0) {
        int *dsp = cnt + N, *rcnt = cnt + 2 * N, *rdsp = cnt + 3 * N;
        for (int r = 0; r < N; r++) {
            rcnt[r] = mine;
            rdsp[r] = r * mine;
        }
        MPI_Alltoallv(x, cnt, dsp, MPI_FLOAT, part, rcnt, rdsp, MPI_FLOAT, MPI_COMM_WORLD);
        float *out = x + dsp[g_rank];
        for (int j = 0; j < mine; j++) {
            double s = 0;
            for (int r = 0; r < N; r++) s += (double)part[(size_t)r * (size_t)mine + (size_t)j];
            out[j] = (float)s;
        }
        MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, x, cnt, dsp, MPI_FLOAT, MPI_COMM_WORLD);
    }
    free(part);
    free(cnt);
    return rc;
#else
    (void)x;
    (void)n;
    (void)msg;
    (void)len;
    return 0;
#endif
}

int dist_sum_doubles(double *x, size_t n, char *msg, size_t len)
{
    if (g_size <= 1) return 0;
#ifdef RC_HAVE_MPI
    call c = { .kind = C_SUM_DOUBLES, .n = ll_of(n) };
    double *all = NULL;
    if (n > (size_t)INT_MAX / (size_t)g_size) set_bad(&c, BAD_TOO_BIG, ll_of(n), 0);
    else if (!(all = malloc((n * (size_t)g_size + 1) * sizeof *all))) set_bad(&c, BAD_NOMEM, ll_of(n * (size_t)g_size), 0);
    int rc = begin(&c, msg, len);
    if (rc == 0 && n > 0) {
        MPI_Allgather(x, (int)n, MPI_DOUBLE, all, (int)n, MPI_DOUBLE, MPI_COMM_WORLD);
        for (size_t j = 0; j < n; j++) {
            double s = 0;
            for (int r = 0; r < g_size; r++) s += all[(size_t)r * n + j];
            x[j] = s;
        }
    }
    free(all);
    return rc;
#else
    (void)x;
    (void)n;
    (void)msg;
    (void)len;
    return 0;
#endif
}

int dist_bcast(void *buf, size_t bytes, int root, char *msg, size_t len)
{
    if (g_size <= 1) return 0;
#ifdef RC_HAVE_MPI
    call c = { .kind = C_BCAST, .n = ll_of(bytes), .aux = root };
    if (root < 0 || root >= g_size) set_bad(&c, BAD_ROOT, root, 0);
    else if (bytes > (size_t)INT_MAX) set_bad(&c, BAD_TOO_BIG, ll_of(bytes), 0);
    if (begin(&c, msg, len) != 0) return -1;
    if (bytes) MPI_Bcast(buf, (int)bytes, MPI_BYTE, root, MPI_COMM_WORLD);
    return 0;
#else
    (void)buf;
    (void)bytes;
    (void)root;
    (void)msg;
    (void)len;
    return 0;
#endif
}

int dist_gather(const void *send, size_t bytes, void *recv, const size_t *counts, int root, char *msg, size_t len)
{
    if (g_size <= 1) {
        if (bytes && recv != send) memmove(recv, send, bytes);
        return 0;
    }
#ifdef RC_HAVE_MPI
    /* every rank's counts: their total is the size checked, their digest (with the root)
     * must agree too, and this rank's bytes must be its count */
    int N = g_size, *c = NULL;
    size_t tot = 0;
    unsigned long long h = 1469598103934665603ull ^ (unsigned long long)(unsigned)root;
    for (int r = 0; r < N; r++) {
        tot += counts[r];
        h = (h ^ (unsigned long long)counts[r]) * 1099511628211ull;
    }
    call k = { .kind = C_GATHER, .n = ll_of(tot), .aux = (long long)(h >> 1) };
    if (root < 0 || root >= N) set_bad(&k, BAD_ROOT, root, 0);
    else if (bytes != counts[g_rank]) set_bad(&k, BAD_COUNT, ll_of(bytes), ll_of(counts[g_rank]));
    else if (tot > (size_t)INT_MAX) set_bad(&k, BAD_TOO_BIG, ll_of(tot), 0);
    else if (g_rank == root && !(c = malloc(2 * (size_t)N * sizeof *c))) set_bad(&k, BAD_NOMEM, 2 * (long long)N, 0);
    int *d = c ? c + N : NULL;
    for (int r = 0, off = 0; c && r < N; r++) {
        c[r] = (int)counts[r];
        d[r] = off;
        off += c[r];
    }
    int rc = begin(&k, msg, len);
    if (rc == 0) MPI_Gatherv(send, (int)bytes, MPI_BYTE, recv, c, d, MPI_BYTE, root, MPI_COMM_WORLD);
    free(c);
    return rc;
#else
    (void)counts;
    (void)root;
    (void)msg;
    (void)len;
    return 0;
#endif
}

#ifdef RC_HAVE_MPI
/* dist_finalize's barrier, checked like every collective; nothing when the collectives
 * are broken (the ranks then leave without waiting for each other). */
static int finalize_check(void)
{
    char msg[256];
    call c = { .kind = C_FINALIZE };
    return g_size > 1 && !g_broken ? begin(&c, msg, sizeof msg) : 0;
}
#endif

int dist_first_failed(int failed, char *msg, size_t len)
{
#ifdef RC_HAVE_MPI
    if (g_mpi && g_size > 1) {
        call c = { .kind = C_FIRST_FAILED };
        int first;
        if (g_broken) {
            snprintf(msg, len, "%s: not run: the processes were found out of step before", c_name[c.kind]);
            return -2;
        }
        return check(&c, failed, &first, msg, len) != 0 ? -2 : first;
    }
#endif
    (void)msg;
    (void)len;
    return failed ? 0 : -1;
}

int dist_barrier(char *msg, size_t len)
{
#ifdef RC_HAVE_MPI
    if (g_mpi && g_size > 1) {   /* no rank leaves the check's sum before every rank is in it */
        call c = { .kind = C_BARRIER };
        return begin(&c, msg, len);
    }
#endif
    (void)msg;
    (void)len;
    return 0;
}

/* The first line of `a` and `b` ("name\tvalue" lines) that differs, as a message naming
 * process r's value against process 0's; 0 when they are the same. */
static int first_difference(const char *a, const char *b, int r, char *msg, size_t len)
{
    while (*a || *b) {
        size_t la = strcspn(a, "\n"), lb = strcspn(b, "\n");
        if (la != lb || memcmp(a, b, la) != 0) {
            size_t ka = strcspn(a, "\t\n"), kb = strcspn(b, "\t\n");
            const char *va = a + ka + (a[ka] == '\t'), *vb = b + kb + (b[kb] == '\t');
            int wa = (int)(la - (size_t)(va - a)), wb = (int)(lb - (size_t)(vb - b));
            if (!la) snprintf(msg, len, "process 0 has nothing where process %d has %.*s %.*s", r, (int)kb, b, wb, vb);
            else if (!lb) snprintf(msg, len, "process 0 has %.*s %.*s where process %d has nothing", (int)ka, a, wa, va, r);
            else if (ka == kb && !memcmp(a, b, ka))
                snprintf(msg, len, "%.*s differs: process 0 has %.*s, process %d has %.*s", (int)ka, a, wa, va, r, wb, vb);
            else
                snprintf(msg, len, "process 0 has %.*s %.*s where process %d has %.*s %.*s", (int)ka, a, wa, va, r,
                         (int)kb, b, wb, vb);
            return 1;
        }
        a += la + (a[la] == '\n');
        b += lb + (b[lb] == '\n');
    }
    return 0;
}

int dist_agree(const char *desc, int *first, char *msg, size_t len)
{
    *first = -1;
    if (g_size <= 1) return 0;
    unsigned long long n0 = strlen(desc) + 1;
    if (dist_bcast(&n0, sizeof n0, 0, msg, len) != 0) return -1;
    char *theirs = g_rank == 0 ? (char *)desc : malloc(n0 ? n0 : 1);
    int f = dist_first_failed(theirs == NULL, msg, len), rc = -1;
    if (f >= 0) snprintf(msg, len, "process %d: out of memory for process 0's description of the run (%llu bytes)", f, n0);
    if (f == -1 && dist_bcast(theirs, n0, 0, msg, len) == 0) {
        theirs[n0 - 1] = 0;
        char why[1024] = "";
        int differs = g_rank != 0 && first_difference(theirs, desc, g_rank, why, sizeof why);
        f = dist_first_failed(differs, msg, len);
        rc = f == -1 ? 0 : f >= 0 ? 1 : -1;
        if (f == g_rank) snprintf(msg, len, "%s", why);
        else if (f >= 0) snprintf(msg, len, "process %d's run differs from process 0's (its message says how)", f);
    }
    if (rc != 0 && f >= 0) *first = f;
    if (theirs != desc) free(theirs);
    return rc;
}

/* ---- point to point: its own communicator, errors returned, waits bounded ---- */

#ifdef RC_HAVE_MPI
static int too_big(size_t n, const char *what, char *msg, size_t len)
{
    if (n <= (size_t)INT_MAX) return 0;
    snprintf(msg, len, "%s: %zu elements exceed MPI's int counts (%d)", what, n, INT_MAX);
    return 1;
}

static int p2p_open(char *msg, size_t len)
{
    if (g_p2p != MPI_COMM_NULL) return 0;
    snprintf(msg, len, "MPI: no point-to-point communicator");
    return -1;
}

static void mpi_why(int code, char *msg, size_t len, const char *what, int peer)
{
    char s[MPI_MAX_ERROR_STRING];
    int n = 0;
    if (MPI_Error_string(code, s, &n) != MPI_SUCCESS) snprintf(s, sizeof s, "MPI error %d", code);
    snprintf(msg, len, "%s rank %d: %s", what, peer, s);
}

/* Waits for req up to timeout seconds (polling: MPI makes progress in MPI_Test).
 * 0 done; -1 MPI error; -2 timed out (req cancelled and left behind). */
static int wait_bounded(MPI_Request *req, double timeout, int *code)
{
    double t0 = MPI_Wtime();
    struct timespec nap = { 0, 200000 };
    for (;;) {
        int done = 0, e = MPI_Test(req, &done, MPI_STATUS_IGNORE);
        if (e != MPI_SUCCESS) {
            *code = e;
            return -1;
        }
        if (done) return 0;
        if (MPI_Wtime() - t0 > timeout) {
            MPI_Cancel(req);
            return -2;
        }
        nanosleep(&nap, NULL);
    }
}
#endif

/* Messages posted and not yet taken: their buffers live until MPI is done with them. */
typedef struct posted {
#ifdef RC_HAVE_MPI
    MPI_Request req;
#endif
    void *buf;
    int dest;
} posted;
static posted *g_posts;
static size_t g_nposts, g_capposts;
int dist_forgotten(int rank)
{
    return g_forgot && rank >= 0 && rank < g_size && g_forgot[rank];
}

#ifdef RC_HAVE_MPI
/* Posts still to wait for: not to a forgotten rank (only MPI posts). */
static size_t posts_pending(void)
{
    size_t n = 0;
    for (size_t i = 0; i < g_nposts; i++) n += !dist_forgotten(g_posts[i].dest);
    return n;
}

/* Frees the posts MPI is done with. */
static void posts_reap(void)
{
    size_t k = 0;
    for (size_t i = 0; i < g_nposts; i++) {
        int done = 0;
        if (MPI_Test(&g_posts[i].req, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS) done = 1;   /* failed: nothing to keep */
        if (done) free(g_posts[i].buf);
        else g_posts[k++] = g_posts[i];
    }
    g_nposts = k;
}
#endif

int dist_post(const void *buf, size_t bytes, int dest, int tag, char *msg, size_t len)
{
#ifdef RC_HAVE_MPI
    if (g_mpi && g_size > 1) {
        if (too_big(bytes, "dist_post", msg, len) || p2p_open(msg, len) != 0) return -1;
        posts_reap();
        if (g_nposts == g_capposts) {
            size_t cap = g_capposts ? 2 * g_capposts : 16;
            posted *p = realloc(g_posts, cap * sizeof *p);
            if (!p) {
                snprintf(msg, len, "out of memory");
                return -1;
            }
            g_posts = p;
            g_capposts = cap;
        }
        void *copy = malloc(bytes ? bytes : 1);
        if (!copy) {
            snprintf(msg, len, "out of memory for a message of %zu bytes", bytes);
            return -1;
        }
        if (bytes) memcpy(copy, buf, bytes);
        posted *p = &g_posts[g_nposts];
        int code = MPI_Isend(copy, (int)bytes, MPI_BYTE, dest, tag, g_p2p, &p->req);
        if (code != MPI_SUCCESS) {
            free(copy);
            mpi_why(code, msg, len, "sending to", dest);
            return -1;
        }
        p->buf = copy;
        p->dest = dest;
        g_nposts++;
        return 0;
    }
#endif
    (void)buf;
    (void)bytes;
    snprintf(msg, len, "dist_post to rank %d with tag %d: this process is alone", dest, tag);
    return -1;
}

void dist_forget(int rank)
{
    if (g_forgot && rank >= 0 && rank < g_size) g_forgot[rank] = 1;
}

int dist_iprobe(int *from, int *tag, size_t *bytes)
{
#ifdef RC_HAVE_MPI
    if (g_mpi && g_size > 1) {
        char msg[64];
        int flag = 0, n = 0;
        MPI_Status st;
        posts_reap();
        if (p2p_open(msg, sizeof msg) != 0 || MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, g_p2p, &flag, &st) != MPI_SUCCESS ||
            !flag)
            return 0;
        MPI_Get_count(&st, MPI_BYTE, &n);
        *from = st.MPI_SOURCE;
        *tag = st.MPI_TAG;
        *bytes = (size_t)n;
        return 1;
    }
#endif
    (void)from;
    (void)tag;
    (void)bytes;
    return 0;
}

int dist_recv(void *buf, size_t bytes, int from, int tag, double timeout, char *msg, size_t len)
{
#ifdef RC_HAVE_MPI
    if (g_mpi && g_size > 1) {
        if (too_big(bytes, "dist_recv", msg, len) || p2p_open(msg, len) != 0) return -1;
        void *into = malloc(bytes ? bytes : 1);   /* a receive abandoned may still be written later */
        if (!into) {
            snprintf(msg, len, "out of memory for a message of %zu bytes", bytes);
            return -1;
        }
        MPI_Request req;
        int code = MPI_Irecv(into, (int)bytes, MPI_BYTE, from, tag, g_p2p, &req), rc = -1;
        if (code == MPI_SUCCESS) rc = wait_bounded(&req, timeout, &code);
        if (rc == -1) mpi_why(code, msg, len, "receiving from", from);
        if (rc == -2) snprintf(msg, len, "rank %d's message did not arrive within %.3g s", from, timeout);
        if (rc == 0 && bytes) memcpy(buf, into, bytes);
        if (rc != -2) free(into);
        return rc;
    }
#endif
    (void)buf;
    (void)bytes;
    (void)timeout;
    snprintf(msg, len, "dist_recv from rank %d with tag %d: this process is alone", from, tag);
    return -1;
}

int dist_survives_death(void)
{
    /* Open MPI 4 (Debian 12): mpirun --mca orte_enable_recovery 1 (or the environment's
     * OMPI_MCA_orte_enable_recovery) reaches every process as this variable. */
    const char *v = getenv("OMPI_MCA_orte_enable_recovery");
    return v && (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes"));
}

void dist_leave(double timeout, int finalize)
{
#ifdef RC_HAVE_MPI
    if (g_mpi) {
        struct timespec nap = { 0, 200000 };
        double t0 = MPI_Wtime();
        for (posts_reap(); posts_pending() && MPI_Wtime() - t0 < timeout; posts_reap()) nanosleep(&nap, NULL);
        if (finalize) {
            for (size_t i = 0; i < g_nposts; i++) MPI_Cancel(&g_posts[i].req);   /* to ranks that are gone */
            MPI_Finalize();   /* no barrier, no collective free */
            for (size_t i = 0; i < g_nposts; i++) free(g_posts[i].buf);   /* MPI no longer reads them */
        }   /* else the process ends with MPI as it is; the posts' buffers stay with it */
        g_p2p = MPI_COMM_NULL;
        g_mpi = 0;
        g_broken = 0;
    } else
        for (size_t i = 0; i < g_nposts; i++) free(g_posts[i].buf);
#else
    (void)timeout;
    (void)finalize;
#endif
    free(g_posts);
    free(g_forgot);
    g_posts = NULL;
    g_forgot = NULL;
    g_nposts = g_capposts = 0;
    g_rank = 0;
    g_size = g_local = 1;
    g_init = 0;
}
