#!/usr/bin/env bash
# The cost measurement of docs/evaluation.md ("The cost at ingest"): two lumbung binaries, one
# after the other on this machine, on the same ingest/ folder. For each: `lumbung bench` (ingest
# into empty indexes, Search and Ask latency over gRPC), a `lumbung ingest` with its wall time,
# peak RSS and the size of each part of the data directory, then Ask latency through the
# `lumbung ask` client (client start-up included, so that a version without `bench`'s Ask row
# can be compared): 10 questions x 3 rounds after a warm-up round.
#
#   git worktree add ../previous <commit> && (cd ../previous && cargo build --release -p lumbung-cli)
#   scripts/experiments/compare_versions.sh ../previous/target/release/lumbung target/release/lumbung
#
# Run it on an otherwise idle machine: the figures are timings.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -eq 2 ] || { echo "usage: $0 OLD_BINARY NEW_BINARY" >&2; exit 2; }
questions=(
  "What does ERR-VPN-809 mean and how do I fix it?"
  "What protective equipment must a welder wear?"
  "Berapa lama mata harus dibilas jika terkena bahan kimia?"
  "How long must my password be?"
  "What was the OEE of line L4 on shift C in Q3 2026?"
  "焊接作业需要佩戴什么防护用品？"
  "Who resets a forgotten MES badge PIN?"
  "Berapa OEE lini L2 selama Q3 2026?"
  "How far apart must oxygen and acetylene cylinders be?"
  "By when must shift C close its shift report?"
)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
port=50070
for binary in "$1" "$2"; do
  port=$((port + 1))
  data="$work/$port/data"
  echo "== $binary"
  "$binary" bench --rounds 20 2>/dev/null | grep -E "^(ingest:|open |bm25 |dense |hybrid |ask )"
  /usr/bin/time -f "lumbung ingest: wall %e s, peak RSS %M KB" \
    "$binary" ingest --data-dir "$data" --ingest-root ingest >/dev/null 2>"$work/ingest.err"
  tail -1 "$work/ingest.err"
  du -s --block-size=1K "$data"/*
  "$binary" serve --data-dir "$data" --ingest-root ingest --listen "127.0.0.1:$port" \
    >/dev/null 2>&1 &
  server=$!
  until "$binary" status --addr "http://127.0.0.1:$port" >/dev/null 2>&1; do sleep 1; done
  for q in "${questions[@]}"; do "$binary" ask --addr "http://127.0.0.1:$port" "$q" >/dev/null; done
  for _ in 1 2 3; do
    for q in "${questions[@]}"; do
      start=$(date +%s%N)
      "$binary" ask --addr "http://127.0.0.1:$port" "$q" >/dev/null
      echo $((($(date +%s%N) - start) / 1000))
    done
  done | sort -n | awk '{t[NR] = $1} END {
    printf "ask through the client: p50 %.1f ms, p90 %.1f ms, max %.1f ms (%d calls)\n",
      t[int(NR * 0.5) + 1] / 1000, t[int(NR * 0.9) + 1] / 1000, t[NR] / 1000, NR }'
  kill "$server"
  wait "$server" 2>/dev/null || true
done
