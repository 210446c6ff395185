/* Internal: the training-data layer. Text corpora and their vocabularies, B-stream
 * batching for truncated-BPTT language models (data_text.c); sets of variable-length
 * sequences, their loaders (polyphonic music JSON, CSV time series, labelled text),
 * shuffled and bucketed batching and collation into rc_batch (data_seq.c).
 *
 * Errors are values: a function returning int gives 0 (or a count / an id, as stated),
 * or -1 with a message in err (err may be NULL or errlen 0 to drop it). Messages name
 * the file, the line (and column when it helps) and what was wrong, as in
 * "data.json:3:17: note 20 out of range 21..108". Nothing is printed, nothing leaks on
 * an error path. A function that fills a struct leaves it empty (all zero, so its
 * *_free is a safe no-op) when it fails; a zeroed struct is always a valid empty one.
 *
 * Every shuffle uses the seeded generator of graph/rng.h, so orders depend only on the
 * seed (and the epoch number).
 */
#ifndef RC_DATA_H
#define RC_DATA_H

#include <stddef.h>
#include <stdint.h>
#include "recur.h"

/* Indices of the three parts of a data set. */
enum { DATA_TRAIN = 0, DATA_VALID = 1, DATA_TEST = 2 };

/* The out-of-vocabulary token and the end-of-line token of word corpora. */
#define DATA_UNK "<unk>"
#define DATA_EOS "<eos>"

/* ---- shared helpers (used by both data_*.c) ------------------------------------ */

/* printf-style message into err (when err and errlen allow); always returns -1. */
int data_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Reads a whole file into a new buffer (NUL-terminated; *len excludes the NUL).
 * An empty file is an error ("path: empty file"), as is a missing one. */
int data_read_file(const char *path, char **buf, size_t *len, char *err, size_t errlen);

/* ---- vocabularies ---------------------------------------------------------------
 * Tokens are byte strings (a character vocabulary holds one-byte tokens, any byte
 * including '\0'), ids 0..n-1; token -> id through an open-addressing hash table. */

typedef struct vocab {
    int n;              /* tokens */
    int chars;          /* 1: character level (text is the tokens' bytes joined) */
    char **tok;         /* [n] id -> token (NUL-terminated; see len for '\0' tokens) */
    int *len;           /* [n] token lengths in bytes */
    int cap;            /* allocated entries of tok and len */
    int32_t *slot;      /* [nslot] hash table of ids, -1 = empty */
    int nslot;          /* a power of two, > 2n (0 when no table yet) */
} vocab;

/* Frees a vocabulary's memory and leaves it empty. */
void vocab_free(vocab *v);
/* The id of token s (len bytes), adding it when new. Returns the id, or -1 (out of
 * memory, empty token, too many tokens). */
int vocab_add(vocab *v, const char *s, size_t len, char *err, size_t errlen);
/* The id of token s (len bytes), or -1 when absent. */
int vocab_find(const vocab *v, const char *s, size_t len);
/* vocab_find of a NUL-terminated string. */
int vocab_id(const vocab *v, const char *s);
/* The token of id (NUL-terminated) and its length in *len (may be NULL), or NULL when
 * id is out of range. */
const char *vocab_token(const vocab *v, int id, size_t *len);
/* A copy of src into *dst (which is overwritten, not freed). */
int vocab_copy(vocab *dst, const vocab *src, char *err, size_t errlen);

/* The text form: one token per line in id order, each line ended by '\n'. Within a
 * token, '\\' is written "\\\\", newline "\\n", tab "\\t", carriage return "\\r", other
 * bytes below 0x20 and 0x7f as "\\xHH"; every other byte (UTF-8 included) is written as
 * it is. *out is a new NUL-terminated buffer of *outlen bytes. */
int vocab_to_text(const vocab *v, char **out, size_t *outlen, char *err, size_t errlen);
/* Parses the text form (len bytes; `name` is used in messages, e.g. a file name):
 * ids in line order; an empty line, a duplicate token or a bad escape is an error
 * naming the line. The last line's '\n' may be missing. v->chars is set when every
 * token is one byte long (a word vocabulary from a corpus always holds "<eos>"); the
 * caller may overwrite it. */
int vocab_from_text(vocab *v, const char *text, size_t len, const char *name,
                    char *err, size_t errlen);
/* vocab_to_text into a file (written to path + ".tmp", then renamed over path). */
int vocab_save(const vocab *v, const char *path, char *err, size_t errlen);
/* vocab_from_text of a file. */
int vocab_load(vocab *v, const char *path, char *err, size_t errlen);
/* Text of ids: character vocabularies join the bytes; word vocabularies join the
 * words by single spaces, writing "<eos>" as a newline. *out is a new NUL-terminated
 * buffer of *outlen bytes. An id out of range is an error. */
