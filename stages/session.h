/*
 * session.h: a charging session as sessionize builds it and price consumes
 * it (the CF_ITEM_SESSION item).
 *
 * Ownership: the sessionize stage owns sessions; a closed session handed to
 * price lives until the forward call returns.
 */
#ifndef CF_SESSION_H
#define CF_SESSION_H

#include <stdint.h>

#include "stages.h"
#include "tariff.h"

/* cf_session.flags */
#define CF_SESS_STARTED    (1u << 0) /* STARTED seen */
#define CF_SESS_AUTHED     (1u << 1) /* AUTHORIZED seen */
#define CF_SESS_STOPPED    (1u << 2) /* STOPPED seen */
#define CF_SESS_ESTIMATED  (1u << 3) /* closed without a stop event */
#define CF_SESS_GAP        (1u << 4) /* readings missing for a stretch */
#define CF_SESS_CLOSED     (1u << 5) /* priced; kept as a tombstone */
#define CF_SESS_SUPERSEDED (1u << 6) /* a new start on its connector */

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
        cf_meter_point *points;  /* in time order */
        uint32_t n_points;
        uint32_t cap_points;
        cf_src *start_src; /* the STARTED record, for rejecting the session */
        /* Kafka timestamps (the task's stream time) that drive the
         * session's deadlines. */
        int64_t first_ts; /* first record of the session */
        int64_t last_ts;  /* latest record taken into it */
        int64_t stop_ts;  /* STOPPED, or when it was closed */
        int64_t due_ts;   /* when it became due for pricing (not stored) */
        /* Records held until STARTED arrives (copies, owned). */
        cf_src **held;
        uint32_t n_held;
} cf_session;

/* Free a session and everything it owns; NULL is a no-op. */
void cf_session_free(cf_session *s);

#endif
