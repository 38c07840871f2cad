/*
 * brokers.h: the Kafka-protocol brokers that tests and benchmarks run on.
 *
 * Three kinds: "mock", the embedded broker (`chargeflow broker`, librdkafka's
 * mock cluster); "peer", an independent broker written without librdkafka
 * (../shared/kafka-peer, franz-go's kfake), a test tool the product never
 * requires; "external", a cluster the user points at with a bootstrap
 * address. Whatever the kind, a started broker has exactly the project's
 * topics, empty, made by `chargeflow topics create` (the mock makes its own).
 * Used by tests/harness.c (CF_TEST_BROKER) and `chargeflow bench --broker`.
 */
#ifndef CF_BROKERS_H
#define CF_BROKERS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "err.h"

typedef enum cf_broker_kind {
        CF_BROKER_MOCK,
        CF_BROKER_PEER,
        CF_BROKER_EXTERNAL,
} cf_broker_kind;

typedef struct cf_broker {
        cf_broker_kind kind;
        pid_t pid;           /* the broker process; 0 for external */
        char bootstrap[512]; /* host:port[,host:port...] */
        char addr_file[256]; /* where the child wrote its address */
} cf_broker;

/* "mock", "peer" or "external"; false for anything else. */
bool cf_broker_kind_parse(const char *s, cf_broker_kind *kind);
const char *cf_broker_kind_name(cf_broker_kind kind);

/* The peer broker's path: $CF_KAFKA_PEER if set, else
 * source_dir/../shared/kafka-peer/kafka-peer. Written to buf; returns true
 * when that file is executable. */
bool cf_broker_peer_path(const char *source_dir, char *buf, size_t size);

/* Starts a broker of kind with the project's topics, each with partitions
 * partitions, and fills b. self is the chargeflow binary (mock: runs
 * `self broker`; every kind: runs `self topics create`); peer is the peer
 * binary's path (peer only); external is the bootstrap of an existing
 * cluster (external only), whose project topics are deleted and made anew:
 * point it at a scratch cluster only. The child's stderr goes to log_path.
 * CF_ERR_KAFKA with errstr set on failure (nothing left running). */
cf_err_t cf_broker_start(cf_broker *b, cf_broker_kind kind, const char *self,
                         const char *peer, const char *external, int partitions,
                         const char *log_path, char *errstr,
                         size_t errstr_size);

/* Stops a started broker (SIGTERM, then SIGKILL after 10 s); returns its
 * exit status, or -1 if it did not exit normally. External: nothing to stop,
 * returns 0. No-op on a zeroed b. */
int cf_broker_stop(cf_broker *b);

#endif
