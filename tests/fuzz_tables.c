/*
 * fuzz_tables.c: libFuzzer harness for the table decoders (sites, users:
 * cf_tables_apply in pipeline/task/tables.c), as the runtime feeds them from
 * billing.sites and billing.users.
 *
 * An input is a sequence of table records, each:
 *   1 byte   flags: bit 0 users (else sites), bit 1 tombstone (no value),
 *            bit 2 raw value (else framed with the type's schema id);
 *   1 byte   key length k, then k key bytes;
 *   2 bytes  value length v (big-endian), then v value bytes (the Avro
 *            body, or the whole value when raw).
 * Each is applied to fresh in-memory tables. Whatever the bytes, apply
 * must not crash, read out of bounds or leak, and after it:
 *  - a record it accepted (true) with a value is found under its key,
 *    with that id and every string valid UTF-8;
 *  - every badge of an accepted user points back to that user;
 *  - a site's tombstone never removes the site.
 *
 *   make fuzz-tables   (FUZZ_SECONDS, default 600; corpus: tests/fuzz_corpus)
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "log.h"
#include "tables.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static cf_registry *reg;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (!reg) {
                char err[512];
                if (cf_registry_new(&reg, err, sizeof(err)))
                        abort();
                cf_log_set_level("error"); /* tombstone WARNs */
        }
        cf_tables *tb = cf_tables_new(NULL, reg, 0);
        const uint8_t *p = data, *end = data + size;
        int64_t offset = 0;
        while (end - p >= 4) {
                uint8_t flags = p[0], kl = p[1];
                p += 2;
                if (end - p < kl + 2)
                        break;
                char key[256];
                memcpy(key, p, kl);
                key[kl] = '\0';
                p += kl;
                size_t vl = (size_t)p[0] << 8 | p[1];
                p += 2;
                if ((size_t)(end - p) < vl)
                        vl = (size_t)(end - p);
                cf_table_kind k = flags & 1 ? CF_TABLE_USERS : CF_TABLE_SITES;
                bool tomb = flags & 2;
                uint8_t *value = NULL;
                size_t vlen = 0;
                if (!tomb) {
                        bool raw = flags & 4;
                        vlen = raw ? vl : vl + CF_WIRE_HEADER;
                        value = cf_malloc(vlen + 1);
                        if (raw) {
                                memcpy(value, p, vl);
                        } else {
                                int32_t id = cf_registry_id(
                                    reg, k == CF_TABLE_USERS ? CF_RT_USER
                                                             : CF_RT_SITE);
                                value[0] = 0;
                                value[1] = (uint8_t)(id >> 24);
                                value[2] = (uint8_t)(id >> 16);
                                value[3] = (uint8_t)(id >> 8);
                                value[4] = (uint8_t)id;
                                memcpy(value + CF_WIRE_HEADER, p, vl);
                        }
                }
                p += vl;
                bool had_site =
                    k == CF_TABLE_SITES && cf_tables_site(tb, key) != NULL;
                bool ok =
                    cf_tables_apply(tb, k, 0, offset++, key, kl, value, vlen);
                free(value);
                if (k == CF_TABLE_SITES) {
                        const cf_site *s = cf_tables_site(tb, key);
                        if (tomb && had_site && !s)
                                abort(); /* a tombstone removed a site */
                        if (ok && !tomb &&
                            (!s || strcmp(s->site_id, key) ||
                             !cf_rec_strings_valid(CF_RT_SITE, s)))
                                abort();
                } else if (ok && !tomb) {
                        const cf_user *u = cf_tables_user(tb, key);
                        if (!u || strcmp(u->user_id, key) ||
                            !cf_rec_strings_valid(CF_RT_USER, u))
                                abort();
                        for (uint32_t i = 0; i < u->n_badges; i++) {
                                const cf_user *b =
                                    cf_tables_user_by_badge(tb, u->badges[i]);
                                if (strlen(u->badges[i]) < 64 &&
                                    *u->badges[i] &&
                                    (!b || strcmp(b->user_id, key)))
                                        abort();
                        }
                }
        }
        cf_tables_destroy(tb);
        return 0;
}
