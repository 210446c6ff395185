/* Internal: the model's parts that train/ reads (parameters and gradients by index). */
#ifndef RC_MODEL_H
#define RC_MODEL_H

#include "cell.h"

/* The i-th parameter node of the model's store (creation order). */
rc_node *model_param_node(const rc_model *m, int i);
/* The gradient of parameter i from the last backward, or NULL. */
const float *model_grad(const rc_model *m, int i);

/* The dropout-mask counter (saved in checkpoints so a resumed run is identical). */
uint64_t model_get_runs(const rc_model *m);
void model_set_runs(rc_model *m, uint64_t runs);
/* The plan of the last successful forward and its loss node (to *loss), NULL before
 * one: for checks on the plan itself (rc_gradcheck in the tests). */
rc_plan *model_last_plan(const rc_model *m, rc_node **loss);
/* That plan's node of parameter i (it borrows the store's storage), or NULL. */
rc_node *model_last_param(const rc_model *m, int i);
/* How many graphs and plans the model has built for forwards and streams (cache
 * misses, and CTC plans rebuilt wider). */
uint64_t model_plan_builds(const rc_model *m);
/* Records an error on the model (for train/, which has no other way to report). */
void model_set_error(rc_model *m, rc_status s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
