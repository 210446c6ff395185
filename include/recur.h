/* recur — recurrent neural networks as graphs of primitive ops.
 *
 * The one public header. Everything is reached through opaque handles:
 *   rc_graph  a dataflow graph (nodes, parameters, constants) and its error slot;
 *   rc_node   one node of a graph (owned by the graph, never freed by the user);
 *   rc_plan   a graph compiled for its shapes: the tape, its arena, forward/backward.
 *
 * Errors are values, by one convention:
 *   - a function that works on an object returns an rc_status (or NULL) and leaves
 *     the message on that object: rc_graph_error(), rc_plan_error(),
 *     rc_model_error(), rc_optim_error();
 *   - a constructor reports its failure on the object it was made from (rc_plan_new
 *     on the graph, rc_optim_new on the model); only functions with no object to
 *     hold a message (rc_cell_parse, rc_cell_load, rc_graph_write_dot of a const
 *     graph, rc_gradient_flow) take a caller's `char *err, size_t errlen` buffer.
 * Builder functions return NULL on error; a function given a NULL node returns NULL
 * without touching the first error, so a whole expression can be built and checked
 * once with rc_graph_status(). The library never prints, aborts or exits on a
 * caller's mistake.
 *
 * Thread safety: a graph and its plans are used by one thread at a time; distinct
 * graphs share nothing and may be used from different threads. Internally a plan
 * runs its ops with OpenMP and OpenBLAS (its OpenMP build).
 */
#ifndef RECUR_H
#define RECUR_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RC_VERSION_MAJOR 0
#define RC_VERSION_MINOR 1
#define RC_VERSION_PATCH 0
#define RC_VERSION_STRING "0.1.0"

/* Largest tensor rank. */
#define RC_MAX_DIMS 4

typedef struct rc_graph rc_graph;
typedef struct rc_node rc_node;
typedef struct rc_plan rc_plan;

typedef enum rc_status {
    RC_OK = 0,
    RC_ERR_ARG,      /* a bad argument: NULL handle, bad size, unknown name, bad index */
    RC_ERR_SHAPE,    /* shapes of an op's operands do not agree */
    RC_ERR_GRAPH,    /* a cycle, an undefined forward declaration, a node of another graph */
    RC_ERR_NOMEM,    /* an allocation failed */
    RC_ERR_IO,       /* a file could not be read or written */
    RC_ERR_FORMAT,   /* a file or text is malformed */
    RC_ERR_STATE     /* the call is not valid now (e.g. backward before forward) */
} rc_status;

typedef enum rc_dtype { RC_F32 = 0, RC_I32 = 1 } rc_dtype;

/* ---- library ---------------------------------------------------------------- */

/* The version string of the linked library ("MAJOR.MINOR.PATCH"). */
const char *rc_version(void);
/* A short English name of a status code; never NULL. */
const char *rc_status_name(rc_status s);
/* The configuration string OpenBLAS reports (openblas_get_config()). */
const char *rc_blas_config(void);
/* RC_OK when the linked OpenBLAS is its OpenMP build; RC_ERR_STATE otherwise
 * (the pthread build oversubscribes the cores when mixed with OpenMP). */
rc_status rc_blas_check(void);
/* The most threads rc_set_num_threads sets: RC_THREADS_PER_CORE x the cores online
 * (within OMP_THREAD_LIMIT); more only wait for a core and cost memory. */
#define RC_THREADS_PER_CORE 4
int rc_max_threads(void);
/* Sets the process-wide thread count used by plans and OpenBLAS, whichever thread runs
 * them; n <= 0 means all cores, n above rc_max_threads() is lowered to it. At first use
 * the count comes from RC_NUM_THREADS when it is a count (same rules; anything else:
 * all cores). Returns the count set. */
int rc_set_num_threads(int n);
/* The thread count in effect. */
int rc_num_threads(void);
/* The cores free for this process now: the cores it may run on minus the share of the
 * machine's CPU time other work took over the next `seconds` (0.01..5; /proc/stat,
 * steal time counted as busy), rounded to whole cores; at least 1. All the cores it may
 * run on when /proc/stat cannot be read. The thread count that does not collapse when
 * other processes are busy (bench/contention.sh): OpenMP threads that outnumber the
 * free cores wait at every barrier for a thread the kernel has descheduled. */
int rc_idle_cores(double seconds);

/* ---- graphs --------------------------------------------------------------- */

/* A new, empty graph; NULL when memory is short. */
rc_graph *rc_graph_new(void);
/* Frees a graph, its nodes and parameters. Plans of the graph must be freed first. */
void rc_graph_free(rc_graph *g);
/* RC_OK, or the code of the first error since the last rc_graph_clear_error(). */
rc_status rc_graph_status(const rc_graph *g);
/* The message of the first error ("" when none); names node, op and shapes. */
const char *rc_graph_error(const rc_graph *g);
/* Forgets the recorded error so building can go on. */
void rc_graph_clear_error(rc_graph *g);
/* The number of nodes in the graph. */
int rc_graph_node_count(const rc_graph *g);
/* The i-th node (in creation order), or NULL when out of range. */
rc_node *rc_graph_node(const rc_graph *g, int i);

/* ---- leaves ----------------------------------------------------------------- */

/* An input fed at each run, of dtype RC_F32 or RC_I32. NULL on error. */
rc_node *rc_input(rc_graph *g, const char *name, rc_dtype dt, int ndim, const int *shape);
/* A trainable float parameter, zero-initialised. A name already used by a
 * parameter of the same shape returns that parameter (weights are shared by name);
 * the same name with another shape is an error. NULL on error. */
rc_node *rc_param(rc_graph *g, const char *name, int ndim, const int *shape);
/* The parameter of that name, or NULL (no error recorded) when there is none. */
rc_node *rc_param_find(const rc_graph *g, const char *name);
/* A constant float tensor; data (may be NULL for zeros) is copied. NULL on error. */
rc_node *rc_const(rc_graph *g, int ndim, const int *shape, const float *data);
/* A constant tensor filled with one value. NULL on error. */
rc_node *rc_fill(rc_graph *g, int ndim, const int *shape, float value);
/* A placeholder of given shape whose value is defined later by rc_define(); it lets
 * a graph refer to a node before building it. Undefined at plan time is an error. */
rc_node *rc_forward_decl(rc_graph *g, const char *name, int ndim, const int *shape);
/* Defines a forward declaration as `value` (same shape and dtype). A definition that
 * closes a cycle is reported when a plan is built. Returns RC_OK or an error. */
rc_status rc_define(rc_graph *g, rc_node *decl, rc_node *value);
/* Asks for the gradient of an input node (parameters always get one). */
rc_status rc_requires_grad(rc_node *n, int on);

/* ---- node queries ----------------------------------------------------------- */

/* The node's rank, or 0 for NULL. */
int rc_node_ndim(const rc_node *n);
/* The size of dimension d, or 0 when out of range. */
int rc_node_dim(const rc_node *n, int d);
/* The number of elements. */
size_t rc_node_size(const rc_node *n);
/* The node's dtype. */
rc_dtype rc_node_dtype(const rc_node *n);
/* The node's name ("" when unnamed). */
const char *rc_node_name(const rc_node *n);
/* The node's op name ("input", "param", "const" for leaves). */
const char *rc_node_op(const rc_node *n);
/* The node's index in its graph. */
int rc_node_id(const rc_node *n);
/* Gives a node a name (copied), for messages and inspection. */
rc_status rc_node_set_name(rc_node *n, const char *name);
/* The float storage of a parameter or constant (size rc_node_size); NULL otherwise. */
float *rc_param_data(rc_node *n);

/* ---- primitive ops ---------------------------------------------------------
 * Shapes: the last axis is the feature axis; a tensor of shape [d0,..,dk] is seen
 * by row-wise ops as rows = d0*..*d(k-1) rows of dk features. Each returns NULL on
 * error (see rc_graph_error). */

/* op(a) @ op(b) for 2-D a, b; op transposes when ta / tb is non-zero. */
rc_node *rc_matmul_t(rc_graph *g, rc_node *a, rc_node *b, int ta, int tb);
/* a @ b. */
rc_node *rc_matmul(rc_graph *g, rc_node *a, rc_node *b);
/* a + b; b of a's shape, a vector of a's last dimension (row broadcast), one value
 * per row ([.., 1]) or a scalar ([1]). */
rc_node *rc_add(rc_graph *g, rc_node *a, rc_node *b);
/* a - b; b broadcast as in rc_add, or one value per row [.., 1], or a scalar [1]. */
rc_node *rc_sub(rc_graph *g, rc_node *a, rc_node *b);
/* a * b elementwise; b broadcast as in rc_add. */
rc_node *rc_mul(rc_graph *g, rc_node *a, rc_node *b);
/* a / b elementwise; b broadcast as in rc_sub. */
rc_node *rc_div(rc_graph *g, rc_node *a, rc_node *b);
/* c * a for a constant c. */
rc_node *rc_scale(rc_graph *g, rc_node *a, float c);
/* 1 - a. */
rc_node *rc_one_minus(rc_graph *g, rc_node *a);
/* Logistic sigmoid 1 / (1 + exp(-a)). */
rc_node *rc_sigmoid(rc_graph *g, rc_node *a);
/* tanh(a). */
rc_node *rc_tanh(rc_graph *g, rc_node *a);
/* max(a, 0). */
rc_node *rc_relu(rc_graph *g, rc_node *a);
/* log(1 + exp(a)), stable for large |a|. */
rc_node *rc_softplus(rc_graph *g, rc_node *a);
/* |a|. */
rc_node *rc_abs(rc_graph *g, rc_node *a);
/* sqrt(a). */
rc_node *rc_sqrt(rc_graph *g, rc_node *a);
/* exp(a). */
rc_node *rc_exp(rc_graph *g, rc_node *a);
/* log(a). */
rc_node *rc_log(rc_graph *g, rc_node *a);
/* Softsign a / (1 + |a|): values in (-1, 1) like tanh, with polynomial tails (no exp). */
rc_node *rc_softsign(rc_graph *g, rc_node *a);
/* min(a, b) elementwise (same shapes). */
rc_node *rc_minimum(rc_graph *g, rc_node *a, rc_node *b);
/* max(a, b) elementwise (same shapes). */
rc_node *rc_maximum(rc_graph *g, rc_node *a, rc_node *b);
/* The sum of each row: shape [.., n] -> [.., 1] (in a step, what sums one sequence's
 * values; rc_sum would add up the whole batch). */
rc_node *rc_row_sum(rc_graph *g, rc_node *a);
/* The mean of each row: shape [.., n] -> [.., 1]. */
rc_node *rc_row_mean(rc_graph *g, rc_node *a);
/* The (biased) variance of each row: [.., n] -> [.., 1]. */
rc_node *rc_row_var(rc_graph *g, rc_node *a);
/* Softmax along the last axis. */
rc_node *rc_softmax(rc_graph *g, rc_node *a);
/* Log-softmax along the last axis (log-sum-exp form). */
rc_node *rc_log_softmax(rc_graph *g, rc_node *a);
/* Concatenation of n nodes along the last axis (other dims equal). */
rc_node *rc_concat(rc_graph *g, int n, rc_node *const *parts);
/* Columns [start, start+len) of the last axis. */
rc_node *rc_slice(rc_graph *g, rc_node *a, int start, int len);
/* Rows [start, start+len) of a 2-D tensor (step t of a [T*B, I] sequence). */
rc_node *rc_row_slice(rc_graph *g, rc_node *a, int start, int len);
/* 2-D tensors with equal columns stacked by rows. */
rc_node *rc_row_concat(rc_graph *g, int n, rc_node *const *parts);
/* The sum of all elements (a scalar, shape [1]): the reduction of a loss. Inside a
 * cell's step it would mix the sequences of the batch, so rc_unroll refuses it there
 * on a value of the step's input or states (use rc_row_sum). */
