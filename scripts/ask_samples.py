#!/usr/bin/env python3
"""Asks a running lumbung every sample question of docs/sample-knowledge-bases.md.

Prints, per question, whether the best supporting sentence cites a file the document names as
holding the answer, and for the questions no knowledge base answers, whether Ask abstained.
Usage: scripts/ask_samples.py [--addr http://127.0.0.1:50051] [--lumbung target/release/lumbung]
"""
import argparse
import json
import pathlib
import re
import subprocess

ROOT = pathlib.Path(__file__).resolve().parent.parent


def sample_questions():
    answerable, unanswerable = [], []
    text = (ROOT / "docs/sample-knowledge-bases.md").read_text(encoding="utf-8")
    in_unanswerable = False
    for line in text.splitlines():
        if line.startswith("## "):
            in_unanswerable = "no knowledge base answers" in line
        if in_unanswerable and line.startswith("- "):
            unanswerable.append(re.sub(r"\s*\(.*\)\s*$", "", line[2:]).strip())
        elif line.startswith("| ") and not line.startswith(("| Question", "| Knowledge")):
            cells = [c.strip() for c in line.split("|")]
            files = re.findall(r"`([^`]+\.(?:md|txt|pdf))`", cells[3])
            if files:
                answerable.append((re.sub(r"\*\(.*?\)\*", "", cells[1]).strip(), files))
    return answerable, unanswerable


def ask(args, question):
    out = subprocess.run(
        [args.lumbung, "ask", question, "--json", "--max-sentences", "1", "--addr", args.addr],
        capture_output=True, text=True, check=True,
    )
    answer = json.loads(out.stdout)
    if not answer["sentences"]:
        return None
    return answer["sentences"][0]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--addr", default="http://127.0.0.1:50051")
    parser.add_argument("--lumbung", default=str(ROOT / "target/release/lumbung"))
    args = parser.parse_args()
    answerable, unanswerable = sample_questions()
    cited_right = 0
    for question, files in answerable:
        best = ask(args, question)
        path = best["citation"]["document_path"] if best else None
        right = path in files
        cited_right += right
        print(f"{'ok ' if right else 'BAD'} {path or '(no answer)':<30} {question}")
    abstained = 0
    for question in unanswerable:
        best = ask(args, question)
        abstained += best is None
        print(f"{'ok ' if best is None else 'BAD'} {'(no answer)' if best is None else best['citation']['document_path']:<30} {question}")
    print(f"answerable questions whose best sentence cites an answering file: {cited_right}/{len(answerable)}")
    print(f"unanswerable questions abstained: {abstained}/{len(unanswerable)}")


if __name__ == "__main__":
    main()
