/* dist-probe: tools/dist.c's collectives called as the command line says, for
 * tests/test_dist.c to start under mpirun with other calls or sizes per rank (the
 * defences of dist.c against ranks out of step, which recur's own start-up agreement
 * otherwise keeps from being reached). Each argument is one call, KIND:N:
 *   floats:N   dist_sum_floats of N values (rank r gives r + 1 + i/1000 at i)
 *   doubles:N  dist_sum_doubles of N values
 *   bcast:N    dist_bcast of N bytes from rank 0
 *   gather:N   dist_gather to rank 0 of counts r + 1 bytes for rank r; this rank sends N
 *   failed:F   dist_first_failed(F)
 *   barrier:0  dist_barrier
 * and prints one line per call: "ok" (with the sum's check for floats and doubles:
 * "ok sum" when every value is the sum over ranks) or "error: <message>". Then
 * dist_finalize, exit 0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dist.h"

static void report(int rc, const char *msg, const char *extra)
{
    if (rc == 0) printf("ok%s\n", extra);
    else printf("error: %s\n", msg);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    char msg[1024] = "";
    if (dist_init(&argc, &argv, msg, sizeof msg) != 0) {
        fprintf(stderr, "dist-probe: %s\n", msg);
        return 1;
    }
    int R = dist_rank(), N = dist_size();
    for (int i = 1; i < argc; i++) {
        const char *colon = strchr(argv[i], ':');
        size_t n = colon ? strtoul(colon + 1, NULL, 10) : 0, k = colon ? (size_t)(colon - argv[i]) : strlen(argv[i]);
        msg[0] = 0;
        if (!strncmp(argv[i], "floats", k) || !strncmp(argv[i], "doubles", k)) {
            int fl = argv[i][0] == 'f';
            float *x = malloc((n + 1) * sizeof *x);
            double *y = malloc((n + 1) * sizeof *y);
            if (!x || !y) return 1;
            for (size_t j = 0; j < n; j++) y[j] = x[j] = (float)(R + 1) + (float)(j % 1000) / 1000.0f;
            int rc = fl ? dist_sum_floats(x, n, msg, sizeof msg) : dist_sum_doubles(y, n, msg, sizeof msg), good = 1;
            for (size_t j = 0; rc == 0 && j < n; j++) {
                double want = (double)N * (N + 1) / 2 + N * (double)((float)(j % 1000) / 1000.0f);
                double got = fl ? (double)x[j] : y[j];
                good &= got > want - 1e-3 * want && got < want + 1e-3 * want;
            }
            report(rc, msg, good ? " sum" : " wrong sum");
            free(x);
            free(y);
        } else if (!strncmp(argv[i], "bcast", k)) {
            unsigned char *b = malloc(n + 1);
            if (!b) return 1;
            memset(b, R == 0 ? 7 : 0, n + 1);
            int rc = dist_bcast(b, n, 0, msg, sizeof msg), good = 1;
            for (size_t j = 0; rc == 0 && j < n; j++) good &= b[j] == 7;
            report(rc, msg, good ? "" : " wrong bytes");
            free(b);
        } else if (!strncmp(argv[i], "gather", k)) {
            size_t *counts = malloc((size_t)N * sizeof *counts), tot = 0;
            if (!counts) return 1;
            for (int r = 0; r < N; r++) tot += counts[r] = (size_t)r + 1;
            unsigned char *send = calloc(n + 1, 1), *recv = calloc(tot + 1, 1);
            if (!send || !recv) return 1;
            report(dist_gather(send, n, recv, counts, 0, msg, sizeof msg), msg, "");
            free(counts);
            free(send);
            free(recv);
        } else if (!strncmp(argv[i], "failed", k)) {
            int f = dist_first_failed((int)n, msg, sizeof msg);
            char extra[32];
            snprintf(extra, sizeof extra, " first %d", f);
            report(f == -2 ? -1 : 0, msg, extra);
        } else if (!strncmp(argv[i], "barrier", k)) {
            report(dist_barrier(msg, sizeof msg), msg, "");
        } else {
            fprintf(stderr, "dist-probe: unknown call %s\n", argv[i]);
            return 2;
        }
    }
    dist_finalize();
    return 0;
}
