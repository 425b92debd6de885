#!/usr/bin/env python3
"""What the INT8 multilingual-e5-small (model-int8.onnx, built by setup-runtime.sh) costs in
retrieval quality against the fp32 model.onnx, on the BEIR collections of ../shared/eval.

Each model embeds every document ("passage: " + title + "\\n\\n" + text, or text alone when the
title is empty) and every query ("query: " + text) as lumbung does: tokenizer.json, truncation at
512 tokens (the final </s> kept), batches of --batch-size texts sorted by token length and padded
to the longest of the batch (pad id 1), mean pooling over the attention mask, L2 normalisation.
Documents are ranked by dot product, and nDCG@10 (graded gain rel / log2(rank + 1), ideal from the
qrels) and Recall@100 are averaged over the queries that have a relevant document, as BEIR and
pytrec_eval do. Per collection the table gives each model's figures, the embedding time of the
documents and of the queries, and the difference to the first model (the reference, fp32); then
the cosine between the two models' vectors of the same text, and how often their top hits agree.

--max-documents and --max-queries take the same deterministic slice as `lumbung eval`: the first
N queries that have a relevant document, and a corpus of every document relevant to them, then
the others in file order up to N. Vectors are cached per collection, slice and model as .npy under
--cache-dir (with a .json beside them that records the texts' hash, the model file and the time
the embedding took), so a rerun with the same arguments only ranks.

Needs numpy, onnxruntime and tokenizers: scripts/setup-runtime.sh installs all three (pinned)
into its converter virtualenv, so, from the repository root after it has run:

    runtime/cache/venv/bin/python scripts/int8_quality.py                        # everything
    runtime/cache/venv/bin/python scripts/int8_quality.py --collections scifact  # one
    runtime/cache/venv/bin/python scripts/int8_quality.py --max-documents 40 --max-queries 20 \\
        --collections xquad_xling_qen_dzh                                        # a quick look

Time goes with the tokens embedded: on two free cores the fp32 model embeds about 14.5 passages
of ~180 tokens a second (~2,700 tokens/s), INT8 about 24 (~4,500 tokens/s). SciFact's abstracts
average 361 tokens (1.87 M in all), so it takes about 12 minutes with fp32 and 7 with INT8;
TyDi QA and IDK-MRC (~126 tokens, ~0.57 M) about 3.5 and 2; CMRC 2018 (368 tokens, 0.41 M, plus
3,219 queries) about 3 and 2; XQuAD (240 documents) under half a minute each. All five, both
models: about 40 minutes, more while anything else shares the cores.
"""

import argparse
import hashlib
import json
import os
import pathlib
import sys
import time

import numpy as np
import onnxruntime as ort

from embedding_ceiling import Model
from tokenizers import Tokenizer

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODEL_DIR = ROOT / "runtime/models/multilingual-e5-small"
EVAL_DIR = ROOT.parent / "shared/eval"
CACHE_DIR = ROOT / "runtime/cache/int8-quality"
COLLECTIONS = ["scifact", "tydiqa_goldp_id", "cmrc2018_dev_zh", "xquad_xling_qen_dzh",
               "idk_mrc_id_dev"]
MAX_TOKENS = 512
PROGRESS_SECONDS = 30  # a progress line at most this often while embedding


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--eval-dir", type=pathlib.Path, default=EVAL_DIR,
                        help="folder of BEIR collections (../shared/eval)")
    parser.add_argument("--collections", nargs="+", default=COLLECTIONS,
                        help=f"collections to measure ({' '.join(COLLECTIONS)})")
    parser.add_argument("--max-documents", type=int, default=0,
                        help="at most this many documents a collection (all)")
    parser.add_argument("--max-queries", type=int, default=0,
                        help="the first this many queries with a relevant document (all)")
    parser.add_argument("--model-dir", type=pathlib.Path, default=MODEL_DIR)
    parser.add_argument("--models", nargs="+", default=["model.onnx", "model-int8.onnx"],
                        help="ONNX files in --model-dir (or paths); the first is the reference")
    parser.add_argument("--batch-size", type=int, default=16, help="texts per run (16)")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads (2)")
    parser.add_argument("--cache-dir", type=pathlib.Path, default=CACHE_DIR,
                        help="where embeddings are cached (runtime/cache/int8-quality)")
    parser.add_argument("--no-cache", action="store_true",
                        help="embed again even when the cache holds the vectors")
    return parser.parse_args()