rc_node *rc_sum(rc_graph *g, rc_node *a);
/* The mean of all elements (a scalar, shape [1]); in a step the same as rc_sum (use
 * rc_row_mean). */
rc_node *rc_mean(rc_graph *g, rc_node *a);
/* Rows of table [V, D] picked by int32 indices of shape S: the result is S x D.
 * An index outside [0, V) is an error at run time. */
rc_node *rc_embedding(rc_graph *g, rc_node *table, rc_node *indices);
/* Inverted dropout with keep probability 1-p in training, identity at eval.
 * The mask depends on seed and the plan's run counter only. */
rc_node *rc_dropout(rc_graph *g, rc_node *a, float p, uint64_t seed);
/* Per-row softmax cross-entropy of logits [.., C] against int32 targets [..]
 * (shape of logits without the last axis). A negative target marks padding: its
 * row loses 0 and gets no gradient. A target >= C is an error at run time. */
rc_node *rc_softmax_xent(rc_graph *g, rc_node *logits, rc_node *targets);
/* Per-row sigmoid binary cross-entropy summed over the last axis, logits against
 * 0/1 float targets of the same shape: [.., K] -> [..]. Stable for any logit. */
rc_node *rc_sigmoid_bce(rc_graph *g, rc_node *logits, rc_node *targets);
/* Per-row mean squared error over the last axis: [.., K] -> [..]. */
rc_node *rc_mse(rc_graph *g, rc_node *pred, rc_node *target);

/* ---- CTC loss (Graves, Fernandez, Gomez & Schmidhuber 2006) ----------------------
 * loss_b = -log p(labels_b | logits_b), the sum over every alignment of sample b's
 * first T_b steps that collapses to its labels (merge repeats, drop blanks), computed
 * exactly (log-space forward-backward over the reachable states, docs/ARCHITECTURE.md).
 * The logits are unnormalised: log-softmax over the A classes is applied inside, and
 * the gradient is exact with respect to the logits: for a step t < T_b,
 *   d loss_b / d logits[t*B+b, a] = softmax_t(a) - sum of the posterior occupation of
 *                                   the states of class a at step t
 * (0 at the steps t >= T_b). Value and gradient are of one function for any input.
 * Log-probabilities (an rc_log_softmax in front, or data) may be given as the logits:
 * log-softmax leaves them unchanged, so the loss is the same, and the gradient with
 * respect to them is this function's, p - occupation (what warp-ctc and TensorFlow
 * report); through an rc_log_softmax it becomes exactly the gradient with respect to
 * that op's input (the log-softmax is only done twice). PyTorch's nn.CTCLoss computes
 * its value from its input as given but returns p - occupation, which is that value's
 * gradient only for normalised input (its issue 52241).
 *
 * What each reduction means (loss_b as above, B samples, L_b their label lengths): */
typedef enum rc_ctc_reduction {
    RC_CTC_SUM = 0,         /* [1]: sum_b loss_b */
    RC_CTC_MEAN_BATCH = 1,  /* [1]: sum_b loss_b / B (every sample counts, zeroed ones too) */
    RC_CTC_MEAN_LABEL = 2,  /* [1]: sum_b loss_b / sum_b L_b (all samples' labels; / 1 when
                               there are none): the loss per label of the batch. PyTorch's
                               'mean' is another thing, mean_b(loss_b / max(L_b, 1)): get it
                               from RC_CTC_NONE divided by the lengths, then rc_mean */
    RC_CTC_NONE = 3         /* [B]: loss_b per sample (reduce or weight it yourself) */
} rc_ctc_reduction;

typedef struct rc_ctc_opts {
    int blank;                   /* the blank's class index, 0..A-1 (default 0) */
    rc_ctc_reduction reduction;  /* default RC_CTC_MEAN_BATCH */
    int zero_infeasible;         /* how a sample with no alignment is treated (see rc_ctc) */
} rc_ctc_opts;

/* blank 0, RC_CTC_MEAN_BATCH, infeasible samples are an error. */
rc_ctc_opts rc_ctc_defaults(void);
/* The CTC loss of logits [T*B, A] (row t*B+b is step t of sample b: the stacked step
 * outputs of rc_unroll, or a model's head over them) or [T, B, A], against labels
 * int32 [B, S] (sample b's labels are labels[b, 0..L_b), the rest padding, ignored)
 * with label_lengths int32 [B] (L_b). mask (may be NULL: every sample has T steps) is
 * the sequence mask of rc_unroll_opts, float [T*B, 1]: sample b's input length T_b is
 * its number of leading ones. o may be NULL (rc_ctc_defaults). Result: [1], or [B]
 * with RC_CTC_NONE.
 * Run-time errors (rc_plan_forward fails naming the sample; nothing is computed): a
 * label outside 0..A-1 or equal to the blank, L_b < 0, L_b > S, L_b > T, a mask value
 * other than 0 and 1, or a 1 after a 0 in a sample's mask. A sample is infeasible when
 * T_b < L_b + (the number of equal neighbouring labels, which need a blank between
 * them): with zero_infeasible 0 that is an error naming the first such sample and how
 * many there are; with zero_infeasible 1 each counts as loss 0 with gradient 0.
 * A feasible sample whose likelihood is 0 in floating point (only with -inf logits)
 * has loss +inf (0 with zero_infeasible) and gradient 0. rc_plan_ctc_infeasible tells
 * which samples were treated so. A valid step whose logits have no finite maximum (all
 * -inf, or +inf or NaN among them) makes its sample's loss NaN and the gradient of its
 * valid steps NaN (not counted as infeasible); steps past T_b are not read. NULL on a
 * shape error (see rc_graph_error). */
rc_node *rc_ctc(rc_graph *g, rc_node *logits, rc_node *labels, rc_node *label_lengths, rc_node *mask,
                const rc_ctc_opts *o);

/* ---- plans: the tape ---------------------------------------------------------- */

/* Compiles the part of the graph the n roots depend on into a plan: the op
 * instances in topological order with their buffers in one arena. Checks shapes,
 * cycles and undefined declarations. NULL on error (see rc_graph_error). */
rc_plan *rc_plan_new(rc_graph *g, int n_roots, rc_node *const *roots);
/* Plan flags. The passes rewrite the graph when a plan is built (the rewritten graph
 * computes the same values); each can be switched off for debugging and comparison. */
#define RC_PLAN_NO_GRAD        1u   /* inference: no gradient buffers, backward is an error */
#define RC_PLAN_NO_TIME_BATCH  2u   /* keep per-step input projections (no one-GEMM-over-T*B); by
                                       default only thin steps (B < 8) are batched when the
                                       pack-once kernel serves per-step products */
#define RC_PLAN_NO_GEMM_FUSION 4u   /* keep matmuls that share an input separate */
#define RC_PLAN_NO_EW_FUSION   8u   /* keep chains of elementwise ops as separate ops */
#define RC_PLAN_NO_BUFFER_PLAN 16u  /* one buffer per value and gradient, no reuse (see rc_plan_grad) */
#define RC_PLAN_NO_PACKED_GEMM 32u  /* per-step products with a weight go to OpenBLAS, not recur's pack-once kernel */
#define RC_PLAN_FORCE_TIME_BATCH 256u /* time-batch every step's input projection, whatever B */
#define RC_PLAN_NO_SCHEDULE    128u /* run the tape in order (no level scheduling of independent ops) */
#define RC_PLAN_NO_PASSES      (RC_PLAN_NO_TIME_BATCH | RC_PLAN_NO_GEMM_FUSION | RC_PLAN_NO_EW_FUSION | \
                                RC_PLAN_NO_BUFFER_PLAN | RC_PLAN_NO_PACKED_GEMM | RC_PLAN_NO_SCHEDULE)
/* Recompute mode for long sequences (opt-in): the unrolled steps are cut into segments
 * of about sqrt(T) steps; values used only inside their segment are not kept but
 * recomputed segment by segment during the reverse sweep (the segment boundaries'
 * states are kept), trading one more forward pass for activation memory. Results are
 * bitwise those of the plan without it; rc_plan_value is NULL for the values dropped. */
#define RC_PLAN_RECOMPUTE      64u  /* implies RC_PLAN_NO_TIME_BATCH: a projection of all T steps
                                       at once would itself be T steps of activations */
/* rc_plan_new with flags (RC_PLAN_NO_GRAD and the others above). */
rc_plan *rc_plan_new_ex(rc_graph *g, int n_roots, rc_node *const *roots, unsigned flags);
/* Frees a plan and its arena. */
void rc_plan_free(rc_plan *p);
/* The message of the plan's last error ("" when none). */
const char *rc_plan_error(const rc_plan *p);
/* Training mode (dropout active) when on; evaluation mode otherwise. Default on. */
void rc_plan_set_training(rc_plan *p, int on);
/* Copies count values into an input node's buffer (float or int32 per its dtype).
 * Returns RC_ERR_ARG when the node is not an input of the plan or count differs. */
rc_status rc_plan_feed(rc_plan *p, rc_node *input, const void *data, size_t count);
/* Runs the tape forward. Returns RC_OK or an error (e.g. an index out of range). */
rc_status rc_plan_forward(rc_plan *p);
/* Runs the reverse sweep from a scalar root `loss` (seeded with 1), after a forward.
 * Gradients are overwritten (not accumulated across calls). */
rc_status rc_plan_backward(rc_plan *p, rc_node *loss);
/* A node's value after forward (float nodes; int32 inputs through rc_plan_value_i32).
 * NULL when the node is not in the plan. Roots, inputs, parameters and matmul results
 * are kept in training plans; an elementwise intermediate that is not a root may have
 * been fused away by the elementwise-fusion pass (make it a root to read it). In an
 * RC_PLAN_NO_GRAD plan with buffer planning, only roots and inputs are kept (NULL for
 * the others, whose memory is reused). */
const float *rc_plan_value(const rc_plan *p, const rc_node *n);
/* An int32 node's value, or NULL. */
const int32_t *rc_plan_value_i32(const rc_plan *p, const rc_node *n);
/* A node's gradient after backward, or NULL when it has none. With buffer planning
 * (the default) the gradients of parameters, inputs and roots are kept; other nodes'
 * gradient memory is reused during the sweep and this returns NULL for them (build the
 * plan with RC_PLAN_NO_BUFFER_PLAN to read them, e.g. d loss / d h_t). */
const float *rc_plan_grad(const rc_plan *p, const rc_node *n);
/* Of the last successful forward of p: how many samples of the rc_ctc node `ctc` had
 * no feasible alignment (too few steps for their labels, counted as zero loss with
 * zero_infeasible; or likelihood 0 in float, loss +inf), with up to max of their
 * indices written to samples (may be NULL). -1 when ctc is not a ctc node of the plan
 * or the plan has no successful forward. */
int rc_plan_ctc_infeasible(const rc_plan *p, const rc_node *ctc, int32_t *samples, int max);
/* The number of op instances on the tape. */
int rc_plan_length(const rc_plan *p);
/* Bytes held by the plan's arena. */
size_t rc_plan_arena_bytes(const rc_plan *p);
/* Bytes of the arena that hold activations: intermediate values and op scratch kept
 * for the reverse sweep (not inputs, roots or gradients); what the recompute mode cuts. */
