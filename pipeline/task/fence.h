/*
 * fence.h: broker-side fencing of a task's writes (producer.fencing=
 * transactions).
 *
 * Each task writes its task log and its outputs through a transactional
 * producer of its own, transactional.id "<group.id>.<task>" (e.g.
 * "chargeflow.A-3"), the same in every process of the group. A process
 * that is given the task first initialises that id (cf_fence_acquire),
 * before it reads the task log: the broker then bumps the id's epoch,
 * aborts whatever transaction an earlier owner left open and refuses every
 * later write of that owner's producer. Each commit of the task is one
 * Kafka transaction: its task log records and its outputs become visible
 * to read_committed readers together, or not at all. So a process frozen
 * past its session timeout writes nothing that counts once its tasks'
 * new owners have started, whatever it had handed to librdkafka before it
 * froze: its transaction is aborted, and its commit of it fails as fenced
 * (the process then stops, exit code 1).
 *
 * Delivery reports of a transaction's records are kept (cf_outbox's
 * txn list) and take effect (delivered, task log positions) only once its
 * commit succeeds; an abortable failure puts them back as pending for the
 * next commit.
 *
 * The producers outlive a rebalance only while the process holds the
 * task: they are made again at each assignment (a producer kept from an
 * earlier one may have been fenced meanwhile) and let go at a revoke.
 * Runtime thread only.
 */
#ifndef CF_FENCE_H
#define CF_FENCE_H

#include <signal.h>
#include <stdbool.h>

#include <librdkafka/rdkafka.h>

#include "err.h"

struct cf_runtime;
struct cf_task;

/* Keeps a copy of conf (the runtime's producer configuration, with its
 * delivery callback and opaque) for the tasks' producers. */
void cf_fence_setup(struct cf_runtime *rt, const rd_kafka_conf_t *conf);

/* For each task index i with want[i]: a new transactional producer for it,
 * its id initialised (which fences every earlier producer of the id). The
 * inits run side by side. */
cf_err_t cf_fence_acquire(struct cf_runtime *rt, const bool *want,
                          volatile sig_atomic_t *stop, char *errstr,
                          size_t errstr_size);

/* Destroys every task producer (none may have a transaction open). */
void cf_fence_release_all(struct cf_runtime *rt);

/* Frees what cf_fence_setup kept and every producer. */
void cf_fence_destroy(struct cf_runtime *rt);

/* The producer t writes through: its own with fencing, else the
 * runtime's. */
rd_kafka_t *cf_fence_producer(const struct cf_task *t);

/* Serves the delivery reports of every producer (rd_kafka_poll, timeout
 * on the runtime's, 0 on the others). */
void cf_fence_poll(struct cf_runtime *rt, int timeout_ms);

/* Records waiting in every producer. */
int cf_fence_outq_len(struct cf_runtime *rt);

/* The transactional.id of task sub-id in dst. */
void cf_fence_txn_id(const struct cf_runtime *rt, char sub, int32_t id,
                     char *dst, size_t size);

#endif
