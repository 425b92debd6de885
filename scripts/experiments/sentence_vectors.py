#!/usr/bin/env python3
"""The measurement behind lumbung's sentence vectors (docs/evaluation.md, "Sentence vectors"):
on XQuAD (English questions, Chinese paragraphs), nDCG@10 of ranking paragraphs by the
paragraph's own vector, by its best sentence's vector, and by a mix of the two, with sentence
vectors either pooled from the paragraph's token states ("late chunking", no extra model run)
or embedded one sentence at a time (what lumbung does).

It runs the same ONNX model as lumbung, outside it, so that both kinds of sentence vector can be
compared on the same paragraphs; whole paragraphs are embedded (truncated at 512 tokens), not
lumbung's 200-token chunks, so the figures are close to but not the same as `lumbung eval`'s.

    python3 -m venv runtime/cache/experiments
    runtime/cache/experiments/bin/pip install runtime/cache/onnxruntime-1.31.1-*.whl tokenizers numpy
    runtime/cache/experiments/bin/python scripts/experiments/sentence_vectors.py

(scripts/setup-runtime.sh must have run: it provides the model and the onnxruntime wheel.)
About five minutes on two cores.
"""
import json
import pathlib
import sys

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODEL = ROOT / "runtime/models/multilingual-e5-small"
COLLECTION = ROOT.parent / "shared/eval/xquad_xling_qen_dzh"

options = ort.SessionOptions()
options.intra_op_num_threads = 2
session = ort.InferenceSession(str(MODEL / "model.onnx"), options)
tokenizer = Tokenizer.from_file(str(MODEL / "tokenizer.json"))
tokenizer.no_padding()
tokenizer.no_truncation()


def split_sentences(text):
    """lumbung's split_sentences, without the list-number and colon rules (unused here)."""
    out, start = [], 0
    for i, c in enumerate(text):
        end = None
        if c == "\n":
            end = i
        elif c in "。！？；":
            end = i + 1
        elif c in ".!?" and (i + 1 == len(text) or text[i + 1].isspace()):
            end = i + 1
        if end is not None:
            piece = text[start:end]
            if len(piece.strip()) >= 6:
                lead = len(piece) - len(piece.lstrip())
                out.append((start + lead, start + lead + len(piece.strip())))
            start = i + 1 if c == "\n" else end
    piece = text[start:]
    if len(piece.strip()) >= 6:
        lead = len(piece) - len(piece.lstrip())
        out.append((start + lead, start + lead + len(piece.strip())))
    return out


def run(texts):
    encodings = [tokenizer.encode(t) for t in texts]
    length = min(512, max(len(e.ids) for e in encodings))
    ids = np.zeros((len(texts), length), dtype=np.int64)
    mask = np.zeros_like(ids)
    for i, e in enumerate(encodings):
        k = min(length, len(e.ids))
        ids[i, :k], mask[i, :k] = e.ids[:k], 1
    states = session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
    return states, mask, encodings


def unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def embed(texts, batch=32):
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), 384), dtype=np.float32)
    for b in range(0, len(order), batch):
        index = order[b:b + batch]
        states, mask, _ = run([texts[i] for i in index])
        m = mask[..., None]
        out[index] = (states * m).sum(1) / m.sum(1)
    return unit(out)


def embed_late(texts, spans):
    """Paragraph vectors and, per paragraph, its sentences' vectors pooled from its tokens."""
    prefix = "passage: "
    paragraphs, sentences = [], []
    for text, sentence_spans in zip(texts, spans):
        states, mask, encodings = run([prefix + text])
        used = int(mask[0].sum())
        paragraphs.append(states[0, :used].mean(0))
        vectors = []
        for start, end in sentence_spans:
            start, end = start + len(prefix), end + len(prefix)
            tokens = [j for j, (a, z) in enumerate(encodings[0].offsets[:used])
                      if z > a and a < end and z > start]
            # A sentence past the 512-token window has no token states to pool: the
            # paragraph is represented by the sentences the model saw.
            if tokens:
                vectors.append(states[0, tokens].mean(0))
        sentences.append(unit(np.array(vectors)) if vectors else np.zeros((0, 384)))
    return unit(np.array(paragraphs)), sentences


def ndcg10(ranked, relevant):
    dcg = sum(relevant.get(d, 0) / np.log2(i + 2) for i, d in enumerate(ranked[:10]))
    ideal = sorted(relevant.values(), reverse=True)[:10]
    return dcg / sum(g / np.log2(i + 2) for i, g in enumerate(ideal))


def main():
    corpus = [json.loads(line) for line in open(COLLECTION / "corpus.jsonl", encoding="utf-8")]
    queries = [json.loads(line) for line in open(COLLECTION / "queries.jsonl", encoding="utf-8")]
    relevant = {}
    for n, line in enumerate(open(COLLECTION / "qrels.tsv", encoding="utf-8")):
        if n:
            q, d, s = line.rstrip("\n").split("\t")
            if int(s) > 0:
                relevant.setdefault(q, {})[d] = int(s)
    queries = [q for q in queries if q["_id"] in relevant]
    ids = [d["_id"] for d in corpus]
    texts = [d["text"] for d in corpus]
    spans = [split_sentences(t) for t in texts]
    print(f"{len(corpus)} paragraphs, {sum(map(len, spans))} sentences, {len(queries)} queries",
          file=sys.stderr)
    paragraphs, late = embed_late(texts, spans)
    flat = [("passage: " + t[a:b], i) for i, (t, s) in enumerate(zip(texts, spans)) for a, b in s]
    separate = embed([t for t, _ in flat])
    owner = np.array([i for _, i in flat])
    questions = embed(["query: " + q["text"] for q in queries])

    paragraph_scores = questions @ paragraphs.T
    late_best = np.array([[(late[j] @ q).max() if len(late[j]) else -1 for j in range(len(ids))]
                          for q in questions])
    sims = questions @ separate.T
    separate_best = np.full(paragraph_scores.shape, -1.0)
    for j in range(len(ids)):
        mine = owner == j
        if mine.any():
            separate_best[:, j] = sims[:, mine].max(1)

    def score(matrix):
        return np.mean([ndcg10([ids[j] for j in np.argsort(-matrix[i])], relevant[q["_id"]])
                        for i, q in enumerate(queries)])

    print("| sentence share | late-chunked sentences | separately embedded sentences |")
    print("|---|---|---|")
    for share in [0.0, 0.3, 0.5, 0.7, 1.0]:
        late_mix = (1 - share) * paragraph_scores + share * late_best
        separate_mix = (1 - share) * paragraph_scores + share * separate_best
        print(f"| {share} | {score(late_mix):.4f} | {score(separate_mix):.4f} |")


if __name__ == "__main__":
    main()