# ---------------------------------------------------------------------------------------------
# Collections


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def read_qrels(path):
    """query id -> document id -> relevance, positive scores only (first line is a header)."""
    qrels = {}
    with open(path, encoding="utf-8") as f:
        next(f, None)
        for line in f:
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 3:
                continue
            score = int(float(fields[2]))
            if score > 0:
                qrels.setdefault(fields[0], {})[fields[1]] = score
    return qrels


def load_collection(folder, max_documents, max_queries):
    """(documents [(id, text)], queries [(id, text)], qrels), sliced as `lumbung eval` does."""
    qrels = read_qrels(folder / "qrels.tsv")
    queries = [(q["_id"], q["text"]) for q in read_jsonl(folder / "queries.jsonl")
               if q["_id"] in qrels]
    if max_queries:
        queries = queries[:max_queries]
    kept = {qid for qid, _ in queries}
    qrels = {qid: docs for qid, docs in qrels.items() if qid in kept}
    relevant = {doc for docs in qrels.values() for doc in docs}
    documents = []
    room = max(0, max_documents - len(relevant)) if max_documents else None
    others = 0
    for doc in read_jsonl(folder / "corpus.jsonl"):
        if doc["_id"] not in relevant:
            others += 1
            if room is not None and others > room:
                continue
        title, text = doc.get("title") or "", doc.get("text") or ""
        documents.append((doc["_id"], f"{title}\n\n{text}" if title else text))
    return documents, queries, qrels


# ---------------------------------------------------------------------------------------------
# The model: scripts/embedding_ceiling.py's session (run from scripts/, so it imports)


def pad(encodings, pad_id):
    """input_ids and attention_mask (int64), padded to the longest encoding."""
    width = max(len(e.ids) for e in encodings)
    ids = np.full((len(encodings), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(encodings), width), dtype=np.int64)
    for row, e in enumerate(encodings):
        ids[row, :len(e.ids)] = e.ids
        mask[row, :len(e.ids)] = 1
    return ids, mask


def embed(model, encodings, pad_id, batch_size, label):
    """Vectors in input order, from batches sorted by token length; and the seconds it took."""
    order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
    result = None
    started = last_report = time.perf_counter()
    for start in range(0, len(order), batch_size):
        indices = order[start:start + batch_size]
        _, pooled = model.run(*pad([encodings[i] for i in indices], pad_id))
        if result is None:
            result = np.zeros((len(encodings), pooled.shape[1]), dtype=np.float32)
        result[indices] = pooled
        now = time.perf_counter()
        done = start + len(indices)
        if now - last_report >= PROGRESS_SECONDS and done < len(order):
            last_report = now
            print(f"    {label}: {done}/{len(order)} ({done / (now - started):.1f}/s, "
                  f"longest so far {len(encodings[indices[-1]].ids)} tokens)", flush=True)
    return result, time.perf_counter() - started


class Embedder:
    """Embeds with cached vectors where possible, loading each model only when needed."""

    def __init__(self, options, tokenizer, pad_id):
        self.options, self.tokenizer, self.pad_id = options, tokenizer, pad_id
        self.models = {}

    def model_path(self, model_file):
        path = pathlib.Path(model_file)
        return path if path.is_absolute() or path.exists() else self.options.model_dir / path

    def model(self, model_file):
        if model_file not in self.models:
            self.models.clear()  # one session at a time
            started = time.perf_counter()
            self.models[model_file] = Model(self.model_path(model_file), self.options.threads)
            print(f"    loaded {model_file} in {time.perf_counter() - started:.1f} s", flush=True)
        return self.models[model_file]

    def vectors(self, collection, slice_name, model_file, kind, texts, encodings):
        """(vectors, seconds, cached) for texts (already prefixed) with their encodings."""
        path = self.model_path(model_file)
        stat = path.stat()
        digest = hashlib.sha256()
        for text in texts:
            digest.update(text.encode("utf-8"))
            digest.update(b"\0")
        key = {
            "texts": len(texts),
            "texts_sha256": digest.hexdigest(),
            "model": str(path.resolve()),
            "model_bytes": stat.st_size,
            "model_mtime_ns": stat.st_mtime_ns,
            "batch_size": self.options.batch_size,
            "max_tokens": MAX_TOKENS,
        }
        stem = pathlib.Path(model_file).name.removesuffix(".onnx")
        base = self.options.cache_dir / collection / f"{slice_name}.{stem}.{kind}"
        npy, meta = base.with_suffix(base.suffix + ".npy"), base.with_suffix(base.suffix + ".json")
        if not self.options.no_cache and npy.is_file() and meta.is_file():
            with open(meta, encoding="utf-8") as f:
                stored = json.load(f)
            if stored.get("key") == key:
                return np.load(npy), stored["seconds"], True
        vectors, seconds = embed(self.model(model_file), encodings, self.pad_id,
                                 self.options.batch_size, f"{stem} {kind}")
        npy.parent.mkdir(parents=True, exist_ok=True)
        np.save(npy, vectors)
        with open(meta, "w", encoding="utf-8") as f:
            json.dump({"key": key, "seconds": seconds, "threads": self.options.threads,
                       "load_average": os.getloadavg()[0]}, f, indent=1)
        return vectors, seconds, False