int vocab_decode(const vocab *v, const int32_t *ids, size_t n, char **out, size_t *outlen,
                 char *err, size_t errlen);
/* Ids of a text (e.g. a sampling prime): character vocabularies map each byte (a byte
 * not in the vocabulary is an error naming its offset); word vocabularies split at
 * whitespace, give "<eos>" at each '\n' (when in the vocabulary) and map unknown words
 * to "<unk>" (an error when the vocabulary has none). *ids is a new array of *n ids
 * (NULL when *n is 0). */
int vocab_encode(const vocab *v, const char *text, size_t len, int32_t **ids, size_t *n,
                 char *err, size_t errlen);

/* Counting tokens to build a vocabulary: add tokens (each gets a provisional id in
 * order of first appearance), then finish into a sorted vocabulary. */
typedef struct vocab_counter {
    vocab seen;         /* provisional ids: first-appearance order */
    size_t *count;      /* [seen.n] occurrences */
    int cap;
} vocab_counter;

typedef enum vocab_order {
    VOCAB_BY_FREQ = 0,  /* most frequent first; ties in byte order (as TensorFlow's PTB reader) */
    VOCAB_SORTED = 1    /* byte order; numeric order when every token is a decimal integer */
} vocab_order;

/* Counts one occurrence of token s; returns its provisional id or -1. */
int counter_add(vocab_counter *c, const char *s, size_t len, char *err, size_t errlen);
/* Frees the counter. */
void counter_free(vocab_counter *c);
/* Builds the vocabulary *out (overwritten) from the counts, in `order`. With
 * max_vocab > 0 and more distinct tokens than that, the vocabulary is the first
 * max_vocab tokens of the order when "<unk>" is among them, otherwise the first
 * max_vocab - 1 and "<unk>" last; dropped tokens map to "<unk>". Without truncation
 * "<unk>" is present only when it was counted. remap (may be NULL) receives, for each
 * provisional id, its final id. *unk (may be NULL) receives the id of "<unk>" or -1.
 * The counter is left as it was. */
int counter_finish(const vocab_counter *c, vocab_order order, int max_vocab, vocab *out,
                   int32_t *remap, int *unk, char *err, size_t errlen);

/* ---- text corpora ---------------------------------------------------------------- */

typedef struct corpus {
    vocab voc;
    int32_t *ids[3];    /* DATA_TRAIN, DATA_VALID, DATA_TEST token ids (NULL when empty) */
    size_t n[3];        /* their lengths */
    int unk;            /* id of "<unk>", or -1 */
    int eos;            /* id of "<eos>", or -1 */
} corpus;

/* Frees a corpus and leaves it empty. */
void corpus_free(corpus *c);
/* A character corpus: the bytes of a file; the vocabulary is the distinct bytes of the
 * whole file in byte order (voc.chars = 1). Split contiguously: n_valid =
 * floor(n * valid_frac), n_test = floor(n * test_frac), train the first
 * n - n_valid - n_test bytes, then valid, then test (char-rnn: 0.05, 0). Fractions are
 * in [0, 1) with a sum below 1, and the train part must not be empty. */
int corpus_char(corpus *c, const char *path, double valid_frac, double test_frac,
                char *err, size_t errlen);
/* A word corpus from a training file and optional valid/test files (NULL: empty part).
 * Words are separated by whitespace (space, \t, \r, \v, \f); each '\n' ends a line
 * and gives "<eos>" (Mikolov's PTB convention; a last line without '\n' gets one
 * when it holds a word). The vocabulary comes from the training file only, counted
 * by counter_finish with VOCAB_BY_FREQ and max_vocab (0: no limit). Words of
 * valid/test not in it map to "<unk>", which is appended to the vocabulary when it
 * is needed and absent. */
int corpus_words(corpus *c, const char *train, const char *valid, const char *test,
                 int max_vocab, char *err, size_t errlen);
/* corpus_words of one file split by lines: the last floor(L * test_frac) of its L
 * lines are test, the floor(L * valid_frac) before them valid, the rest train. */
int corpus_words_split(corpus *c, const char *path, double valid_frac, double test_frac,
                       int max_vocab, char *err, size_t errlen);