size_t rc_plan_activation_bytes(const rc_plan *p);
/* Forward FLOPs of one run, summed from the op table. */
double rc_plan_flops(const rc_plan *p);

/* ---- parameter initialisation -------------------------------------------------- */

typedef enum rc_init_kind {
    RC_INIT_DEFAULT = 0, /* matrices U(-1/sqrt(rows), 1/sqrt(rows)) as PyTorch's RNNs; vectors 0 */
    RC_INIT_ZEROS,
    RC_INIT_CONST,       /* every element = a */
    RC_INIT_UNIFORM,     /* U(-a, a) */
    RC_INIT_GLOROT,      /* U(-s, s), s = sqrt(6 / (rows + cols)) */
    RC_INIT_ORTHOGONAL   /* an orthogonal matrix (QR of a Gaussian one), times a (1 if 0) */
} rc_init_kind;

/* Sets how rc_graph_init_params() fills a parameter. RC_ERR_ARG when n is not a parameter. */
rc_status rc_param_set_init(rc_node *n, rc_init_kind kind, float a);
/* Fills every parameter of the graph per its init kind, from one generator seeded with
 * seed, in creation order (the same seed gives the same weights). */
rc_status rc_graph_init_params(rc_graph *g, uint64_t seed);

/* ---- recurrent cells --------------------------------------------------------------
 * A cell is one time step: a step function that reads the step's input and the
 * previous states and builds the new states from op calls, the way every built-in
 * cell is written (cells/). Parameters made through rc_step_param() are named,
 * prefixed per layer, and shared by all time steps. */

typedef struct rc_cell rc_cell;
typedef struct rc_step rc_step;
/* Builds one step; returns RC_OK or the error recorded (rc_step_fail, or a graph error). */
typedef rc_status (*rc_step_fn)(rc_step *s, void *user);

/* A new cell with hidden size `hidden` built by fn(s, user). NULL when hidden < 1,
 * fn is NULL or memory is short. */
rc_cell *rc_cell_new(const char *name, int hidden, rc_step_fn fn, void *user);
/* Declares a recurrent state of `size` units (the first declared is the output unless
 * rc_step_set_output is used). RC_ERR_ARG on a duplicate name, size < 1 or > 16 states. */
rc_status rc_cell_add_state(rc_cell *c, const char *name, int size);
/* Frees a cell definition (graphs built from it are unaffected). */
void rc_cell_free(rc_cell *c);
/* The cell's name. */
const char *rc_cell_name(const rc_cell *c);
/* The cell's hidden size. */
int rc_cell_hidden(const rc_cell *c);
/* The number of states. */
int rc_cell_state_count(const rc_cell *c);
/* The i-th state's name, or NULL. */
const char *rc_cell_state_name(const rc_cell *c, int i);
/* The i-th state's size, or 0. */
int rc_cell_state_size(const rc_cell *c, int i);
/* Parses a cell definition in the cell language (see docs/CELLS.md). hidden > 0
 * overrides the cell's own "hidden N" line; the cell must have a hidden size from one
 * of them. `name` (e.g. the file name) is used in messages. NULL on error, with a
 * message "name:line:col: what was wrong, the offending text and what was expected"
 * in err. */
rc_cell *rc_cell_parse(const char *text, size_t len, const char *name, int hidden, char *err, size_t errlen);
/* rc_cell_parse of a file. */
rc_cell *rc_cell_load(const char *path, int hidden, char *err, size_t errlen);
/* The source text of a cell made by rc_cell_parse / rc_cell_load, or NULL. */
const char *rc_cell_source(const rc_cell *c);

typedef enum rc_activation { RC_ACT_TANH = 0, RC_ACT_RELU = 1 } rc_activation;
/* Elman RNN: h' = act(W_x x + W_h h + b). */
rc_cell *rc_cell_rnn(int hidden, rc_activation act);

typedef struct rc_lstm_opts {
    float forget_bias;   /* initial forget-gate bias (Jozefowicz et al. 2015: 1.0) */
    int peepholes;       /* diagonal peepholes p_i, p_f on c, p_o on c' (Gers & Schmidhuber 2001) */
    int no_forget_gate;  /* f = 1 */
    int no_input_gate;   /* i = 1 */
    int no_output_gate;  /* o = 1 */
} rc_lstm_opts;
/* The defaults: forget_bias 1.0, no peepholes, all gates. */
rc_lstm_opts rc_lstm_defaults(void);
/* LSTM with states "h" (output) and "c"; o NULL means rc_lstm_defaults(). */
rc_cell *rc_cell_lstm(int hidden, const rc_lstm_opts *o);

typedef enum rc_gru_variant {
    RC_GRU_RESET_AFTER = 0,  /* n = tanh(W_xn x + b_xn + r*(W_hn h + b_hn)): cuDNN / PyTorch */
    RC_GRU_RESET_BEFORE = 1  /* n = tanh(W_xn x + W_hn (r*h) + b_n): Cho et al. 2014 */
} rc_gru_variant;
/* GRU with state "h"; h' = (1 - z) * n + z * h. */
rc_cell *rc_cell_gru(int hidden, rc_gru_variant v);
/* MUT1, MUT2 or MUT3 of Jozefowicz, Zaremba & Sutskever 2015 (which = 1..3). MUT1 and
 * MUT2 use x itself, so their input size must equal the hidden size (checked when
 * unrolled). NULL when which is not 1..3. */
rc_cell *rc_cell_mut(int which, int hidden);
/* The one lookup of a cell by name, shared by every recur command: a path (with a '/'
 * or ending in .cell) is loaded with rc_cell_load; a built-in (lstm, gru, gru-cho, rnn,
 * rnn-relu, mut1, mut2, mut3) is built, lstm with `lstm` (NULL: rc_lstm_defaults());
 * any other name is NAME.cell ('-' read as '_') in the cell library (rc_cell_lib_dir).
 * NULL with err: the cell file's error, or for an unknown name every cell there is. */
rc_cell *rc_cell_find(const char *name, int hidden, const rc_lstm_opts *lstm, char *err, size_t errlen);
/* The cell-language file rc_cell_find reads for `name` (for a built-in: the library's
 * file of the same graph, e.g. rnn -> rnn_tanh.cell): 0 with its path in buf, or -1 with
 * err listing the cells there are. For what needs a cell's text (recur search). */
int rc_cell_file(const char *name, char *buf, size_t len, char *err, size_t errlen);
/* The cell library's folder: $RECUR_CELL_LIB when set; else, for a librecur run from its
 * build folder, the source tree's cells/lib; else the installed <datadir>/recur/cells
 * (meson install puts the library there). Never NULL; the folder may be missing. */
const char *rc_cell_lib_dir(void);
/* Every name rc_cell_find knows (the built-ins, then the library's cells, sorted) and the
 * library's folder, as one line into buf (truncated to len). Returns the length it needed. */
size_t rc_cell_names(char *buf, size_t len);

