/* Internal: the plan (the tape), shared by graph/ and autodiff/. */
#ifndef RC_PLAN_H
#define RC_PLAN_H

#include "graph.h"
#include "runtime.h"
#include "gemm_small.h"

/* A level schedule of the tape (graph/schedule.c). */
typedef struct plan_sched {
    int *order;             /* tape indices, level by level */
    int *start;             /* level l is order[start[l] .. start[l + 1]) */
    unsigned char *parallel;/* per level: run its instances side by side */
    int *level;             /* per tape index: its level */
    int nlevels, npar;
} plan_sched;

struct rc_plan {
    rc_graph *g;
    int nnodes;             /* graph size when the plan was built */
    tensor *val;            /* per node id: value (data in arena or graph storage) */
    float **grad;           /* per node id: gradient buffer or NULL */
    unsigned char *in_plan; /* per node id: the node is computed or read by the plan */
    unsigned char *fed;     /* per node id: an input that has been fed */
    op_inst *tape;          /* op instances in topological order */
    int *tape_node;         /* node id of each instance */
    int ntape;
    tensor **in_ptrs;       /* storage behind every instance's in[] */
    float **gin_ptrs;       /* storage behind every instance's gin[] */
    unsigned char *live;    /* per node id: reaches the last backward's loss */
    unsigned char *zeroed;  /* per node id: its gradient was cleared in this backward */
    unsigned char *shared;  /* per node id: PLAN_SHARED_* bits (buffer planning) */
    int live_loss;          /* node id `live` was computed for, or -1 */
    char *arena;
    size_t arena_bytes;
    size_t act_bytes;       /* rc_plan_activation_bytes */
    char *grad_base;        /* gradient region of the arena, cleared per backward */
    size_t grad_bytes;
    unsigned flags;         /* RC_PLAN_NO_GRAD */
    int training;
    uint64_t run;           /* forward counter, read by dropout */
    uint64_t epoch;         /* forward runs started (packed weights are stamped with it) */
    int *seg;               /* RC_PLAN_RECOMPUTE: segment of each tape instance, -1 none */
    int nseg;
    int *seg_lo, *seg_hi;   /* tape range [lo, hi] of each segment */
    int cur_seg;            /* the segment whose dropped values the scratch holds now */
    plan_sched fsched, bsched; /* level schedules of forward and the reverse sweep (order NULL: none) */
    gemm_pack *packs;       /* weights packed for the small-M kernel (plan_packs) */
    int npacks;
    float *pack_data;
    int forwarded;
    char err[512];
};

/* A node's value / gradient shares arena memory with others (not readable after the run). */
enum { PLAN_SHARED_VALUE = 1, PLAN_SHARED_GRAD = 2 };

/* Records an error on the plan and returns its code. */
rc_status plan_fail(rc_plan *p, rc_status s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Gives the tape's per-step products with a run-constant weight (several uses, few
 * rows) packed copies of the weight for gemm_small.h's kernel; 0, or -1 out of memory. */
int plan_packs(rc_plan *p);
/* Arena offsets of the values (voff, per node id), scratch (aoff, per tape index) and
 * gradients (goff; gradients start at *gstart) of a plan whose in_plan, val and flags
 * are set, with buffer planning unless RC_PLAN_NO_BUFFER_PLAN (plan_layout.c); marks
 * p->shared. *total: the arena's bytes. Returns 0, -1 out of memory, or -2 when the
 * arena would exceed a ptrdiff_t (recorded on the graph, naming the node). */
int plan_layout(rc_plan *p, const int *order, int norder, const unsigned char *needs, int n_roots,
                rc_node *const *roots, size_t *voff, size_t *aoff, size_t *goff, size_t *gstart, size_t *total);
/* RC_PLAN_RECOMPUTE: segments of the tape (p->seg, seg_lo, seg_hi) from the nodes'
 * time steps; 0, or -1 out of memory. */
int plan_segments(rc_plan *p, const int *order, int norder);
/* Runs the forward of segment s again (its dropped values), for the reverse sweep. */
void plan_recompute(rc_plan *p, int s);
/* Builds the level schedules (p->fsched, p->bsched) of the tape order[] (node ids)
 * when some level has work to run side by side (none in the recompute mode); needs:
 * which nodes have gradients. Then the plan runs in level order and plan_layout
 * measures lifetimes in levels. 0, or -1 out of memory. */
int plan_schedule(rc_plan *p, const int *order, int norder, const unsigned char *needs);
/* Frees a schedule's arrays. */
void plan_sched_free(plan_sched *s);
/* Runs the tape forward with the run counter left as it is. */
rc_status plan_forward_run(rc_plan *p);
/* An instance's forward in place of its kernel: 0 done, -1 failed (msg), 1 not taken
 * (the kernel runs). Called from several threads at once on a level run side by side. */
typedef int (*plan_forward_hook)(op_inst *it, int k, char *msg, void *ctx);
/* plan_forward_run with `hook` asked first for every instance k of the tape (the
 * gradient check's forward with kinks held, autodiff/gradcheck.c). */
rc_status plan_forward_hooked(rc_plan *p, plan_forward_hook hook, void *ctx);

#endif
