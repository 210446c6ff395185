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
/* Records an error on the model (for train/, which has no other way to report). */
void model_set_error(rc_model *m, rc_status s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