# ---------------------------------------------------------------------------------------------
# Ranking and scores


def rankings(query_vectors, doc_vectors, k):
    """The top k document indices of each query by dot product, best first (ties by index)."""
    k = min(k, doc_vectors.shape[0])
    top = np.empty((query_vectors.shape[0], k), dtype=np.int64)
    for start in range(0, query_vectors.shape[0], 256):
        scores = query_vectors[start:start + 256] @ doc_vectors.T
        for row, s in enumerate(scores):
            candidates = np.argpartition(-s, k - 1)[:k] if k < len(s) else np.arange(len(s))
            top[start + row] = candidates[np.lexsort((candidates, -s[candidates]))]
    return top


def scores(top, doc_ids, queries, qrels):
    """Mean nDCG@10 and Recall@100 over the queries, and the per-query nDCG@10."""
    ndcgs, recalls = [], []
    for row, (qid, _) in enumerate(queries):
        relevant = qrels[qid]
        ranked = [doc_ids[i] for i in top[row]]
        dcg = sum(relevant.get(doc, 0) / np.log2(rank + 2) for rank, doc in enumerate(ranked[:10]))
        ideal = sorted(relevant.values(), reverse=True)[:10]
        idcg = sum(rel / np.log2(rank + 2) for rank, rel in enumerate(ideal))
        ndcgs.append(dcg / idcg if idcg > 0 else 0.0)
        recalls.append(sum(1 for doc in ranked[:100] if doc in relevant) / len(relevant))
    return float(np.mean(ndcgs)), float(np.mean(recalls)), np.array(ndcgs)


# ---------------------------------------------------------------------------------------------


