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
        MPI_Barrier(MPI_COMM_WORLD);
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

#ifdef RC_HAVE_MPI
/* Memory short inside a collective: the other ranks are already waiting in it, so the
 * job ends here with the message. */
static void die_nomem(const char *what, size_t n)
{
    fprintf(stderr, "recur: rank %d of %d: %s: out of memory for %zu values; ending the job\n", g_rank, g_size, what, n);
    dist_abort(1);
}

static int too_big(size_t n, const char *what, char *msg, size_t len)
{
    if (n <= (size_t)INT_MAX) return 0;
    snprintf(msg, len, "%s: %zu elements exceed MPI's int counts (%d)", what, n, INT_MAX);
    return 1;
}
#endif

int dist_sum_floats(float *x, size_t n, char *msg, size_t len)
{
    if (g_size <= 1 || n == 0) return 0;
#ifdef RC_HAVE_MPI
    if (too_big(n, "dist_sum_floats", msg, len) || too_big(n / (size_t)g_size * (size_t)g_size + (size_t)g_size,
                                                             "dist_sum_floats", msg, len))
        return -1;
    /* Reduce-scatter (each rank sums one chunk of every rank's array, in rank order),
     * then all-gather the chunks: O(n) memory and traffic per rank, and a fixed order. */
    int N = g_size, *cnt = malloc(4 * (size_t)N * sizeof *cnt);
    if (!cnt) die_nomem("dist_sum_floats", 4 * (size_t)N);
    int *dsp = cnt + N, *rcnt = cnt + 2 * N, *rdsp = cnt + 3 * N;
    for (int c = 0; c < N; c++) {
        size_t a = n * (size_t)c / (size_t)N, b = n * (size_t)(c + 1) / (size_t)N;
        cnt[c] = (int)(b - a);
        dsp[c] = (int)a;
    }
    int mine = cnt[g_rank];
    for (int r = 0; r < N; r++) {
        rcnt[r] = mine;
        rdsp[r] = r * mine;
    }
    float *part = malloc(((size_t)mine * (size_t)N + 1) * sizeof *part);
    if (!part) die_nomem("dist_sum_floats", (size_t)mine * (size_t)N);
    MPI_Alltoallv(x, cnt, dsp, MPI_FLOAT, part, rcnt, rdsp, MPI_FLOAT, MPI_COMM_WORLD);
    float *out = x + dsp[g_rank];
    for (int j = 0; j < mine; j++) {
        double s = 0;
        for (int r = 0; r < N; r++) s += (double)part[(size_t)r * (size_t)mine + (size_t)j];
        out[j] = (float)s;
    }
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, x, cnt, dsp, MPI_FLOAT, MPI_COMM_WORLD);
    free(part);
    free(cnt);
    return 0;
#else
    (void)x;
    (void)msg;
    (void)len;
    return 0;
#endif
}

int dist_sum_doubles(double *x, size_t n, char *msg, size_t len)
{
    if (g_size <= 1 || n == 0) return 0;
#ifdef RC_HAVE_MPI
    if (too_big(n * (size_t)g_size, "dist_sum_doubles", msg, len)) return -1;
    double *all = malloc(n * (size_t)g_size * sizeof *all);
    if (!all) die_nomem("dist_sum_doubles", n * (size_t)g_size);
    MPI_Allgather(x, (int)n, MPI_DOUBLE, all, (int)n, MPI_DOUBLE, MPI_COMM_WORLD);
    for (size_t j = 0; j < n; j++) {
        double s = 0;
        for (int r = 0; r < g_size; r++) s += all[(size_t)r * n + j];
        x[j] = s;
    }
    free(all);
    return 0;
#else
    (void)x;
    (void)msg;
    (void)len;
    return 0;
#endif
}

int dist_bcast(void *buf, size_t bytes, int root, char *msg, size_t len)
{
    if (g_size <= 1 || bytes == 0) return 0;
#ifdef RC_HAVE_MPI
    if (too_big(bytes, "dist_bcast", msg, len)) return -1;
    MPI_Bcast(buf, (int)bytes, MPI_BYTE, root, MPI_COMM_WORLD);
    return 0;
#else
    (void)buf;
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
    int N = g_size, *c = NULL, *d = NULL, bad = too_big(bytes, "dist_gather", msg, len);
    if (g_rank == root) {
        size_t tot = 0;
        c = malloc(2 * (size_t)N * sizeof *c);
        for (int r = 0; c && r < N; r++) tot += counts[r];
        if (!c) bad = snprintf(msg, len, "dist_gather: out of memory") > 0;
        else if (too_big(tot, "dist_gather", msg, len)) bad = 1;
        else {
            d = c + N;
            for (int r = 0, off = 0; r < N; r++) {
                c[r] = (int)counts[r];
                d[r] = off;
                off += c[r];
            }
        }
    }
    /* every rank learns whether the gather can go ahead, so none waits in it alone */
    int any = 0;
    MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (any) {
        if (!bad) snprintf(msg, len, "dist_gather: another rank could not take part");
        free(c);
        return -1;
    }
    MPI_Gatherv(send, (int)bytes, MPI_BYTE, recv, c, d, MPI_BYTE, root, MPI_COMM_WORLD);
    free(c);
    return 0;
#else
    (void)counts;
    (void)root;
    (void)msg;
    (void)len;
    return 0;
#endif
}

int dist_first_failed(int failed)
{
#ifdef RC_HAVE_MPI
    if (g_mpi && g_size > 1) {
        int mine = failed ? g_rank : g_size, first = g_size;
        MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
        return first < g_size ? first : -1;
    }
#endif
    return failed ? 0 : -1;
}

void dist_barrier(void)
{
#ifdef RC_HAVE_MPI
    if (g_mpi && g_size > 1) MPI_Barrier(MPI_COMM_WORLD);
#endif
}

/* ---- point to point: its own communicator, errors returned, waits bounded ---- */

#ifdef RC_HAVE_MPI
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
