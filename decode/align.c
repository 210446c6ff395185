/* Forced alignment (Viterbi) of a transcript to CTC outputs: the most probable path
 * through the CTC states of the transcript (blank, label 1, blank, ..., label L,
 * blank; a state may stay, move to the next, or skip a blank between two different
 * labels), by dynamic programming in log space with a back-pointer per step and
 * state. Each thread has one workspace sized for the largest sample (back-pointers
 * T x (2L+1) bytes, two rows of scores); nothing is allocated per step. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "decode_util.h"
#include "op.h"   /* op_team_id */

typedef struct align_ws {
    unsigned char *bp;      /* [T * S'] 0: stayed, 1: from s-1, 2: from s-2 */
    double *v, *nv;         /* [S'] scores of the previous and this step */
    double *lp;             /* [A] the step's log-probabilities */
} align_ws;

/* Sample b's path; returns 0, or -1 when every alignment has probability 0. */
static int align_one(const float *logits, int B, int A, int b, int Tb, const int32_t *lab, int L, int blank,
                     align_ws *w, int32_t *path, double *score)
{
    int Sp = 2 * L + 1;
    for (int t = 0; t < Tb; t++) {
        dec_log_softmax(logits + ((size_t)t * B + b) * (size_t)A, A, w->lp);
        unsigned char *bp = w->bp + (size_t)t * Sp;
        for (int s = 0; s < Sp; s++) {
            int c = s % 2 == 0 ? blank : lab[s / 2];
            double best;
            unsigned char from = 0;
            if (t == 0) {
                best = s <= 1 ? 0.0 : -INFINITY;
            } else {
                best = w->v[s];
                if (s >= 1 && w->v[s - 1] > best) { best = w->v[s - 1]; from = 1; }
                if (s >= 3 && s % 2 == 1 && lab[s / 2] != lab[s / 2 - 1] && w->v[s - 2] > best) {
                    best = w->v[s - 2];
                    from = 2;
                }
            }
            w->nv[s] = best + w->lp[c];
            bp[s] = from;
        }
        double *tmp = w->v; w->v = w->nv; w->nv = tmp;
    }
    int s = Sp - 1;
    double best = Tb > 0 ? w->v[s] : (L == 0 ? 0.0 : -INFINITY);
    if (Tb > 0 && L > 0 && w->v[Sp - 2] >= best) best = w->v[s = Sp - 2];   /* a tie: no trailing blank */
    if (best == -INFINITY) return -1;
    *score = best;
    for (int t = Tb - 1; t >= 0; t--) {
        path[t] = s % 2 == 0 ? -1 : s / 2;
        s -= w->bp[(size_t)t * Sp + s];
    }
    return 0;
}

/* Checks sample b's transcript; RC_OK or an error message in err. */
static rc_status check_transcript(int b, int Tb, const int32_t *lab, int L, int S, int A, int blank, char *err,
                                  size_t errlen)
{
    if (L < 0 || L > S)
        return dec_fail(err, errlen, RC_ERR_ARG, "ctc_align: sample %d: label length %d is outside 0..S = %d", b, L, S);
    int repeats = 0;
    for (int k = 0; k < L; k++) {
        if (lab[k] < 0 || lab[k] >= A || lab[k] == blank)
            return dec_fail(err, errlen, RC_ERR_ARG, "ctc_align: sample %d: label %d is %d, not a class 0..%d other "
                            "than the blank %d", b, k, (int)lab[k], A - 1, blank);
        repeats += k > 0 && lab[k] == lab[k - 1];
    }
    if (Tb < L + repeats)
        return dec_fail(err, errlen, RC_ERR_ARG, "ctc_align: sample %d: its %d steps cannot hold its %d labels (%d "
                        "of them repeats, which need a blank between): at least %d steps are needed", b, Tb, L,
                        repeats, L + repeats);
    return RC_OK;
}