def measure(options, embedder, collection):
    folder = options.eval_dir / collection
    documents, queries, qrels = load_collection(folder, options.max_documents,
                                                options.max_queries)
    if not queries or not documents:
        print(f"{collection}: no queries with a relevant document, or no documents; skipped",
              flush=True)
        return
    slice_name = (f"d{options.max_documents or 'all'}-q{options.max_queries or 'all'}")
    doc_texts = ["passage: " + text for _, text in documents]
    query_texts = ["query: " + text for _, text in queries]
    doc_encodings = embedder.tokenizer.encode_batch(doc_texts)
    query_encodings = embedder.tokenizer.encode_batch(query_texts)
    doc_lengths = np.array([len(e.ids) for e in doc_encodings])
    query_lengths = np.array([len(e.ids) for e in query_encodings])
    print(f"{collection}: {len(documents)} documents ({doc_lengths.mean():.0f} tokens on "
          f"average with prefix and special tokens, max {doc_lengths.max()}, "
          f"{int((doc_lengths >= MAX_TOKENS).sum())} truncated at {MAX_TOKENS}), "
          f"{len(queries)} queries ({query_lengths.mean():.0f} tokens on average)", flush=True)

    doc_ids = [doc_id for doc_id, _ in documents]
    results = {}
    for model_file in options.models:
        doc_vectors, doc_seconds, doc_cached = embedder.vectors(
            collection, slice_name, model_file, "documents", doc_texts, doc_encodings)
        query_vectors, query_seconds, query_cached = embedder.vectors(
            collection, slice_name, model_file, "queries", query_texts, query_encodings)
        top = rankings(query_vectors, doc_vectors, 100)
        ndcg, recall, per_query = scores(top, doc_ids, queries, qrels)
        results[model_file] = dict(docs=doc_vectors, queries=query_vectors, top=top, ndcg=ndcg,
                                   recall=recall, per_query=per_query, doc_s=doc_seconds,
                                   query_s=query_seconds, cached=doc_cached and query_cached)
        print(f"    {model_file}: nDCG@10 {ndcg:.4f}, Recall@100 {recall:.4f}"
              f"{' (cached)' if doc_cached and query_cached else ''}", flush=True)

    reference = options.models[0]
    w = max(len("model"), *(len(m) for m in options.models))
    print(f"  {'model':<{w}} {'docs':>6} {'queries':>7} {'nDCG@10':>8} {'R@100':>7} "
          f"{'doc s':>8} {'docs/s':>7} {'query s':>7} {'ΔnDCG@10':>9} {'ΔR@100':>8}", flush=True)
    for model_file, r in results.items():
        delta = ""
        if model_file != reference:
            delta = (f"{r['ndcg'] - results[reference]['ndcg']:>+9.4f} "
                     f"{r['recall'] - results[reference]['recall']:>+8.4f}")
        print(f"  {model_file:<{w}} {len(documents):>6} {len(queries):>7} {r['ndcg']:>8.4f} "
              f"{r['recall']:>7.4f} {r['doc_s']:>8.1f} {len(documents) / r['doc_s']:>7.1f} "
              f"{r['query_s']:>7.1f} {delta}{'  (times from cache)' if r['cached'] else ''}",
              flush=True)
    ref = results[reference]
    for model_file, r in results.items():
        if model_file == reference:
            continue
        doc_cos = (r["docs"] * ref["docs"]).sum(axis=1)
        query_cos = (r["queries"] * ref["queries"]).sum(axis=1)
        top1 = float(np.mean(r["top"][:, 0] == ref["top"][:, 0]))
        overlap = float(np.mean([len(set(a[:10]) & set(b[:10])) / len(a[:10])
                                 for a, b in zip(r["top"], ref["top"])]))
        # The other model for questions only, over the reference model's documents: what
        # `embedding.query_onnx_file` does without re-embedding anything.
        mixed_top = rankings(r["queries"], ref["docs"], 100)
        mixed_ndcg, mixed_recall, _ = scores(mixed_top, doc_ids, queries, qrels)
        print(f"  queries by {model_file}, documents by {reference}: nDCG@10 {mixed_ndcg:.4f} "
              f"({mixed_ndcg - ref['ndcg']:+.4f}), Recall@100 {mixed_recall:.4f} "
              f"({mixed_recall - ref['recall']:+.4f})", flush=True)
        diff = r["per_query"] - ref["per_query"]
        print(f"  {model_file} vs {reference}: documents cosine mean {doc_cos.mean():.4f} min "
              f"{doc_cos.min():.4f}; queries cosine mean {query_cos.mean():.4f} min "
              f"{query_cos.min():.4f}; same top hit {top1:.1%}, top-10 overlap {overlap:.1%}; "
              f"nDCG@10 better for {int((diff > 1e-9).sum())} queries, worse for "
              f"{int((diff < -1e-9).sum())}", flush=True)
    print(flush=True)


def main():
    options = parse_args()
    unknown = [c for c in options.collections if not (options.eval_dir / c).is_dir()]
    if unknown:
        print(f"no such collection under {options.eval_dir}: {', '.join(unknown)}",
              file=sys.stderr)
        return 2
    tokenizer = Tokenizer.from_file(str(options.model_dir / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(MAX_TOKENS)
    with open(options.model_dir / "config.json", encoding="utf-8") as f:
        pad_id = json.load(f).get("pad_token_id", 1)
    print(f"onnxruntime {ort.__version__}, {options.threads} intra-op threads, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; models "
          f"{', '.join(options.models)} (reference {options.models[0]}); batches of "
          f"{options.batch_size} sorted by length; cache {options.cache_dir}", flush=True)
    print(flush=True)
    embedder = Embedder(options, tokenizer, pad_id)
    for collection in options.collections:
        measure(options, embedder, collection)
    return 0


if __name__ == "__main__":
    sys.exit(main())
