#!/usr/bin/env python3
"""Fits the sentence-ranking weights of [ask] to candidate signals dumped by `lumbung eval --ask`.

Each input is a JSON-lines file written by `lumbung eval --ask SET --dump-signals FILE`: per
question, every sentence Ask chose from, with its signals and whether it holds an answer string.
The fit maximises, over all files at once (each file weighted equally), the share of answerable
questions whose best-scored sentence holds the answer, by coordinate ascent over a grid of
weights, the similarity weight fixed at 1. It prints each file's share with the current
defaults and with the fitted weights, so that a gain on one set bought by a loss on another
shows.

Files given with --held-out are scored with both weight sets but not fitted on (a dev split).
The starting point is [ask] in deploy/lumbung.toml, the shipped defaults.

Usage: scripts/fit_ask_weights.py FILE [FILE ...] [--held-out FILE ...]
"""
import argparse
import json
import pathlib
import tomllib

SIGNALS = ["similarity_scaled", "overlap", "heading_overlap", "neighbour_overlap", "passage", "number"]
WEIGHTS = {"similarity_scaled": "similarity_weight", "overlap": "overlap_weight",
           "heading_overlap": "heading_overlap_weight",
           "neighbour_overlap": "neighbour_overlap_weight", "passage": "passage_weight",
           "number": "number_weight"}
GRID = [0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0]


def load(path):
    questions = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            q = json.loads(line)
            if not q["answerable"]:
                continue
            rows = [[float(c[s]) for s in SIGNALS] + [c["has_answer"]] for c in q["candidates"]]
            questions.append(rows)
    return questions


def top1(questions, w):
    hits = 0
    for rows in questions:
        best, best_score = None, None
        for row in rows:
            score = sum(wi * xi for wi, xi in zip(w, row))
            if best_score is None or score > best_score:
                best, best_score = row, score
        hits += bool(best and best[-1])
    return hits / max(len(questions), 1)


def objective(sets, w):
    return sum(top1(q, w) for q in sets.values()) / len(sets)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("files", nargs="+")
    parser.add_argument("--held-out", nargs="*", default=[])
    args = parser.parse_args()
    sets = {path: load(path) for path in args.files}
    held_out = {path: load(path) for path in args.held_out}
    config = pathlib.Path(__file__).resolve().parent.parent / "deploy" / "lumbung.toml"
    given = tomllib.loads(config.read_text(encoding="utf-8"))["ask"]
    w = [float(given[WEIGHTS[s]]) for s in SIGNALS]
    print("defaults:", {WEIGHTS[s]: x for s, x in zip(SIGNALS, w)})
    for path, q in {**sets, **held_out}.items():
        print(f"  {path}: {top1(q, w):.3f} of {len(q)} answerable")
    best = objective(sets, w)
    improved = True
    while improved:
        improved = False
        for i in range(1, len(SIGNALS)):
            for value in GRID:
                trial = list(w)
                trial[i] = value
                score = objective(sets, trial)
                if score > best + 1e-9:
                    best, w, improved = score, trial, True
    print("fitted:", {WEIGHTS[s]: x for s, x in zip(SIGNALS, w)})
    for path, q in sets.items():
        print(f"  {path}: {top1(q, w):.3f}")
    for path, q in held_out.items():
        print(f"  {path} (held out): {top1(q, w):.3f}")


if __name__ == "__main__":
    main()
