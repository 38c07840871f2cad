/*
 * money.c: ISO 4217 minor-unit exponents and exact decimal formatting of
 * integer amounts (see money.h). Integers only: no floating point.
 */
#include "money.h"

#include <stdbool.h>
#include <string.h>

static const struct {
        char code[4];
        int8_t exp;
} cf_currencies[] = {
        { "EUR", 2 }, { "NOK", 2 }, { "SEK", 2 }, { "DKK", 2 }, { "GBP", 2 },
        { "USD", 2 }, { "CHF", 2 }, { "PLN", 2 }, { "CZK", 2 }, { "HUF", 2 },
        { "RON", 2 }, { "BGN", 2 }, { "CAD", 2 }, { "AUD", 2 }, { "NZD", 2 },
        { "CNY", 2 }, { "HKD", 2 }, { "SGD", 2 }, { "INR", 2 }, { "ILS", 2 },
        { "TRY", 2 }, { "ZAR", 2 }, { "BRL", 2 }, { "MXN", 2 }, { "AED", 2 },
        { "SAR", 2 }, { "QAR", 2 }, { "THB", 2 }, { "MYR", 2 }, { "PHP", 2 },
        { "IDR", 2 }, { "TWD", 2 }, { "UAH", 2 }, { "RSD", 2 }, { "MKD", 2 },
        { "BAM", 2 }, { "GEL", 2 }, { "MDL", 2 }, { "EGP", 2 }, { "MAD", 2 },
        { "ARS", 2 }, { "COP", 2 }, { "PEN", 2 }, { "KZT", 2 }, { "PKR", 2 },
        { "JPY", 0 }, { "ISK", 0 }, { "KRW", 0 }, { "CLP", 0 }, { "VND", 0 },
        { "PYG", 0 }, { "UGX", 0 }, { "XAF", 0 }, { "XOF", 0 }, { "XPF", 0 },
        { "BIF", 0 }, { "DJF", 0 }, { "GNF", 0 }, { "KMF", 0 }, { "RWF", 0 },
        { "VUV", 0 }, { "BHD", 3 }, { "IQD", 3 }, { "JOD", 3 }, { "KWD", 3 },
        { "LYD", 3 }, { "OMR", 3 }, { "TND", 3 },
};

int32_t cf_money_currency_exp(const char *code)
{
        if (!code || strlen(code) != 3)
                return -1;
        for (size_t i = 0; i < sizeof(cf_currencies) / sizeof(cf_currencies[0]);
             i++)
                if (!memcmp(cf_currencies[i].code, code, 3))
                        return cf_currencies[i].exp;
        return -1;
}

void cf_money_format(int64_t minor, int32_t exp, char *buf, size_t size)
{
        uint64_t m =
            minor < 0 ? (uint64_t)0 - (uint64_t)minor : (uint64_t)minor;
        char tmp[48];
        int n = 0;
        if (exp < 0 || exp > 18)
                exp = 0;
        /* digits, least significant first, at least exp + 1 of them */
        do {
                tmp[n++] = (char)('0' + m % 10);
                m /= 10;
                if (n == exp)
                        tmp[n++] = '.';
        } while (m || (exp > 0 && n <= exp + 1));
        if (minor < 0)
                tmp[n++] = '-';
        size_t k = 0;
        while (n > 0 && k + 1 < size)
                buf[k++] = tmp[--n];
        if (size)
                buf[k] = '\0';
}
