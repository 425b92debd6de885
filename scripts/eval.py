#!/usr/bin/env python3
"""Runs `lumbung eval --json` on each collection of ../shared/eval and prints the results as a
Markdown table (the one in docs/evaluation.md), so that anyone can rerun the figures.

    scripts/eval.py                              # every collection, full size
    scripts/eval.py --max-queries 100 scifact    # a quick look at one collection
    scripts/eval.py --work-dir ../eval-work      # keep the indexes: a second run only searches,
                                                 # to compare search settings (LUMBUNG__SEARCH__*)

Needs the release binary (`cargo build --release -p lumbung-cli`) and ./runtime
(`scripts/setup-runtime.sh`). Ingesting a collection is bound by the embedding model: SciFact
(5,183 abstracts) takes about a quarter of an hour on two cores.
"""

import argparse
import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_COLLECTIONS = ["scifact", "tydiqa_goldp_id", "cmrc2018_dev_zh", "xquad_xling_qen_dzh"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("collections", nargs="*", default=DEFAULT_COLLECTIONS)
    parser.add_argument("--eval-dir", default=str(ROOT.parent / "shared" / "eval"))
    parser.add_argument("--binary", default=str(ROOT / "target" / "release" / "lumbung"))
    parser.add_argument("--max-queries", type=int)
    parser.add_argument("--max-documents", type=int)
    parser.add_argument("--work-dir", help="keep each collection's corpus and indexes under it")
    args = parser.parse_args()

    rows = []
    for name in args.collections:
        command = [args.binary, "eval", "--json", str(pathlib.Path(args.eval_dir) / name)]
        if args.max_queries:
            command += ["--max-queries", str(args.max_queries)]
        if args.max_documents:
            command += ["--max-documents", str(args.max_documents)]
        if args.work_dir:
            command += ["--work-dir", str(pathlib.Path(args.work_dir) / name)]
        print(f"running: {' '.join(command)}", file=sys.stderr, flush=True)
        done = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, check=True)
        report = json.loads(done.stdout)
        for retriever in report["retrievers"]:
            rows.append((name, report, retriever))

    print("| collection | docs / chunks / queries | retriever | nDCG@10 | Recall@100 | MRR@10 "
          "| p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|---|---|")
    for name, report, r in rows:
        size = f"{report['documents']} / {report['chunks']} / {report['queries']}"
        print(f"| {name} | {size} | {r['retriever']} | {r['ndcg_at_10']:.3f} "
              f"| {r['recall_at_100']:.3f} | {r['mrr_at_10']:.3f} "
              f"| {r['latency_p50_ms']:.1f} | {r['latency_p99_ms']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
