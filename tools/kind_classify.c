/* classify: `label<TAB>tokens` lines, one label per sequence (at its last step). */
#include "kind.h"
#include "task.h"

static int load(task *t, const char *path, char *err, size_t len)
{
    const config *c = &t->cfg;
    t->voc = &t->seq.words;
    t->labels = &t->seq.labels;
    return text_class_load(&t->seq, path, kind_opt_path(c->valid), kind_opt_path(c->test), c->max_vocab, err, len);
}

static int model(const task *t, rc_model_opts *o, char *msg, size_t len)
{
    return task_label_model(t, o, 1, msg, len);
}

static double metric_of(const kind_stats *s)
{
    return s->correct / s->count;
}

const data_kind kind_classify = { "classify", "acc", "label<TAB>tokens lines: a class per sequence (accuracy)",
                                  KIND_LABELS, load, model, task_count_correct, metric_of, NULL };
