/* The run configuration of the recur command: one struct, filled from defaults,
 * then a config file (--config), then the command line. Options are data: the
 * table in config.c lists each once with its type, default and help. */
#ifndef RC_TOOLS_CONFIG_H
#define RC_TOOLS_CONFIG_H

#include <stddef.h>
#include <stdint.h>

typedef struct config {
    /* data */
    char data[1024], valid[1024], test[1024], data_kind[16];
    int csv_target;
    double valid_frac, test_frac;
    int max_vocab;
    int line_height;
    /* model */
    char cell[1024];
    int hidden, layers, embed, bidirectional, recompute;
    double dropout, forget_bias;
    char init[32];
    double init_scale;
    /* training */
    int seq, batch, epochs, bucket;
    char loss_norm[16];
    long steps;
    double time_limit;
    char optim[16];
    double lr, momentum, beta1, beta2, rho, eps, weight_decay, clip, weight_noise;
    int nesterov, decoupled;
    char schedule[16];
    int decay_start;
    double decay_factor, min_lr_frac;
    long seed;
    int threads;
    /* run management */
    char out[1024], metrics[16];
    long save_every, eval_every;
    int patience, resume, progress;
    /* sampling / evaluation */
    char checkpoint[1024], split[16], prime[1024], plot_out[1024];
    int length, sample_every_epoch, sample;
    double temperature;
    /* decoding (eval --beam) and alignment (align) of the transcription kinds */
    int beam, limit;
    char lm[1024], name[1024], format[8];
    double lm_alpha, lm_beta;
    unsigned char set[128];   /* options given on the command line or in a config file */
    /* inspect, compare */
    int input, dot_steps, gradient_flow;
    char dot[1024], dot_unrolled[1024], render[8], cells[2048], plot[1024], train[1024], flow_loss[8], gradcheck[1024];
} config;

/* 1 when option `key` was given (command line or config file), not a default. */
int config_was_set(const config *c, const char *key);
/* Forgets that options other than keys[0..n) were given. */
void config_keep_given(config *c, const char *const *keys, int n);
/* Copies into dst every option given in src. */
void config_overlay(config *dst, const config *src);
/* Fills c with the defaults. */
void config_defaults(config *c);
/* Applies one "key = value" (key as the long option without dashes) given by the user:
 * a number must be within its option's range (finite, not negative where that makes
 * no sense; --threads at most rc_max_threads()). 0 or -1 with msg naming the option. */
int config_set(config *c, const char *key, const char *value, char *msg, size_t len);
/* The same for a configuration stored in a checkpoint: parsed, not range-checked (the
 * version that wrote it checked it; its values are kept as they were). */
int config_set_stored(config *c, const char *key, const char *value, char *msg, size_t len);
/* The environment's thread count RC_NUM_THREADS, when set, as --threads is checked.
 * 0, or -1 with msg. */
int config_check_env(char *msg, size_t len);
/* Reads a config file of "key = value" lines (# comments). 0 or -1 with file:line in msg. */
int config_read_file(config *c, const char *path, char *msg, size_t len);
/* Parses argv[first..]: --key value, --key=value, --flag, --config FILE (applied where it
 * appears, so later options override it). 0 or -1 with msg. */
int config_parse_args(config *c, int argc, char **argv, int first, char *msg, size_t len);
/* Writes the options a command takes, with defaults and help, to f. `which` is a
 * mask of the commands (CMD_TRAIN, ...). */
#include <stdio.h>
enum { CMD_TRAIN = 1, CMD_EVAL = 2, CMD_SAMPLE = 4, CMD_PLOT = 8, CMD_INSPECT = 16, CMD_COMPARE = 32, CMD_ALIGN = 64 };
void config_usage(FILE *f, unsigned which);
/* Writes the whole configuration as "key = value" lines (the run record, checkpoints). */
void config_write(const config *c, FILE *f);
/* The same into a malloc'ed string (NULL when memory is short). */
char *config_to_text(const config *c);

#endif
