#!/usr/bin/env bash
# Fits the answer-or-hand-off decision shipped in models/answer-decision.json and measures it
# (docs/evaluation.md, "Answer or hand off").
#
# 1. Decision rows (each question's signals and whether the sentences Ask would quote hold the
#    answer) for IDK-MRC train and dev (../shared/eval/idk_mrc_id_dev) and for the project's
#    labelled questions over ingest/ (eval/samples, asked scoped and over all knowledge bases).
# 2. A validation fit: IDK-MRC train and 70% of the sample questions, reported on IDK-MRC dev
#    and on the other 30% of the samples (split by question id, both scopes of a question on
#    the same side): figures on questions the fit never saw.
# 3. The shipped fit: IDK-MRC train and every sample question, written to
#    models/answer-decision.json; IDK-MRC dev stays held out.
# Sample rows weigh SAMPLE_WEIGHT each against one IDK-MRC row: 294 rows next to 9,332 would
# otherwise count for nothing, and they are the company's kind of question.
#
#   scripts/fit_decision.sh [WORK_DIR]     (WORK_DIR keeps the indexes for a faster rerun)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-$(mktemp -d)}
mkdir -p "$work"
sample_weight=${SAMPLE_WEIGHT:-5}
idk=../shared/eval/idk_mrc_id_dev
[ -f "$idk/queries_train.jsonl" ] || { echo "$idk is missing: it is not part of the repository" >&2; exit 1; }
cargo build --release -q -p lumbung-cli
lumbung=target/release/lumbung

echo "== decision rows" >&2
"$lumbung" eval --ask "$idk" --split train --work-dir "$work/idk" \
  --decision-rows "$work/idk-train.jsonl" --json > /dev/null
"$lumbung" eval --ask "$idk" --work-dir "$work/idk" \
  --decision-rows "$work/idk-dev.jsonl" --json > /dev/null
"$lumbung" eval --ask eval/samples --work-dir "$work/samples" \
  --decision-rows "$work/samples.jsonl" --json > /dev/null

python3 - "$work" <<'EOF'
import hashlib, json, sys
work = sys.argv[1]
fit, held = open(f"{work}/samples-fit.jsonl", "w"), open(f"{work}/samples-held.jsonl", "w")
for line in open(f"{work}/samples.jsonl"):
    row = json.loads(line)
    held_back = int(hashlib.sha256(row["id"].encode()).hexdigest(), 16) % 10 < 3
    (held if held_back else fit).write(line)
EOF

echo "== validation fit: IDK-MRC train + 70% of the samples; held out: IDK-MRC dev, 30% of the samples" >&2
"$lumbung" calibrate --rows "$work/idk-train.jsonl" --rows "$work/samples-fit.jsonl:$sample_weight" \
  --holdout-rows "$work/idk-dev.jsonl" --output "$work/validation-decision.json"
"$lumbung" calibrate --rows "$work/idk-train.jsonl" --rows "$work/samples-fit.jsonl:$sample_weight" \
  --holdout-rows "$work/samples-held.jsonl" --output "$work/validation-decision.json"

echo "== shipped fit: IDK-MRC train + every sample question; held out: IDK-MRC dev" >&2
"$lumbung" calibrate --rows "$work/idk-train.jsonl" --rows "$work/samples.jsonl:$sample_weight" \
  --holdout-rows "$work/idk-dev.jsonl" --output models/answer-decision.json
echo "rows and indexes kept in $work" >&2
