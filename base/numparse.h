/* Internal: numbers from text whatever the caller's locale. strtod/strtof read the
 * decimal point of LC_NUMERIC, so under a German locale "1.5" stops at the '.'; data
 * files (CSV, JSON) always write '.', so their readers parse with these instead. */
#ifndef RC_NUMPARSE_H
#define RC_NUMPARSE_H

#include <stddef.h>

/* Parses all of s[0, len) (no surrounding spaces) as a decimal number in C syntax:
 * [+-] then digits with an optional '.' and fraction (at least one digit in all),
 * then optionally e or E, [+-], digits. No hex, inf or nan. The value is strtod's in
 * the "C" locale (correctly rounded; +-HUGE_VAL on overflow, 0 or a subnormal on
 * underflow). 0 and *v, -1 when the text is not such a number, -2 when memory is
 * short (a number of more than 127 characters is copied to the heap). */
int num_parse(const char *s, size_t len, double *v);
/* num_parse rounded once to float (strtof's value in the "C" locale). */
int num_parse_float(const char *s, size_t len, float *v);

#endif
