/* words: a word language model over a text file (or a folder of them), or over given
 * training, validation and test files (as PTB comes). */
#include <math.h>
#include "kind.h"
#include "task.h"

static int load(task *t, const char *path, char *err, size_t len)
{
    const config *c = &t->cfg;
    t->voc = &t->text.voc;
    return kind_opt_path(c->valid)
               ? corpus_words(&t->text, path, kind_opt_path(c->valid), kind_opt_path(c->test), c->max_vocab, err, len)
               : corpus_words_split(&t->text, path, c->valid_frac, c->test_frac, c->max_vocab, err, len);
}

static int model(const task *t, rc_model_opts *o, char *msg, size_t len)
{
    return task_lm_model(t, o, msg, len);
}

static double metric_of(const kind_stats *s)
{
    return exp(s->sum / s->count);   /* perplexity */
}

const data_kind kind_words = { "words", "ppl", "words of text: a language model (perplexity)", KIND_LM | KIND_FOLDER,
                               load, model, NULL, metric_of, NULL };
