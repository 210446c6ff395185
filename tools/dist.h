/* Several processes (MPI) for the recur command: a small wrapper that the commands use
 * instead of MPI itself. Built with MPI (meson -Dmpi=auto|enabled finds it: RC_HAVE_MPI),
 * dist_init joins the job when a launcher (mpirun, mpiexec, srun) started the process;
 * otherwise, and always when built without MPI, every function is a single-process
 * stand-in (rank 0 of 1: sums and broadcasts leave the data as it is).
 *
 * Every function that communicates is collective: all ranks call it, in the same order.
 * MPI's default error handler is kept, so a failed communication ends the whole job
 * (no rank hangs). Sums are in a fixed order (rank 0, 1, ... N-1, accumulated in
 * double), so the same inputs give bitwise the same result on every rank and run. */
#ifndef RC_TOOLS_DIST_H
#define RC_TOOLS_DIST_H

#include <stddef.h>

/* Joins the MPI job when the process was started by an MPI launcher (its environment
 * says so), else stays a single process. 0, or -1 with msg: MPI failed to start, or the
 * launcher started several processes of a recur built without MPI (they would each
 * train alone and write the same files). Calling it again does nothing. */
int dist_init(int *argc, char ***argv, char *msg, size_t len);
/* Leaves the job (MPI_Finalize after a last barrier); nothing for a single process. */
void dist_finalize(void);
/* Ends every process of the job with `code` (MPI_Abort); exit(code) for a single one.
 * For an error that other ranks cannot learn of any other way. */
_Noreturn void dist_abort(int code);
/* 1 when this recur was built with MPI. */
int dist_have_mpi(void);
/* This process's rank (0..size-1) and the number of processes; 0 and 1 alone. */
int dist_rank(void);
int dist_size(void);
/* Processes of the job on this machine (1 alone). */
int dist_local_size(void);
/* x[0..n) = the sum over ranks of every rank's x[0..n), element by element, added in
 * rank order in double and rounded once to float. 0, or -1 with msg on every rank (n too
 * large for MPI's int counts). Memory short on one rank ends the job with a message:
 * the other ranks already wait in the sum. */
int dist_sum_floats(float *x, size_t n, char *msg, size_t len);
/* The same for a (small) double array: x = sum over ranks in rank order (n * size
 * doubles of scratch). */
int dist_sum_doubles(double *x, size_t n, char *msg, size_t len);
/* Copies root's buf[0..bytes) to every rank. 0, or -1 with msg (bytes over INT_MAX). */
int dist_bcast(void *buf, size_t bytes, int root, char *msg, size_t len);
/* Gathers each rank's send[0..bytes) to root's recv, rank after rank (root passes
 * counts[size] with every rank's byte count and recv of their sum; other ranks may pass
 * NULL for both). 0, or -1 with msg. */
int dist_gather(const void *send, size_t bytes, void *recv, const size_t *counts, int root, char *msg, size_t len);
/* Each rank says whether it failed: the lowest rank that did, or -1 when none (alone:
 * 0 or -1). So every rank takes the same way out after a step only some may fail. */
int dist_first_failed(int failed);
/* Waits until every rank has called it. */
void dist_barrier(void);

/* Point-to-point messages (recur search farms candidates with them; not collective).
 * dist_send: buf[0..bytes) to rank `dest` with a tag >= 0 (blocking). 0, or -1 with msg
 * (bytes over INT_MAX; alone: there is no other rank). */
int dist_send(const void *buf, size_t bytes, int dest, int tag, char *msg, size_t len);
/* Whether a message from any rank is waiting (without blocking): 1 and its source,
 * tag and size, or 0 (always 0 alone). */
int dist_iprobe(int *from, int *tag, size_t *bytes);
/* Receives the message dist_iprobe reported from `from` with `tag` into buf (bytes
 * long). 0, or -1 with msg. */
int dist_recv(void *buf, size_t bytes, int from, int tag, char *msg, size_t len);

#endif
