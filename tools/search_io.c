/* recur search's result files: one JSON line and one CSV line per evaluated cell
 * (candidates.jsonl, candidates.csv), appended whole and fsynced; reading them back
 * for a resume and for --status. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "recur.h"
#include "search.h"

/* ---- a growing string ---- */
typedef struct sbuf { char *s; size_t n, cap; int oom; } sbuf;

static void sb_put(sbuf *b, const char *p, size_t n)
{
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *g = realloc(b->s, cap);
        if (!g) {
            b->oom = 1;
            return;
        }
        b->s = g;
        b->cap = cap;
    }
    memcpy(b->s + b->n, p, n);
    b->n += n;
    b->s[b->n] = 0;
}

static void sb_printf(sbuf *b, const char *f, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *f, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, f);
    int n = vsnprintf(tmp, sizeof tmp, f, ap);
    va_end(ap);
    if (n < 0) return;
    sb_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static char *sb_take(sbuf *b)
{
    if (b->oom) {
        free(b->s);
        return NULL;
    }
    if (!b->s) sb_put(b, "", 0);
    return b->s;
}

/* A double as JSON: "%.17g" round-trips; NaN and infinities are null. */
static void sb_num(sbuf *b, double x)
{
    if (isfinite(x)) sb_printf(b, "%.17g", x);
    else sb_put(b, "null", 4);
}

static void sb_jstr(sbuf *b, const char *s)
{
    sb_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            char e[2] = { '\\', (char)*p };
            sb_put(b, e, 2);
        } else if (*p == '\n') sb_put(b, "\\n", 2);
        else if (*p == '\t') sb_put(b, "\\t", 2);
        else if (*p == '\r') sb_put(b, "\\r", 2);
        else if (*p < 0x20) sb_printf(b, "\\u%04x", *p);
        else sb_put(b, (const char *)p, 1);
    }
    sb_put(b, "\"", 1);
}

char *cand_json(const cand *c)
{
    sbuf b = { 0 };
    sb_printf(&b, "{\"id\":%ld,\"parent\":%ld,\"kind\":", c->id, c->parent);
    sb_jstr(&b, c->kind);
    sb_printf(&b, ",\"hash\":\"%016" PRIx64 "\",\"hidden\":%d,\"params\":%lld,\"score\":", c->hash, c->hidden, c->params);
    sb_num(&b, c->score);
    sb_put(&b, ",\"arith\":", 9);
    sb_num(&b, cand_task_score(c, "arith"));
    sb_put(&b, ",\"short\":", 9);
    sb_num(&b, c->short_score);
    sb_put(&b, ",\"best_lr\":", 11);
    sb_num(&b, c->best_lr);
    sb_put(&b, ",\"lr_scores\":[", 14);
    for (int i = 0; i < c->nlr; i++) {
        if (i) sb_put(&b, ",", 1);
        sb_num(&b, c->lr_score[i]);
    }
    sb_printf(&b, "],\"promoted\":%d,\"long\":", c->promoted);
    sb_num(&b, c->long_score);
    sb_put(&b, ",\"long_seeds\":[", 15);
    for (int i = 0; i < c->nseeds; i++) {
        if (i) sb_put(&b, ",", 1);
        sb_num(&b, c->long_seed[i]);
    }
    sb_put(&b, "],\"tasks\":", 10);
    sb_jstr(&b, c->tasks);
    sb_put(&b, ",\"task_short\":[", 15);
    for (int i = 0; i < c->ntask; i++) {
        if (i) sb_put(&b, ",", 1);
        sb_num(&b, c->task_short[i]);
    }
    sb_put(&b, "],\"task_long\":[", 15);
    for (int i = 0; i < c->ntask; i++) {
        if (i) sb_put(&b, ",", 1);
        sb_num(&b, c->task_long[i]);
    }
    sb_put(&b, "],\"wall_s\":", 11);
    sb_num(&b, c->wall);
    sb_put(&b, ",\"finished\":", 12);
    sb_num(&b, c->finished);
    sb_put(&b, ",\"error\":", 9);
    sb_jstr(&b, c->error);
    sb_put(&b, ",\"text\":", 8);
    sb_jstr(&b, c->text ? c->text : "");
    sb_put(&b, "}", 1);
    return sb_take(&b);
}

