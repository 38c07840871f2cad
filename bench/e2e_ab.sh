#!/bin/bash
# e2e_ab.sh: builds of chargeflow end to end, in turn, on one peer broker
# holding one generated input, so that the machine's drift hits them alike.
#
#   bench/e2e_ab.sh PRESET DAYS ROUNDS BUILD_DIR[,key=value...]...
#
# A run's argument may add configuration after its build directory,
# comma-separated (build/,input.buffer.max.bytes=16777216): the same build
# under two configurations is an A/B of its own.
# Starts the peer broker (../shared/kafka-peer/kafka-peer or
# $CF_KAFKA_PEER) in memory, creates the topics (16 partitions, kept
# forever) and loads `gen --preset PRESET --seed 1 --faults --days DAYS`
# with the first build. Then ROUNDS rounds, each build in turn:
# bench_ceiling, then `chargeflow run --until-idle` under /usr/bin/time -v
# with the default configuration and a state directory, group, repartition
# topic and task log topics of its own (a run must not restore another
# run's task log or read its repartition records). Prints one line per run:
# the build, events, events/s from the first input record to the last
# processed, the ceiling and the ratio, peak RSS, and RocksDB writes,
# WriteBatch bytes and disk bytes per event with the tables' load left out.
set -euo pipefail
if [ $# -lt 4 ]; then
        echo "usage: $0 PRESET DAYS ROUNDS BUILD_DIR[,key=value...]..." >&2
        exit 2
fi
preset=$1 days=$2 rounds=$3
shift 3
here=$(cd "$(dirname "$0")/.." && pwd)
peer=${CF_KAFKA_PEER:-$here/../shared/kafka-peer/kafka-peer}
d=$(mktemp -d /tmp/cf-e2e-ab-XXXXXX)
"$peer" -addr-file "$d/bs" -group-min-session-timeout 1s >"$d/peer.log" 2>&1 &
kp=$!
trap 'kill $kp 2>/dev/null || true; rm -rf "$d"' EXIT
for _ in $(seq 100); do [ -s "$d/bs" ] && break; sleep 0.1; done
bs=$(cat "$d/bs")
cf0=${1%%,*}/chargeflow
"$cf0" topics create --bootstrap "$bs" --partitions 16 --retention-ms -1 \
        >"$d/topics.log" 2>&1
"$cf0" gen --preset "$preset" --seed 1 --faults --days "$days" \
        --bootstrap "$bs" >"$d/gen.log" 2>&1
tail -1 "$d/gen.log"
i=0
for _ in $(seq "$rounds"); do
        for run in "$@"; do
                i=$((i + 1))
                b=${run%%,*}
                extra=""
                [ "$run" != "$b" ] && extra=${run#*,}
                "$b/bench/bench_ceiling" --bootstrap "$bs" --json \
                        >"$d/ceil$i.json" 2>"$d/ceil$i.log"
                p=$d/r$i.properties
                {
                        echo "bootstrap.servers=$bs"
                        echo "state.dir=$d/st$i"
                        echo "group.id=ab$i"
                        echo "idle.exit.ms=3000"
                        echo "topic.repartition=ab$i.repartition"
                        echo "topic.rating-log=ab$i.rating-log"
                        echo "topic.billing-log=ab$i.billing-log"
                        [ -z "$extra" ] || echo "$extra" | tr ',' '\n'
                } >"$p"
                "$b/chargeflow" topics create -c "$p" --partitions 16 \
                        --retention-ms -1 >"$d/t$i.log" 2>&1
                /usr/bin/time -v "$b/chargeflow" run -c "$p" --until-idle \
                        >"$d/r$i.json" 2>"$d/r$i.log"
                rss=$(awk '/Maximum resident/ {print int($6 / 1024)}' \
                        "$d/r$i.log")
                python3 - "$d/r$i.json" "$d/ceil$i.json" "$run" "$rss" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
c = json.load(open(sys.argv[2]))
t = j["timing"]
n = sum(v["in"] for k, v in j["inputs"].items() if k.startswith("charging."))
s = (t["last_processed_ms"] - t["first_input_ms"]) / 1000
w = j["state_writes"]["entries"] - j["state_writes_before_input"]["entries"]
wb = j["state_writes"]["bytes"] - j["state_writes_before_input"]["bytes"]
db = j["disk_write_bytes"] - j["disk_write_bytes_before_input"]
print("%s: %d events, %.0f events/s, ceiling %.0f (%.3f), peak RSS %s MiB, "
      "%.4f writes, %.1f WriteBatch bytes, %.1f disk bytes per event"
      % (sys.argv[3], n, n / s, c["eps"], n / s / c["eps"], sys.argv[4],
         w / n, wb / n, db / n))
EOF
                rm -rf "$d/st$i"
        done
done