rc_status rc_ctc_align(const float *logits, int T, int B, int A, const int32_t *lengths, const int32_t *labels,
                       int S, const int32_t *label_lengths, int blank, int32_t *first, int32_t *last,
                       int32_t *frame_label, double *score, char *err, size_t errlen)
{
    rc_status st = dec_check_logits("ctc_align", logits, T, B, A, lengths, blank, err, errlen);
    if (st != RC_OK) return st;
    if (S < 0 || (S > 0 && !labels) || !label_lengths)
        return dec_fail(err, errlen, RC_ERR_ARG, "ctc_align: S = %d must be >= 0, with labels and label_lengths", S);
    static const int32_t no_labels[1] = { 0 };
    if (S == 0) labels = no_labels;   /* every sample's transcript is empty */
    int Lmax = 0;
    for (int b = 0; b < B; b++) {
        int L = label_lengths[b];
        st = check_transcript(b, dec_len(lengths, T, b), labels + (size_t)b * S, L, S, A, blank, err, errlen);
        if (st != RC_OK) return st;
        Lmax = L > Lmax ? L : Lmax;
    }
    size_t Sp = 2 * (size_t)Lmax + 1;
    int nt = dec_threads(B, (double)T * B * (A + (double)Sp));
    align_ws *ws = calloc((size_t)nt, sizeof *ws);
    int32_t *path = malloc((size_t)T * B * sizeof *path);
    double *sc = malloc((size_t)B * sizeof *sc);
    signed char *bad = calloc((size_t)B, 1);
    int ok = ws && path && sc && bad;
    for (int i = 0; ok && i < nt; i++) {
        ws[i].bp = malloc((size_t)T * Sp);
        ws[i].v = malloc(Sp * sizeof *ws[i].v);
        ws[i].nv = malloc(Sp * sizeof *ws[i].nv);
        ws[i].lp = malloc((size_t)A * sizeof *ws[i].lp);
        ok = ws[i].bp && ws[i].v && ws[i].nv && ws[i].lp;
    }
    if (ok) {
        #pragma omp parallel num_threads(nt) if (nt > 1)
        {
            align_ws *w = &ws[op_team_id()];
            #pragma omp for schedule(dynamic, 1)
            for (int b = 0; b < B; b++)
                bad[b] = (signed char)align_one(logits, B, A, b, dec_len(lengths, T, b), labels + (size_t)b * S,
                                                label_lengths[b], blank, w, path + (size_t)b * T, &sc[b]);
        }
        for (int b = 0; b < B && st == RC_OK; b++)
            if (bad[b])
                st = dec_fail(err, errlen, RC_ERR_ARG, "ctc_align: sample %d: every alignment of its %d labels has "
                              "probability 0 (-inf logits on its path)", b, (int)label_lengths[b]);
    } else {
        st = dec_fail(err, errlen, RC_ERR_NOMEM, "ctc_align: out of memory for T = %d, B = %d, %d labels", T, B, Lmax);
    }
    for (int b = 0; st == RC_OK && b < B; b++) {
        int Tb = dec_len(lengths, T, b), L = label_lengths[b];
        const int32_t *p = path + (size_t)b * T;
        if (score) score[b] = sc[b];
        if (frame_label)
            for (int t = 0; t < T; t++) frame_label[(size_t)b * T + t] = t < Tb ? p[t] : -2;
        for (int k = 0; k < L; k++) {
            if (first) first[(size_t)b * S + k] = -1;
            if (last) last[(size_t)b * S + k] = -1;
        }
        for (int t = 0; t < Tb; t++) {
            if (p[t] < 0) continue;
            size_t k = (size_t)b * S + (size_t)p[t];
            if (first && first[k] < 0) first[k] = t;
            if (last) last[k] = t;
        }
    }
    for (int i = 0; ws && i < nt; i++) {
        free(ws[i].bp);
        free(ws[i].v);
        free(ws[i].nv);
        free(ws[i].lp);
    }
    free(ws);
    free(path);
    free(sc);
    free(bad);
    if (st == RC_OK && err && errlen > 0) err[0] = '\0';
    return st;
}
