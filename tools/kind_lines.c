/* lines: text line images, folders of NAME.png + NAME.gt.txt (docs/DATA.md; recur
 * generate lines writes them): each pixel column a frame of --line-height values, the
 * transcript the CTC target (Breuel et al. 2013, "High-performance OCR for printed
 * English and Fraktur using LSTM networks"); the metric is the character error rate. */
#include <stdio.h>
#include <string.h>
#include "data_lines.h"
#include "transcribe.h"

static int read_folder(const task *t, const char *dir, vocab *alphabet, seqset *frames, int32_t **lab, size_t **lab_off,
                       char ***names, char *err, size_t len)
{
    lines_opts o = { .height = t->cfg.line_height, .invert = 1, .max_bytes = 0 };
    lineset ls;
    memset(&ls, 0, sizeof ls);
    if (lines_load(&ls, dir, alphabet, &o, err, len) != 0) return -1;
    *frames = ls.frames;            /* the set's arrays move to the caller */
    *lab = ls.lab;
    *lab_off = ls.loff;
    *names = ls.paths;
    memset(&ls.frames, 0, sizeof ls.frames);
    ls.lab = NULL;
    ls.loff = NULL;
    ls.paths = NULL;
    lineset_free(&ls);
    return 0;
}

static int load(task *t, const char *path, char *err, size_t len)
{
    return transcribe_load(t, path, read_folder, err, len);
}

const data_kind kind_lines = { "lines", "cer", "a folder of NAME.png + NAME.gt.txt (or train/, valid/, test/ of them): "
                               "text line images transcribed with CTC (character error rate)",
                               KIND_DIR | KIND_CTC, load, transcribe_model, transcribe_eval_batch, transcribe_cer,
                               "pixel columns of the image resized to --line-height rows" };
