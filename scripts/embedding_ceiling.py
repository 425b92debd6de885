#!/usr/bin/env python3
"""The embedding ceiling: how fast ONNX Runtime alone runs multilingual-e5-small on this machine,
with no lumbung code around it, for the fp32 model and the INT8 one that setup-runtime.sh builds.

Passages are real text from ../shared/eval (BEIR layout, corpus.jsonl with title and text):
SciFact (English), TyDi QA GoldP (Indonesian) and CMRC 2018 (Chinese), taken in turn so that
every batch mixes the three languages. Each collection's sentences are packed, in corpus order,
into passages of at most --max-tokens tokens of model.onnx's tokenizer (counted without the
prefix and the special tokens, as lumbung's chunker counts; a longer sentence is cut), which
gives about 180 tokens a passage at the default 200 (178 for the first 64; lumbung's chunker
gives 186 in crates/lumbung-embed/examples/embed_timing.rs). Each passage is
embedded as "passage: " + text in batches of --batch-size, padded to the longest text of its
batch, once in corpus order and once sorted by token length (as lumbung's embedder does).

Only session.run is timed: tokenising and padding happen before. Every model gets one untimed
batch first. The table gives texts/s, tokens/s counting real tokens only (prefix and special
tokens included, padding not) and the share of padding in the positions the model computed. The
vectors are mean-pooled over the attention mask and L2-normalised, as lumbung does, and every
other model is compared with the first (cosine per passage). The same passages in the two orders
sit in different batches: for the fp32 model their vectors agree (cosine 1.000000); the INT8
model quantises activations with one scale per batch, so its vectors move a little with the
batch a text lands in. Single queries ("query: " + a question of about ten words, English,
Indonesian and Chinese in turn) are timed --repeat times each (after a few untimed ones) for the
query latency.

Needs numpy, onnxruntime and tokenizers: scripts/setup-runtime.sh installs all three (pinned)
into its converter virtualenv, so, from the repository root after it has run:

    runtime/cache/venv/bin/python scripts/embedding_ceiling.py               # 256 passages
    runtime/cache/venv/bin/python scripts/embedding_ceiling.py --passages 64 # a quick look
    runtime/cache/venv/bin/python scripts/embedding_ceiling.py --with-sentences --models model.onnx

--with-sentences adds each passage's sentences, each under its document's title, to the texts,
and sorts them together: the mix of lengths lumbung's ingest embeds (a chunk and then each of
its sentences), so that ingest's tokens/s can be compared with the ceiling of the same work.

--passages 64 took about a minute while a cargo build shared the machine's two cores (load
average 2.5 to 3.5, so about half the free-core speed); 256 take three to four times as long.
"""

import argparse
import json
import os
import pathlib
import re
import statistics
import sys
import time

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODEL_DIR = ROOT / "runtime/models/multilingual-e5-small"
EVAL_DIR = ROOT.parent / "shared/eval"
COLLECTIONS = ["scifact", "tydiqa_goldp_id", "cmrc2018_dev_zh"]
QUERIES = [
    "What protective equipment is required when welding inside the workshop?",
    "Bagaimana cara mengatur ulang kata sandi VPN melalui portal layanan karyawan?",
    "动火作业需要办理哪些许可证，现场监护人员应该在作业结束后停留多久？",
]
# A sentence ends at . ! ? followed by white space, or right after a CJK full stop or mark.
SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[。！？；])")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--passages", type=int, default=256, help="passages to embed (256)")
    parser.add_argument("--batch-size", type=int, default=16, help="texts per run (16)")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads (2)")
    parser.add_argument("--repeat", type=int, default=200,
                        help="timed single queries per model (200)")
    parser.add_argument("--max-tokens", type=int, default=200,
                        help="most tokens a passage, without prefix and special tokens (200)")
    parser.add_argument("--model-dir", type=pathlib.Path, default=MODEL_DIR)
    parser.add_argument("--models", nargs="+", default=["model.onnx", "model-int8.onnx"],
                        help="ONNX files in --model-dir (or paths); the first is the reference")
    parser.add_argument("--eval-dir", type=pathlib.Path, default=EVAL_DIR)
    parser.add_argument("--with-sentences", action="store_true",
                        help="also embed each passage's sentences under its title, as lumbung's "
                             "ingest does (the ceiling for ingest's own mix of lengths)")
    return parser.parse_args()


