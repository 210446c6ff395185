/* Internal: line images for OCR — a folder of NAME.png files, each with its transcript
 * NAME.gt.txt beside it (the layout of OCRopus, Tesseract's training and Calamari;
 * recur generate lines writes it). Each image becomes a sequence of frames, one per
 * pixel column, and its transcript a sequence of alphabet ids.
 *
 * The folder: every file ending in ".png" (hidden files skipped; no subfolders), in
 * byte order of the names. The transcript of NAME.png is NAME.gt.txt, or, when that is
 * absent and NAME has an extension of its own, NAME-without-it.gt.txt (OCRopus names
 * its images 010001.bin.png beside 010001.gt.txt). Other files are ignored.
 *
 * An image (any PNG: gray, RGB, palette, with alpha, 1 to 16 bits; converted to 8-bit
 * gray as base/pngio.h says) is resized to `height` rows keeping its aspect ratio
 * (tent filter: bilinear when enlarging, area-like when shrinking; base/resample.h),
 * so it gives round(width * height / its height) frames of `height` values in [0, 1]:
 * 1 - gray/255 with `invert` (dark ink high, paper 0: the usual input of OCR networks),
 * gray/255 without. Frame t is column t, value r of it row r from the top.
 *
 * A transcript is UTF-8 text of one line: a byte-order mark and white space (space,
 * tab, CR, LF, VT, FF) at either end are dropped; what remains must be non-empty, valid
 * UTF-8 (no overlong forms, surrogates or values above U+10FFFF), hold no line break
 * and no other control character (U+0000-U+001F, U+007F). Characters are Unicode code
 * points as written (no normalisation).
 *
 * The alphabet: a vocab (data.h) whose tokens are single characters (their UTF-8
 * bytes), ids 0..n-1 in code-point order, built from the training folder's transcripts
 * and saved with vocab_save, so evaluation maps text with the same ids. The CTC blank is
 * not in it: a model adds it as a class of its own. A character of an evaluation
 * transcript that the alphabet lacks is an error naming the file, the character and its
 * column (mapping it to an <unk> would hide that the model can never get it right).
 *
 * Errors name the file: not a PNG, a corrupt or truncated PNG, zero width or height, an
 * image larger than memory allows (decoding and resizing it would need more than
 * opts.max_bytes, by default the most this process can hold: base/memlimit.h), a
 * missing, empty, multi-line or malformed transcript, and an image too narrow for its
 * transcript: CTC needs at least L + R frames for L characters with R adjacent repeats
 * (a blank must separate repeats). On error nothing is kept and nothing leaks. */
#ifndef RC_DATA_LINES_H
#define RC_DATA_LINES_H

#include <stddef.h>
#include <stdint.h>
#include "data.h"

/* The accepted heights (frames' features); OCR networks use 32-48 (Tesseract 36,
 * OCRopus and Calamari 48). */
#define LINES_MIN_HEIGHT 8
#define LINES_MAX_HEIGHT 256

typedef struct lines_opts {
    int height;         /* rows after resizing = features per frame (LINES_MIN_HEIGHT..MAX) */
    int invert;         /* 1: ink high (1 - gray/255); 0: gray/255 */
    size_t max_bytes;   /* the most one image may take to decode and resize; 0: mem_limit_bytes() */
} lines_opts;

typedef struct lineset {
    seqset frames;      /* F = height, SEQ_TGT_NONE: sequence i is image i, a step per column */
    int n;              /* images (= frames.n) */
    size_t *loff;       /* [n+1] offsets of each image's labels in lab */
    int32_t *lab;       /* [loff[n]] transcripts as alphabet ids */
    char **paths;       /* [n] the images' paths */
    size_t cap_lab;
    int cap_n;
} lineset;

/* Frees a set and leaves it empty. */
void lineset_free(lineset *s);
/* Reads a transcript (the rules above): *text a new NUL-terminated string of *len
 * bytes, stripped. 0, or -1 with a message naming the file (and the byte or column). */
int lines_read_transcript(const char *path, char **text, size_t *len, char *err, size_t errlen);
/* The ids of text's characters (len bytes of valid UTF-8) in alphabet a: *ids a new
 * array of *n ids. A character not in a is an error naming `path`, the character, its
 * code point and column. */
int lines_encode(const vocab *a, const char *text, size_t len, const char *path, int32_t **ids, size_t *n,
                 char *err, size_t errlen);
/* The frames CTC needs for labels ids[0..n): n plus the adjacent repeats. */
size_t lines_min_frames(const int32_t *ids, size_t n);
/* One image as frames: *x a new array of (*frames) * o->height floats, frame-major.
 * 0, or -1 with a message naming the file. */
int lines_image(const char *path, const lines_opts *o, float **x, int *frames, char *err, size_t errlen);
/* The alphabet of every transcript of the line images in dir: *a (overwritten) the
 * distinct characters in code-point order. 0, or -1 (no images, a missing or bad
 * transcript). */
int lines_alphabet(vocab *a, const char *dir, char *err, size_t errlen);
/* Loads every image of dir and its transcript into *s (overwritten) with ids of
 * alphabet a. With a->n == 0 the alphabet is first built from dir's transcripts
 * (lines_alphabet: the training folder); otherwise it is used as given (validation,
 * test). 0, or -1 with *s empty (and a as it was). */
int lines_load(lineset *s, const char *dir, vocab *a, const lines_opts *o, char *err, size_t errlen);
/* An alphabet file (vocab_save's form) whose every token must be one UTF-8 character. */
int lines_alphabet_load(vocab *a, const char *path, char *err, size_t errlen);

#endif
