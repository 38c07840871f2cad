#!/bin/bash
# chain_ab.sh: two builds of bench_chain, run in turn on the same record
# files, one run at a time, so that the machine's drift hits both alike.
#
#   bench/chain_ab.sh OLD_BENCH_CHAIN NEW_BENCH_CHAIN ROUNDS FILE...
#
# For each FILE, ROUNDS rounds of (old, new), each `bench_chain FILE 1 1000`
# under /usr/bin/time -v. Prints one line per run: which build, the file,
# bench_chain's result line (events, seconds, events/s, CPU s per million
# events, RocksDB writes and WriteBatch bytes per event) and the peak RSS
# in KiB (which includes the pages of the record file bench_chain maps).
set -euo pipefail
if [ $# -lt 4 ]; then
        echo "usage: $0 OLD_BENCH_CHAIN NEW_BENCH_CHAIN ROUNDS FILE..." >&2
        exit 2
fi
old=$1 new=$2 rounds=$3
shift 3
out=$(mktemp)
trap 'rm -f "$out"' EXIT
run() {
        /usr/bin/time -v "$2" "$3" 1 1000 >"$out" 2>&1
        echo "$1 $(basename "$3") $(grep -E '^0 ' "$out")" \
                "rss_kb=$(awk '/Maximum resident/ {print $6}' "$out")"
}
for f in "$@"; do
        for ((i = 0; i < rounds; i++)); do
                run old "$old" "$f"
                run new "$new" "$f"
        done
done
