/* cli.c: small command-line helpers shared by the subcommands. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

int cf_spawn(char *const argv[], const char *out, const char *err)
{
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        if (pid < 0) {
                /* Never hand back -1: kill(-1, ...) would signal every
                 * process we may signal. */
                perror("chargeflow: fork");
                exit(1);
        }
        if (pid != 0)
                return pid;
        int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fe = err ? open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644) : fo;
        if (fo < 0 || fe < 0)
                _exit(127);
        dup2(fo, STDOUT_FILENO);
        dup2(fe, STDERR_FILENO);
        execv(argv[0], argv);
        _exit(127);
}
