/* libFuzzer harness for checkpoints: the container reader (ckpt_read, train/ckpt.c)
 * and the run's checkpoint contents (tools/run_ckpt.c: run_read_config,
 * run_read_cell_text, run_read_vocab, and run_load into two small tasks made once: a
 * character model (carried state) and a classifier (data order), each with an Adam
 * optimiser and a train feeder). An accepted container's entries must be well formed
 * (unique names, data present, TEXT NUL-terminated); every error names the file.
 * Built and run by tests/fuzz/run.sh ckpt (the whole library, BLAS stubbed: no plan
 * runs). FUZZ_CKPT_SEEDS=DIR writes the two tasks' checkpoints as seeds into DIR. */
#include <math.h>
#include "ckpt.h"
#include "fuzz_file.h"
#include "run_ckpt.h"

typedef struct fuzz_task {
    task t;
    rc_optim *o;
    feeder f;
} fuzz_task;

static fuzz_task tasks[2];

static void make_task(fuzz_task *ft, int k, const char *kind, const char *text)
{
    char msg[1024];
    config c;
    config_defaults(&c);
    const char *data = fuzz_write(2 + k, "ckpt-data", text, strlen(text));
    const char *set[][2] = { { "data", data }, { "data-kind", kind }, { "hidden", "2" }, { "layers", "1" },
                             { "cell", k ? "gru" : "lstm" }, { "init", "uniform" }, { "batch", "2" },
                             { "seq", "2" }, { "embed", "2" }, { "valid-frac", "0" } };
    for (size_t i = 0; i < sizeof set / sizeof *set; i++)
        if (config_set(&c, set[i][0], set[i][1], msg, sizeof msg) != 0) fuzz_die("config_set", msg);
    if (task_load(&ft->t, &c, msg, sizeof msg) != 0) fuzz_die("task_load", msg);
    if (task_make_model(&ft->t, msg, sizeof msg) != 0) fuzz_die("task_make_model", msg);
    rc_optim_opts oo = rc_optim_defaults(RC_OPT_ADAM);
    if (!(ft->o = rc_optim_new(ft->t.model, &oo))) fuzz_die("rc_optim_new", rc_model_error(ft->t.model));
    if (feeder_init(&ft->f, &ft->t, DATA_TRAIN, 1, msg, sizeof msg) != 0) fuzz_die("feeder_init", msg);
    if (feeder_epoch(&ft->f, 0, msg, sizeof msg) != 0) fuzz_die("feeder_epoch", msg);
}

static void free_tasks(void)
{
    for (int k = 0; k < 2; k++) {
        feeder_free(&tasks[k].f);
        rc_optim_free(tasks[k].o);
        task_free(&tasks[k].t);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    make_task(&tasks[0], 0, "chars", "abcab cabba\nbca abc\n");
    make_task(&tasks[1], 1, "classify", "x\ta b\ny\tb c a\nx\tc\n");
    atexit(free_tasks);
    const char *dir = getenv("FUZZ_CKPT_SEEDS");
    if (dir) {
        for (int k = 0; k < 2; k++) {
            char path[1024], msg[1024];
            snprintf(path, sizeof path, "%s/run-%s.ckpt", dir, k ? "classify" : "chars");
            run_progress p = { 3, 0, 1, 3, INFINITY, 0, 1.5 };
            if (run_save(path, &tasks[k].t, tasks[k].o, &tasks[k].f, &p, msg, sizeof msg) != 0) fuzz_die("run_save", msg);
        }
    }
    return 0;
}

/* ckpt_read and the checks of an accepted container; 0 when it reads. */
static int check_read(const char *path)
{
    char err[512] = "";
    ckpt c;
    ckpt_init(&c);
    if (ckpt_read(path, &c, err, sizeof err) != 0) {
        fuzz_check_msg(err, path);
        if (c.n || c.e) fuzz_die("checkpoint not left empty on error", err);
        return -1;
    }
    for (int i = 0; i < c.n; i++) {
        const ckpt_entry *e = &c.e[i];
        size_t nl = strnlen(e->name, sizeof e->name);
        if (nl < 1 || nl > CKPT_NAME_MAX) fuzz_die("bad entry name", path);
        if (!e->data) fuzz_die("entry without data", e->name);
        if (e->ndim < 1 || e->ndim > 4 || (e->type == CKPT_TEXT && e->ndim != 1)) fuzz_die("bad rank", e->name);
        for (int d = 0; d < e->ndim; d++)
            if (e->shape[d] < 0) fuzz_die("negative dimension", e->name);
        if (e->type == CKPT_TEXT && ((const char *)e->data)[e->shape[0]] != 0) fuzz_die("text not terminated", e->name);
        if (ckpt_find(&c, e->name) != e) fuzz_die("duplicate name", e->name);
    }
    ckpt_free(&c);
    return 0;
}

/* Mutations rarely keep the trailer's CRC right, and a wrong CRC stops the reader
 * before the entries: after libFuzzer's mutation, 7 times in 8 the trailer (length,
 * CRC-32, "RECUREND") is rewritten to fit the bytes before it. */
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    size = LLVMFuzzerMutate(data, size, max_size);
    if (seed % 8 == 0 || size < 36) return size;
    size_t body = size - 20;
    uint32_t crc = ckpt_crc32(0, data, body);
    for (int i = 0; i < 8; i++) data[body + i] = (uint8_t)((uint64_t)body >> (8 * i));
    for (int i = 0; i < 4; i++) data[body + 8 + i] = (uint8_t)(crc >> (8 * i));
    memcpy(data + body + 12, "RECUREND", 8);
    return size;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 18) return 0;
    const char *path = fuzz_write(0, "ckpt", data, size);
    char msg[1024];
    if (check_read(path) != 0) {
        /* every reader below starts with ckpt_read: one of them is enough */
        vocab v0;
        memset(&v0, 0, sizeof v0);
        msg[0] = 0;
        if (run_read_vocab(path, &v0, msg, sizeof msg) == 0) fuzz_die("run_read_vocab read what ckpt_read refused", path);
        fuzz_check_msg(msg, path);
        return 0;
    }
    static config cfg;
    msg[0] = 0;
    if (run_read_config(path, &cfg, msg, sizeof msg) != 0) fuzz_check_msg(msg, path);
    free(run_read_cell_text(path));
    vocab v;
    memset(&v, 0, sizeof v);
    msg[0] = 0;
    if (run_read_vocab(path, &v, msg, sizeof msg) != 0) fuzz_check_msg(msg, path);
    vocab_free(&v);
    for (int k = 0; k < 2; k++) {
        run_progress p;
        msg[0] = 0;
        if (run_load(path, &tasks[k].t, tasks[k].o, &tasks[k].f, &p, msg, sizeof msg) != 0) fuzz_check_msg(msg, path);
    }
    return 0;
}
