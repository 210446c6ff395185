/* Parameter initialisers: bounds, determinism, orthogonality. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>
#include "recur.h"

static rc_node *param(rc_graph *g, const char *name, int r, int c, rc_init_kind k, float a)
{
    int s[2] = { r, c };
    rc_node *p = rc_param(g, name, 2, s);
    cr_assert_not_null(p, "%s", rc_graph_error(g));
    cr_assert_eq(rc_param_set_init(p, k, a), RC_OK);
    return p;
}

/* max |(A A^T or A^T A) - gain^2 I| over the smaller Gram matrix */
static double ortho_err(const float *a, int r, int c, double gain)
{
    int n = r < c ? r : c;
    double worst = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int k = 0; k < (r < c ? c : r); k++)
                s += r < c ? (double)a[i * c + k] * a[j * c + k] : (double)a[k * c + i] * a[k * c + j];
            worst = fmax(worst, fabs(s - (i == j ? gain * gain : 0)));
        }
    return worst;
}

Test(init, orthogonal_square_tall_wide)
{
    rc_graph *g = rc_graph_new();
    rc_node *sq = param(g, "sq", 16, 16, RC_INIT_ORTHOGONAL, 0);
    rc_node *tall = param(g, "tall", 24, 8, RC_INIT_ORTHOGONAL, 0);
    rc_node *wide = param(g, "wide", 6, 20, RC_INIT_ORTHOGONAL, 2.0f);
    cr_assert_eq(rc_graph_init_params(g, 7), RC_OK, "%s", rc_graph_error(g));
    cr_expect_lt(ortho_err(rc_param_data(sq), 16, 16, 1), 1e-5);
    cr_expect_lt(ortho_err(rc_param_data(tall), 24, 8, 1), 1e-5);
    cr_expect_lt(ortho_err(rc_param_data(wide), 6, 20, 2), 1e-4);
    rc_graph_free(g);
}

Test(init, bounds_and_determinism)
{
    float first[2][64 * 32];
    for (int run = 0; run < 2; run++) {
        rc_graph *g = rc_graph_new();
        rc_node *u = param(g, "u", 64, 32, RC_INIT_UNIFORM, 0.1f);
        rc_node *gl = param(g, "g", 64, 32, RC_INIT_GLOROT, 0);
        rc_node *d = param(g, "d", 64, 32, RC_INIT_DEFAULT, 0);
        rc_node *c = param(g, "c", 4, 4, RC_INIT_CONST, 2.5f);
        int vs = 8;
        rc_node *v = rc_param(g, "v", 1, &vs);
        cr_assert_eq(rc_graph_init_params(g, 99), RC_OK);
        const float *pu = rc_param_data(u), *pg = rc_param_data(gl), *pd = rc_param_data(d);
        double lim = sqrt(6.0 / (64 + 32)), su = 0;
        for (int i = 0; i < 64 * 32; i++) {
            cr_assert(fabsf(pu[i]) <= 0.1f && fabs(pg[i]) <= lim && fabsf(pd[i]) <= 1.0f / 8.0f);
            su += pu[i] * pu[i];
        }
        cr_expect(fabs(sqrt(su / (64 * 32)) - 0.1 / sqrt(3.0)) < 0.01, "uniform std off");
        for (int i = 0; i < 16; i++) cr_assert_eq(rc_param_data(c)[i], 2.5f);
        for (int i = 0; i < 8; i++) cr_assert_eq(rc_param_data(v)[i], 0.0f);
        memcpy(first[run], pu, sizeof first[run]);
        rc_graph_free(g);
    }
    cr_expect_eq(memcmp(first[0], first[1], sizeof first[0]), 0, "the same seed gave other weights");
}

Test(init, bad_arguments)
{
    rc_graph *g = rc_graph_new();
    int s[1] = { 3 };
    rc_node *x = rc_input(g, "x", RC_F32, 1, s);
    cr_expect_eq(rc_param_set_init(x, RC_INIT_UNIFORM, 1), RC_ERR_ARG);
    cr_expect_eq(rc_param_set_init(NULL, RC_INIT_UNIFORM, 1), RC_ERR_ARG);
    rc_graph_clear_error(g);
    rc_node *p = rc_param(g, "p", 1, s);
    cr_expect_eq(rc_param_set_init(p, (rc_init_kind)42, 1), RC_ERR_ARG);
    rc_graph_free(g);
}
