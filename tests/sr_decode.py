#!/usr/bin/python3
"""sr_decode.py: reads chargeflow's output topics as a data team would,
independently of chargeflow's code: confluent-kafka's Consumer and
SchemaRegistryClient, and the Apache Avro library (python3-avro).

usage: sr_decode.py REGISTRY_URL USER:PASS BOOTSTRAP TOPIC...

For each topic, reads every partition from the beginning to its end; for
each value checks the Confluent framing (magic byte 0, 4-byte id), fetches
the writer schema by id from the registry (GET /schemas/ids/{id}) and
decodes the Avro body with it. Prints one JSON object on stdout:
  {"<topic>": {"records": N, "decoded": N, "ids": [...],
               "latest_id": ID of <topic>-value's latest version,
               "keys": [record_id / statement_id / reason of each value],
               "periods": {period_id: records with it}}}
Exits 1 on any record that does not decode.
"""
import io
import json
import struct
import sys

import avro.io
import avro.schema
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient


def main():
    url, auth, bootstrap = sys.argv[1:4]
    topics = sys.argv[4:]
    sr = SchemaRegistryClient({"url": url, "basic.auth.user.info": auth})
    parsed = {}
    out = {}
    ok = True
    for topic in topics:
        c = Consumer({"bootstrap.servers": bootstrap,
                      "group.id": "sr-decode",
                      "enable.auto.commit": False,
                      "enable.partition.eof": True})
        md = c.list_topics(topic, timeout=10)
        parts = sorted(md.topics[topic].partitions)
        ends = {}
        tps = []
        for p in parts:
            lo, hi = c.get_watermark_offsets(TopicPartition(topic, p),
                                             timeout=10)
            if hi > lo:
                ends[p] = hi
                tps.append(TopicPartition(topic, p, lo))
        c.assign(tps)
        res = {"records": 0, "decoded": 0, "ids": [], "keys": [],
               "periods": {}}
        idle = 0
        while ends and idle < 100:
            m = c.poll(0.1)
            if m is None:
                idle += 1
                continue
            idle = 0
            if m.error():
                continue
            res["records"] += 1
            v = m.value()
            magic, sid = struct.unpack(">bI", v[:5])
            if magic != 0:
                ok = False
                continue
            if sid not in parsed:
                s = sr.get_schema(sid)
                parsed[sid] = avro.schema.parse(s.schema_str)
            if sid not in res["ids"]:
                res["ids"].append(sid)
            reader = avro.io.DatumReader(parsed[sid])
            body = io.BytesIO(v[5:])
            rec = reader.read(avro.io.BinaryDecoder(body))
            if body.tell() != len(v) - 5:
                ok = False
                continue
            res["decoded"] += 1
            if "period_id" in rec:
                res["periods"][rec["period_id"]] = \
                    res["periods"].get(rec["period_id"], 0) + 1
            for k in ("record_id", "statement_id", "reason"):
                if k in rec:
                    res["keys"].append(rec[k])
                    break
            if m.offset() + 1 >= ends.get(m.partition(), 0):
                ends.pop(m.partition(), None)
        c.close()
        if ends:
            ok = False
        res["keys"].sort()
        res["latest_id"] = sr.get_latest_version(topic + "-value").schema_id
        out[topic] = res
    print(json.dumps(out))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
