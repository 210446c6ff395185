/* Several processes (MPI) for the recur command, or single-process stand-ins (dist.h). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dist.h"
#ifdef RC_HAVE_MPI
#include <mpi.h>
#endif

static int g_init, g_rank, g_size = 1, g_local = 1;
#ifdef RC_HAVE_MPI
static int g_mpi;   /* MPI_Init was called */
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
        MPI_Finalize();
        g_mpi = 0;
    }
#endif
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

int dist_send(const void *buf, size_t bytes, int dest, int tag, char *msg, size_t len)
{
#ifdef RC_HAVE_MPI
    if (g_mpi && g_size > 1) {
        if (too_big(bytes, "dist_send", msg, len)) return -1;
        MPI_Send(buf, (int)bytes, MPI_BYTE, dest, tag, MPI_COMM_WORLD);
        return 0;
    }
#endif
    (void)buf;
    (void)bytes;
    snprintf(msg, len, "dist_send to rank %d with tag %d: this process is alone", dest, tag);
    return -1;
}

int dist_iprobe(int *from, int *tag, size_t *bytes)
{
#ifdef RC_HAVE_MPI
    if (g_mpi && g_size > 1) {
        int flag = 0, n = 0;
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st);
        if (!flag) return 0;
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

int dist_recv(void *buf, size_t bytes, int from, int tag, char *msg, size_t len)
{
#ifdef RC_HAVE_MPI
    if (g_mpi && g_size > 1) {
        if (too_big(bytes, "dist_recv", msg, len)) return -1;
        MPI_Recv(buf, (int)bytes, MPI_BYTE, from, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        return 0;
    }
#endif
    (void)buf;
    (void)bytes;
    snprintf(msg, len, "dist_recv from rank %d with tag %d: this process is alone", from, tag);
    return -1;
}
