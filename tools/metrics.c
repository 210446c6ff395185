#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "git_version.h"
#include "metrics.h"
#include "recur.h"

static void json_esc(FILE *f, const char *s)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
        else if (ch < 0x20) fprintf(f, "\\u%04x", ch);
        else fputc(ch, f);
    }
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    json_esc(f, s);
    fputc('"', f);
}

static void run_record(metrics *mx, const config *c)
{
    char host[256] = "unknown", when[64] = "";
    gethostname(host, sizeof host - 1);
    time_t now = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    char *cfg = config_to_text(c);
    if (mx->jsonl) {
        fprintf(mx->f, "{\"run\": {\"recur\": \"%s\", \"git\": \"%s\", \"host\": ", rc_version(), RECUR_GIT_HASH);
        json_str(mx->f, host);
        fprintf(mx->f, ", \"threads\": %d, \"seed\": %ld, \"started\": \"%s\", \"config\": ", rc_num_threads(), c->seed, when);
        json_str(mx->f, cfg ? cfg : "");
        fprintf(mx->f, "}}\n");
    } else {
        fprintf(mx->f, "# recur %s (git %s) on %s, %d threads, seed %ld, started %s\n", rc_version(), RECUR_GIT_HASH,
                host, rc_num_threads(), c->seed, when);
        for (char *line = cfg, *nl; line && *line; line = nl + 1) {
            nl = strchr(line, '\n');
            if (!nl) break;
            fprintf(mx->f, "# %.*s\n", (int)(nl - line), line);
        }
        fprintf(mx->f, "kind,step,epoch,loss,metric_name,metric,lr,grad_norm");
        for (int g = 0; g < mx->ngroups; g++) fprintf(mx->f, ",gn_%s", mx->group[g]);
        fprintf(mx->f, ",tokens_per_s,elapsed_s\n");
    }
    free(cfg);
}

int metrics_open(metrics *mx, const char *path, int jsonl, int append, const config *c, int ngroups,
                 const char *const *group, char *msg, size_t len)
{
    memset(mx, 0, sizeof *mx);
    mx->jsonl = jsonl;
    if (ngroups > 0 && !(mx->group = calloc((size_t)ngroups, sizeof *mx->group))) {
        snprintf(msg, len, "out of memory");
        return -1;
    }
    for (mx->ngroups = 0; mx->ngroups < ngroups; mx->ngroups++)
        if (!(mx->group[mx->ngroups] = strdup(group[mx->ngroups]))) {
            snprintf(msg, len, "out of memory");
            metrics_close(mx);
            return -1;
        }
    int exists = append && access(path, F_OK) == 0;
    mx->f = fopen(path, exists ? "a" : "w");
    if (!mx->f) {
        snprintf(msg, len, "%s: cannot write metrics: %s", path, strerror(errno));
        metrics_close(mx);
        return -1;
    }
    if (!exists) run_record(mx, c);
    fflush(mx->f);
    return 0;
}

/* `, "<prefix><key>": value`, null when the value is not finite (JSON has no nan or inf). */
static void json_num(FILE *f, const char *prefix, const char *key, double v, int decimals)
{
    fprintf(f, ", \"");
    json_esc(f, prefix);
    json_esc(f, key);
    fputc('"', f);
    if (!isfinite(v)) fprintf(f, ": null");
    else if (decimals >= 0) fprintf(f, ": %.*f", decimals, v);
    else fprintf(f, ": %.6g", v);
}

void metrics_write(metrics *mx, const metrics_row *r)
{
    if (!mx->f) return;
    if (mx->jsonl) {
        fprintf(mx->f, "{\"kind\": \"%s\", \"step\": %ld, \"epoch\": %d", r->kind, r->step, r->epoch);
        json_num(mx->f, "", "loss", r->loss, -1);
        json_num(mx->f, "", r->metric_name, r->metric, -1);
        json_num(mx->f, "", "lr", r->lr, -1);
        json_num(mx->f, "", "grad_norm", r->grad_norm, -1);
        for (int g = 0; r->group_norm && g < mx->ngroups; g++) json_num(mx->f, "gn_", mx->group[g], r->group_norm[g], -1);
        json_num(mx->f, "", "tokens_per_s", r->tokens_per_s, -1);
        json_num(mx->f, "", "elapsed_s", r->elapsed_s, 3);
        fprintf(mx->f, "}\n");
    } else {
        fprintf(mx->f, "%s,%ld,%d,%.6g,%s,%.6g,%.6g,%.6g", r->kind, r->step, r->epoch, r->loss, r->metric_name, r->metric,
                r->lr, r->grad_norm);
        for (int g = 0; g < mx->ngroups; g++) fprintf(mx->f, ",%.6g", r->group_norm ? r->group_norm[g] : 0.0);
        fprintf(mx->f, ",%.6g,%.3f\n", r->tokens_per_s, r->elapsed_s);
    }
    fflush(mx->f);
}

void metrics_close(metrics *mx)
{
    if (mx->f) fclose(mx->f);
    mx->f = NULL;
    for (int g = 0; g < mx->ngroups; g++) free(mx->group[g]);
    free(mx->group);
    mx->group = NULL;
    mx->ngroups = 0;
}
