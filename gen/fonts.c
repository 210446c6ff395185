/* The font faces recur knows and font lists: see line_gen.h. The table holds the text
 * faces of Debian's font packages (file names as the packages install them under
 * /usr/share/fonts); whether a face is installed is checked when it is asked for, so
 * the build needs no font. Symbol fonts (StandardSymbolsPS, D050000L dingbats,
 * DejaVuMathTeXGyre) are left out: their glyphs are not letters. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "line_gen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FONT_ROOT "/usr/share/fonts/"

/* usual: a default face (the packages do.sh installs; Z003's swash script and
 * fonts-dejavu-extra, which do.sh does not install, only by name) */
static const struct face {
    const char *name, *file, *package;
    int usual;
} faces[] = {
    { "C059-BdIta", FONT_ROOT "opentype/urw-base35/C059-BdIta.otf", "fonts-urw-base35", 1 },
    { "C059-Bold", FONT_ROOT "opentype/urw-base35/C059-Bold.otf", "fonts-urw-base35", 1 },
    { "C059-Italic", FONT_ROOT "opentype/urw-base35/C059-Italic.otf", "fonts-urw-base35", 1 },
    { "C059-Roman", FONT_ROOT "opentype/urw-base35/C059-Roman.otf", "fonts-urw-base35", 1 },
    { "NimbusMonoPS-Bold", FONT_ROOT "opentype/urw-base35/NimbusMonoPS-Bold.otf", "fonts-urw-base35", 1 },
    { "NimbusMonoPS-BoldItalic", FONT_ROOT "opentype/urw-base35/NimbusMonoPS-BoldItalic.otf", "fonts-urw-base35", 1 },
    { "NimbusMonoPS-Italic", FONT_ROOT "opentype/urw-base35/NimbusMonoPS-Italic.otf", "fonts-urw-base35", 1 },
    { "NimbusMonoPS-Regular", FONT_ROOT "opentype/urw-base35/NimbusMonoPS-Regular.otf", "fonts-urw-base35", 1 },
    { "NimbusRoman-Bold", FONT_ROOT "opentype/urw-base35/NimbusRoman-Bold.otf", "fonts-urw-base35", 1 },
    { "NimbusRoman-BoldItalic", FONT_ROOT "opentype/urw-base35/NimbusRoman-BoldItalic.otf", "fonts-urw-base35", 1 },
    { "NimbusRoman-Italic", FONT_ROOT "opentype/urw-base35/NimbusRoman-Italic.otf", "fonts-urw-base35", 1 },
    { "NimbusRoman-Regular", FONT_ROOT "opentype/urw-base35/NimbusRoman-Regular.otf", "fonts-urw-base35", 1 },
    { "NimbusSans-Bold", FONT_ROOT "opentype/urw-base35/NimbusSans-Bold.otf", "fonts-urw-base35", 1 },
    { "NimbusSans-BoldItalic", FONT_ROOT "opentype/urw-base35/NimbusSans-BoldItalic.otf", "fonts-urw-base35", 1 },
    { "NimbusSans-Italic", FONT_ROOT "opentype/urw-base35/NimbusSans-Italic.otf", "fonts-urw-base35", 1 },
    { "NimbusSans-Regular", FONT_ROOT "opentype/urw-base35/NimbusSans-Regular.otf", "fonts-urw-base35", 1 },
    { "NimbusSansNarrow-Bold", FONT_ROOT "opentype/urw-base35/NimbusSansNarrow-Bold.otf", "fonts-urw-base35", 1 },
    { "NimbusSansNarrow-BoldOblique", FONT_ROOT "opentype/urw-base35/NimbusSansNarrow-BoldOblique.otf", "fonts-urw-base35", 1 },
    { "NimbusSansNarrow-Oblique", FONT_ROOT "opentype/urw-base35/NimbusSansNarrow-Oblique.otf", "fonts-urw-base35", 1 },
    { "NimbusSansNarrow-Regular", FONT_ROOT "opentype/urw-base35/NimbusSansNarrow-Regular.otf", "fonts-urw-base35", 1 },
    { "P052-Bold", FONT_ROOT "opentype/urw-base35/P052-Bold.otf", "fonts-urw-base35", 1 },
    { "P052-BoldItalic", FONT_ROOT "opentype/urw-base35/P052-BoldItalic.otf", "fonts-urw-base35", 1 },
    { "P052-Italic", FONT_ROOT "opentype/urw-base35/P052-Italic.otf", "fonts-urw-base35", 1 },
    { "P052-Roman", FONT_ROOT "opentype/urw-base35/P052-Roman.otf", "fonts-urw-base35", 1 },
    { "URWBookman-Demi", FONT_ROOT "opentype/urw-base35/URWBookman-Demi.otf", "fonts-urw-base35", 1 },
    { "URWBookman-DemiItalic", FONT_ROOT "opentype/urw-base35/URWBookman-DemiItalic.otf", "fonts-urw-base35", 1 },
    { "URWBookman-Light", FONT_ROOT "opentype/urw-base35/URWBookman-Light.otf", "fonts-urw-base35", 1 },
    { "URWBookman-LightItalic", FONT_ROOT "opentype/urw-base35/URWBookman-LightItalic.otf", "fonts-urw-base35", 1 },
    { "URWGothic-Book", FONT_ROOT "opentype/urw-base35/URWGothic-Book.otf", "fonts-urw-base35", 1 },
    { "URWGothic-BookOblique", FONT_ROOT "opentype/urw-base35/URWGothic-BookOblique.otf", "fonts-urw-base35", 1 },
    { "URWGothic-Demi", FONT_ROOT "opentype/urw-base35/URWGothic-Demi.otf", "fonts-urw-base35", 1 },
    { "URWGothic-DemiOblique", FONT_ROOT "opentype/urw-base35/URWGothic-DemiOblique.otf", "fonts-urw-base35", 1 },
    { "Z003-MediumItalic", FONT_ROOT "opentype/urw-base35/Z003-MediumItalic.otf", "fonts-urw-base35", 0 },
    { "DejaVuSans-Bold", FONT_ROOT "truetype/dejavu/DejaVuSans-Bold.ttf", "fonts-dejavu-core", 1 },
    { "DejaVuSans-BoldOblique", FONT_ROOT "truetype/dejavu/DejaVuSans-BoldOblique.ttf", "fonts-dejavu-extra", 0 },
    { "DejaVuSans-ExtraLight", FONT_ROOT "truetype/dejavu/DejaVuSans-ExtraLight.ttf", "fonts-dejavu-extra", 0 },
    { "DejaVuSans-Oblique", FONT_ROOT "truetype/dejavu/DejaVuSans-Oblique.ttf", "fonts-dejavu-extra", 0 },
    { "DejaVuSans", FONT_ROOT "truetype/dejavu/DejaVuSans.ttf", "fonts-dejavu-core", 1 },
    { "DejaVuSansCondensed-Bold", FONT_ROOT "truetype/dejavu/DejaVuSansCondensed-Bold.ttf", "fonts-dejavu-extra", 0 },
    { "DejaVuSansCondensed-BoldOblique", FONT_ROOT "truetype/dejavu/DejaVuSansCondensed-BoldOblique.ttf", "fonts-dejavu-extra", 0 },
    { "DejaVuSansCondensed-Oblique", FONT_ROOT "truetype/dejavu/DejaVuSansCondensed-Oblique.ttf", "fonts-dejavu-extra", 0 },
    { "DejaVuSansCondensed", FONT_ROOT "truetype/dejavu/DejaVuSansCondensed.ttf", "fonts-dejavu-extra", 0 },
    { "DejaVuSansMono-Bold", FONT_ROOT "truetype/dejavu/DejaVuSansMono-Bold.ttf", "fonts-dejavu-core", 1 },
    { "DejaVuSansMono-BoldOblique", FONT_ROOT "truetype/dejavu/DejaVuSansMono-BoldOblique.ttf", "fonts-dejavu-extra", 0 },
    { "DejaVuSansMono-Oblique", FONT_ROOT "truetype/dejavu/DejaVuSansMono-Oblique.ttf", "fonts-dejavu-extra", 0 },
    { "DejaVuSansMono", FONT_ROOT "truetype/dejavu/DejaVuSansMono.ttf", "fonts-dejavu-core", 1 },
    { "DejaVuSerif-Bold", FONT_ROOT "truetype/dejavu/DejaVuSerif-Bold.ttf", "fonts-dejavu-core", 1 },
    { "DejaVuSerif-BoldItalic", FONT_ROOT "truetype/dejavu/DejaVuSerif-BoldItalic.ttf", "fonts-dejavu-extra", 0 },
    { "DejaVuSerif-Italic", FONT_ROOT "truetype/dejavu/DejaVuSerif-Italic.ttf", "fonts-dejavu-extra", 0 },
    { "DejaVuSerif", FONT_ROOT "truetype/dejavu/DejaVuSerif.ttf", "fonts-dejavu-core", 1 },
    { "DejaVuSerifCondensed-Bold", FONT_ROOT "truetype/dejavu/DejaVuSerifCondensed-Bold.ttf", "fonts-dejavu-extra", 0 },
    { "DejaVuSerifCondensed-BoldItalic", FONT_ROOT "truetype/dejavu/DejaVuSerifCondensed-BoldItalic.ttf", "fonts-dejavu-extra", 0 },
    { "DejaVuSerifCondensed-Italic", FONT_ROOT "truetype/dejavu/DejaVuSerifCondensed-Italic.ttf", "fonts-dejavu-extra", 0 },
    { "DejaVuSerifCondensed", FONT_ROOT "truetype/dejavu/DejaVuSerifCondensed.ttf", "fonts-dejavu-extra", 0 },
    { "FreeMono", FONT_ROOT "truetype/freefont/FreeMono.ttf", "fonts-freefont-ttf", 1 },
    { "FreeMonoBold", FONT_ROOT "truetype/freefont/FreeMonoBold.ttf", "fonts-freefont-ttf", 1 },
    { "FreeMonoBoldOblique", FONT_ROOT "truetype/freefont/FreeMonoBoldOblique.ttf", "fonts-freefont-ttf", 1 },
    { "FreeMonoOblique", FONT_ROOT "truetype/freefont/FreeMonoOblique.ttf", "fonts-freefont-ttf", 1 },
    { "FreeSans", FONT_ROOT "truetype/freefont/FreeSans.ttf", "fonts-freefont-ttf", 1 },
    { "FreeSansBold", FONT_ROOT "truetype/freefont/FreeSansBold.ttf", "fonts-freefont-ttf", 1 },
    { "FreeSansBoldOblique", FONT_ROOT "truetype/freefont/FreeSansBoldOblique.ttf", "fonts-freefont-ttf", 1 },
    { "FreeSansOblique", FONT_ROOT "truetype/freefont/FreeSansOblique.ttf", "fonts-freefont-ttf", 1 },
    { "FreeSerif", FONT_ROOT "truetype/freefont/FreeSerif.ttf", "fonts-freefont-ttf", 1 },
    { "FreeSerifBold", FONT_ROOT "truetype/freefont/FreeSerifBold.ttf", "fonts-freefont-ttf", 1 },
    { "FreeSerifBoldItalic", FONT_ROOT "truetype/freefont/FreeSerifBoldItalic.ttf", "fonts-freefont-ttf", 1 },
    { "FreeSerifItalic", FONT_ROOT "truetype/freefont/FreeSerifItalic.ttf", "fonts-freefont-ttf", 1 },
    { "LiberationMono-Bold", FONT_ROOT "truetype/liberation/LiberationMono-Bold.ttf", "fonts-liberation", 1 },
    { "LiberationMono-BoldItalic", FONT_ROOT "truetype/liberation/LiberationMono-BoldItalic.ttf", "fonts-liberation", 1 },
    { "LiberationMono-Italic", FONT_ROOT "truetype/liberation/LiberationMono-Italic.ttf", "fonts-liberation", 1 },
    { "LiberationMono-Regular", FONT_ROOT "truetype/liberation/LiberationMono-Regular.ttf", "fonts-liberation", 1 },
    { "LiberationSans-Bold", FONT_ROOT "truetype/liberation/LiberationSans-Bold.ttf", "fonts-liberation", 1 },
    { "LiberationSans-BoldItalic", FONT_ROOT "truetype/liberation/LiberationSans-BoldItalic.ttf", "fonts-liberation", 1 },
    { "LiberationSans-Italic", FONT_ROOT "truetype/liberation/LiberationSans-Italic.ttf", "fonts-liberation", 1 },
    { "LiberationSans-Regular", FONT_ROOT "truetype/liberation/LiberationSans-Regular.ttf", "fonts-liberation", 1 },
    { "LiberationSansNarrow-Bold", FONT_ROOT "truetype/liberation/LiberationSansNarrow-Bold.ttf", "fonts-liberation", 1 },
    { "LiberationSansNarrow-BoldItalic", FONT_ROOT "truetype/liberation/LiberationSansNarrow-BoldItalic.ttf", "fonts-liberation", 1 },
    { "LiberationSansNarrow-Italic", FONT_ROOT "truetype/liberation/LiberationSansNarrow-Italic.ttf", "fonts-liberation", 1 },
    { "LiberationSansNarrow-Regular", FONT_ROOT "truetype/liberation/LiberationSansNarrow-Regular.ttf", "fonts-liberation", 1 },
    { "LiberationSerif-Bold", FONT_ROOT "truetype/liberation/LiberationSerif-Bold.ttf", "fonts-liberation", 1 },
    { "LiberationSerif-BoldItalic", FONT_ROOT "truetype/liberation/LiberationSerif-BoldItalic.ttf", "fonts-liberation", 1 },
    { "LiberationSerif-Italic", FONT_ROOT "truetype/liberation/LiberationSerif-Italic.ttf", "fonts-liberation", 1 },
    { "LiberationSerif-Regular", FONT_ROOT "truetype/liberation/LiberationSerif-Regular.ttf", "fonts-liberation", 1 },
};

