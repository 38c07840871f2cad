/*
 * session.h: a charging session as sessionize builds it and price consumes
 * it (the CF_ITEM_SESSION item).
 *
 * Ownership: the sessionize stage owns sessions; a closed session handed to
 * price lives until the forward call returns, and price writes only its
 * `billed` part.
 */
#ifndef CF_SESSION_H
#define CF_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stages.h"
#include "tariff.h"

/* cf_session.flags */
#define CF_SESS_STARTED    (1u << 0)  /* STARTED seen */
#define CF_SESS_AUTHED     (1u << 1)  /* AUTHORIZED seen */
#define CF_SESS_STOPPED    (1u << 2)  /* STOPPED seen */
#define CF_SESS_ESTIMATED  (1u << 3)  /* closed without a stop event */
#define CF_SESS_GAP        (1u << 4)  /* readings missing for a stretch */
#define CF_SESS_CLOSED     (1u << 5)  /* priced; kept as a tombstone */
#define CF_SESS_SUPERSEDED (1u << 6)  /* a new start on its connector */
#define CF_SESS_REOPENED   (1u << 7)  /* closed, then late data came */
#define CF_SESS_LATE_STOP  (1u << 8)  /* the reopen took a late stop */
#define CF_SESS_LATE_READ  (1u << 9)  /* the reopen took late readings */
#define CF_SESS_FINAL      (1u << 10) /* closed without its readings kept */
#define CF_SESS_EXPIRED    (1u << 11) /* past the correction window */

/* What price billed for a session, so that a revision can carry the
 * difference. price fills it when it emits a charge record (the session is
 * sessionize's, which keeps it with the session); revision 0: never billed
 * (price rejected it). */
typedef struct cf_billed {
        int32_t revision;
        int64_t stop_ms; /* revision 1's stop: its period bills the session */
        int64_t energy_wh, excl, vat, incl;
} cf_billed;

/* A meter reading as a session keeps it: relative to the session's start,
 * 16 bytes instead of cf_meter_point's 32. dt_ms = t_ms - start_ms (up to
 * 2^32 - 1 ms, some 49 days), de_wh = energy_wh - start_wh (up to 2^32 - 1
 * Wh), power_w and current_ma as they are (up to 2^32 - 2), CF_CP_NONE for
 * CF_NONE. sessionize only takes readings at or after the start with a
 * register at or above the start's, so both deltas are never negative. A
 * reading outside these ranges switches the session to full
 * cf_meter_points (wide_points), so every value validate admits
 * still works. */
typedef struct cf_cpoint {
        uint32_t dt_ms;
        uint32_t de_wh;
        uint32_t power_w;
        uint32_t current_ma;
} cf_cpoint;

#define CF_CP_NONE UINT32_MAX

/* What the state store holds of a session, so that a commit stores only
 * what changed: its numbers (CF_SESS_NSCALARS, in the order of
 * sessionize's encoding), a hash of the rest but its readings (ids, the
 * STARTED record, held records), and how many readings. */
#define CF_SESS_NSCALARS 19

typedef struct cf_session_stored {
        int64_t v[CF_SESS_NSCALARS];
        uint64_t fixed;
        uint32_t n_points;
        bool valid; /* false: never stored, store it whole */
} cf_session_stored;

typedef struct cf_session {
        char *session_id;
        char *site_id;
        char *charger_id;
        int32_t connector_id;
        char *user_id;  /* NULL: none given */
        char *badge_id; /* NULL: none given */
        uint32_t flags;
        int64_t start_ms; /* CF_NONE until STARTED */
        int64_t start_wh;
        int64_t stop_ms; /* CF_NONE until STOPPED (or estimated) */
        int64_t stop_wh;
        int32_t stop_reason;     /* cf_stop_reason or -1 */
        int64_t charging_end_ms; /* last time the register grew */
        /* Readings in time order: cf_cpoint (relative to start_ms and
         * start_wh, which are set before any reading is taken), or
         * cf_meter_point when wide_points. Use the accessors below.
         * Readings 0..base-1 are only in the state store: once the store
         * holds a session, sessionize keeps in memory only its last reading
         * and those taken since, and reads the others back when it needs
         * them (pricing, a reading that arrives out of order); points[0]
         * is reading base. n_points counts them all, cap_points is the
         * array's capacity. */
        void *points;
        uint32_t base;
        uint32_t n_points;
        uint32_t cap_points;
        bool wide_points;
        cf_src *start_src; /* the STARTED record, for rejecting the session */
        /* Kafka timestamps (the task's stream time) that drive the
         * session's deadlines. */
        int64_t first_ts; /* first record of the session */
        int64_t last_ts;  /* latest record taken into it */
        int64_t stop_ts;  /* STOPPED, or when it was closed */
        int64_t due_ts;   /* when it became due for pricing (not stored) */
        cf_billed billed;
        /* FNV-1a of the event id taken per kind (STARTED, AUTHORIZED,
         * STOPPED), 0 for none: a resend of one is a repeat. */
        uint64_t eid[3];
        /* Records held until STARTED arrives (copies, owned). */
        cf_src **held;
        uint32_t n_held;
        /* The lowest reading inserted since the store last took the
         * session (UINT32_MAX: none), and what it took. */
        uint32_t changed_from;
        cf_session_stored stored;
} cf_session;

/* Reading i's time and register, and the whole reading (base <= i <
 * n_points). */
static inline int64_t cf_session_t(const cf_session *s, uint32_t i)
{
        i -= s->base;
        return s->wide_points
                   ? ((const cf_meter_point *)s->points)[i].t_ms
                   : s->start_ms + ((const cf_cpoint *)s->points)[i].dt_ms;
}

static inline int64_t cf_session_wh(const cf_session *s, uint32_t i)
{
        i -= s->base;
        return s->wide_points
                   ? ((const cf_meter_point *)s->points)[i].energy_wh
                   : s->start_wh + ((const cf_cpoint *)s->points)[i].de_wh;
}

cf_meter_point cf_session_point(const cf_session *s, uint32_t i);

/* Inserts p as reading pos (base..n_points), moving the later ones up
 * (start_ms and start_wh must be set). A reading the compact form cannot
 * hold switches the session to full readings for good. The array starts at
 * 16 and grows by half. */
void cf_session_insert(cf_session *s, uint32_t pos, cf_meter_point p);

/* Bytes the readings take in memory (capacity included). */
size_t cf_session_points_bytes(const cf_session *s);

/* Free a session and everything it owns; NULL is a no-op. */
void cf_session_free(cf_session *s);

#endif
