/* chars: a character language model over a text file (or a folder of them). */
#include <math.h>
#include "kind.h"
#include "task.h"

static int load(task *t, const char *path, char *err, size_t len)
{
    t->voc = &t->text.voc;
    return corpus_char(&t->text, path, t->cfg.valid_frac, t->cfg.test_frac, err, len);
}

static int model(const task *t, rc_model_opts *o, char *msg, size_t len)
{
    return task_lm_model(t, o, msg, len);
}

static double metric_of(const kind_stats *s)
{
    return s->sum / s->count / log(2.0);   /* bits per character */
}

const data_kind kind_chars = { "chars", "bpc", "characters of text: a language model (bits per character)",
                               KIND_LM | KIND_FOLDER, load, model, NULL, metric_of, NULL };
