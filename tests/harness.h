/*
 * harness.h: helpers for whole-process tests: start the real `chargeflow`
 * binary (CF_BINARY) as a child, e.g. the embedded broker, and capture a
 * command's output.
 */
#ifndef CF_TEST_HARNESS_H
#define CF_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct cf_test_broker {
        pid_t pid;
        char bootstrap[256];
        char bsfile[128];
} cf_test_broker;

/* Starts `chargeflow broker --partitions N --bootstrap-file <tmp>` and waits
 * (up to 10 s) for the bootstrap file. Returns false on failure. */
bool cf_test_broker_start(cf_test_broker *b, int partitions);

/* Sends SIGTERM and waits; returns the exit status (-1 if it did not exit
 * normally within 10 s). */
int cf_test_broker_stop(cf_test_broker *b);

/* Runs argv (argv[0] a path) to completion with stdout captured into a
 * malloc'ed NUL-terminated buffer (*out, caller frees). Returns the exit
 * status, or -1 if it did not exit normally. */
int cf_test_run(char *const argv[], char **out, size_t *outlen);

/* Starts argv (argv[0] a path) with stdout to out_path and stderr to
 * out_path.err; returns its pid. */
pid_t cf_test_spawn(char *const argv[], const char *out_path);

/* Like cf_test_spawn, with files limited to fsize bytes (RLIMIT_FSIZE)
 * and SIGXFSZ ignored, so that writes past it fail (EFBIG): a disk that
 * fills up. */
pid_t cf_test_spawn_fsize(char *const argv[], const char *out_path, long fsize);

/* Waits up to timeout_s for pid to exit; its exit status, or -1 (killed
 * when it did not exit in time, or did not exit normally). */
int cf_test_wait(pid_t pid, int timeout_s);

/* Sends sig to pid and waits up to timeout_s; returns the exit status, or
 * -1 if it did not exit normally in time (it is then killed). */
int cf_test_signal_wait(pid_t pid, int sig, int timeout_s);

#endif
