/* pen: online handwriting, folders of NAME.pen + NAME.gt.txt (docs/DATA.md; recur
 * generate pen writes them): each point a frame (dx, dy, end of stroke), the transcript
 * the CTC target (Graves et al. 2009, "A novel connectionist system for unconstrained
 * handwriting recognition"); the metric is the character error rate. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "data_pen.h"
#include "transcribe.h"

/* NAME becomes dir/NAME.pen in place: the file a user knows the sample by. */
static int name_paths(char **names, int n, const char *dir, char *err, size_t len)
{
    for (int i = 0; i < n; i++) {
        size_t l = strlen(dir) + strlen(names[i]) + 6;
        char *p = malloc(l);
        if (!p) {
            snprintf(err, len, "%s: out of memory for the samples' names", dir);
            return -1;
        }
        snprintf(p, l, "%s/%s.pen", dir, names[i]);
        free(names[i]);
        names[i] = p;
    }
    return 0;
}

static int read_folder(const task *t, const char *dir, vocab *alphabet, seqset *frames, int32_t **lab, size_t **lab_off,
                       char ***names, char *err, size_t len)
{
    (void)t;
    int built = alphabet->n == 0;
    if (built && pen_alphabet_build(alphabet, dir, err, len) != 0) return -1;
    pen_set ps;
    memset(&ps, 0, sizeof ps);
    if (pen_set_load(&ps, dir, alphabet, PEN_NORM_SAMPLE, err, len) != 0 ||
        name_paths(ps.names, ps.n, dir, err, len) != 0) {
        pen_set_free(&ps);
        if (built) vocab_free(alphabet);
        return -1;
    }
    *frames = ps.x;                 /* the set's arrays move to the caller */
    *lab = ps.lab;
    *lab_off = ps.lab_off;
    *names = ps.names;
    memset(&ps.x, 0, sizeof ps.x);
    ps.lab = NULL;
    ps.lab_off = NULL;
    ps.names = NULL;
    pen_set_free(&ps);
    return 0;
}

static int load(task *t, const char *path, char *err, size_t len)
{
    return transcribe_load(t, path, read_folder, err, len);
}

const data_kind kind_pen = { "pen", "cer", "a folder of NAME.pen + NAME.gt.txt (or train/, valid/, test/ of them): "
                             "handwriting transcribed with CTC (character error rate)",
                             KIND_DIR | KIND_CTC, load, transcribe_model, transcribe_eval_batch, transcribe_cer,
                             "points of the trajectory" };