def sentences(collection):
    """(title, sentence) of a BEIR corpus.jsonl in corpus order, each title as a sentence too."""
    with open(collection / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            doc = json.loads(line)
            title = doc.get("title", "").strip()
            for field in (title, doc.get("text", "")):
                for sentence in SENTENCE_END.split(field):
                    if sentence.strip():
                        yield title, sentence.strip()


def passages_of(collection, tokenizer, max_tokens):
    """(title, passage): passages packed from whole sentences up to max_tokens (a longer
    sentence is cut), with the title of the document their first sentence came from."""
    current, used, title = [], 0, ""
    for sentence_title, sentence in sentences(collection):
        if not current:
            title = sentence_title
        encoding = tokenizer.encode(sentence, add_special_tokens=False)
        while len(encoding.ids) > max_tokens:  # cut at the last token that fits
            if current:
                yield title, " ".join(current)
                current, used, title = [], 0, sentence_title
            cut = encoding.offsets[max_tokens - 1][1]
            yield title, sentence[:cut]
            sentence = sentence[cut:].strip()
            encoding = tokenizer.encode(sentence, add_special_tokens=False)
        if used + len(encoding.ids) > max_tokens and current:
            yield title, " ".join(current)
            current, used, title = [], 0, sentence_title
        if encoding.ids:
            current.append(sentence)
            used += len(encoding.ids)
    if current:
        yield title, " ".join(current)


def load_passages(options, tokenizer):
    sources = [passages_of(options.eval_dir / c, tokenizer, options.max_tokens)
               for c in COLLECTIONS]
    titled = []
    while len(titled) < options.passages:
        for source in sources:  # in turn, so that every batch mixes the languages
            if len(titled) < options.passages:
                titled.append(next(source))
    texts = []
    for title, text in titled:
        # Joining sentences can merge tokens across the space; the limit holds after the join.
        encoding = tokenizer.encode(text, add_special_tokens=False)
        if len(encoding.ids) > options.max_tokens:
            text = text[:encoding.offsets[options.max_tokens - 1][1]]
        texts.append(text)
    if options.with_sentences:
        # As lumbung embeds them: each sentence of a chunk under the chunk's title.
        for (title, _), text in zip(titled, list(texts)):
            for sentence in SENTENCE_END.split(text):
                if sentence.strip():
                    texts.append(f"{title}: {sentence.strip()}" if title else sentence.strip())
    return texts


def encode(tokenizer, texts, pad_id):
    """input_ids and attention_mask (int64), padded to the longest text."""
    encodings = tokenizer.encode_batch(texts)
    width = max(len(e.ids) for e in encodings)
    ids = np.full((len(texts), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(texts), width), dtype=np.int64)
    for row, e in enumerate(encodings):
        ids[row, :len(e.ids)] = e.ids
        mask[row, :len(e.ids)] = 1
    return ids, mask


class Model:
    def __init__(self, path, threads):
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        started = time.perf_counter()
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.load_seconds = time.perf_counter() - started
        self.inputs = [i.name for i in self.session.get_inputs()]
        outputs = [o.name for o in self.session.get_outputs()]
        self.output = "last_hidden_state" if "last_hidden_state" in outputs else outputs[0]

    def run(self, ids, mask):
        """Model time in seconds and the pooled, normalised vectors."""
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.inputs:
            feed["token_type_ids"] = np.zeros_like(ids)
        feed = {name: feed[name] for name in self.inputs}
        started = time.perf_counter()
        (hidden,) = self.session.run([self.output], feed)
        seconds = time.perf_counter() - started
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / weights.sum(axis=1)
        return seconds, pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def main():
    options = parse_args()
    tokenizer = Tokenizer.from_file(str(options.model_dir / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    texts = load_passages(options, tokenizer)
    lengths = [len(tokenizer.encode(t, add_special_tokens=False).ids) for t in texts]
    with open(options.model_dir / "config.json", encoding="utf-8") as f:
        pad_id = json.load(f)["pad_token_id"]
    tokenizer.enable_truncation(512)

    prefixed = ["passage: " + t for t in texts]
    full = [len(e.ids) for e in tokenizer.encode_batch(prefixed)]
    orders = {
        "corpus": list(range(len(texts))),
        "sorted": sorted(range(len(texts)), key=lambda i: full[i]),
    }
    batches = {}  # order -> [(indices, ids, mask)], tokenised before any timing
    for name, order in orders.items():
        batches[name] = []
        for start in range(0, len(order), options.batch_size):
            indices = order[start:start + options.batch_size]
            ids, mask = encode(tokenizer, [prefixed[i] for i in indices], pad_id)
            batches[name].append((indices, ids, mask))
    queries = [encode(tokenizer, ["query: " + q], pad_id) for q in QUERIES]

    print(f"onnxruntime {ort.__version__}, {options.threads} intra-op threads, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    print(f"{len(texts)} texts ({options.passages} passages of {', '.join(COLLECTIONS)} in turn"
          f"{' and their sentences' if options.with_sentences else ''}), "
          f"{statistics.mean(lengths):.0f} tokens on average (min {min(lengths)}, max "
          f"{max(lengths)}; {statistics.mean(full):.0f} with prefix and special tokens), "
          f"batches of {options.batch_size}")
    print()
    w = max(len(m) for m in options.models)
    print(f"{'model':<{w}} {'MB':>5} {'load s':>6} {'order':<7} {'seconds':>7} {'texts/s':>10} "
          f"{'tokens/s':>8} {'padding':>7}")

    vectors, query_vectors, query_ms = {}, {}, {}
    for model_file in options.models:
        path = options.model_dir / model_file
        model = Model(path, options.threads)
        size = path.stat().st_size / 1e6
        model.run(*batches["corpus"][0][1:])  # untimed: first-run allocations
        for order, order_batches in batches.items():
            seconds, real, positions = 0.0, 0, 0
            result = np.zeros((len(texts), 0), dtype=np.float32)
            for indices, ids, mask in order_batches:
                batch_seconds, pooled = model.run(ids, mask)
                if result.shape[1] == 0:
                    result = np.zeros((len(texts), pooled.shape[1]), dtype=np.float32)
                result[indices] = pooled
                seconds += batch_seconds
                real += int(mask.sum())
                positions += mask.size
            vectors[(model_file, order)] = result
            print(f"{model_file:<{w}} {size:>5.0f} {model.load_seconds:>6.2f} {order:<7} "
                  f"{seconds:>7.2f} {len(texts) / seconds:>10.1f} {real / seconds:>8.0f} "
                  f"{1 - real / positions:>7.1%}")
        for ids, mask in queries * 2:  # untimed
            model.run(ids, mask)
        times = []
        for i in range(options.repeat):
            seconds, _ = model.run(*queries[i % len(queries)])
            times.append(seconds * 1000)
        query_ms[model_file] = times
        query_vectors[model_file] = np.concatenate([model.run(*q)[1] for q in queries])
        del model

    print()
    reference = options.models[0]
    for model_file in options.models:
        drift = (vectors[(model_file, "corpus")] * vectors[(model_file, "sorted")]).sum(axis=1)
        line = f"{model_file:<{w}} corpus vs sorted order: min cosine {drift.min():.6f}"
        if model_file != reference:
            cos = (vectors[(model_file, "corpus")] * vectors[(reference, "corpus")]).sum(axis=1)
            qcos = (query_vectors[model_file] * query_vectors[reference]).sum(axis=1)
            line += (f"; vs {reference}: passages mean cosine {cos.mean():.4f}, min "
                     f"{cos.min():.4f}; queries mean {qcos.mean():.4f}, min {qcos.min():.4f}")
        print(line)

    print()
    print(f"single queries, {options.repeat} each (~10 words, \"query: \" prefix, "
          f"{statistics.mean(len(q[0][0]) for q in queries):.0f} tokens on average):")
    for model_file, times in query_ms.items():
        times = sorted(times)
        p99 = times[min(len(times) - 1, int(round(0.99 * (len(times) - 1))))]
        print(f"{model_file:<{w}} p50 {statistics.median(times):6.2f} ms  p99 {p99:6.2f} ms  "
              f"min {times[0]:6.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