#define NFACES ((int)(sizeof faces / sizeof faces[0]))

const char *gen_freetype_missing(void)
{
    return "recur was built without FreeType: install libfreetype-dev and reconfigure (meson setup --reconfigure)";
}

const char *rc_gen_line_face(int i, const char **path, const char **package, int *usual)
{
    if (i < 0 || i >= NFACES) {
        if (path) *path = NULL;
        if (package) *package = NULL;
        if (usual) *usual = 0;
        return NULL;
    }
    if (path) *path = access(faces[i].file, R_OK) == 0 ? faces[i].file : NULL;
    if (package) *package = faces[i].package;
    if (usual) *usual = faces[i].usual;
    return faces[i].name;
}

void font_list_free(font_list *l)
{
    for (int i = 0; i < l->n; i++) {
        free(l->name[i]);
        free(l->path[i]);
    }
    free(l->name);
    free(l->path);
    memset(l, 0, sizeof *l);
}

static int in_list(const font_list *l, const char *path)
{
    for (int i = 0; l && i < l->n; i++)
        if (!strcmp(l->path[i], path)) return 1;
    return 0;
}

static int add(font_list *l, const char *name, const char *path, const font_list *minus, char *err, size_t errlen)
{
    if (in_list(l, path) || in_list(minus, path)) return 0;
    char **nn = realloc(l->name, ((size_t)l->n + 1) * sizeof *nn);
    if (nn) l->name = nn;
    char **np = nn ? realloc(l->path, ((size_t)l->n + 1) * sizeof *np) : NULL;
    if (np) l->path = np;
    if (!nn || !np) return gen_fail(err, errlen, "fonts: out of memory");
    l->name[l->n] = strdup(name);
    l->path[l->n] = strdup(path);
    l->n++;   /* counted even when a copy failed, so font_list_free frees the other */
    if (!l->name[l->n - 1] || !l->path[l->n - 1]) return gen_fail(err, errlen, "fonts: out of memory");
    return 0;
}

