/* The list of data kinds (kind.h): adding a kind is its file and one line here. */
#include <string.h>
#include "kind.h"

extern const data_kind kind_chars, kind_words, kind_music, kind_csv, kind_classify, kind_tags, kind_pen,
    kind_lines;

static const data_kind *const all[] = {
    &kind_chars, &kind_words, &kind_music, &kind_csv, &kind_classify, &kind_tags, &kind_pen, &kind_lines,
};
#define NKINDS (sizeof all / sizeof *all)

const data_kind *kind_find(const char *name)
{
    for (size_t i = 0; name && i < NKINDS; i++)
        if (!strcmp(all[i]->name, name)) return all[i];
    return NULL;
}

const data_kind *kind_at(int i) { return i >= 0 && (size_t)i < NKINDS ? all[i] : NULL; }

const char *kind_names(void)
{
    static char buf[256];
    if (!buf[0])
        for (size_t i = 0; i < NKINDS; i++) {
            if (i) strncat(buf, ", ", sizeof buf - strlen(buf) - 1);
            strncat(buf, all[i]->name, sizeof buf - strlen(buf) - 1);
        }
    return buf;
}
