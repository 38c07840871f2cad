/* harness.c: child-process helpers for whole-process tests (harness.h). */
#include "harness.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(int ms)
{
        struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
}

bool cf_test_broker_start(cf_test_broker *b, int partitions)
{
        char parts[16];
        memset(b, 0, sizeof(*b));
        static int n;
        snprintf(b->bsfile, sizeof(b->bsfile), "/tmp/cf-test-bs-%d-%d",
                 (int)getpid(), n++);
        snprintf(parts, sizeof(parts), "%d", partitions);
        unlink(b->bsfile);
        b->pid = fork();
        if (b->pid < 0)
                return false;
        if (b->pid == 0) {
                int devnull = open("/dev/null", O_WRONLY);
                dup2(devnull, STDOUT_FILENO);
                execl(CF_BINARY, CF_BINARY, "broker", "--partitions", parts,
                      "--bootstrap-file", b->bsfile, (char *)NULL);
                _exit(127);
        }
        for (int i = 0; i < 1000; i++) {
                FILE *f = fopen(b->bsfile, "r");
                if (f) {
                        bool ok = fgets(b->bootstrap, sizeof(b->bootstrap),
                                        f) != NULL;
                        fclose(f);
                        if (ok) {
                                b->bootstrap[strcspn(b->bootstrap, "\n")] = 0;
                                return true;
                        }
                }
                if (waitpid(b->pid, NULL, WNOHANG) == b->pid)
                        return false;
                sleep_ms(10);
        }
        return false;
}

int cf_test_broker_stop(cf_test_broker *b)
{
        int status;
        kill(b->pid, SIGTERM);
        for (int i = 0; i < 1000; i++) {
                if (waitpid(b->pid, &status, WNOHANG) == b->pid)
                        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
                sleep_ms(10);
        }
        kill(b->pid, SIGKILL);
        waitpid(b->pid, &status, 0);
        return -1;
}

int cf_test_run(char *const argv[], char **out, size_t *outlen)
{
        int fds[2], status;
        size_t cap = 4096, len = 0;
        char *buf = malloc(cap);
        if (!buf || pipe(fds))
                return -1;
        pid_t pid = fork();
        if (pid < 0)
                return -1;
        if (pid == 0) {
                dup2(fds[1], STDOUT_FILENO);
                close(fds[0]);
                close(fds[1]);
                execv(argv[0], argv);
                _exit(127);
        }
        close(fds[1]);
        for (;;) {
                if (len + 1 >= cap) {
                        cap *= 2;
                        buf = realloc(buf, cap);
                        if (!buf)
                                abort();
                }
                ssize_t n = read(fds[0], buf + len, cap - len - 1);
                if (n <= 0)
                        break;
                len += (size_t)n;
        }
        close(fds[0]);
        buf[len] = '\0';
        *out = buf;
        if (outlen)
                *outlen = len;
        waitpid(pid, &status, 0);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static pid_t spawn(char *const argv[], const char *out_path, long fsize)
{
        pid_t pid = fork();
        if (pid != 0)
                return pid;
        if (fsize > 0) {
                struct rlimit rl = { (rlim_t)fsize, (rlim_t)fsize };
                signal(SIGXFSZ, SIG_IGN);
                setrlimit(RLIMIT_FSIZE, &rl);
        }
        char err_path[512];
        snprintf(err_path, sizeof(err_path), "%s.err", out_path);
        int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fe = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || fe < 0)
                _exit(127);
        dup2(fd, STDOUT_FILENO);
        dup2(fe, STDERR_FILENO);
        execv(argv[0], argv);
        _exit(127);
}

pid_t cf_test_spawn(char *const argv[], const char *out_path)
{
        return spawn(argv, out_path, 0);
}

pid_t cf_test_spawn_fsize(char *const argv[], const char *out_path, long fsize)
{
        return spawn(argv, out_path, fsize);
}

int cf_test_wait(pid_t pid, int timeout_s)
{
        int status;
        for (int i = 0; i < timeout_s * 100; i++) {
                if (waitpid(pid, &status, WNOHANG) == pid)
                        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
                sleep_ms(10);
        }
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        return -1;
}

int cf_test_signal_wait(pid_t pid, int sig, int timeout_s)
{
        int status;
        kill(pid, sig);
        for (int i = 0; i < timeout_s * 100; i++) {
                if (waitpid(pid, &status, WNOHANG) == pid)
                        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
                sleep_ms(10);
        }
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        return -1;
}
