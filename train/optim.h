/* Internal: the optimiser's state, for checkpoints (train/ckpt.c) and tests.
 *
 * A checkpoint taken between an rc_optim_step and the next rc_optim_begin (weights
 * clean) and restored into an optimiser made with the same options on a model with
 * the same parameters resumes bit-identically: the state tensors, the step counter
 * and the weight-noise generator are all there is. */
#ifndef RC_OPTIM_H
#define RC_OPTIM_H

#include <stddef.h>
#include <stdint.h>
#include "recur.h"

/* Number of state tensors: per parameter, in parameter order, its slots in order
 *   SGD with momentum > 0: "sgd.v";  Adam: "adam.m", "adam.v";
 *   RMSprop: "rmsprop.s";  Adagrad: "adagrad.s";  plain SGD: none.
 * So tensor i is slot i % slots of parameter i / slots. 0 for NULL. */
int optim_state_count(const rc_optim *o);
/* Name of state tensor i, e.g. "adam.m/l0.W_xh" (kind + slot + '/' + parameter
 * name), or NULL when i is out of range. Owned by the optimiser. */
const char *optim_state_name(const rc_optim *o, int i);
/* Storage of state tensor i (the parameter's size, *count receives it), or NULL and
 * *count = 0 when i is out of range. Writable: a restore copies into it. */
float *optim_state_data(rc_optim *o, int i, size_t *count);
/* Scalars: the step counter and the noise generator's 4 words. */
void optim_get_scalars(const rc_optim *o, uint64_t *steps, uint64_t rng[4]);
void optim_set_scalars(rc_optim *o, uint64_t steps, const uint64_t rng[4]);

/* Why the options are invalid (a static English message naming the field), or NULL
 * when they are valid. rc_optim_new returns NULL exactly when this is not NULL (or
 * the model has no parameters, or memory is short), so the caller can report it. */
const char *optim_opts_error(const rc_optim_opts *o);

/* The global L2 norm of `n` float arrays (sizes in size[]), accumulated in double in
 * array then element order. Not finite when any element is not finite. */
double optim_global_norm(int n, const float *const *g, const size_t *size);

#endif
