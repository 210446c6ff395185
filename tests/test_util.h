/* Helpers shared by the test files (tests/test_util.c): temp folders, reading files,
 * generated data, the recur binary under test, the environment of an mpirun child.
 * Per-test state (each suite's temp folder, background children, tracked memory)
 * stays in the test files: Criterion runs every test in a forked worker. */
#ifndef RECUR_TEST_UTIL_H
#define RECUR_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Fills `dir` (capacity `cap`) with "<prefix>XXXXXX" made unique by mkdtemp and creates
 * the folder; a failed Criterion assertion when it cannot. */
void tu_make_temp_dir(char *dir, size_t cap, const char *prefix);

/* Removes `path`: a file, or a folder and everything in it (symlinks not followed). */
void tu_remove_tree(const char *path);

/* Seconds on the monotonic clock (differences only). */
double tu_monotonic_seconds(void);

/* Sleeps `s` seconds, resuming after signals. */
void tu_sleep_seconds(double s);

/* In a freshly forked child: stdin from /dev/null, stdout and stderr into the files
 * out_path and err_path (created or truncated), SIGINT and SIGTERM back to their
 * defaults. Ends the child with _exit(126) when a file cannot be opened. */
void tu_child_redirect(const char *out_path, const char *err_path);

/* Waits for the child `pid` until `timeout` seconds after `t0` (tu_monotonic_seconds()),
 * polling every `poll` seconds; at the timeout sends SIGKILL to `kill_target` (pid, or
 * -pid for its process group) and reaps the child. The wait status goes to *status.
 * Returns 1 when it timed out, else 0; a failed waitpid fails the test. */
int tu_wait_child(pid_t pid, pid_t kill_target, double t0, double timeout, double poll, int *status);

/* The recur binary under test: RECUR_TEST_EXE when set, else RECUR_EXE (set by meson). */
const char *tu_recur_exe(void);

/* The whole file, malloc'd and NUL-terminated (its length in *len when len is not
 * NULL), or NULL when it cannot be read. */
char *tu_read_file(const char *path, size_t *len);

/* The next value of a small linear congruential generator (24 bits) at *state. */
uint32_t tu_lcg_next(uint32_t *state);

/* Writes about `bytes` of text: lines of 8 words from a small list (characters a-f,
 * space and newline); upper = 1 gives the same text in capitals (another vocabulary of
 * the same size); final_newline = 1 ends it with one more newline. */
void tu_write_word_text(const char *path, size_t bytes, uint32_t seed, int upper, int final_newline);

/* Writes `lines` tagging lines "w/T ..." of 3..8 words of a..e: a word's tag is its
 * capital. */
void tu_write_tag_lines(const char *path, int lines, uint32_t seed);
/* A folder (created) of n pen samples (NAME.pen + NAME.gt.txt, NAME s000, s001, ...)
 * over the alphabet "ab c", written by tu_write_pen_sample. Returns the number of
 * characters of the transcripts. */
int tu_write_pen_dir(const char *dir, int n, uint32_t seed);
/* One pen sample dir/NAME.pen + NAME.gt.txt of `text`: each character a 3-point stroke,
 * 'a' to the right, 'b' up, any other (' ' and 'c' alike: only context tells them
 * apart) down and to the right. */
void tu_write_pen_sample(const char *dir, const char *name, const char *text);

/* Writes polyphonic music JSON {"train": [...], "valid": [...]} of n_train and n_valid
 * sequences of 6..12 steps (arpeggios over a held bass note, sometimes a silent step). */
void tu_write_music_json(const char *path, uint32_t seed, int n_train, int n_valid);

/* For an mpirun child in a sanitizer build: OpenMPI's own memory, kept to the end, is
 * not a leak of recur's (tests/lsan_mpi.supp). Does nothing in other builds. */
void tu_mpi_child_env(void);

#endif