/* ---- B-stream batching for truncated BPTT (TensorFlow's PTB reader) ----------------
 * batch_len = n / B; stream b is ids[b*batch_len, (b+1)*batch_len); epoch_size =
 * (batch_len - 1) / T; batch i holds columns [i*T, (i+1)*T) of the streams as inputs
 * and the same shifted by one as targets, time-major: tokens[t*B + b] =
 * ids[b*batch_len + i*T + t], targets[t*B + b] = ids[b*batch_len + i*T + t + 1].
 * Consecutive batches continue each stream (carry the state across them). */

typedef struct lm_stream {
    const int32_t *ids; /* borrowed: must outlive the stream */
    size_t n;
    int B, T;
    size_t batch_len;   /* n / B */
    size_t count;       /* batches per epoch: (batch_len - 1) / T */
    size_t pos;         /* the next batch of stream_next */
} lm_stream;

/* Sets up a stream over n ids; an error when B < 1, T < 1 or count would be 0. */
int stream_init(lm_stream *s, const int32_t *ids, size_t n, int B, int T, char *err, size_t errlen);
/* Batches per epoch. */
size_t stream_count(const lm_stream *s);
/* Batch i: tokens and targets, each [T*B]. An error when i >= count. */
int stream_get(const lm_stream *s, size_t i, int32_t *tokens, int32_t *targets,
               char *err, size_t errlen);
/* The batch at the position, advancing it: 1, or 0 (nothing written) at the epoch's
 * end. stream_set_pos(s, 0, ...) starts the next epoch. */
int stream_next(lm_stream *s, int32_t *tokens, int32_t *targets);
/* The position (the next batch index): saved in checkpoints. */
size_t stream_pos(const lm_stream *s);
/* Restores a position (0..count). */
int stream_set_pos(lm_stream *s, size_t pos, char *err, size_t errlen);

/* ---- sequence sets -----------------------------------------------------------------
 * n sequences of variable length, stored back to back: per-step float features
 * [steps x F], or 0/1 features packed as bits (a binary set: 8 bytes per 64 features,
 * expanded to floats only when a batch is collated), or (F == 0) per-step int32
 * tokens; and targets of one kind. */

typedef enum seq_target {
    SEQ_TGT_NONE = 0,   /* no targets */
    SEQ_TGT_CLASS,      /* one int32 class per sequence (batched as targets [B], last step) */
    SEQ_TGT_TAGS,       /* one int32 class per step (targets [T*B]) */
    SEQ_TGT_FLOAT,      /* K floats per step (y [T*B*K]): multi-hot, regression */
    SEQ_TGT_NEXT,       /* the next step of the sequence itself: a stored sequence of L steps
                           gives L-1 steps, input step t, target step t+1 (y [T*B*F] for
                           features, targets [T*B] for tokens) */
    SEQ_TGT_LABELS      /* a label sequence per sequence, of its own length (unsegmented:
                           CTC): batched as labels [B*S] padded, label_lengths [B], S the
                           batch's longest; attached with seqset_attach_labels */
} seq_target;

typedef struct seqset {
    int n;              /* sequences */
    int F;              /* features per step; 0: the steps are tokens */
    int K;              /* target floats per step (SEQ_TGT_FLOAT; F with SEQ_TGT_NEXT on features) */
    seq_target kind;
    size_t *off;        /* [n+1] offsets of each sequence's stored steps */
    float *x;           /* [off[n] * F] features, or NULL (tokens, or a binary set) */
    uint64_t *xb;       /* binary set: [off[n] * words] feature k of a step is bit k % 64
                           of its word k / 64; NULL otherwise */
    int words;          /* binary set: 64-bit words per step, ceil(F / 64); 0 otherwise */
    int32_t *tok;       /* [off[n]] tokens, or NULL */
    int32_t *cls;       /* [n] SEQ_TGT_CLASS */
    int32_t *tag;       /* [off[n]] SEQ_TGT_TAGS */
    float *y;           /* [off[n] * K] SEQ_TGT_FLOAT */
    int32_t *lab;       /* SEQ_TGT_LABELS: every sequence's labels, back to back */
    size_t *lab_off;    /* SEQ_TGT_LABELS: [n+1] sequence i's labels are lab[lab_off[i], lab_off[i+1]) */
    char **names;       /* [F] feature names (a CSV header), or NULL */
    int cap_n;          /* allocated sequences */
    size_t cap_steps;   /* allocated steps */
} seqset;

/* An empty set: F > 0 features per step, or F == 0 for tokens; K > 0 for SEQ_TGT_FLOAT
 * (ignored otherwise). */
int seqset_init(seqset *s, int F, seq_target kind, int K, char *err, size_t errlen);
/* An empty binary set: F > 0 features per step, each 0 or 1, stored as bits; kind
 * SEQ_TGT_NONE or SEQ_TGT_NEXT (targets are the next step's bits). Filled with
 * seqset_add_bits; collates like a float set. */
