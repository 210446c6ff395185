/* The check every search candidate passes (dependence of the output on the input
 * and on a recurrence) and parameter counts of a checked program. */
#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include "mutate_internal.h"

/* ---- the candidate check ------------------------------------------------------------- */

/* Bit 0: the input; bit 1 + k: state k's previous value. */
static uint32_t dep_of(const lang_prog *p, int k, const uint32_t *let, const uint32_t *nw)
{
    const lnode *n = &pnodes(p)[k];
    if (n->vk == V_SCALAR) return 0;
    switch (n->kind) {
    case N_INPUT: return 1;
    case N_STATE: return 2u << n->ref;
    case N_NEW: return nw[n->ref];
    case N_LET: return let[n->ref];
    case N_VEC: return 0;
    case N_CONCAT: {
        uint32_t d = 0;
        for (int j = 0; j < n->nargs; j++) d |= dep_of(p, pargs(p)[n->arg0 + j], let, nw);
        return d;
    }
    default: return (n->a >= 0 ? dep_of(p, n->a, let, nw) : 0) | (n->b >= 0 ? dep_of(p, n->b, let, nw) : 0);
    }
}

/* The states (bit k) whose previous values reach the new values of the states in `from`. */
static uint32_t reach(const uint32_t *nw, uint32_t from)
{
    uint32_t seen = 0, front = 0;
    for (int s = 0; s < L_MAX_STATES; s++)
        if (from >> s & 1) front |= nw[s] >> 1;
    while (front & ~seen) {
        uint32_t f = front & ~seen, next = 0;
        seen |= f;
        for (int s = 0; s < L_MAX_STATES; s++)
            if (f >> s & 1) next |= nw[s] >> 1;
        front = next;
    }
    return seen;
}

int cell_check_prog(const lang_prog *p, int I, int I2, char *err, size_t errlen)
{
    if (lang_validate(p, I, NULL, err, errlen)) return -1;
    if (I2 > 0 && I2 != I && lang_validate(p, I2, NULL, err, errlen)) return -1;
    uint32_t nw[L_MAX_STATES] = { 0 }, *let = calloc((size_t)p->nbinds + 1, sizeof *let);
    if (!let) return mut_fail(err, errlen, "out of memory");
    const lstmt *st = pstmts(p);
    for (int k = 0; k < p->nstmts; k++) {
        uint32_t d = dep_of(p, st[k].expr, let, nw);
        if (st[k].kind == S_LET) let[st[k].ref] = d;
        else nw[st[k].ref] = d;
    }
    free(let);
    const char *pool = ppool(p), *cell = pool + p->cell, *in = pool + p->input, *out = lang_state_name(p, 0);
    if (!(nw[0] & 1))
        return mut_fail(err, errlen, "cell '%s': the new value of its output %s' does not depend on the input '%s': "
                    "expected a cell that reads its input", cell, out, in);
    uint32_t R = reach(nw, 1);
    if (!R)
        return mut_fail(err, errlen, "cell '%s': %s' depends on no state's previous value: expected a recurrence", cell, out);
    int sees = 0, cycle = 0;
    for (int s = 0; s < p->nstates; s++)
        if (R >> s & 1) {
            sees |= (int)(nw[s] & 1);
            cycle |= (int)(reach(nw, 1u << s) >> s & 1);
        }
    if (!sees)
        return mut_fail(err, errlen, "cell '%s': none of the states %s' reads sees the input: the recurrence carries nothing "
                    "from earlier steps", cell, out);
    if (!cycle)
        return mut_fail(err, errlen, "cell '%s': %s' depends on the past through a fixed number of steps only (no cycle "
                    "among the states it reads): expected a recurrence", cell, out);
    for (int s = 1; s < p->nstates; s++)
        if (!(R >> s & 1))
            return mut_fail(err, errlen, "cell '%s': the previous value of state '%s' never reaches the output %s': "
                        "expected every state to carry something to the output", cell, lang_state_name(p, s), out);
    return 0;
}


/* ---- parameter counts --------------------------------------------------------------------- */

long long mut_params_at(const lang_prog *p, long long H, long long I)
{
    const lparam *pa = pparams(p);
    long long n = 0;
    for (int k = 0; k < p->nparams; k++) {
        long long o = wev(pa[k].w, H, I);
        n += pa[k].kind == P_WEIGHT ? o * wev(pa[k].in, H, I) : o;
    }
    return n;
}

long long cell_prog_params(const lang_prog *p, int I) { return mut_params_at(p, p->hidden, I); }

