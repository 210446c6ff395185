/* Suite `threads`: rc_set_num_threads is process-wide, as recur.h promises. OpenMP's
 * omp_set_num_threads only sets the calling thread's count, so a plan run on another
 * pthread used to take every core while rc_num_threads() said otherwise. A probe
 * swapped into the op table records, inside rc_plan_forward / rc_plan_backward on a
 * fresh pthread, the thread counts the kernels would use. */
#include <criterion/criterion.h>
#include <omp.h>
#include <pthread.h>

#include "recur.h"
#include "op.h"

static int seen_max = -1, seen_op = -1, seen_bmax = -1, seen_bop = -1;
static int (*real_forward)(op_inst *, char *);
static void (*real_backward)(op_inst *);

static int probe_forward(op_inst *it, char *msg)
{
    seen_max = omp_get_max_threads();
    seen_op = op_threads();
    return real_forward(it, msg);
}

static void probe_backward(op_inst *it)
{
    seen_bmax = omp_get_max_threads();
    seen_bop = op_threads();
    real_backward(it);
}

static void *fresh_default(void *arg)
{
    *(int *)arg = omp_get_max_threads();
    return NULL;
}

typedef struct job {
    int reported;
    rc_status fs, bs;
} job;

/* On a thread that never called rc_set_num_threads: one forward and backward of
 * sum(x * x). */
static void *run_plan(void *arg)
{
    job *j = arg;
    rc_graph *g = rc_graph_new();
    int shape[1] = { 8 };
    rc_node *x = rc_param(g, "x", 1, shape);
    rc_node *loss = rc_sum(g, rc_mul(g, x, x));
    rc_plan *p = rc_plan_new_ex(g, 1, &loss, RC_PLAN_NO_EW_FUSION);
    j->fs = p ? rc_plan_forward(p) : RC_ERR_STATE;
    j->bs = p ? rc_plan_backward(p, loss) : RC_ERR_STATE;
    j->reported = rc_num_threads();
    rc_plan_free(p);
    rc_graph_free(g);
    return NULL;
}

Test(threads, count_set_on_main_thread_holds_on_worker_threads)
{
    /* the count a new pthread starts with; ask for a different one */
    int dflt = 0;
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, fresh_default, &dflt), 0);
    pthread_join(t, NULL);
    int want = dflt == 1 ? 2 : 1;
    cr_assert_eq(rc_set_num_threads(want), want);

    real_forward = op_table[OP_SUM].forward;
    real_backward = op_table[OP_SUM].backward;
    op_table[OP_SUM].forward = probe_forward;
    op_table[OP_SUM].backward = probe_backward;
    job j = { 0 };
    cr_assert_eq(pthread_create(&t, NULL, run_plan, &j), 0);
    pthread_join(t, NULL);
    op_table[OP_SUM].forward = real_forward;
    op_table[OP_SUM].backward = real_backward;

    cr_expect_eq(j.fs, RC_OK);
    cr_expect_eq(j.bs, RC_OK);
    cr_expect_eq(j.reported, want);
    cr_expect_eq(seen_max, want, "forward on a worker thread: OpenMP count %d, rc_set_num_threads(%d)",
                 seen_max, want);
    cr_expect_eq(seen_bmax, want, "backward on a worker thread: OpenMP count %d, rc_set_num_threads(%d)",
                 seen_bmax, want);
    cr_expect_eq(seen_op, want);
    cr_expect_eq(seen_bop, want);
}

static void *set_two(void *arg)
{
    (void)arg;
    rc_set_num_threads(2);
    return NULL;
}

/* A count set on another thread reaches a thread that applied an earlier one. */
Test(threads, a_count_set_elsewhere_reaches_a_thread_that_ran_before)
{
    rc_set_num_threads(1);
    real_forward = op_table[OP_SUM].forward;
    op_table[OP_SUM].forward = probe_forward;
    rc_graph *g = rc_graph_new();
    int shape[1] = { 4 };
    rc_node *x = rc_param(g, "x", 1, shape);
    rc_node *loss = rc_sum(g, x);
    rc_plan *p = rc_plan_new(g, 1, &loss);
    cr_assert(p);
    cr_expect_eq(rc_plan_forward(p), RC_OK);
    cr_expect_eq(seen_max, 1);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, set_two, NULL), 0);
    pthread_join(t, NULL);
    cr_expect_eq(rc_num_threads(), 2);
    cr_expect_eq(rc_plan_forward(p), RC_OK);
    cr_expect_eq(seen_max, 2, "this thread still runs with %d threads after rc_set_num_threads(2) elsewhere",
                 seen_max);
    op_table[OP_SUM].forward = real_forward;
    rc_plan_free(p);
    rc_graph_free(g);
}
