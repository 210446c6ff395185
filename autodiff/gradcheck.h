/* Internal to the gradient check (autodiff/gradcheck*.c): the loss as the check
 * evaluates it. See gradcheck.c for the check itself. */
#ifndef RC_GRADCHECK_H
#define RC_GRADCHECK_H

#include "plan.h"

/* The evaluator of one plan's loss with every kink held (gradcheck_eval.c):
 * relu, abs, minimum and maximum, plain or inside a fused node, keep the piece they
 * took at the base point (gc_eval_record), so the loss the check differentiates is
 * smooth, with the same value and gradient there. */
typedef struct gc_eval {
    rc_plan *p;
    int loss_id;           /* its node id */
    size_t *off;           /* per tape index: offset of its pieces in piece[], SIZE_MAX none */
    unsigned char *piece;  /* per kink and element: the piece taken at the base point */
    size_t npiece;
    int *tape_of;          /* per node id: the tape index computing it, or -1 */
    int record;            /* the next forward records the pieces instead of holding them */
} gc_eval;

/* Sets e up for plan p and its loss; RC_OK or RC_ERR_NOMEM (recorded on the plan). */
rc_status gc_eval_init(gc_eval *e, rc_plan *p, const rc_node *loss);
void gc_eval_free(gc_eval *e);
/* Runs the forward at the current values recording each kink's piece; *L the loss. */
rc_status gc_eval_record(gc_eval *e, double *L);
/* Runs the forward with the recorded pieces; *L the loss: a scalar above sums and
 * means is recomputed in double from their operands, so the float rounding of a
 * large loss does not swamp the small differences the check measures. */
rc_status gc_eval_loss(gc_eval *e, double *L);

/* A test's hook (NULL normally): called on a copy of each tensor's analytic gradient
 * before the comparison, so a test can make a gradient wrong on purpose. */
extern void (*gc_test_tamper)(const rc_node *x, float *g, size_t n);

#endif
