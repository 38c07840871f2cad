/*
 * money.h: money as integers in minor units: the ISO 4217 minor-unit
 * exponent of a currency, and exact decimal formatting of a scaled integer.
 * The pricing engine, the charge report and the commands that print amounts
 * use it.
 */
#ifndef CF_MONEY_H
#define CF_MONEY_H

#include <stddef.h>
#include <stdint.h>

/* Minor-unit exponent of an ISO 4217 currency code (EUR 2, JPY 0, KWD 3),
 * or -1 if the code is not in the built-in table. Pure; any thread. */
int32_t cf_money_currency_exp(const char *code);

/* Writes minor units as a decimal amount ("-12.30" for -1230 at exponent
 * 2) to buf (size bytes; terminated when size > 0). Any integer scaled by
 * 10^exp formats the same way (energy in Wh at exponent 3). Pure; any thread.
 */
void cf_money_format(int64_t minor, int32_t exp, char *buf, size_t size);

#endif
