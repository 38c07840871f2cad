/* cli.c: small command-line helpers shared by the subcommands. */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool cf_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
        char *end;
        long long v;
        if (!s || !*s)
                return false;
        errno = 0;
        v = strtoll(s, &end, 10);
        if (*end || errno || v < min || v > max)
                return false;
        *out = v;
        return true;
}

bool cf_read_bootstrap_file(const char *path, char *buf, size_t size)
{
        FILE *f = fopen(path, "r");
        if (!f) {
                fprintf(stderr, "chargeflow: --bootstrap-file %s: %s\n", path,
                        strerror(errno));
                return false;
        }
        if (!fgets(buf, (int)size, f)) {
                fprintf(stderr, "chargeflow: --bootstrap-file %s: empty\n",
                        path);
                fclose(f);
                return false;
        }
        fclose(f);
        buf[strcspn(buf, "\r\n")] = '\0';
        if (!*buf) {
                fprintf(stderr, "chargeflow: --bootstrap-file %s: empty\n",
                        path);
                return false;
        }
        return true;
}

bool cf_read_bootstrap_file_quiet(const char *path, char *buf, size_t size)
{
        FILE *f = fopen(path, "r");
        bool ok = false;
        if (!f)
                return false;
        if (fgets(buf, (int)size, f)) {
                buf[strcspn(buf, "\r\n")] = '\0';
                ok = *buf != '\0';
        }
        fclose(f);
        return ok;
}