/* In a step function: the graph being built. */
rc_graph *rc_step_graph(rc_step *s);
/* The step's input x_t, [B, input size]. */
rc_node *rc_step_input(rc_step *s);
/* The previous value of a state, [B, size]; NULL and an error when no such state. */
rc_node *rc_step_state(rc_step *s, const char *name);
/* Sets a state's new value (same shape). Returns RC_OK or an error. */
rc_status rc_step_set_state(rc_step *s, const char *name, rc_node *value);
/* Sets the step's output when it is not the first state ([B, any size]). */
rc_status rc_step_set_output(rc_step *s, rc_node *value);
/* The cell's hidden size, the input size, the batch size, the time index t, the length T. */
int rc_step_hidden(const rc_step *s);
int rc_step_input_size(const rc_step *s);
int rc_step_batch(const rc_step *s);
int rc_step_time(const rc_step *s);
int rc_step_length(const rc_step *s);
/* A parameter of the cell (name prefixed by the layer), shared by all steps. */
rc_node *rc_step_param(rc_step *s, const char *name, int ndim, const int *shape);
/* x @ W^T for W = parameter `name` of shape [out, in] (PyTorch's layout). */
rc_node *rc_step_linear(rc_step *s, const char *name, rc_node *x, int out);
/* A bias vector parameter of `size` (zeros by default). */
rc_node *rc_step_bias(rc_step *s, const char *name, int size);
/* Records an error for the step being built (printf-style); returns its code. */
rc_status rc_step_fail(rc_step *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

typedef struct rc_unroll_opts {
    const char *prefix;      /* parameter name prefix (e.g. "l0."); NULL: none */
    rc_node *mask;           /* [T*B, 1] 1 where step t of sequence b is valid, or NULL */
    rc_node *const *init;    /* per state: its initial value [B, size], or NULL entries */
    int learned_init;        /* states with no given value start from a learned
                                parameter "<prefix>init_<state>"; otherwise from zeros */
    rc_node **states;        /* when not NULL: receives [T * nstates] nodes, the value of
                                state i after step t at states[t * nstates + i] (for
                                inspection, e.g. gradients d loss / d h_t) */
} rc_unroll_opts;
/* Unrolls `cell` over T steps of x ([T*B, I], time-major: row t*B+b is step t of
 * sequence b). Writes the stacked step outputs [T*B, out] to *outputs and, when
 * final_states is not NULL, each state's last value to final_states[i]. With a mask,
 * a sequence's states stop updating after its end and its outputs there are 0.
 * Returns RC_OK, or an error recorded on g (T < 1, rows not divisible by T, a state
 * never set or of the wrong size, a step error). */
rc_status rc_unroll(rc_graph *g, const rc_cell *cell, rc_node *x, int T, const rc_unroll_opts *o,
                    rc_node **outputs, rc_node **final_states);

/* ---- models: stacked, bidirectional recurrent layers with an output head ----------
 * A model owns its parameters and builds (and caches) one unrolled graph and plan per
 * (T, B) it meets. Parameters are named "embed" [vocab, input], "l<k>.<cell param>"
 * for layer k ("l<k>r." for the reverse direction of a bidirectional layer), "out.W"
 * [output, features] and "out.b" [output]. See README "Weights by name" for the
 * layouts and the mapping to PyTorch's nn.LSTM / nn.GRU. */

typedef struct rc_model rc_model;

typedef enum rc_head {
    RC_HEAD_SOFTMAX = 0,  /* classes: softmax cross-entropy against int32 targets */
    RC_HEAD_SIGMOID = 1,  /* multi-label: sigmoid cross-entropy summed over outputs (frame NLL) */
    RC_HEAD_LINEAR = 2,   /* regression: squared error, mean over outputs */
    RC_HEAD_CTC = 3       /* unsegmented label sequences: rc_ctc over the head's outputs at every
                             step [T*B, output_size] (output_size classes, the blank ctc_blank
                             among them) against batch.labels; input lengths are batch.lengths */
} rc_head;

/* How the summed loss is divided. With the CTC head the sum is over the samples'
 * losses (-log p(labels_b | input_b)) and the three are rc_ctc's reductions. */
typedef enum rc_loss_norm {
    RC_NORM_STEPS = 0,     /* loss = sum over valid targets / their number; CTC: / the number of
                              labels of the batch, 1 when it has none (RC_CTC_MEAN_LABEL) */
    RC_NORM_SEQUENCES = 1, /* loss = sum over valid targets / B (Zaremba et al. 2014); CTC: the
                              mean of the samples' losses (RC_CTC_MEAN_BATCH) */
    RC_NORM_SUM = 2        /* loss = sum over valid targets, not divided (CTC: RC_CTC_SUM) */
} rc_loss_norm;

typedef struct rc_model_opts {
    int input_size;       /* features per step; with vocab > 0, the embedding size */
    int vocab;            /* > 0: inputs are int32 token ids, embedded by parameter "embed" */
    int layers;           /* stacked layers, >= 1 */
    int bidirectional;    /* each layer runs forward and backward, outputs concatenated */
    float dropout;        /* drop probability on layer inputs and the head input */
    rc_head head;
    int output_size;      /* classes, labels or regression outputs */
    int last_step_only;   /* one target per sequence (at its last valid step) */
    rc_loss_norm norm;
    int learned_init;     /* initial states are learned parameters instead of zeros */
    uint64_t seed;        /* parameter initialisation and dropout masks */
    unsigned plan_flags;  /* RC_PLAN_NO_* flags for the model's training plans (0: all passes) */
    int ctc_blank;        /* CTC head: the blank's class, 0..output_size-1 */
    int ctc_zero_infeasible; /* CTC head: 1: a sample too short for its labels (see rc_ctc) counts as
                                loss 0 with gradient 0, listed by rc_model_ctc_infeasible;
                                0: such a sample fails the forward, naming it */
} rc_model_opts;

/* input_size 0 (must be set), vocab 0, 1 layer, no dropout, softmax head, per-step
 * targets, RC_NORM_STEPS, seed 1, ctc_blank 0, infeasible CTC samples an error.
 * The CTC head needs output_size >= 2 (the blank and a label) and refuses
 * last_step_only and carry (rc_model_set_carry): its samples are whole sequences. */
rc_model_opts rc_model_defaults(void);
/* A model of `cell` (copied; each layer uses the same cell definition). Its
 * parameters are initialised from o->seed. NULL only when memory is short: check
 * rc_model_status() for a mistake in the options or the cell. */
rc_model *rc_model_new(const rc_cell *cell, const rc_model_opts *o);
/* Frees the model, its graphs and plans. */
void rc_model_free(rc_model *m);
/* RC_OK or the code of the model's last error. */
rc_status rc_model_status(const rc_model *m);
/* The message of the model's last error ("" when none). */
const char *rc_model_error(const rc_model *m);
/* The options the model was made with. */
rc_model_opts rc_model_options(const rc_model *m);

/* One batch, time-major: row t*B+b is step t of sequence b. */
typedef struct rc_batch {
    int T, B;
    const float *x;          /* [T*B*input_size] when vocab == 0 */
    const int32_t *tokens;   /* [T*B] when vocab > 0 */
    const int32_t *lengths;  /* [B] valid steps of each sequence (1..T), or NULL: all T */
    const int32_t *targets;  /* softmax head: [T*B], or [B] with last_step_only; < 0 = none */
    const float *y;          /* sigmoid/linear heads: [T*B*output_size] or [B*output_size] */
    const int32_t *labels;   /* CTC head: [B*S], row b = sample b's labels, classes other than
                                the blank; entries past its label length are ignored */
    const int32_t *label_lengths; /* CTC head: [B] labels of each sample, 0..S and at most T (all 0
                                with S 0 and labels NULL: no transcripts, the outputs alone) */
    int S;                   /* CTC head: the row width of labels (any >= the longest; the
                                plan's own width is the longest rounded up to 8, kept per (T, B)
                                and only widened, so varying widths do not rebuild plans) */
} rc_batch;

/* Runs the model on a batch (building the plan for (T, B) on first use) and writes
 * the normalised loss to *loss (may be NULL). Returns RC_OK or an error (a bad batch:
 * the message names the sequence, for the CTC head the sample, e.g. a label outside
 * 0..output_size-1 or equal to the blank, a label length above S or T, no labels). */
rc_status rc_model_forward(rc_model *m, const rc_batch *b, double *loss);
/* The reverse sweep of the last forward: fills every parameter's gradient.
 * RC_ERR_STATE when there is none, or the last forward failed. */
rc_status rc_model_backward(rc_model *m);
/* Training (dropout on) or evaluation mode. Default: training. */
void rc_model_set_training(rc_model *m, int on);
/* Of the last forward: the sum of per-target losses and the number of valid targets
 * (perplexity = exp(sum / count)). CTC head: the sum of the samples' losses (0 for
 * zeroed infeasible ones) and the number of labels of the batch, every sample's
 * (sum / count: the loss per label). */
void rc_model_last_stats(const rc_model *m, double *sum, double *count);
/* The head's output of the last forward: [T*B, output] (or [B, output]) logits,
 * pre-sigmoid values or predictions (CTC head: [T*B, classes] logits, row t*B+b, for a
 * decoder; rows past a sample's length are computed but not part of its loss). NULL
 * before any forward and after a failed one. */
const float *rc_model_output(const rc_model *m);
/* CTC head: the samples' losses [B] of the last forward, -log p(labels_b | input_b)
 * (0 for a zeroed infeasible sample), valid until the next forward; NULL for another
 * head or when the last forward failed. */
const float *rc_model_ctc_losses(const rc_model *m);
/* CTC head: of the last forward, how many samples had no feasible alignment (counted
 * as loss 0 with ctc_zero_infeasible), with up to max of their indices written to
 * samples (may be NULL); -1 for another head or when the last forward failed. */
int rc_model_ctc_infeasible(const rc_model *m, int32_t *samples, int max);

/* Carry (truncated BPTT): when on, each forward's final states become the next
 * forward's initial states, as constants (no gradient crosses the boundary). With
 * the CTC head, on is an error (RC_ERR_STATE on the model, and every forward fails
 * until it is off again). */
void rc_model_set_carry(rc_model *m, int on);
/* Sets all initial states to zero. */
void rc_model_reset_state(rc_model *m);
/* Gives the initial value [B, size] of `state` of layer `layer`, direction dir (0
 * forward, 1 reverse) for the following forwards with batch B. RC_ERR_ARG on a bad
 * layer, direction, name or size. */
rc_status rc_model_set_state(rc_model *m, int layer, int dir, const char *state, int B, const float *data);
/* The current initial state (after a carried forward: the last final state), or
 * NULL when none is held for that layer, direction, state. *B receives the batch. */
const float *rc_model_get_state(const rc_model *m, int layer, int dir, const char *state, int *B);

/* The number of parameter tensors. */
int rc_model_param_count(const rc_model *m);
/* The i-th parameter's name, or NULL. */
const char *rc_model_param_name(const rc_model *m, int i);
/* A parameter's storage by name (row-major), its rank and shape; NULL when unknown. */
float *rc_model_param(rc_model *m, const char *name, int *ndim, int shape[RC_MAX_DIMS]);
/* A parameter's gradient from the last backward, or NULL. */
const float *rc_model_grad(const rc_model *m, const char *name);
/* The total number of trainable scalars. */
size_t rc_model_param_total(const rc_model *m);
/* Re-initialises every parameter from seed (per each parameter's init kind). */
rc_status rc_model_init(rc_model *m, uint64_t seed);
/* Writes every parameter to dir/<name>.npy (NumPy float32; dir must exist). */
rc_status rc_model_save_npy(rc_model *m, const char *dir);
/* Reads every parameter from dir/<name>.npy; shapes must match. All files are read
 * and checked before any parameter changes, so an error changes nothing. */
rc_status rc_model_load_npy(rc_model *m, const char *dir);

/* Inference without a tape: starts a stream of B sequences from zero states. */
rc_status rc_model_stream_reset(rc_model *m, int B);
/* Feeds one step (x: [B*input_size], or tokens: [B] ids) and returns the head's
 * output [B*output_size] in *out (valid until the next call). Records nothing for a
 * reverse sweep. Not available for bidirectional models (RC_ERR_STATE). */
rc_status rc_model_stream_step(rc_model *m, const float *x, const int32_t *tokens, const float **out);
/* The floats of one row of the stream's state: every state of every layer (layer by
 * layer, each cell's states in their declared order). 0 for NULL or a broken model. */
size_t rc_model_stream_state_size(const rc_model *m);
/* Copies row `row` (0..B-1 of the last rc_model_stream_reset(m, B)) of the stream's
 * state to dst (rc_model_stream_state_size floats): where that sequence stands. RC_OK;
 * RC_ERR_STATE when no stream was started, RC_ERR_ARG for a bad row or a NULL dst. */
rc_status rc_model_stream_get_row(rc_model *m, int row, float *dst);
/* Sets row `row` of the stream's state from src (as rc_model_stream_get_row wrote it):
 * the next rc_model_stream_step continues that row from there, the other rows
 * unchanged (e.g. a beam search moving a prefix's state between rows). Errors as
 * rc_model_stream_get_row. */
rc_status rc_model_stream_set_row(rc_model *m, int row, const float *src);

/* ---- optimisers, schedules, clipping -------------------------------------------- */

typedef enum rc_optim_kind { RC_OPT_SGD = 0, RC_OPT_ADAM, RC_OPT_RMSPROP, RC_OPT_ADAGRAD } rc_optim_kind;

typedef struct rc_optim_opts {
    rc_optim_kind kind;
    float momentum;      /* SGD: heavy-ball momentum mu (0: plain SGD) */
    int nesterov;        /* SGD: Nesterov momentum */
    float beta1, beta2;  /* Adam (0.9, 0.999) */
    float rho;           /* RMSprop: decay of the mean square (0.99) */
    float eps;           /* Adam, RMSprop, Adagrad: added to the denominator (1e-8; > 0) */
    float weight_decay;  /* lambda */
    int decoupled;       /* 0: L2, lambda * w added to the gradient; 1: w -= lr * lambda * w
                            applied apart from the gradient (AdamW, Loshchilov & Hutter 2019) */
    float clip_norm;     /* > 0: scale all gradients so their global L2 norm is <= clip_norm */
    float weight_noise;  /* > 0: Gaussian noise of this std on the weights during each
                            forward/backward, the update applied to the clean weights
                            (Graves 2011; Chung et al. 2014 for music) */
    uint64_t seed;       /* weight noise */
} rc_optim_opts;

/* Defaults for a kind: momentum 0, betas 0.9/0.999, rho 0.99, eps 1e-8, no decay, no
 * clipping, no noise, seed 1. */
rc_optim_opts rc_optim_defaults(rc_optim_kind kind);
typedef struct rc_optim rc_optim;
/* An optimiser of all of a model's parameters. NULL when memory is short or the
 * options are invalid. Like every constructor, it reports its failure on its parent
 * object: the message is left on the model (rc_model_error). */
rc_optim *rc_optim_new(rc_model *m, const rc_optim_opts *o);
/* Frees the optimiser (not the model). */
void rc_optim_free(rc_optim *o);
/* Before a forward: puts weight noise on the weights (no-op without weight noise).
 * RC_OK; RC_ERR_STATE (with weight noise) when the model's parameters changed since
 * rc_optim_new; RC_ERR_ARG for a NULL optimiser. The message is in rc_optim_error. */
rc_status rc_optim_begin(rc_optim *o);
/* After a backward: restores clean weights (if noisy), clips, and applies one update
 * with learning rate lr to every parameter that has a gradient. Returns RC_OK;
 * RC_ERR_STATE when a gradient is not finite or there is none (nothing is updated,
 * clean weights are still restored); RC_ERR_ARG for a negative or non-finite lr.
 * The message (naming the parameter, or the lr) is in rc_optim_error. */
rc_status rc_optim_step(rc_optim *o, float lr);
/* The message of the last rc_optim_begin / rc_optim_step if it failed, "" when it
 * succeeded (each call clears the slot first); "no optimiser (NULL)" for NULL. */
const char *rc_optim_error(const rc_optim *o);
/* Restores the clean weights after rc_optim_begin without updating (e.g. a failed
 * forward); a no-op without weight noise. */
void rc_optim_end(rc_optim *o);
/* The global gradient norm before clipping, of the last rc_optim_step. */
double rc_optim_grad_norm(const rc_optim *o);
/* The number of updates applied. */
uint64_t rc_optim_steps(const rc_optim *o);

typedef enum rc_schedule_kind {
    RC_SCHED_CONSTANT = 0,
    RC_SCHED_STEP,       /* lr * factor^(max(0, epoch - start + 1)) once epoch >= start
                            (Zaremba et al. 2014: start 5, factor 0.5, epochs from 1) */
    RC_SCHED_COSINE      /* lr * (min_frac + (1 - min_frac) * (1 + cos(pi * progress)) / 2),
                            progress clamped to [0, 1] */
} rc_schedule_kind;

typedef struct rc_schedule {
    rc_schedule_kind kind;
    float lr;            /* base learning rate */
    int start;           /* STEP: first epoch (1-based) that is decayed */
    float factor;        /* STEP: decay factor per epoch */
    float min_frac;      /* COSINE: final lr as a fraction of lr */
} rc_schedule;

/* The learning rate at 1-based `epoch`, and for COSINE at progress in [0, 1]. */
float rc_schedule_lr(const rc_schedule *s, int epoch, double progress);

/* ---- decoding CTC outputs, forced alignment, error rates ---------------------------
 * The decoders read what rc_ctc reads: logits [T*B, A] (row t*B+b is step t of sample
 * b: the stacked step outputs of rc_unroll or a model's head, rc_model_output) or
 * log-probabilities, A classes of which `blank` (0..A-1) is the blank. Each row is
 * log-softmax-normalised inside (which leaves log-probabilities as they are), so
 * reported scores are log-probabilities. lengths int32 [B] gives each sample's input
 * length T_b (0..T; NULL: all T); rows past it are not read. Every row a sample uses
 * must have a finite maximum and no NaN or +inf (-inf entries are impossible classes):
 * anything else is refused before any work, naming sample and step. The decoders
 * never print; their errors are rc_status values with a message (in err, or on the
 * decoder). Samples run in parallel (OpenMP) when there are several; results do not
 * depend on the thread count. (decode/, docs/ARCHITECTURE.md.) */

/* Best-path (greedy) decoding: at each step the most probable class (the lowest index
 * on a tie), repeats merged, blanks dropped. Sample b's labels go to labels[b*T ..],
 * the step each was emitted at (the first step of its run) to frames[b*T ..] (frames
 * may be NULL), their number (<= T_b) to out_lengths[b]. Returns RC_OK, or RC_ERR_ARG
 * with a message in err (may be NULL): a NULL buffer, T, B or A < 1, a blank outside
 * 0..A-1, a length outside 0..T, a row as refused above. */
rc_status rc_ctc_greedy(const float *logits, int T, int B, int A, const int32_t *lengths, int blank,
                        int32_t *labels, int32_t *frames, int32_t *out_lengths, char *err, size_t errlen);

/* A language model for the beam search's shallow fusion, through callbacks, so that
 * any model can be plugged in (rc_model_lm_new makes one of a recur character model).
 * A state stands for a prefix (a sequence of the LM's labels). States are plain bytes
 * of a fixed size held in the decoder's memory: the decoder copies them with memcpy
 * and drops them without a call, so a state must own no memory (keep indices into
 * the LM's own storage if it needs more). */
typedef struct rc_lm {
    int vocab;             /* the LM's labels are 0..vocab-1; log-probability vectors hold vocab values */
    size_t state_bytes;    /* the size of one state, >= 1 */
    int max_batch;         /* the most prefixes one extend call is given, >= 1 */
    void *user;            /* passed to the callbacks */
    /* Writes the state of the empty prefix to `state` and log P(v | empty prefix) for
     * every label v to logp[0..vocab). RC_OK or an error. */
    rc_status (*start)(void *user, void *state, float *logp);
    /* For i < n (1..max_batch): out[i] = the state of in[i]'s prefix followed by the
     * label labels[i], and out_logp[i][v] = log P(v | that longer prefix). in[i] is
     * left unchanged and never overlaps an out[j]. RC_OK or an error. */
    rc_status (*extend)(void *user, int n, const void *const *in, const int32_t *labels, void *const *out,
                        float *const *out_logp);
    /* The message of the last failed call, or NULL; the callback itself may be NULL. */
    const char *(*error)(void *user);
} rc_lm;

/* The options of the prefix beam search. */
typedef struct rc_ctc_beam_opts {
    int width;             /* prefixes kept after each step, >= 1 (default 10) */
    int nbest;             /* hypotheses returned per sample, 1..width (default 1) */
    int blank;             /* the blank's class (default 0) */
    int top_k;             /* > 0: only a step's top_k most probable classes (by log-probability,
                              the blank not counted) start new prefixes; 0: every class (default) */
    float min_logp;        /* classes with a log-probability below this at a step start no new
                              prefix there (default -INFINITY: none pruned) */
    const rc_lm *lm;       /* a language model for shallow fusion, or NULL (default) */
    const int32_t *lm_map; /* with lm: [A], the LM label of each class (0..lm->vocab-1; the
                              blank's entry is not read); copied by rc_ctc_beam_new */
    float alpha;           /* the LM's weight (default 0) */
    float beta;            /* the bonus per label of a prefix (default 0; also without an LM) */
    int lm_eos;            /* >= 0: the LM label that ends a labelling: the final scores add
                              alpha * log P_lm(lm_eos | labelling); -1: none (default) */
} rc_ctc_beam_opts;

/* width 10, nbest 1, blank 0, no pruning, no LM, alpha = beta = 0, lm_eos -1. */
rc_ctc_beam_opts rc_ctc_beam_defaults(void);

/* One hypothesis of the beam search. */
typedef struct rc_ctc_hyp {
    const int32_t *labels; /* the labelling (classes, without blanks), owned by the decoder */
    int length;
    double score;          /* logp_ctc + alpha * logp_lm + beta * length: what the search ranks by */
    double logp_ctc;       /* log of the summed probability of the labelling's alignments that
                              the beam kept: with a beam wide enough to keep every prefix, log
                              p(labelling | input) exactly; less when prefixes were dropped */
    double logp_lm;        /* log P_lm(labelling) (with lm_eos, its end included); 0 without LM */
} rc_ctc_hyp;

/* The CTC prefix beam search (Graves 2012, ch. 7; Hannun et al. 2014, "First-pass
 * large vocabulary continuous speech recognition using bi-directional recurrent DNNs"):
 * each prefix carries log probabilities of its alignments so far ending in a blank and
 * in a label; a step extends the `width` best prefixes by the blank, by a repeat of
 * their last label and by every (unpruned) class, merges the prefixes that became
 * equal, and keeps the `width` best by score = log P_ctc + alpha * log P_lm + beta *
 * |prefix| (the LM scores a prefix's labels through lm_map). */
typedef struct rc_ctc_beam rc_ctc_beam;

/* A beam decoder for A classes. The options are copied (the LM itself is used, not
 * copied: it must outlive the decoder). NULL on error with a message in err: width <
 * 1, nbest outside 1..width, blank outside 0..A-1, top_k < 0, min_logp NaN, an LM
 * without lm_map or with a bad field (vocab, state_bytes, max_batch, NULL callback), a
 * map entry outside 0..lm->vocab-1, lm_eos >= lm->vocab, alpha or beta not finite,
 * out of memory. */
rc_ctc_beam *rc_ctc_beam_new(int A, const rc_ctc_beam_opts *o, char *err, size_t errlen);
/* Frees the decoder and its results. */
void rc_ctc_beam_free(rc_ctc_beam *d);
/* Decodes B samples of logits [T*B, A] with input lengths (NULL: all T), replacing the
 * previous results. The workspace is sized once per call from T, width and A (and kept
 * for the next call); nothing is allocated per step. With an LM the samples are
 * decoded one after another (the LM is called from this thread only). Returns RC_OK,
 * or an error with the message in rc_ctc_beam_error (bad sizes or lengths, a refused
 * row, an LM's error with its message): then there are no results. */
rc_status rc_ctc_beam_decode(rc_ctc_beam *d, const float *logits, int T, int B, const int32_t *lengths);
/* The number of hypotheses of sample b (<= nbest; fewer when fewer distinct prefixes
 * had a non-zero probability), or -1 when b is out of range or there are no results. */
int rc_ctc_beam_count(const rc_ctc_beam *d, int b);
/* The k-th best hypothesis of sample b (k = 0 the best, by score), or NULL when out of
 * range. Valid until the next decode or free. */
const rc_ctc_hyp *rc_ctc_beam_hyp(const rc_ctc_beam *d, int b, int k);
/* The message of the decoder's last error ("" when the last call succeeded). */
const char *rc_ctc_beam_error(const rc_ctc_beam *d);

/* An rc_lm over a recur character language model: a unidirectional model with token
 * inputs (vocab > 0) and a softmax head over the same labels (output_size == vocab),
 * run as a stream of max_batch rows (rc_model_stream_*), its state per prefix the
 * stream's row state and its log-probabilities the log-softmax of the head's output.
 * The empty prefix's state is the model's state after the token `bos` (0..vocab-1;
 * e.g. the newline's id when it was trained on lines of text) fed to zero states. The
 * model must outlive the adapter, and it drives the model's stream: while decoding
 * with it, do not stream the model yourself. NULL on error with a message in err (a
 * model that does not fit, bos out of range, max_batch < 1, out of memory). */
typedef struct rc_model_lm rc_model_lm;
rc_model_lm *rc_model_lm_new(rc_model *m, int bos, int max_batch, char *err, size_t errlen);
/* The adapter's rc_lm (valid as long as the adapter) for rc_ctc_beam_opts.lm. */
const rc_lm *rc_model_lm_iface(rc_model_lm *l);
/* Frees the adapter (not the model). */
void rc_model_lm_free(rc_model_lm *l);

/* Forced alignment (Viterbi): the most probable alignment of each sample's transcript,
 * labels int32 [B, S] (sample b's: labels[b*S .. b*S + label_lengths[b]), classes other
 * than the blank) over its T_b steps, a path through the CTC states (blank, label 1,
 * blank, label 2, ..., blank; a repeated label needs a blank between its copies). For
 * sample b and its k-th label, first[b*S+k] and last[b*S+k] receive the first and last
 * step the path spends on it (first <= last < next label's first); frame_label[b*T+t]
 * receives k at the steps of label k, -1 at blank steps, -2 past T_b; score[b] the
 * log-probability of the path. Any output may be NULL. On a tie the path that stays in
 * a state is preferred to one that moves on (and, at the end, one without a trailing
 * blank). Returns RC_OK, or an error with a message in err (may be NULL) naming the
 * sample, and then no output is written: RC_ERR_ARG for bad sizes, a length outside
 * 0..T, a label length outside 0..S, a label outside 0..A-1 or equal to the blank, a
 * refused row, an infeasible transcript (T_b < L_b + the number of neighbouring equal
 * labels) or one whose every alignment has probability 0 (-inf logits); RC_ERR_NOMEM. */
rc_status rc_ctc_align(const float *logits, int T, int B, int A, const int32_t *lengths, const int32_t *labels,
                       int S, const int32_t *label_lengths, int blank, int32_t *first, int32_t *last,
                       int32_t *frame_label, double *score, char *err, size_t errlen);

/* Edit (Levenshtein) distances and error rates. One alignment of minimal cost
 * (substitutions, insertions and deletions cost 1 each) is counted: of the minimal
 * ones, the one that prefers, going back from the ends, a match or substitution to a
 * deletion and a deletion to an insertion (the distance is the same for all). An
 * insertion is a unit of the hypothesis the reference lacks, a deletion a unit of the
 * reference the hypothesis lacks. */
typedef struct rc_edit_stats {
    int64_t distance;      /* substitutions + insertions + deletions */
    int64_t substitutions, insertions, deletions;
    int64_t ref_length;    /* units (labels, characters, words) of the reference */
    int64_t hyp_length;    /* units of the hypothesis */
} rc_edit_stats;

/* The edit distance between two int sequences (ref of nref, hyp of nhyp >= 0; NULL
 * allowed for a length 0). Memory O(nhyp), time O(nref * nhyp). RC_OK, or RC_ERR_ARG /
 * RC_ERR_NOMEM with a message in err (may be NULL). */
rc_status rc_edit_distance(const int32_t *ref, int nref, const int32_t *hyp, int nhyp, rc_edit_stats *out,
                           char *err, size_t errlen);
/* The edit distance between two NUL-terminated UTF-8 strings by code point (for the
 * character error rate). RC_ERR_FORMAT on invalid UTF-8 (overlong forms, surrogates,
 * above U+10FFFF, a cut sequence), naming which string and the byte offset. */
rc_status rc_edit_distance_utf8(const char *ref, const char *hyp, rc_edit_stats *out, char *err, size_t errlen);
/* The edit distance between the words of two NUL-terminated strings (for the word error
 * rate): words are the maximal runs of bytes other than ASCII whitespace (space, \t,
 * \n, \v, \f, \r), equal when byte for byte equal. */
rc_status rc_edit_distance_words(const char *ref, const char *hyp, rc_edit_stats *out, char *err, size_t errlen);
/* Adds one line's counts to a total (a corpus's rate is its total edits over its total
 * reference length, not a mean of per-line rates). */
void rc_edit_stats_add(rc_edit_stats *total, const rc_edit_stats *one);
/* The error rate of counts: distance / ref_length (the CER of character counts, the
 * WER of word counts; above 1 when the hypothesis inserts a lot). An empty reference
 * (ref_length 0) gives 0 when the hypothesis is empty too and +INFINITY otherwise
 * (every unit inserted, out of none): as a corpus total that happens only when no line
 * has any reference unit. NAN for NULL. */
double rc_error_rate(const rc_edit_stats *s);
/* ---- synthetic printed text lines (gen/: FreeType and libpng) ----------------------
 * Lines of text rendered with FreeType in Debian's fonts (DejaVu, Liberation, FreeFont,
 * URW base35, found under /usr/share/fonts at run time), degraded the way OCRopus's
 * ocropus-linegen and Tesseract's DegradeImage do (small rotation, shear and scaling,
 * elastic distortion, Gaussian blur, random ink and paper levels, additive noise, now
 * and then binarisation at a random threshold), cropped to the line with a random
 * margin and resized to a fixed height: 8-bit gray, dark ink on light paper. A seed
 * fixes every random choice, so the same seed gives the same bytes. Without FreeType
 * (meson feature 'freetype') or libpng ('libpng') these functions exist and return
 * RC_ERR_STATE with a message saying what to install. Messages go to err (errlen
 * bytes; may be NULL); nothing is printed. */

/* The i-th font face recur knows (i >= 0), NULL past the last: its name, e.g.
 * "DejaVuSans-Bold". *path (may be NULL) receives its file when installed, else NULL;
 * *package (may be NULL) the Debian package holding it; *usual (may be NULL) 1 when it
 * is among the default faces (text faces of the packages ./do.sh installs; symbol
 * fonts are not listed, Z003's swash script and DejaVu's extra faces are not usual). */
const char *rc_gen_line_face(int i, const char **path, const char **package, int *usual);

typedef struct rc_line_gen rc_line_gen;

typedef struct rc_line_gen_opts {
    int height;          /* the images' height in pixels, 8..256; 0: 32 */
    int clean;           /* 1: no degradation (black on white, no warp, fixed size and margins) */
} rc_line_gen_opts;

/* A generator rendering in fonts[0..nfonts), each a face name (rc_gen_line_face) or
 * the path of a font file FreeType reads (TrueType, OpenType, Type 1). o may be NULL
 * (defaults). *g is NULL on error (unknown face, unreadable font, bad option). */
rc_status rc_gen_line_new(rc_line_gen **g, const char *const *fonts, int nfonts, const rc_line_gen_opts *o,
                          char *err, size_t errlen);
/* Frees a generator (NULL is fine). */
void rc_gen_line_free(rc_line_gen *g);
/* 1 when font `font` (0..nfonts-1) of g has a glyph for Unicode code point cp, else 0. */
int rc_gen_line_has_char(const rc_line_gen *g, int font, uint32_t cp);
/* Renders the UTF-8 text (one line; every character must have a glyph in the font)
 * in font `font` with the random choices of `seed`: *pixels a new malloc'd 8-bit gray
 * image of *width x height pixels, row-major, row 0 at the top. RC_ERR_ARG on a bad
 * font index, bad UTF-8, a missing glyph or text without ink. */
rc_status rc_gen_line_render(rc_line_gen *g, int font, const char *text, uint64_t seed, unsigned char **pixels,
                             int *width, int *height, char *err, size_t errlen);
/* Writes an 8-bit gray image (row-major) as a PNG file (through path.tmp, renamed):
 * the same pixels give the same bytes. RC_ERR_IO when it cannot be written. */
rc_status rc_gen_line_write_png(const char *path, const unsigned char *pixels, int width, int height,
                                char *err, size_t errlen);
/* Reads any PNG as 8-bit gray (palette, RGB, alpha, 1-16 bits converted: RGB by
 * 0.299 R + 0.587 G + 0.114 B, alpha composited over white): *pixels a new malloc'd
 * image. RC_ERR_FORMAT for a file that is not a valid PNG or larger than memory allows,
 * RC_ERR_IO when it cannot be opened. */
rc_status rc_gen_line_read_png(const char *path, unsigned char **pixels, int *width, int *height,
                               char *err, size_t errlen);

/* A data set of line images, as recur generate lines writes it. */
typedef struct rc_gen_lines_opts {
    const char *out;        /* the folder to write: out/train, out/valid, out/test, out/test-fonts */
    int count;              /* training lines (>= 1) */
    int valid, test;        /* lines of valid and of test and test-fonts; < 0: count / 10, at least 1 */
    uint64_t seed;
    const char *fonts;      /* faces of train, valid and test: comma-separated face names, families
                               ("P052": every P052-* face), "all", or font files; NULL: the usual faces */
    const char *hold_out;   /* faces of test-fonts only, left out of `fonts`; NULL: "P052,URWGothic"
                               (Palatino and Avant Garde designs); "" or "none": no test-fonts */
    const char *text;       /* a text file or a folder of them; NULL: /usr/share/games/fortunes */
    int min_chars, max_chars;   /* the lines' length in characters; 0: 10 and 40 */
    rc_line_gen_opts line;
    /* called after each image when not NULL: split name, images done, images in the split */
    void (*progress)(void *ctx, const char *split, int done, int total);
    void *ctx;
} rc_gen_lines_opts;

/* The defaults above. */
void rc_gen_lines_defaults(rc_gen_lines_opts *o);
/* Writes a data set: the text cut into distinct lines of the length range using only
 * characters every chosen font has, shuffled by the seed; valid and test lines are held
 * out (no training line has their text) and use only characters of the training lines;
 * test-fonts renders the test lines in the held-out faces. Each folder holds NAME.png
 * and NAME.gt.txt (the line and a newline) and lines.tsv (each name and its face); out
 * gets generate.txt (the options and font files). An out folder whose splits already
 * hold files is refused. RC_OK, or an error with a message. */
rc_status rc_gen_lines(const rc_gen_lines_opts *o, char *err, size_t errlen);

/* ---- gradient checking -------------------------------------------------------- */

/* How rc_gradcheck_ex checks; zeros give the defaults. */
typedef struct rc_gradcheck_opts {
    float eps;          /* the step (0: 1e-2): entry i moves by eps * max(1, |x_i|) and half that */
    int max_entries;    /* single entries checked per tensor (0: all): the half of largest |g|, the rest at random */
    int directions;     /* random directions per tensor besides the gradient's own (0: 2, < 0: none) */
    uint64_t seed;      /* the random entries and directions (0: a fixed seed) */
} rc_gradcheck_opts;

/* The verdict on one tensor (README "Gradient checking" has the rule). */
typedef enum rc_gc_verdict {
    RC_GC_OK = 0,       /* every discrepancy within the allowance, and the check sharp enough for the 1% promise */
    RC_GC_NOISY = 1,    /* no discrepancy beyond the allowance, but an uncertainty above 1.6e-3 of the
                           scale (or nothing comparable: the loss not finite within every step) */
    RC_GC_WRONG = 2     /* some |g_i - n_i| > 2e-3 * S + 4 * u_i (or the same along a direction) */
} rc_gc_verdict;

/* What rc_gradcheck_ex found for one tensor. n_i is the numerical derivative of entry
 * i, u_i its uncertainty, S = max |n_i| the scale. */
typedef struct rc_gradcheck_report {
    rc_gc_verdict verdict;
    double err;         /* max |g_i - n_i| / S over the checked entries */
    double noise;       /* max u_i / S: how large err may be with a correct gradient is about 4x this */
    double dir_err;     /* max over directions v of |g.v - D_v| / sum |g_i v_i| (D_v numerical) */
    double dir_noise;   /* the directions' uncertainty on that scale */
    float step;         /* the eps the reported pass used (the check may change it, see README) */
    size_t size;        /* elements of the tensor */
    size_t checked;     /* entries compared one by one */
    size_t skipped;     /* entries left out: the loss was not finite within the step */
    int directions;     /* directions compared */
    size_t worst;       /* the entry of err */
    double worst_g, worst_num; /* g and n there */
} rc_gradcheck_report;

/* Checks the reverse-sweep gradient g of the scalar `loss` on each node of `wrt`
 * (parameters, or inputs marked with rc_requires_grad) against central differences
 * of the loss with its kinks held (relu, abs, minimum, maximum keep the piece they
 * took) and its final sums in double, writing reports[k] for wrt[k] (README
 * "Gradient checking": the method and the rule). Values are restored and the plan's
 * gradients recomputed. Returns RC_OK whatever the verdicts, or an error (bad
 * arguments, a node without a gradient in this plan, out of memory). */
rc_status rc_gradcheck_ex(rc_plan *p, rc_node *loss, int n_wrt, rc_node *const *wrt,
                          const rc_gradcheck_opts *opts, rc_gradcheck_report *reports);
/* rc_gradcheck_ex with step eps on every entry; writes to *err the largest err or
 * dir_err of any node: for a correct gradient within 2e-3 + 4 * noise (a few 1e-4 in
 * the tests), about 1e-2 or more for one wrong by 1% of its tensor's largest entry.
 * Returns RC_OK or an error. */
rc_status rc_gradcheck(rc_plan *p, rc_node *loss, int n_wrt, rc_node *const *wrt,
                       float eps, double *err);

/* ---- inspection: statistics, structural diffs, Graphviz, gradient flow ----------
 * Read-only views of the part of a graph that n roots depend on (the part a plan
 * would compute). Call them on a graph as built, or after rc_plan_new to see what
 * the passes made of it: a pass rewrites nodes in place and tags each node it made
 * or rewrote with its pass id and a group (the nodes it made together). */

#define RC_STATS_MAX_OPS 64
#define RC_STATS_MAX_PASSES 8
/* Pass ids, as in rc_stats.pass_nodes[] and rc_pass_group.pass. */
#define RC_PASS_TIME_BATCH 1   /* per-step projections op(row_slice(X)) @ W -> one GEMM over T*B rows */
#define RC_PASS_GEMM_FUSION 2  /* matmuls A @ W_k of one A -> one GEMM against the concatenated W_k */
#define RC_PASS_EW_FUSION 3    /* chains of elementwise ops -> one fused op */

/* Counts and costs of one op type. */
typedef struct rc_op_stat {
    const char *op;            /* the op's name (static storage) */
    int count;                 /* nodes of this op */
    double fwd_flops, bwd_flops;
} rc_op_stat;

/* Statistics of the part of a graph the roots depend on.
 * FLOPs: forward FLOPs are the op table's count (what rc_plan_flops sums); backward
 * FLOPs follow the reverse sweep: an op costs nothing unless it has a gradient, and
 * then, for each operand that receives a gradient, a matmul costs one GEMM of the
 * forward's size (so 2x forward when both operands need gradients, 1x for x @ W with
 * x an input) and other ops cost a few FLOPs per element (table in graph/inspect.c:
 * add/sub 1, mul 2, sigmoid/tanh 4, slices and concatenations 1 per element moved; a
 * fused elementwise node costs what its ops would).
 * Memory (bytes, 4 per element, before alignment and before any buffer reuse): the
 * values of inputs and op nodes, the gradients of inputs and op nodes that need one
 * (parameters, inputs that asked, and everything computed from them), and per-op
 * scratch; parameter storage and parameter gradients are counted apart. */
typedef struct rc_stats {
    int nodes;                 /* reachable nodes, leaves included */
    int op_nodes, inputs, consts;
    int n_ops;                 /* op types present, in op-table order */
    rc_op_stat ops[RC_STATS_MAX_OPS];
    int param_tensors;
    size_t param_scalars;
    double fwd_flops, bwd_flops;
    size_t value_bytes;        /* input and op values */
    size_t grad_bytes;         /* gradients of inputs and op nodes */
    size_t aux_bytes;          /* per-op scratch kept from forward to backward */
    size_t activation_bytes;   /* value_bytes + grad_bytes + aux_bytes */
    size_t param_bytes;        /* parameter storage (= param_grad_bytes: one gradient each) */
    size_t param_grad_bytes;
    int pass_nodes[RC_STATS_MAX_PASSES];   /* reachable nodes tagged with each pass id */
    int pass_groups[RC_STATS_MAX_PASSES];  /* distinct groups of each pass id among them */
    int made_groups[RC_STATS_MAX_PASSES];  /* groups each pass made in the whole graph, also
                                              those a later pass made unreachable */
    int time_batch_gemms;      /* = made_groups[RC_PASS_TIME_BATCH]: GEMMs over T*B rows made
                                  (a later GEMM fusion may have merged them further) */
    int fused_gemms;           /* = made_groups[RC_PASS_GEMM_FUSION] */
    int fused_ew_groups;       /* = made_groups[RC_PASS_EW_FUSION]: OP_FUSED nodes made */
} rc_stats;

/* Fills *out with the statistics of the part of g the roots depend on. RC_ERR_ARG on
 * NULL arguments or a root of another graph, RC_ERR_GRAPH on an undefined forward
 * declaration or a cycle, RC_ERR_NOMEM. The graph is not changed. */
rc_status rc_graph_stats(const rc_graph *g, int n_roots, rc_node *const *roots, rc_stats *out);
/* The name of a pass id ("time-batch", "gemm-fusion", "ew-fusion"); "" for 0, "?" unknown. */
const char *rc_pass_name(int pass);

/* One group of nodes a pass made together. */
typedef struct rc_pass_group {
    int pass, group;           /* pass id, group id (unique in the graph) */
    int nodes;                 /* nodes of the group in the graph */
    int reachable;             /* of them, in the part the roots need (0: a later pass
                                  superseded the group, e.g. time-batched GEMMs fused further) */
    int step;                  /* the one time step its reachable nodes lie in (nodes outside
                                  every step aside), or -1: none, or several (see rc_dot_opts) */
    char what[240];            /* e.g. "time-batched: x @ W_xi^T over T*B = 3*4 = 12 rows (3 per-step
                                  matmuls -> 1 GEMM)", "fused GEMM: x @ [W_xg, W_xi, W_xf, W_xo]^T
                                  on 4 rows (4 matmuls -> 1)", "fused elementwise: 9 ops -> 1 loop
                                  (add x3, mul x3, sigmoid x3)" */
} rc_pass_group;
/* Writes up to max pass groups of g (all of the graph's, in group order; the roots
 * decide `reachable` and `step`) to out (may be NULL with max 0) and returns how many
 * there are, or -1 on an error (as rc_graph_stats). */
int rc_graph_pass_groups(const rc_graph *g, int n_roots, rc_node *const *roots, rc_pass_group *out, int max);

/* A structural diff of two graphs (e.g. the step graphs of two cells). Parameters are
 * matched by name. A parameter in both is "rewired" when the set of its uses differs:
 * a use is the consuming op with its operands, each named by what it is (the parameter
 * itself, another parameter's name, an input's name, "const", or the producing op). */
#define RC_DIFF_MAX 64
typedef struct rc_graph_diff {
    int n_ops;                 /* op types whose counts differ */
    struct { const char *op; int a, b; } ops[RC_STATS_MAX_OPS];
    int n_only_a, n_only_b, n_rewired;
    char only_a[RC_DIFF_MAX][64], only_b[RC_DIFF_MAX][64];
    char rewired[RC_DIFF_MAX][64];
    char rewired_how[RC_DIFF_MAX][256];   /* "a: matmul(const, .) | b: matmul(mul, .)" */
    int truncated;             /* more than RC_DIFF_MAX names in some list */
} rc_graph_diff;
/* Compares the parts of a and b their roots depend on. Errors as rc_graph_stats. */
rc_status rc_graph_diff_of(const rc_graph *a, int na, rc_node *const *ra, const rc_graph *b, int nb,
                           rc_node *const *rb, rc_graph_diff *out);

/* Graphviz output. */
typedef struct rc_dot_opts {
    int step_clusters;         /* one cluster per time step of an unrolled graph. Steps come
                                  from the row_slice(x, t*B, B) that starts step t and from
                                  creation order (what rc_unroll built after it, up to the next
                                  step's slice); nodes a pass made belong to the step of their
                                  consumers. Leaves, the stacked outputs and what is computed
                                  from them (a loss) stay outside. Details: graph/inspect.c */
    const char *title;         /* graph label, or NULL */
} rc_dot_opts;
/* Writes a Graphviz DOT file of the part of g the roots depend on: op nodes labelled
 * with op, name and shape; parameters as boxes, inputs as house shapes, constants
 * dashed; the nodes of each pass group inside a `subgraph cluster_N` labelled with
 * what the pass did (nested in its step's cluster when the group lies in one step).
 * The file is written to a temporary name and renamed, so it is never half-written.
 * o may be NULL (defaults: no step clusters). On error, returns RC_ERR_IO / RC_ERR_ARG /
 * RC_ERR_GRAPH / RC_ERR_NOMEM and a message in err (when err is not NULL). */
rc_status rc_graph_write_dot(const rc_graph *g, int n_roots, rc_node *const *roots, const char *path,
                             const rc_dot_opts *o, char *err, size_t errlen);

/* Gradient flow through time. Unrolls `cell` over T steps of B sequences on inputs
 * drawn from N(0, 1) (input_size features), with the cell's parameters initialised
 * by their default init kinds from seed, and measures for t = 0..T-1, with h_t the
 * cell's first state after step t:
 *   dl_dh[t]   = ||dL/dh_t||, the norm taken per sequence and averaged (RMS) over B, for
 *                L = mean_b mean_k (out_{T-1} - y)^2, the squared error of the last step's
 *                output against random targets y ~ U(-1, 1) (a loss at the end of the
 *                sequence, as in sequence classification); with RC_FLOW_PER_STEP_LOSS,
 *                L = sum_t mean_b mean_k (out_t - y_t)^2 with targets at every step (then
 *                each step's own term dominates ||dL/dh_t|| wherever the gradient from
 *                later steps vanishes, so a vanishing gradient shows as a flat profile and
 *                a preserved one as growth towards t = 0);
 *   dhT_dht[t] = ||u^T dh_{T-1}/dh_t||, the vector-Jacobian product of a random unit
 *                vector u per sequence at the last state, averaged over B and 4 draws of u
 *                (so dhT_dht[T-1] = 1).
 * Either output may be NULL; each holds T values. Deterministic for a seed. Returns
 * RC_OK, or an error with a message in err (a bad size, an unroll error of the cell). */
#define RC_FLOW_PER_STEP_LOSS 1u
rc_status rc_gradient_flow(const rc_cell *cell, int input_size, int T, int B, uint64_t seed, unsigned flags,
                           double *dl_dh, double *dhT_dht, char *err, size_t errlen);

/* ---- cell search: mutations, canonical form, parameter counts -----------------------
 * The engine of an evolutionary search over cells written in the cell language, as in
 * Jozefowicz, Zaremba & Sutskever 2015 (docs/CELLS.md "Mutations and canonical form").
 * Every function takes a cell's text (len bytes, need not be NUL-terminated), never
 * prints, and reports errors in the caller's err buffer ("cell:line:col: ..." for a
 * text that does not parse). Returned strings are malloc'd: free them with free(). */

/* The mutation kinds, as bits (rc_mutate_opts.kinds and rc_cell_mutate's result). */
#define RC_MUT_ACTIVATION  1u    /* replace an activation by tanh, sigmoid, relu or the identity,
                                    or put one on a sum or a product with a weight */
#define RC_MUT_GATE_ADD    2u    /* e -> sigmoid(W_xmK @ x + W_hmK @ h + b_mK) * e, new parameters */
#define RC_MUT_GATE_REMOVE 4u    /* a * b -> a or b */
#define RC_MUT_SKIP_ADD    8u    /* e -> e + v, v the input, a state or a binding of e's width */
#define RC_MUT_SKIP_REMOVE 16u   /* a + b -> a or b, a - b -> a */
#define RC_MUT_SWAP        32u   /* a reference to the input, a state or a binding -> another one */
#define RC_MUT_MIX         64u   /* h + z*(c-h) <-> z*c + (1-z)*h <-> (1-z)*c + z*h, decouple
                                    (z*c + g*h, g a new gate) or couple (a*b + c*d -> a*b + (1-a)*d) */
#define RC_MUT_COMBINE     128u  /* e -> e * v, e - v, v - e, min(e, v) or max(e, v) */
#define RC_MUT_ALL         255u

typedef struct rc_mutate_opts {
    unsigned kinds;       /* RC_MUT_* bits to choose from, uniformly; 0: all */
    int max_tries;        /* candidates tried before giving up; 0: 64 */
    int input_size2;      /* > 0: candidates must also build with this input size (e.g. one
                             other than the hidden size, so that no candidate ties I to H) */
} rc_mutate_opts;

/* The name of one mutation kind ("activation", "gate-add", ...), "" for anything else. */
const char *rc_mut_kind_name(unsigned kind);
/* Mutates a cell once: picks a kind and a site with a generator seeded by `seed` (the
 * same seed gives the same candidate), prints the mutated cell and keeps it when it
 * passes rc_cell_check with input_size (and opts->input_size2) at the cell's hidden
 * size and differs from the cell by rc_cell_canonical_hash; otherwise tries another
 * mutation. o may be NULL. Returns the RC_MUT_* bit applied and the candidate's text in
 * *out_text, or -1 with *out_text NULL and a message in err (the text does not parse, no
 * candidate passed in max_tries tries: the last reason is given, out of memory). */
int rc_cell_mutate(const char *text, size_t len, int input_size, uint64_t seed, const rc_mutate_opts *o,
                   char **out_text, char *err, size_t errlen);
/* The checks a candidate passes: it parses and checks (every state assigned exactly
 * once, widths), builds with input size I at its hidden size, its output (first state)
 * depends on the input and on some state's previous value, that dependence goes round a
 * cycle of states that see the input (a recurrence, not a fixed window), and every other
 * state's previous value reaches the output. 0, or -1 with the reason in err. */
int rc_cell_check(const char *text, size_t len, int input_size, char *err, size_t errlen);
/* The cell printed back as cell-language text (one line per binding and state
 * assignment, no comments); hidden > 0 replaces its hidden size. The text parses to the
 * same graph. NULL on error (message in err). */
char *rc_cell_print(const char *text, size_t len, int hidden, char *err, size_t errlen);
/* The 64-bit hash (FNV-1a) of the cell's canonical text: equal for spellings that differ
 * only in names (cell, bindings, parameters, states after the first), the order of
 * independent lines, the operand order and grouping of + and * and the operands of min
 * and max, and the hidden size. 0 and *hash set, or -1 with a message in err. */
int rc_cell_canonical_hash(const char *text, size_t len, uint64_t *hash, char *err, size_t errlen);
/* The canonical text rc_cell_canonical_hash hashes (for inspection). NULL on error. */
char *rc_cell_canonical_text(const char *text, size_t len, char *err, size_t errlen);
/* The number of parameter scalars of the cell with hidden size `hidden` (> 0; 0: the
 * cell's own) and input size I, counted from the checked widths. -1 on error (the text
 * does not parse, or does not build with that I). */
long long rc_cell_param_count(const char *text, size_t len, int hidden, int input_size, char *err, size_t errlen);
/* The hidden size H >= 1 whose parameter count with input size I is closest to target
 * (the smaller H on a tie), by binary search over H (the count grows with H); when the
 * cell's widths tie H to I (x added to a value of width H), that H. Writes the count to
 * *count (may be NULL). Returns H, or -1 with a message in err (the text does not parse,
 * no hidden size builds with that I). */
int rc_cell_hidden_for_params(const char *text, size_t len, int input_size, long long target, long long *count,
                              char *err, size_t errlen);

/* ---- synthetic data: online handwriting from the Hershey fonts (gen/) ----------------
 * Pen trajectories of text written in the Hershey fonts (Debian's hershey-fonts-data,
 * read at run time: nothing is compiled in), each sample in a style drawn from its seed
 * (slant, scale, spacing, baseline drift, elastic jitter, point rate), and whole data
 * sets of NAME.pen + NAME.gt.txt pairs: the format `recur train` reads, described in
 * docs/DATA.md ("Pen trajectories"). The same seed gives the same bytes. Functions
 * report errors in the caller's err buffer (err may be NULL), naming the file (and its
 * line) or the character at fault; nothing is printed. */

/* One point of a pen trajectory: absolute coordinates (y grows downwards, as on a
 * tablet and in the Hershey fonts); end = 1 on the last point of a stroke (the pen
 * lifts after it), else 0. */
typedef struct rc_pen_point { float x, y; int end; } rc_pen_point;
/* A trajectory: n points in writing order (cap allocated). A zeroed one is empty. */
typedef struct rc_pen_traj { rc_pen_point *pts; size_t n, cap; } rc_pen_traj;
/* Frees a trajectory's points and leaves it empty. */
void rc_pen_traj_free(rc_pen_traj *t);

/* The folder the Hershey faces are read from: $RECUR_HERSHEY_DIR when set and not
 * empty, else /usr/share/hershey-fonts (Debian's hershey-fonts-data). */
const char *rc_hershey_dir(void);

typedef struct rc_hershey_font rc_hershey_font;
/* Reads a Hershey face (.jhf: line k is the glyph of character 32 + k): a name such
 * as "scripts" (the file dir/scripts.jhf; dir NULL: rc_hershey_dir()) or a path
 * containing '/' or ending in ".jhf". NULL on error with a message in err (a missing
 * file says which package to install; a malformed glyph names the file and line). */
rc_hershey_font *rc_hershey_load(const char *face, const char *dir, char *err, size_t errlen);
/* Frees a face (NULL is allowed). */
void rc_hershey_free(rc_hershey_font *f);
/* The face's name: its file name without ".jhf". */
const char *rc_hershey_name(const rc_hershey_font *f);
/* 1 for the connected script faces (scripts, scriptc, cursive), whose letters are
 * joined within a word with the pen down; 0 otherwise. */
int rc_hershey_connected(const rc_hershey_font *f);
/* 1 when the face draws character c (the space included), else 0. */
int rc_hershey_has(const rc_hershey_font *f, int c);
/* A pen lift in a glyph's vertex list: the pair (RC_HERSHEY_PEN_UP, 0) (" R" in the file). */
#define RC_HERSHEY_PEN_UP (-50)
/* The glyph of character c as stored: its left and right bounds (relative to the
 * glyph's centre; the advance is right - left) and its n vertices as 2n values x, y
 * (y downwards), pen lifts included. Any output pointer may be NULL. Returns n, or -1
 * when the face does not draw c. */
int rc_hershey_glyph(const rc_hershey_font *f, int c, int *left, int *right, const int8_t **xy);

/* The ranges a sample's style is drawn from (uniformly unless said otherwise). Lengths
 * are in font units (a capital letter of the Hershey faces is 21 high, a small letter
 * about 9). */
typedef struct rc_pen_style {
    float slant[2];      /* shear, degrees (positive leans right) */
    float rotate;        /* baseline rotation in [-rotate, rotate] degrees */
    float scale[2];      /* output units per font unit */
    float aspect[2];     /* width / height stretch */
    float spacing[2];    /* extra space after each letter (each letter adds N(0, 0.5) more) */
    float word_space[2]; /* a space's advance, times the face's own */
    float size_var;      /* each letter's height scaled by 1 + N(0, size_var) about the baseline */
    float drift;         /* baseline drift: a sine of amplitude in [0, drift] and a random wavelength */
    float jitter;        /* elastic jitter: a smooth random displacement field (three sine waves
                            of 12..40 units' wavelength) of amplitude up to about jitter */
    float step[2];       /* the mean distance between points along a straight stroke (curves
                            are written slower: speed ~ curvature^(-1/3), at most 3.3x) */
    float speed_var;     /* how much that distance varies along a stroke (log scale; 0: even) */
    float defer;         /* connected faces: the probability that a word's dots and crossings
                            (i, j, t, x ...) are written after the word, not after their letter */
} rc_pen_style;
/* The default style ranges (docs/DATA.md lists them). */
rc_pen_style rc_gen_pen_style_default(void);
/* Writes text (ASCII, at least one character, every character drawn by the face) in
 * face f as one trajectory in a style drawn from s (NULL: the default) with a
 * generator seeded by seed, into *out (its old points are freed). Letters are placed
 * by their bounds; in a connected face the pen stays down from letter to letter of a
 * word (a joining stroke from one letter's exit to the next one's entry); the pen
 * lifts between words and between strokes. Coordinates are rounded to 0.01, as
 * rc_gen_pen_write writes them. RC_OK, or RC_ERR_ARG (a character the face lacks,
 * named with its position; an empty text; a bad style range) or RC_ERR_NOMEM, with
 * a message in err; *out is then empty. */
rc_status rc_gen_pen_render(const rc_hershey_font *f, const char *text, const rc_pen_style *s, uint64_t seed,
                            rc_pen_traj *out, char *err, size_t errlen);
/* Writes base + ".pen" (the trajectory, docs/DATA.md; comment, when not NULL, as its
 * second line "# comment", e.g. the face) and base + ".gt.txt" (text and a newline),
 * each through a temporary file and a rename. RC_OK, or RC_ERR_ARG (an empty
 * trajectory or text, a text or comment holding a line end, a coordinate that is not
 * finite) or RC_ERR_IO, with a message naming the file. */
rc_status rc_gen_pen_write(const char *base, const rc_pen_traj *t, const char *text, const char *comment, char *err,
                           size_t errlen);

/* What rc_gen_pen_dataset makes. */
typedef struct rc_gen_pen_opts {
    const char *out;           /* the data set's folder: created; its train/, valid/, test/ (and
                                  test-face/) must not exist yet */
    const char *text;          /* the text: a file, or a folder of files (read in name order,
                                  skipping hidden files, symbolic links and fortune .dat
                                  indexes); NULL: /usr/share/games/fortunes */
    const char *faces;         /* comma-separated faces of train/valid/test; NULL: the default
                                  "scripts,scriptc,cursive,futural,rowmans,timesi" */
    const char *hold_out_face; /* a face for test-face/ only (never in training), or NULL */
    const char *font_dir;      /* NULL: rc_hershey_dir() */
    int count;                 /* training samples (>= 1) */
    int valid, test;           /* samples of valid/ and test/ (>= 1 each) */
    int test_face;             /* samples of test-face/ (with hold_out_face); 0: as many as test */
    int min_len, max_len;      /* characters per line, 1 <= min_len <= max_len */
    uint64_t seed;
    rc_pen_style style;
} rc_gen_pen_opts;
/* Defaults: count 1000, valid 100, test 100, test_face 0 (as test), lines of 10..40
 * characters, seed 1, the default style, NULLs elsewhere. */
rc_gen_pen_opts rc_gen_pen_defaults(void);

/* What rc_gen_pen_dataset did. */
typedef struct rc_gen_pen_stats {
    size_t corpus_lines;       /* lines of text read */
    size_t words, words_skipped;   /* words kept, and dropped for a character some face lacks */
    size_t distinct_lines;     /* distinct lines of min_len..max_len characters cut from them */
    int charset;               /* characters every face draws */
    int samples[4];            /* written to train, valid, test, test-face */
    int texts[4];              /* distinct texts among them */
    size_t dropped_eval;       /* held-out lines dropped for a character no training line has */
    size_t points;             /* points written in all */
} rc_gen_pen_stats;
/* Makes a data set of connected handwriting: lines cut from the text (words keeping
 * only characters every face draws, packed into lines of min_len..max_len
 * characters), each distinct line in one split only (no valid or test text appears
 * in train, and each of their characters occurs in train), rendered by
 * rc_gen_pen_render in a face drawn per sample and written as out/SPLIT/NNNNNN.pen +
 * .gt.txt (the .pen's comment names the face), with out/gen-pen.txt recording the
 * options and counts. test-face/ writes the texts
 * of test/ in hold_out_face. Faces other than the Latin ones (greek, cyrillic,
 * symbols ...) are refused: their glyphs would not match the transcripts. st may be
 * NULL. RC_OK, or an error with a message in err (a bad option, a missing face or
 * text, too little text for the held-out splits, a file that cannot be written). */
rc_status rc_gen_pen_dataset(const rc_gen_pen_opts *o, rc_gen_pen_stats *st, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif /* RECUR_H */
