/*
 * fuzz_decode.c: libFuzzer harness for the Avro decoder.
 *
 * Every input is decoded as each record type and as "any" type; the decoder
 * must return an error code or CF_OK without crashing, reading out of
 * bounds, leaking or allocating more than a bounded multiple of the input.
 * A decoded record is re-encoded and decoded again and must give the same
 * bytes (encode(decode(x)) is a fixed point).
 *
 *   cmake -S . -B build-fuzz -DCF_FUZZ=ON -DCMAKE_C_COMPILER=clang
 *   cmake --build build-fuzz --target fuzz_decode
 *   mkdir -p build-fuzz/corpus
 *   ./build-fuzz/fuzz_decode -max_total_time=600 build-fuzz/corpus
 * tests/fuzz_corpus (or just `make fuzz`; tests/fuzz_corpus holds one encoded
 * record per type)
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static cf_registry *reg;
static cf_arena arena;
static void *out;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (!reg) {
                char err[512];
                if (cf_registry_new(&reg, err, sizeof(err)))
                        abort();
                cf_arena_init(&arena, 0);
                out = cf_malloc(cf_rtype_max_size());
        }
        /* The first byte picks the schema id so that bodies of every type
         * are reached (ids 1 to 9: 7 is Rejected's version 1, 9 its
         * version 2); the rest is the body. */
        uint8_t *framed = cf_malloc(size + CF_WIRE_HEADER);
        if (size > 0) {
                framed[0] = 0;
                framed[1] = framed[2] = framed[3] = 0;
                framed[4] = (uint8_t)(data[0] % 9 + 1);
                memcpy(framed + CF_WIRE_HEADER, data + 1, size - 1);
        }
        size_t flen = size ? size - 1 + CF_WIRE_HEADER : 0;
        const uint8_t *inputs[2] = { data, framed };
        size_t lens[2] = { size, flen };
        for (int k = 0; k < 2; k++) {
                cf_rtype t;
                cf_arena_reset(&arena);
                cf_err_t err = cf_decode_any(reg, inputs[k], lens[k], &arena,
                                             out, &t, NULL);
                /* Bounded memory: the codec's documented factor, plus the
                 * top-level struct (which the caller provides). */
                if (arena.used > lens[k] * CF_CODEC_ARENA_FACTOR)
                        abort();
                if (err)
                        continue;
                cf_buf b1, b2;
                cf_buf_init(&b1);
                cf_buf_init(&b2);
                cf_encode(reg, t, out, &b1);
                cf_arena_reset(&arena);
                if (cf_decode(reg, t, b1.p, b1.len, &arena, out, NULL))
                        abort();
                cf_encode(reg, t, out, &b2);
                if (b1.len != b2.len || memcmp(b1.p, b2.p, b1.len))
                        abort();
                cf_buf_free(&b1);
                cf_buf_free(&b2);
        }
        free(framed);
        return 0;
}
