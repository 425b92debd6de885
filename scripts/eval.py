#!/usr/bin/env python3
"""Runs `lumbung eval --json` on each retrieval collection of ../shared/eval and `lumbung eval
--ask --json` on each answer set (the project's eval/samples and IDK-MRC dev), and prints the
results as the Markdown tables of docs/evaluation.md, so that anyone can rerun the figures.

    scripts/eval.py --work-dir ../eval-work      # everything; keeps the indexes, so a second
                                                 # run only searches (to compare settings given
                                                 # as LUMBUNG__SEARCH__* / LUMBUNG__ASK__*)
    scripts/eval.py --skip-ask scifact           # one retrieval collection
    scripts/eval.py --skip-retrieval             # the answer sets only
    scripts/eval.py --max-queries 100            # a quick look

Needs the release binary (`cargo build --release -p lumbung-cli`) and ./runtime
(`scripts/setup-runtime.sh`). Ingesting is bound by the embedding model (each chunk and each
of its sentences): SciFact (5,183 abstracts) would take two to three hours on two cores, the other
collections 10 to 30 minutes each; the samples under a minute.
"""

import argparse
import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_COLLECTIONS = ["scifact", "tydiqa_goldp_id", "cmrc2018_dev_zh", "xquad_xling_qen_dzh"]
# (name, folder): the project's own questions over ingest/, then IDK-MRC dev.
ANSWER_SETS = [("samples", ROOT / "eval" / "samples"), ("idk_mrc_id_dev", None)]


def run(binary, target, options, work_dir, name, extra):
    command = [binary, "eval", "--json", *extra, str(target)]
    if options.max_queries:
        command += ["--max-queries", str(options.max_queries)]
    if options.max_documents:
        command += ["--max-documents", str(options.max_documents)]
    if work_dir:
        command += ["--work-dir", str(pathlib.Path(work_dir) / name)]
    print(f"running: {' '.join(command)}", file=sys.stderr, flush=True)
    done = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, check=True)
    return json.loads(done.stdout)


def percent(value):
    return "-" if value is None else f"{100 * value:.1f}%"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("collections", nargs="*", default=DEFAULT_COLLECTIONS)
    parser.add_argument("--eval-dir", default=str(ROOT.parent / "shared" / "eval"))
    parser.add_argument("--binary", default=str(ROOT / "target" / "release" / "lumbung"))
    parser.add_argument("--max-queries", type=int)
    parser.add_argument("--max-documents", type=int)
    parser.add_argument("--work-dir", help="keep each collection's corpus and indexes under it")
    parser.add_argument("--skip-retrieval", action="store_true")
    parser.add_argument("--skip-ask", action="store_true")
    args = parser.parse_args()
    eval_dir = pathlib.Path(args.eval_dir)

    if not args.skip_retrieval:
        rows = []
        for name in args.collections:
            report = run(args.binary, eval_dir / name, args, args.work_dir, name, [])
            for retriever in report["retrievers"]:
                rows.append((name, report, retriever))
        print("| collection | docs / chunks / queries | retriever | nDCG@10 | Recall@100 "
              "| MRR@10 | p50 ms | p99 ms |")
        print("|---|---|---|---|---|---|---|---|")
        for name, report, r in rows:
            size = f"{report['documents']} / {report['chunks']} / {report['queries']}"
            print(f"| {name} | {size} | {r['retriever']} | {r['ndcg_at_10']:.3f} "
                  f"| {r['recall_at_100']:.3f} | {r['mrr_at_10']:.3f} "
                  f"| {r['latency_p50_ms']:.1f} | {r['latency_p99_ms']:.1f} |")
        print()

    if not args.skip_ask:
        reports = []
        for name, folder in ANSWER_SETS:
            folder = folder or eval_dir / name
            if not folder.is_dir():
                print(f"skipped {name}: {folder} is absent", file=sys.stderr)
                continue
            reports.append((name, run(args.binary, folder, args,
                                      args.work_dir and f"{args.work_dir}/ask", name, ["--ask"])))
        print("| set | scope | group | questions (answerable) | answer in first sentence "
              "| in any quoted | right document first | Ask p50 / p99 ms |")
        print("|---|---|---|---|---|---|---|---|")
        for name, report in reports:
            for scope in report["scopes"]:
                latency = f"{scope['latency_p50_ms']:.1f} / {scope['latency_p99_ms']:.1f}"
                for group, g in scope["groups"].items():
                    if g["answerable"] == 0:
                        continue
                    print(f"| {name} | {scope['scope']} | {group} "
                          f"| {g['questions']} ({g['answerable']}) "
                          f"| {percent(g['answer_in_first_sentence'])} "
                          f"| {percent(g['answer_in_any_sentence'])} "
                          f"| {percent(g['right_document_first'])} | {latency} |")
        print()
        print("Answer or hand off, at ask.min_confidence "
              f"{reports[0][1]['min_confidence'] if reports else '-'}:")
        print()
        print("| set | scope | group | questions (answerable) | right decisions "
              "| answerable answered with the answer | unanswerable handed off | wrong answers "
              "| ECE |")
        print("|---|---|---|---|---|---|---|---|---|")
        for name, report in reports:
            for scope in report["scopes"]:
                for group, g in scope["groups"].items():
                    if group.startswith("kind"):
                        continue
                    print(f"| {name} | {scope['scope']} | {group} "
                          f"| {g['questions']} ({g['answerable']}) "
                          f"| {percent(g['decision_accuracy'])} "
                          f"| {percent(g['answerable_answered_with_answer'])} "
                          f"| {percent(g['unanswerable_handed_off'])} "
                          f"| {percent(g['wrong_answers'])} "
                          f"| {g['expected_calibration_error']:.3f} |")
        for name, report in reports:
            scope = report["scopes"][0]
            print()
            print(f"Reliability of `confidence`, {name}, {scope['scope']} (ECE "
                  f"{scope['groups']['all']['expected_calibration_error']:.3f}):")
            print()
            print("| confidence | questions | mean confidence | quoted sentences answered |")
            print("|---|---|---|---|")
            for b in scope["groups"]["all"]["reliability"]:
                print(f"| {b['confidence_from']:.1f} to {b['confidence_to']:.1f} "
                      f"| {b['questions']} | {b['mean_confidence']:.3f} | {b['observed']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