int seqset_init_binary(seqset *s, int F, seq_target kind, char *err, size_t errlen);
/* Frees a set and leaves it empty. */
void seqset_free(seqset *s);
/* Makes s (SEQ_TGT_NONE, n sequences) a SEQ_TGT_LABELS set, taking ownership of lab
 * (malloc'ed, lab_off[n] values) and lab_off (malloc'ed, [n+1], non-decreasing from 0),
 * also on error (then they are freed and s is unchanged). */
int seqset_attach_labels(seqset *s, int32_t *lab, size_t *lab_off, char *err, size_t errlen);
/* Appends a sequence of len stored steps (>= 1; >= 2 with SEQ_TGT_NEXT): x [len*F]
 * or tokens [len]; per kind cls, tags [len] or y [len*K] (others ignored). Copied.
 * An error on a binary set. Growing beyond what memory (or size_t) holds is an error
 * saying how many steps and bytes were asked for. */
int seqset_add(seqset *s, int len, const float *x, const int32_t *tokens, int32_t cls,
               const int32_t *tags, const float *y, char *err, size_t errlen);
/* Appends a sequence of len steps to a binary set: bits [len * words] (bits at
 * feature F and above must be 0). Copied. Errors as seqset_add. */
int seqset_add_bits(seqset *s, int len, const uint64_t *bits, char *err, size_t errlen);
/* Steps of sequence i as batched (stored steps, minus 1 with SEQ_TGT_NEXT); 0 when i
 * is out of range. */
int seqset_len(const seqset *s, int i);
/* The sum of seqset_len over the set. */
size_t seqset_steps(const seqset *s);
/* Bytes the set holds in its arrays (allocated capacity included): what a loader's
 * memory is checked against. */
size_t seqset_bytes(const seqset *s);
/* The features of stored step t (0..stored length - 1) of sequence seq, as F floats
 * into out[F]. An error for a token set or an index out of range. */
int seqset_step_x(const seqset *s, int seq, int t, float *out, char *err, size_t errlen);
/* Windows for next-row prediction from sequence `seq` of a feature set src (e.g. a
 * CSV series of R rows): window i covers rows [i*S, i*S + T + 1), so its input is rows
 * [i*S, i*S + T) and its target rows [i*S + 1, i*S + T + 1); windows while
 * i*S + T + 1 <= R. *out is a new SEQ_TGT_NEXT set of T-step sequences (F columns,
 * names copied). An error when R < T + 1 or src is a binary set. */
int seqset_windows(seqset *out, const seqset *src, int seq, int T, int S, char *err, size_t errlen);

/* Buffers a collated batch points into (grown as needed; reused across batches). */
typedef struct batch_buf {
    float *x, *y;
    int32_t *tokens, *lengths, *targets, *labels, *label_lengths;
    size_t cap_x, cap_y, cap_tok, cap_len, cap_tgt, cap_lab, cap_lablen;
} batch_buf;

/* Frees the buffers and leaves them empty. */
void batch_buf_free(batch_buf *b);
/* Collates sequences idx[0..B) of s into *out (pointing into buf), time-major with
 * T = the longest length: x/tokens padded with 0, targets with -1, y with 0;
 * lengths[b] the sequence's length. Per kind: CLASS targets [B]; TAGS and NEXT on
 * tokens targets [T*B]; FLOAT y [T*B*K]; NEXT on features y [T*B*F]; LABELS labels
 * [B*S] (padded with 0, S the longest of the batch) with label_lengths [B]. A binary set's
 * bits become 0.0f/1.0f. A batch too large for memory (or size_t) is an error giving
 * B, T and the bytes it needs. */
int seqset_collate(const seqset *s, const int32_t *idx, int B, batch_buf *buf, rc_batch *out,
                   char *err, size_t errlen);

/* ---- loaded data sets -------------------------------------------------------------- */

typedef struct seqdata {
    seqset set[3];      /* DATA_TRAIN, DATA_VALID, DATA_TEST (n == 0 when absent) */
    vocab words;        /* text formats: input tokens */
    vocab labels;       /* text formats: class labels or tags */
    int nseq[3];        /* sequences in the input (music: before dropping any) */
    size_t frames[3];   /* music: frames before the next-step shift; text: tokens */
} seqdata;

