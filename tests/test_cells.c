#include <criterion/criterion.h>
#include "recur.h"
Test(cells, placeholder) { cr_assert(rc_cell_hidden(NULL) == 0); }
