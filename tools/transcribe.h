/* What the transcription kinds (pen, lines) share: folders of samples, each a frame
 * sequence and its transcript as alphabet ids; a CTC head; the character and word
 * error rates of greedy decoding as the metric. One file per kind says how a folder is
 * read (kind_pen.c, kind_lines.c); this is the rest. */
#ifndef RC_TOOLS_TRANSCRIBE_H
#define RC_TOOLS_TRANSCRIBE_H

#include <stddef.h>
#include <stdint.h>
#include "kind.h"
#include "task.h"

/* Reads one folder into *frames (a feature set, SEQ_TGT_NONE) with its samples' labels
 * (*lab, *lab_off [n+1]; alphabet ids 0..n-1, not shifted) and files (*names: n new
 * strings, the path of each sample's frames file); with an empty alphabet
 * (alphabet->n == 0) the alphabet is first built from this folder's transcripts (the
 * training folder). 0, or -1 with a message and nothing kept. */
typedef int (*transcribe_read_fn)(const task *t, const char *dir, vocab *alphabet, seqset *frames, int32_t **lab,
                                  size_t **lab_off, char ***names, char *err, size_t len);

/* Loads the splits: `path` holding train/ (and valid/, test/) folders, or being the
 * training folder itself; --valid / --test name folders and win over path's. Without a
 * validation folder the last --valid-frac of the training samples (in name order) are
 * held out, likewise --test-frac for test. Labels are stored shifted by one: class 0
 * is CTC's blank; each split's samples' files go to t->names. 0, or -1 with err. */
int transcribe_load(task *t, const char *path, transcribe_read_fn read, char *err, size_t len);
/* The model: frames in, alphabet + 1 classes out (the blank first), a CTC head. */
int transcribe_model(const task *t, rc_model_opts *o, char *msg, size_t len);
/* The eval_batch hook: decoding of the last forward's logits (greedy, or t->beam's
 * best hypothesis when set), character edits against the transcripts (edits, ref) and
 * word edits (word_edits, word_ref). */
int transcribe_eval_batch(task *t, const rc_batch *b, kind_stats *s, char *msg, size_t len);
/* The character error rate: edits / reference characters (NaN before any evaluation). */
double transcribe_cer(const kind_stats *s);
/* The text of labels ids[0..n) (shifted by one as stored; the blank has none) in the
 * task's alphabet: a new NUL-terminated string, or NULL when out of memory. */
char *transcribe_text(const task *t, const int32_t *ids, int n);

#endif
