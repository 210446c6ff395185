/* Internal: online handwriting data: folders of NAME.pen + NAME.gt.txt pairs
 * (train/data_pen.c). The format (docs/DATA.md "Pen trajectories"):
 *
 *   NAME.pen     the line "#pen 1" (anything may follow on it after a space), then one
 *                point per line "x y end": absolute coordinates (decimal numbers, '.'
 *                as the decimal point whatever the locale, y downwards) and end = 1 on
 *                the last point of a stroke (the pen lifts after it), else 0; blank
 *                lines and lines starting with '#' are ignored. The last point ends its
 *                stroke whatever its flag says.
 *   NAME.gt.txt  the transcript: UTF-8, one line (a final "\n" or "\r\n" allowed), not
 *                empty, no control characters (the OCRopus / Tesseract / Calamari
 *                convention of line images).
 *
 * The file holds absolute points as a tablet records them (IAM-OnDB's strokes), so
 * rounding never accumulates and the file plots as it is; the loader turns them into
 * the frames Graves et al. fed their BLSTM-CTC: frame t = (dx, dy, end) with
 * (dx, dy) = point t - point t-1 (0, 0 for the first point) and end point t's flag.
 * PEN_NORM_SAMPLE divides dx and dy of a sample by one number: the root mean square
 * length of its pen-down steps (steps within a stroke), so the writing size and the
 * point rate of a device do not matter, angles and proportions are kept, and nothing
 * needs to be stored for evaluation; the pen-up jumps between strokes are divided by
 * the same number.
 *
 * Labels are ids in an alphabet: a vocabulary (train/data.h) whose tokens are the
 * distinct characters (UTF-8 code points) of the training transcripts in code point
 * order, saved and read with vocab_save / vocab_load so evaluation uses the same one.
 * A character outside the alphabet is an error naming the file and the character (no
 * <unk>: a recogniser cannot learn to write it, and a silent mapping would hide a
 * mismatch of alphabets). A CTC blank is not in the alphabet.
 *
 * Errors follow data.h: -1 with "path:line: message" in err; the set is left empty. */
#ifndef RC_DATA_PEN_H
#define RC_DATA_PEN_H

#include <stddef.h>
#include <stdint.h>
#include "data.h"

/* Frames: features per pen point. */
#define PEN_FEATURES 3

/* One .pen file as read. */
typedef struct pen_file {
    size_t n;               /* points (>= 1 once read) */
    float *x, *y;           /* [n] absolute coordinates */
    unsigned char *end;     /* [n] 1: the last point of a stroke (the last point always) */
} pen_file;

/* Parses a .pen file's text (len bytes; name used in messages). */
int pen_parse(pen_file *p, const char *text, size_t len, const char *name, char *err, size_t errlen);
/* Reads and parses a .pen file. */
int pen_read(pen_file *p, const char *path, char *err, size_t errlen);
/* Frees a pen file and leaves it empty. */
void pen_file_free(pen_file *p);

typedef enum pen_norm {
    PEN_NORM_NONE = 0,      /* dx, dy as in the file's units */
    PEN_NORM_SAMPLE = 1     /* dx, dy divided by the RMS pen-down step of the sample (see above) */
} pen_norm;

/* The frames of p: out[3n] = (dx, dy, end) per point. An error (naming name) when a
 * value does not fit in a float. */
int pen_frames(const pen_file *p, pen_norm norm, float *out, const char *name, char *err, size_t errlen);

/* Reads a transcript: *text is a new NUL-terminated copy without the line end, *len
 * its bytes. Errors name the file: missing, empty, bad UTF-8 (with the byte's column),
 * a second line, a control character. */
int pen_transcript_read(const char *path, char **text, size_t *len, char *err, size_t errlen);

/* The labels of a transcript: one alphabet id per character into ids (capacity len:
 * a transcript of len bytes has at most len characters). Returns the count, or -1
 * when a character is not in the alphabet (the message names `name`, the character,
 * its code point and column). */
long pen_encode(const vocab *alphabet, const char *text, size_t len, int32_t *ids, const char *name, char *err,
                size_t errlen);

/* The alphabet of a folder's transcripts (every NAME.gt.txt beside a NAME.pen, checked
 * as pen_transcript_read does): the distinct characters in code point order. */
int pen_alphabet_build(vocab *alphabet, const char *dir, char *err, size_t errlen);

/* A loaded folder: the frames of each sample (a feature set, F = 3, no targets) and
 * its labels, back to back. */
typedef struct pen_set {
    seqset x;               /* sample i's frames: x.off[i] .. x.off[i + 1] */
    int32_t *lab;           /* labels of every sample, back to back */
    size_t *lab_off;        /* [n + 1]: sample i's labels are lab[lab_off[i], lab_off[i + 1]) */
    char **names;           /* [n] NAME of each sample (its file name without .pen) */
    int n;                  /* samples (= x.n) */
    size_t cap_lab;
    int cap_n;
} pen_set;

/* Loads every NAME.pen of dir (in byte order of the names) with its NAME.gt.txt,
 * labels over alphabet (not changed; build it with pen_alphabet_build from the
 * training folder). Errors, each naming the file (and line): a folder without .pen
 * files, a .gt.txt without its .pen or a .pen without its .gt.txt, any error of
 * pen_parse and pen_transcript_read, a character outside the alphabet, and a sample
 * with fewer points than CTC needs for its labels (one per label and one more between
 * each pair of equal neighbours). Hidden files are skipped. */
int pen_set_load(pen_set *s, const char *dir, const vocab *alphabet, pen_norm norm, char *err, size_t errlen);
/* Frees a set and leaves it empty. */
void pen_set_free(pen_set *s);
/* The labels of sample i and their count in *len. */
const int32_t *pen_set_labels(const pen_set *s, int i, size_t *len);

#endif
