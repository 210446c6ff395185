/* Several processes (MPI) for the recur command: a small wrapper that the commands use
 * instead of MPI itself. Built with MPI (meson -Dmpi=auto|enabled finds it: RC_HAVE_MPI),
 * dist_init joins the job when a launcher (mpirun, mpiexec, srun) started the process;
 * otherwise, and always when built without MPI, every function is a single-process
 * stand-in (rank 0 of 1: sums and broadcasts leave the data as it is).
 *
 * The collectives (sums, broadcast, gather, barrier, agreements) are called by all ranks in
 * the same order. Each first checks, in one small sum over the ranks, that every rank is
 * in the same collective with the same size (and root, counts) and can take part; when
 * one is not, no data moves and every rank returns -1 with the same message naming both
 * calls and the rank (processes given different settings would otherwise write past a
 * buffer or mix up messages). After such a mismatch no collective communicates again
 * (each returns -1 at once), so every rank finds its way out and none waits for
 * another. So a collective returns 0 on every rank or -1 on every rank; once the check
 * passed, MPI's own failure ends the whole job (its default error handler). The
 * point-to-point messages at the end return errors and bound their waits instead. Sums
 * are in a fixed order (rank 0, 1, ... N-1, accumulated in double), so the same inputs
 * give bitwise the same result on every rank and run. */
#ifndef RC_TOOLS_DIST_H
#define RC_TOOLS_DIST_H

#include <stddef.h>

/* Joins the MPI job when the process was started by an MPI launcher (its environment
 * says so), else stays a single process. 0, or -1 with msg: MPI failed to start, or the
 * launcher started several processes of a recur built without MPI (they would each
 * train alone and write the same files). Calling it again does nothing. */
int dist_init(int *argc, char ***argv, char *msg, size_t len);
/* Leaves the job (MPI_Finalize after a last barrier, none when the collectives were
 * found out of step); nothing for a single process. */
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
 * rank order in double and rounded once to float. 0, or -1 with msg on every rank (the
 * ranks passed different n or are in another collective, n too large for MPI's int
 * counts, memory short on a rank: nothing moved). */
int dist_sum_floats(float *x, size_t n, char *msg, size_t len);
/* The same for a (small) double array: x = sum over ranks in rank order (n * size
 * doubles of scratch). 0, or -1 with msg on every rank as dist_sum_floats. */
int dist_sum_doubles(double *x, size_t n, char *msg, size_t len);
/* Copies root's buf[0..bytes) to every rank. 0, or -1 with msg on every rank (another
 * size or root on some rank, bytes over INT_MAX). */
int dist_bcast(void *buf, size_t bytes, int root, char *msg, size_t len);
/* Gathers each rank's send[0..bytes) to root's recv, rank after rank. Every rank passes
 * counts[size], every rank's byte count (the same on all: checked, as is bytes ==
 * counts[rank]); root passes recv of their sum, other ranks may pass NULL. 0, or -1 with
 * msg on every rank. */
int dist_gather(const void *send, size_t bytes, void *recv, const size_t *counts, int root, char *msg, size_t len);
/* Each rank says whether it failed: the lowest rank that did, or -1 when none (alone:
 * 0 or -1). So every rank takes the same way out after a step only some may fail. -2
 * with msg on every rank when the ranks are out of step (see above). */
int dist_first_failed(int failed, char *msg, size_t len);
/* Waits until every rank has called it. 0, or -1 with msg on every rank. */
int dist_barrier(char *msg, size_t len);
/* Whether every rank's description of what it is about to do (lines "name\tvalue\n")
 * is rank 0's, which rank 0 broadcasts. 0 when all are; 1 on every rank when some
 * differ, with *first the lowest rank whose description differs (its msg names the first
 * line that differs: "name differs: process 0 has A, process 1 has B"; the other ranks'
 * msg points to it); -1 with msg on every rank when a collective failed (*first: -1) or
 * a rank had no memory for the description (*first: that rank). Alone: 0. */
int dist_agree(const char *desc, int *first, char *msg, size_t len);

/* Point-to-point messages (recur search farms candidates with them; not collective).
 * They go through a copy of the world whose errors return instead of ending the job, and
 * every wait is bounded, so that a peer that died (or hangs) costs its survivors at most
 * `timeout` seconds, never the job. Whether the job itself goes on after a death is the
 * launcher's choice (dist_survives_death). */
/* Posts buf[0..bytes) (copied; may be NULL when bytes is 0) to rank `dest` with a tag
 * >= 0 and returns at once: MPI delivers it while this process goes on, and a message to
 * a rank that is gone is simply never taken. 0, or -1 with msg (an MPI error, out of
 * memory, bytes over INT_MAX, alone). */
int dist_post(const void *buf, size_t bytes, int dest, int tag, char *msg, size_t len);
/* Whether a message from any rank is waiting (without blocking): 1 and its source,
 * tag and size, or 0 (always 0 alone). */
int dist_iprobe(int *from, int *tag, size_t *bytes);
/* Receives the message dist_iprobe reported from `from` with `tag` into buf (bytes
 * long). 0; -1 with msg; -2 with msg when it did not arrive within timeout seconds. */
int dist_recv(void *buf, size_t bytes, int from, int tag, double timeout, char *msg, size_t len);
/* 1 when the launcher keeps the job going after a process dies (Open MPI 4: mpirun
 * --mca orte_enable_recovery 1); 0 when it ends the job, or cannot tell. */
int dist_survives_death(void);
/* Gives up on `rank` (taken as gone): what was or will be posted to it is never waited
 * for by dist_leave. */
void dist_forget(int rank);
/* 1 when dist_forget gave up on `rank`. */
int dist_forgotten(int rank);
/* Leaves the job without waiting for the other ranks (dist_finalize first waits for
 * every rank, which hangs when one is gone): gives the posted messages to ranks not
 * forgotten up to timeout seconds to be taken, then MPI_Finalize when `finalize`, else
 * nothing more (the process is about to exit). Without `finalize`: for a job that lost a
 * rank, where Open MPI 4.1's MPI_Finalize waits for the dead one (with
 * orte_enable_recovery; measured: 3 hangs in 10 runs, none when no rank finalizes). */
void dist_leave(double timeout, int finalize);

#endif
