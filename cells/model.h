/* Internal: the model's parts that train/ reads (parameters and gradients by index). */
#ifndef RC_MODEL_H
#define RC_MODEL_H

#include "cell.h"

/* The i-th parameter node of the model's store (creation order). */
rc_node *model_param_node(const rc_model *m, int i);
/* The gradient of parameter i from the last backward, or NULL. */
const float *model_grad(const rc_model *m, int i);

#endif
