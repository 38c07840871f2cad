/*
 * cli.h: subcommand entry points and small command-line helpers.
 *
 * Each cf_cmd_X(argc, argv) gets argv[0] = "X" and returns the process exit
 * code: 0 success, 1 runtime failure, 2 usage or configuration error.
 */
#ifndef CF_CLI_H
#define CF_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

int cf_cmd_broker(int argc, char **argv);
int cf_cmd_cat(int argc, char **argv);
int cf_cmd_topics(int argc, char **argv);
int cf_cmd_tariff(int argc, char **argv);
int cf_cmd_run(int argc, char **argv);
int cf_cmd_report(int argc, char **argv);
int cf_cmd_demo(int argc, char **argv);
int cf_cmd_gen(int argc, char **argv);
int cf_cmd_registry(int argc, char **argv);
/* In bench/bench_cmd.c. */
int cf_cmd_bench(int argc, char **argv);

/* Starts argv[0] (a path) with argv, stdout to the file out and stderr to
 * the file err (NULL: to out too), both truncated. Returns the child's pid;
 * if fork fails it says so and exits 1. A child that cannot open its files
 * or exec exits 127. Used by the commands that run others (demo, bench). */
int cf_spawn(char *const argv[], const char *out, const char *err);

/* Parses a decimal integer in [min, max]; false on any junk. */
bool cf_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);

/* Reads the first line of a bootstrap file into buf (newline stripped).
 * Returns false and prints an error naming the file on failure. */
bool cf_read_bootstrap_file(const char *path, char *buf, size_t size);

/* The same without the error message (for polling until it exists). */
bool cf_read_bootstrap_file_quiet(const char *path, char *buf, size_t size);

#endif