/* The value after "key": in a line cand_json wrote (keys are unique, the text last). */
static const char *jfind(const char *line, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(line, pat);
    return p ? p + strlen(pat) : NULL;
}

static int jnum(const char *line, const char *key, double *x)
{
    const char *p = jfind(line, key);
    if (!p) return -1;
    if (!strncmp(p, "null", 4)) {
        *x = NAN;
        return 0;
    }
    char *e;
    *x = strtod(p, &e);
    return e == p ? -1 : 0;
}

static int jarr(const char *line, const char *key, double *x, int cap, int *n)
{
    const char *p = jfind(line, key);
    if (!p || *p != '[') return -1;
    p++;
    *n = 0;
    while (*p && *p != ']') {
        double v;
        char *e;
        if (!strncmp(p, "null", 4)) {
            v = NAN;
            e = (char *)p + 4;
        } else {
            v = strtod(p, &e);
            if (e == p) return -1;
        }
        if (*n < cap) x[(*n)++] = v;
        p = e;
        if (*p == ',') p++;
    }
    return *p == ']' ? 0 : -1;
}

/* A JSON string value, unescaped, malloc'd; NULL when missing or cut. */
static char *jstr(const char *line, const char *key)
{
    const char *p = jfind(line, key);
    if (!p || *p != '"') return NULL;
    p++;
    sbuf b = { 0 };
    for (; *p && *p != '"'; p++) {
        if (*p != '\\') {
            sb_put(&b, p, 1);
            continue;
        }
        p++;
        char c = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p == 'r' ? '\r' : *p;
        if (*p == 'u') {
            unsigned v = 0;
            if (sscanf(p + 1, "%4x", &v) != 1) break;
            c = (char)v;
            p += 4;
        }
        if (!*p) break;
        sb_put(&b, &c, 1);
    }
    if (*p != '"') {
        free(b.s);
        return NULL;
    }
    return sb_take(&b);
}

void cand_free(cand *c)
{
    free(c->text);
    c->text = NULL;
}

int cand_parse(const char *line, cand *c)
{
    memset(c, 0, sizeof *c);
    double id, parent, hidden, params, promoted;
    char *kind = jstr(line, "kind"), *hash = jstr(line, "hash"), *err = jstr(line, "error");
    c->text = jstr(line, "text");
    int bad = !kind || !hash || !err || !c->text || jnum(line, "id", &id) || jnum(line, "parent", &parent) ||
              jnum(line, "hidden", &hidden) || jnum(line, "params", &params) || jnum(line, "score", &c->score) ||
              jnum(line, "short", &c->short_score) || jnum(line, "best_lr", &c->best_lr) ||
              jarr(line, "lr_scores", c->lr_score, SEARCH_MAX_LRS, &c->nlr) || jnum(line, "promoted", &promoted) ||
              jnum(line, "long", &c->long_score) || jarr(line, "long_seeds", c->long_seed, SEARCH_MAX_SEEDS, &c->nseeds) ||
              jnum(line, "wall_s", &c->wall) || jnum(line, "finished", &c->finished);
    size_t ll = strlen(line);
    while (ll && (line[ll - 1] == '\n' || line[ll - 1] == '\r')) ll--;
    if (!ll || line[ll - 1] != '}') bad = 1;
    if (!bad) {
        c->id = (long)id;
        c->parent = (long)parent;
        c->hidden = (int)hidden;
        c->params = (long long)params;
        c->promoted = promoted != 0;
        snprintf(c->kind, sizeof c->kind, "%s", kind);
        snprintf(c->error, sizeof c->error, "%s", err);
        c->hash = strtoull(hash, NULL, 16);
    }
    if (!bad) {   /* rows of a search before the per-task scores: one task, its score */
        char *tasks = jstr(line, "tasks");
        int ns = 0, nl = 0;
        if (tasks && jarr(line, "task_short", c->task_short, SEARCH_MAX_TASKS, &ns) == 0 &&
            jarr(line, "task_long", c->task_long, SEARCH_MAX_TASKS, &nl) == 0 && ns == nl) {
            snprintf(c->tasks, sizeof c->tasks, "%s", tasks);
            c->ntask = ns;
        }
        free(tasks);
    }
    free(kind);
    free(hash);
    free(err);
    if (bad) cand_free(c);
    return bad ? -1 : 0;
}

