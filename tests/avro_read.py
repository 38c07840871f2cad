#!/usr/bin/env python3
# avro_read.py: an independent reader of chargeflow's output topics, for the
# poison-pill test (tests/test_poison.c). It shares no code with chargeflow:
# Kafka through python3-confluent-kafka, Avro through python3-avro (the
# Apache Avro reference implementation for Python, which checks that every
# string is UTF-8, as the Avro specification requires).
#
# usage: avro_read.py BOOTSTRAP SCHEMAS_DIR TOPIC...
#
# Reads every record of each TOPIC from the beginning to its end as of the
# start, decodes each value with the writer schema its Confluent wire
# header names (the ids the README documents), and prints one JSON line per
# record: {"topic", "partition", "offset", "key" (hex, or null), "schema_id",
# "value"} with bytes fields as hex strings. A record that does not decode
# prints {"topic", "partition", "offset", "error"} instead; the exit status
# is then 1.
import datetime
import io
import json
import struct
import sys

import avro.io
import avro.schema
from confluent_kafka import Consumer, TopicPartition

# Schema ids, from the README's table (Topics and schemas).
IDS = {
    1: "session_event.avsc",
    2: "meter_reading.avsc",
    3: "site.avsc",
    4: "user.avsc",
    5: "charge_record_v1.avsc",
    6: "statement_v1.avsc",
    7: "rejected_v1.avsc",
    8: "billing_event.avsc",
    9: "rejected_v2.avsc",
    10: "charge_record.avsc",
    11: "statement.avsc",
    12: "rejected.avsc",
}


def plain(v):
    """JSON-friendly copy of a decoded Avro datum (bytes as hex)."""
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, datetime.datetime):  # timestamp-millis
        return int(v.timestamp() * 1000)
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [plain(x) for x in v]
    return v


def main():
    bootstrap, schemas_dir, topics = sys.argv[1], sys.argv[2], sys.argv[3:]
    schemas = {}
    for sid, name in IDS.items():
        with open(f"{schemas_dir}/{name}") as f:
            schemas[sid] = avro.schema.parse(f.read())
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "avro-read",
                  "enable.auto.commit": False})
    bad = 0
    for topic in topics:
        md = c.list_topics(topic, timeout=10)
        parts = sorted(md.topics[topic].partitions)
        ends = {}
        assign = []
        for p in parts:
            lo, hi = c.get_watermark_offsets(TopicPartition(topic, p),
                                             timeout=10)
            if hi > lo:
                ends[p] = hi
                assign.append(TopicPartition(topic, p, lo))
        c.assign(assign)
        idle = 0
        while ends and idle < 100:
            m = c.poll(0.1)
            if m is None:
                idle += 1
                continue
            idle = 0
            if m.error():
                continue
            p, off = m.partition(), m.offset()
            if p in ends and off + 1 >= ends[p]:
                del ends[p]
            out = {"topic": topic, "partition": p, "offset": off,
                   "key": m.key().hex() if m.key() is not None else None}
            v = m.value()
            try:
                if v is None or len(v) < 5 or v[0] != 0:
                    raise ValueError("not in the Confluent wire format")
                sid = struct.unpack(">i", v[1:5])[0]
                if sid not in schemas:
                    raise ValueError(f"unknown schema id {sid}")
                dec = avro.io.BinaryDecoder(io.BytesIO(v[5:]))
                datum = avro.io.DatumReader(schemas[sid]).read(dec)
                out["schema_id"] = sid
                out["value"] = plain(datum)
            except Exception as e:  # any failure to decode is the finding
                out["error"] = f"{type(e).__name__}: {e}"
                bad += 1
            print(json.dumps(out))
        if ends:
            print(json.dumps({"topic": topic, "error": "not read to its end"}))
            bad += 1
        c.unassign()
    c.close()
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