/* Frees a data set and leaves it empty. */
void seqdata_free(seqdata *d);
/* Polyphonic music JSON: {"train": [seq, ...], "valid": [...], "test": [...]}, a
 * sequence a list of steps, a step a list of MIDI notes 21..108 (an empty list is
 * silence). "train" is required, "valid"/"test" optional, other keys are errors. Each
 * part becomes a binary SEQ_TGT_NEXT set of 88-key frames (key k = note 21 + k; 16
 * bytes a frame, so memory follows the file's size):
 * input frame t, target frame t+1, so L frames give L-1 steps; sequences of fewer
 * than 2 frames are dropped (still counted in nseq and frames). Notes are JSON
 * numbers read whatever the locale (60.0 and 6e1 are note 60). Errors name
 * line:column. */
int music_load(seqdata *d, const char *path, char *err, size_t errlen);
/* A CSV time series: comma-separated finite decimal numbers ('.' the decimal point
 * whatever the locale; no hex, inf or nan), every row with the same number of
 * columns; the first line is a header (its fields become names) when any of its
 * fields is not a number. Blank lines are skipped, "\r\n" accepted. *out is a
 * feature set (SEQ_TGT_NONE) holding one sequence of all rows; see seqset_windows. */
int csv_load(seqset *out, const char *path, char *err, size_t errlen);
/* Sequence classification text: each non-blank line "label<TAB>w1 w2 ...". The word
 * vocabulary (VOCAB_BY_FREQ, max_vocab, "<unk>" for valid/test as in corpus_words) and
 * the label vocabulary (VOCAB_SORTED) come from the training file; a label of
 * valid/test not seen in training is an error. Sets: tokens, SEQ_TGT_CLASS. */
int text_class_load(seqdata *d, const char *train, const char *valid, const char *test,
                    int max_vocab, char *err, size_t errlen);
/* Sequence labelling text: each non-blank line "w1/tag1 w2/tag2 ..." (split at each
 * token's last '/'). Word and tag vocabularies as in text_class_load; an unseen tag in
 * valid/test is an error. Sets: tokens, SEQ_TGT_TAGS. */
int text_tags_load(seqdata *d, const char *train, const char *valid, const char *test,
                   int max_vocab, char *err, size_t errlen);

/* ---- batching with shuffling and bucketing ----------------------------------------
 * An epoch's order is a permutation of the set's sequences; batch j is
 * order[j*B, min(n, (j+1)*B)) (only the last batch may be short). With shuffle, the
 * order of epoch e comes from a generator seeded by (seed, e) alone: a Fisher-Yates
 * shuffle; with bucket > 1, each chunk of bucket*B consecutive sequences is then
 * sorted by length (stable), and the full batches are shuffled (the short batch stays
 * last). Without shuffle: the identity (then sorted in chunks when bucket > 1). */

typedef struct batcher {
    const seqset *set;  /* borrowed */
    int B, bucket, shuffle;
    uint64_t seed;
    int epoch;          /* the epoch whose order is held */
    int pos;            /* the next batch of batcher_next */
    int count;          /* batches per epoch */
    int32_t *order;     /* [set->n] */
    batch_buf buf;
} batcher;

/* A batcher of batch size B over s, at epoch 0, position 0. */
int batcher_init(batcher *b, const seqset *s, int B, int bucket, int shuffle, uint64_t seed,
                 char *err, size_t errlen);
/* Frees the batcher (not the set). */
void batcher_free(batcher *b);
/* Batches per epoch: ceil(n / B). */
int batcher_count(const batcher *b);
/* Makes the order of epoch e (>= 0) and sets the position to 0. */
int batcher_set_epoch(batcher *b, int epoch, char *err, size_t errlen);
/* Collates batch j (0..count-1) of the current order; *out is valid until the next
 * collation or batcher_free. */
int batcher_get(batcher *b, int j, rc_batch *out, char *err, size_t errlen);
/* Collates the batch at the position and advances: 1, 0 at the epoch's end (then call
 * batcher_set_epoch(b, b->epoch + 1)), or -1. */
int batcher_next(batcher *b, rc_batch *out, char *err, size_t errlen);
/* The current order ([set->n]) and, in *epoch and *pos (may be NULL), the epoch and
 * position: what a checkpoint stores. */
const int32_t *batcher_state(const batcher *b, int *epoch, int *pos);
/* Restores a state: order (n entries, must equal the set's size and be a permutation;
 * NULL: regenerated from the seed and epoch), epoch and position (0..count). */
int batcher_restore(batcher *b, int epoch, int pos, const int32_t *order, int n,
                    char *err, size_t errlen);
/* Padding of the current order: the sum over batches of T_j * B_j - (their lengths). */
size_t batcher_padding(const batcher *b);

#endif
