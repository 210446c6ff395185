#include <criterion/criterion.h>
Test(data, placeholder) { cr_assert(1); }