const char CAND_CSV_HEADER[] = "id,parent,kind,hash,hidden,params,score,arith,short,best_lr,lr_scores,promoted,long,"
                               "long_seeds,tasks,task_short,task_long,wall_s,finished,error,text";

static void sb_csvstr(sbuf *b, const char *s)
{
    sb_put(b, "\"", 1);
    for (const char *p = s; *p; p++) {
        if (*p == '"') sb_put(b, "\"\"", 2);
        else sb_put(b, p, 1);
    }
    sb_put(b, "\"", 1);
}

static void sb_csvnum(sbuf *b, double x)
{
    if (isfinite(x)) sb_printf(b, "%.6g", x);
}

char *cand_csv(const cand *c)
{
    sbuf b = { 0 };
    sb_printf(&b, "%ld,%ld,%s,%016" PRIx64 ",%d,%lld,", c->id, c->parent, c->kind, c->hash, c->hidden, c->params);
    sb_csvnum(&b, c->score);
    sb_put(&b, ",", 1);
    sb_csvnum(&b, cand_task_score(c, "arith"));
    sb_put(&b, ",", 1);
    sb_csvnum(&b, c->short_score);
    sb_put(&b, ",", 1);
    sb_csvnum(&b, c->best_lr);
    sb_put(&b, ",", 1);
    for (int i = 0; i < c->nlr; i++) {
        if (i) sb_put(&b, ";", 1);
        sb_csvnum(&b, c->lr_score[i]);
    }
    sb_printf(&b, ",%d,", c->promoted);
    sb_csvnum(&b, c->long_score);
    sb_put(&b, ",", 1);
    for (int i = 0; i < c->nseeds; i++) {
        if (i) sb_put(&b, ";", 1);
        sb_csvnum(&b, c->long_seed[i]);
    }
    sb_printf(&b, ",%s,", c->tasks);
    for (int i = 0; i < c->ntask; i++) {
        if (i) sb_put(&b, ";", 1);
        sb_csvnum(&b, c->task_short[i]);
    }
    sb_put(&b, ",", 1);
    for (int i = 0; i < c->ntask; i++) {
        if (i) sb_put(&b, ";", 1);
        sb_csvnum(&b, c->task_long[i]);
    }
    sb_put(&b, ",", 1);
    sb_csvnum(&b, c->wall);
    sb_printf(&b, ",%.0f,", c->finished);
    sb_csvstr(&b, c->error);
    sb_put(&b, ",", 1);
    sb_csvstr(&b, c->text ? c->text : "");
    return sb_take(&b);
}

/* Index of task name in c->tasks, or -1. */
static int task_index(const cand *c, const char *name)
{
    const char *p = c->tasks;
    size_t nl = strlen(name);
    for (int i = 0; i < c->ntask && *p; i++) {
        size_t l = strcspn(p, ",");
        if (l == nl && !strncmp(p, name, l)) return i;
        p += l;
        if (*p == ',') p++;
    }
    return -1;
}

double cand_task_score(const cand *c, const char *name)
{
    if (c->ntask <= 1)   /* the row's one task (rows without a task list: arith) */
        return !strcmp(c->tasks[0] ? c->tasks : "arith", name) ? c->score : NAN;
    int i = task_index(c, name);
    if (i < 0) return NAN;
    return c->promoted ? c->task_long[i] : c->task_short[i];
}

void norm_refs(const cand *rows, long n, double *refs_short, double *refs_long)
{
    for (long i = 0; i < n; i++) {
        const cand *c = &rows[i];
        if (c->parent >= 0) continue;
        for (int t = 0; t < c->ntask; t++) {
            if (isfinite(c->task_short[t]) && !(c->task_short[t] <= refs_short[t])) refs_short[t] = c->task_short[t];
            if (c->promoted && isfinite(c->task_long[t]) && !(c->task_long[t] <= refs_long[t]))
                refs_long[t] = c->task_long[t];
        }
    }
}

