/* music: polyphonic piano rolls (JSON of 88-key frames), next-frame prediction with 88
 * sigmoids (Boulanger-Lewandowski et al. 2012); the metric is the frame NLL. */
#include "kind.h"
#include "task.h"

static int load(task *t, const char *path, char *err, size_t len)
{
    return music_load(&t->seq, path, err, len);
}

static int model(const task *t, rc_model_opts *o, char *msg, size_t len)
{
    (void)msg;
    (void)len;
    o->input_size = o->output_size = t->seq.set[DATA_TRAIN].F;
    o->head = RC_HEAD_SIGMOID;
    return 0;
}

static double metric_of(const kind_stats *s)
{
    return s->sum / s->count;
}

const data_kind kind_music = { "music", "nll", "piano-roll JSON: next-frame prediction (frame NLL)", 0, load, model, NULL,
                               metric_of, NULL };