/* Does face `name` belong to the family `fam` ("P052" of "P052-Roman")? */
static int in_family(const char *name, const char *fam, size_t fl)
{
    return strncmp(name, fam, fl) == 0 && (name[fl] == 0 || name[fl] == '-');
}

static int add_face(font_list *l, int k, const font_list *minus, char *err, size_t errlen)
{
    const char *path, *pkg;
    rc_gen_line_face(k, &path, &pkg, NULL);
    if (!path)
        return gen_fail(err, errlen, "font %s is not installed (%s is missing: apt-get install %s)", faces[k].name,
                        faces[k].file, pkg);
    return add(l, faces[k].name, path, minus, err, errlen);
}

/* One entry of a list (len bytes at e). */
static int add_entry(font_list *l, const char *e, size_t len, const font_list *minus, char *err, size_t errlen)
{
    char buf[512];
    if (len >= sizeof buf) return gen_fail(err, errlen, "fonts: entry '%.40s...' is too long", e);
    memcpy(buf, e, len);
    buf[len] = 0;
    if (strchr(buf, '/')) {   /* a font file */
        if (access(buf, R_OK) != 0) return gen_fail(err, errlen, "font file %s cannot be read", buf);
        const char *base = strrchr(buf, '/') + 1;
        char name[256];
        snprintf(name, sizeof name, "%s", base);
        char *dot = strrchr(name, '.');
        if (dot && dot != name) *dot = 0;
        return add(l, name, buf, minus, err, errlen);
    }
    if (!strcmp(buf, "all")) {   /* every installed face */
        for (int k = 0; k < NFACES; k++) {
            const char *path;
            rc_gen_line_face(k, &path, NULL, NULL);
            if (path && add(l, faces[k].name, path, minus, err, errlen) != 0) return -1;
        }
        return 0;
    }
    for (int k = 0; k < NFACES; k++)   /* a face's own name: it must be installed */
        if (!strcmp(faces[k].name, buf)) return add_face(l, k, minus, err, errlen);
    int known = -1, added = 0;   /* a family: its installed faces */
    for (int k = 0; k < NFACES; k++) {
        if (!in_family(faces[k].name, buf, len)) continue;
        const char *path;
        rc_gen_line_face(k, &path, NULL, NULL);
        if (known < 0) known = k;
        if (!path) continue;
        if (add(l, faces[k].name, path, minus, err, errlen) != 0) return -1;
        added++;
    }
    if (known < 0)
        return gen_fail(err, errlen, "unknown font '%s' (recur generate lines --list-fonts lists the faces; a font "
                        "file is given by its path)", buf);
    if (!added) return add_face(l, known, minus, err, errlen);   /* says which package to install */
    return 0;
}

int font_list_parse(font_list *l, const char *spec, const font_list *minus, char *err, size_t errlen)
{
    memset(l, 0, sizeof *l);
    int rc = 0;
    if (!spec || !*spec) {
        for (int k = 0; rc == 0 && k < NFACES; k++)
            if (faces[k].usual) rc = add_face(l, k, minus, err, errlen);
    } else if (strcmp(spec, "none") != 0) {
        for (const char *p = spec; rc == 0;) {
            const char *e = strchr(p, ',');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            while (len && *p == ' ') p++, len--;
            while (len && p[len - 1] == ' ') len--;
            if (len) rc = add_entry(l, p, len, minus, err, errlen);
            if (!e) break;
            p = e + 1;
        }
    }
    if (rc != 0) font_list_free(l);
    return rc;
}