/* The mean over tasks of x[t] / ref[t]; NAN when a reference is not positive. */
static double norm_mean(const double *x, const double *ref, int n)
{
    double s = 0;
    for (int t = 0; t < n; t++) {
        if (!(ref[t] > 0) || !isfinite(ref[t])) return NAN;
        s += (isfinite(x[t]) ? x[t] : 0) / ref[t];
    }
    return s / n;
}

void norm_apply(cand *c, const double *refs_short, const double *refs_long)
{
    if (c->ntask <= 1) return;
    c->short_score = norm_mean(c->task_short, refs_short, c->ntask);
    c->long_score = c->promoted ? norm_mean(c->task_long, refs_long, c->ntask) : NAN;
    c->score = c->promoted ? c->long_score : c->short_score;
}

void norm_rows(cand *rows, long n)
{
    double rs[SEARCH_MAX_TASKS], rl[SEARCH_MAX_TASKS];
    for (int t = 0; t < SEARCH_MAX_TASKS; t++) rs[t] = rl[t] = NAN;
    norm_refs(rows, n, rs, rl);
    for (long i = 0; i < n; i++) norm_apply(&rows[i], rs, rl);
}

int cand_rank_cmp(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    double sx = isfinite(x->score) ? x->score : -1, sy = isfinite(y->score) ? y->score : -1;
    if (sx != sy) return sx > sy ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

static int by_id(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

/* Why a complete line of candidates.jsonl is not a row to trust, or NULL with *c the
 * row (cand_free it). A row is one object as cand_json writes it: a line spliced from
 * two half lines holds the start of a second one (its fields would come from both), and
 * the hash must be the canonical hash of the text, the text later rows were bred from. */
static const char *row_fault(const char *line, cand *c, char *buf, size_t len)
{
    static const char start[] = "{\"id\":";   /* never inside a string: its quotes are escaped there */
    if (strncmp(line, start, sizeof start - 1) != 0) return "not a row (it does not start as every row does)";
    if (strstr(line + 1, start))
        return "not one row: a second row starts inside it (two half lines spliced: a row cut short, then another "
               "written after it)";
    if (cand_parse(line, c) != 0) return "not a complete row (a field is missing or cut)";
    uint64_t h = 0;
    char err[512];
    if (rc_cell_canonical_hash(c->text, strlen(c->text), &h, err, sizeof err) != 0)
        snprintf(buf, len, "row %ld: its text is not a cell: %.300s", c->id, err);
    else if (h != c->hash)
        snprintf(buf, len, "row %ld: its hash %016" PRIx64 " is not the canonical hash of its text (%016" PRIx64 "): "
                 "the line was edited or spliced", c->id, c->hash, h);
    else return NULL;
    cand_free(c);
    return buf;
}

int rows_load(const char *dir, cand **out, long *n, int refuse_bad, char *msg, size_t len)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/candidates.jsonl", dir);
    *out = NULL;
    *n = 0;
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT) return 0;
        snprintf(msg, len, "%s: %s", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0, ncap = 0;
    ssize_t got;
    cand *rows = NULL;
    long k = 0, ln = 0;
    int rc = 0;
    while ((got = getline(&line, &cap, f)) > 0) {
        ln++;
        if (line[got - 1] != '\n') break;   /* a line cut by a kill: not a row */
        line[got - 1] = 0;
        if (!line[strspn(line, " \t\r")]) continue;   /* a blank line holds nothing */
        cand c;
        char why[700];
        const char *fault = row_fault(line, &c, why, sizeof why);
        if (fault && refuse_bad) {
            snprintf(msg, len, "%s:%ld: %s. Nothing was changed: delete that line (its candidate is evaluated again) "
                     "or put back a good copy of the file, then run the same command", path, ln, fault);
            rc = -1;
            break;
        }
        if (fault) {
            fprintf(stderr, "recur search: warning: %s:%ld: %s: skipped\n", path, ln, fault);
            continue;
        }
        if ((size_t)k == ncap) {
            ncap = ncap ? 2 * ncap : 64;
            cand *g = realloc(rows, ncap * sizeof *g);
            if (!g) {
                cand_free(&c);
                snprintf(msg, len, "out of memory reading %s", path);
                rc = -1;
                break;
            }
            rows = g;
        }
        rows[k++] = c;
    }
    free(line);
    fclose(f);
    if (rc) {
        for (long i = 0; i < k; i++) cand_free(&rows[i]);
        free(rows);
        return -1;
    }
    if (k) qsort(rows, (size_t)k, sizeof *rows, by_id);
    long w = 0;   /* a row twice (cannot happen unless files were concatenated): the first */
    for (long i = 0; i < k; i++) {
        if (w && rows[w - 1].id == rows[i].id) cand_free(&rows[i]);
        else rows[w++] = rows[i];
    }
    *out = rows;
    *n = w;
    return 0;
}

static int append_fsync(const char *path, const char *line, char *msg, size_t len)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (fd < 0) {
        snprintf(msg, len, "%s: %s", path, strerror(errno));
        return -1;
    }
    size_t n = strlen(line);
    char *buf = malloc(n + 1);
    if (!buf) {
        close(fd);
        snprintf(msg, len, "out of memory");
        return -1;
    }
    memcpy(buf, line, n);
    buf[n] = '\n';
    size_t off = 0;
    while (off < n + 1) {
        ssize_t w = write(fd, buf + off, n + 1 - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            snprintf(msg, len, "%s: %s", path, strerror(errno));
            free(buf);
            close(fd);
            return -1;
        }
        off += (size_t)w;
    }
    free(buf);
    if (fsync(fd) != 0 || close(fd) != 0) {
        snprintf(msg, len, "%s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

int rows_append(const char *dir, const cand *c, char *msg, size_t len)
{
    char path[1200];
    char *j = cand_json(c), *v = cand_csv(c);
    int rc = -1;
    if (!j || !v) snprintf(msg, len, "out of memory");
    else {
        snprintf(path, sizeof path, "%s/candidates.jsonl", dir);   /* the truth, written first */
        if (append_fsync(path, j, msg, len) == 0) {
            snprintf(path, sizeof path, "%s/candidates.csv", dir);
            rc = append_fsync(path, v, msg, len);
        }
    }
    free(j);
    free(v);
    return rc;
}

int write_atomic(const char *path, const char *data, size_t n, char *msg, size_t len)
{
    char tmp[1300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        snprintf(msg, len, "%s: %s", tmp, strerror(errno));
        return -1;
    }
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(fd, data + off, n - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        off += (size_t)w;
    }
    int bad = off < n || fsync(fd) != 0;
    if (close(fd) != 0) bad = 1;
    if (bad || rename(tmp, path) != 0) {
        snprintf(msg, len, "%s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

int rows_repair(const char *dir, const cand *rows, long n, char *msg, size_t len)
{
    char path[1200];
    sbuf b = { 0 };
    sb_put(&b, CAND_CSV_HEADER, strlen(CAND_CSV_HEADER));
    sb_put(&b, "\n", 1);
    for (long i = 0; i < n; i++) {
        char *v = cand_csv(&rows[i]);
        if (!v) {
            b.oom = 1;
            break;
        }
        sb_put(&b, v, strlen(v));
        sb_put(&b, "\n", 1);
        free(v);
    }
    char *all = sb_take(&b);
    if (!all) {
        snprintf(msg, len, "out of memory");
        return -1;
    }
    snprintf(path, sizeof path, "%s/candidates.csv", dir);
    int rc = write_atomic(path, all, strlen(all), msg, len);
    free(all);
    if (rc) return -1;
    /* the JSON lines: rewritten from the rows too (drops a line a kill cut short) */
    b = (sbuf){ 0 };
    for (long i = 0; i < n; i++) {
        char *j = cand_json(&rows[i]);
        if (!j) {
            b.oom = 1;
            break;
        }
        sb_put(&b, j, strlen(j));
        sb_put(&b, "\n", 1);
        free(j);
    }
    all = sb_take(&b);
    if (!all) {
        snprintf(msg, len, "out of memory");
        return -1;
    }
    snprintf(path, sizeof path, "%s/candidates.jsonl", dir);
    rc = write_atomic(path, all, strlen(all), msg, len);
    free(all);
    return rc;
}

int search_status(const char *dir, int top)
{
    char msg[1400];
    cand *rows;
    long n;
    if (rows_load(dir, &rows, &n, 0, msg, sizeof msg) != 0) {
        fprintf(stderr, "recur search --status: %s\n", msg);
        return 1;
    }
    if (n == 0) {
        char path[1200];
        snprintf(path, sizeof path, "%s/candidates.jsonl", dir);
        if (access(path, F_OK) != 0) {
            fprintf(stderr, "recur search --status: %s: no search here (no candidates.jsonl)\n", dir);
            return 1;
        }
    }
    norm_rows(rows, n);
    long nb = 0, npro = 0, nerr = 0;
    double t0 = INFINITY, t1 = 0, wall = 0, best_base = -1;
    for (long i = 0; i < n; i++) {
        if (rows[i].parent < 0) {
            nb++;
            if (rows[i].score > best_base) best_base = rows[i].score;
        }
        npro += rows[i].promoted && rows[i].parent >= 0;
        nerr += rows[i].error[0] != 0;
        wall += rows[i].wall;
        if (rows[i].finished - rows[i].wall < t0) t0 = rows[i].finished - rows[i].wall;
        if (rows[i].finished > t1) t1 = rows[i].finished;
    }
    printf("search %s: %ld baselines, %ld candidates (%ld promoted, %ld failed to train), %.1f min of evaluation",
           dir, nb, n - nb, npro, nerr, wall / 60);
    if (n) printf(", %.1f min from the first to the last row", (t1 - t0) / 60);
    printf("\n");
    cand *sorted = n ? malloc((size_t)n * sizeof *sorted) : NULL;
    if (n && !sorted) {
        fprintf(stderr, "recur search --status: out of memory\n");
        for (long i = 0; i < n; i++) cand_free(&rows[i]);
        free(rows);
        return 1;
    }
    if (n) memcpy(sorted, rows, (size_t)n * sizeof *rows);
    if (n) qsort(sorted, (size_t)n, sizeof *sorted, cand_rank_cmp);
    if (n && rows[0].ntask > 1)
        printf("score: the mean over the tasks %s of the score divided by the best baseline's on that task "
               "(>1 beats it); per task: 1/bpc for chars, 1/NLL for music, accuracy for arith\n", rows[0].tasks);
    printf("%4s %6s %7s %-18s %-16s %6s %7s %7s %7s %8s %7s%s\n", "rank", "id", "parent", "kind", "hash", "hidden",
           "params", "score", "short", "promoted", "time_s", n && rows[0].ntask > 1 ? "  per task" : "");
    for (long i = 0; i < n && i < top; i++) {
        const cand *c = &sorted[i];
        printf("%4ld %6ld %7ld %-18.18s %016" PRIx64 " %6d %7lld %7.4f %7.4f %8s %7.1f", i + 1, c->id, c->parent,
               c->kind, c->hash, c->hidden, c->params, c->score, c->short_score, c->promoted ? "yes" : "no", c->wall);
        if (c->ntask > 1) {
            const char *p = c->tasks;
            for (int t = 0; t < c->ntask && *p; t++) {
                int l = (int)strcspn(p, ",");
                printf("  %.*s %.4f", l, p, c->promoted ? c->task_long[t] : c->task_short[t]);
                p += l;
                if (*p == ',') p++;
            }
        }
        printf("\n");
    }
    if (nb && n > nb) {
        long beat = 0;
        for (long i = 0; i < n; i++) beat += rows[i].parent >= 0 && rows[i].promoted && rows[i].score > best_base;
        printf("best baseline score %.4f; %ld candidates above it after the longer evaluation\n", best_base, beat);
    }
    free(sorted);
    for (long i = 0; i < n; i++) cand_free(&rows[i]);
    free(rows);
    return 0;
}
