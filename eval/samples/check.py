#!/usr/bin/env python3
"""Checks the labelled sample questions in eval/samples against the files under ingest/.

Usage: python3 eval/samples/check.py

Fails (exit 1, listing every problem) unless queries.jsonl and qrels.tsv are consistent: every
line parses, ids are unique, fields and kinds are valid, every answerable question has answers
and a score-1 document, every answer string occurs verbatim, outside headings, in one of its score-1 documents and
contains no Markdown markup, and unanswerable and off-topic questions have neither. Prints the
number of questions per kind and per language. Standard library only.

Answer strings are looked up in the raw file. A PDF has no raw text, so for PDFs the text is
taken from the page content streams (each text-showing operator becomes one line).
"""
import json
import pathlib
import re
import sys
import zlib
from collections import Counter, defaultdict

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
INGEST = ROOT / "ingest"

FIELDS = {"_id", "text", "language", "kind", "knowledge_base", "answerable", "answers"}
LANGUAGES = ("en", "id", "zh")
KINDS = ("same-language", "cross-lingual", "unanswerable", "off-topic")
MARKUP = ("**", "`", "|", "[", "](")
# The language of each document, for checking same-language against cross-lingual.
DOC_LANGUAGE_OVERRIDES = {
    "it-helpdesk/akses-vpn.md": "id",
    "it-helpdesk/reset-kata-sandi.md": "id",
    "it-helpdesk/laptop-baru.md": "id",
    "safety-zh/prosedur-operasi-forklift.md": "id",
}
KB_LANGUAGE = {"it-helpdesk": "en", "safety-zh": "zh", "production-data": "en"}


def doc_language(corpus_id):
    return DOC_LANGUAGE_OVERRIDES.get(corpus_id, KB_LANGUAGE.get(corpus_id.split("/")[0]))


def pdf_text(data):
    """The text of a simple PDF: each string shown with Tj (or in a TJ array) as one line."""
    lines = []
    for match in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        raw = match.group(1)
        try:
            content = zlib.decompress(raw)
        except zlib.error:
            content = raw
        for op in re.finditer(rb"\((?:\\.|[^\\)])*\)\s*Tj|\[(?:\\.|[^\]])*\]\s*TJ", content, re.S):
            strings = re.findall(rb"\(((?:\\.|[^\\)])*)\)", op.group(0), re.S)
            lines.append("".join(unescape_pdf(s) for s in strings))
    return "\n".join(lines)


def unescape_pdf(s):
    out = bytearray()
    i = 0
    while i < len(s):
        c = s[i]
        if c == 0x5C and i + 1 < len(s):  # backslash
            n = s[i + 1]
            octal = re.match(rb"[0-7]{1,3}", s[i + 1 : i + 4])
            if octal:
                out.append(int(octal.group(0), 8) & 0xFF)
                i += 1 + len(octal.group(0))
                continue
            out += {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t", ord("b"): b"\b",
                    ord("f"): b"\f"}.get(n, bytes([n]))
            i += 2
            continue
        out.append(c)
        i += 1
    return out.decode("latin-1")


_texts = {}


def document_text(corpus_id):
    if corpus_id not in _texts:
        path = INGEST / corpus_id
        data = path.read_bytes()
        _texts[corpus_id] = pdf_text(data) if path.suffix.lower() == ".pdf" else data.decode("utf-8")
    return _texts[corpus_id]


def body_text(corpus_id):
    """The document without its Markdown heading lines: headings are citation paths, never part
    of a quoted sentence, so an answer found only in a heading can never be quoted."""
    text = document_text(corpus_id)
    if not corpus_id.endswith((".md", ".markdown")):
        return text
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def all_documents():
    docs = []
    for kb in sorted(p for p in INGEST.iterdir() if p.is_dir()):
        for f in sorted(kb.rglob("*")):
            if f.is_file() and f.name != "kb.toml":
                docs.append(f.relative_to(INGEST).as_posix())
    return docs


def main():
    problems = []
    warnings = []
    queries = {}
    order = []
    path = HERE / "queries.jsonl"
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        where = f"queries.jsonl:{number}"
        if not line.strip():
            problems.append(f"{where}: empty line")
            continue
        try:
            q = json.loads(line)
        except json.JSONDecodeError as err:
            problems.append(f"{where}: not JSON: {err}")
            continue
        if not isinstance(q, dict):
            problems.append(f"{where}: not a JSON object")
            continue
        if set(q) != FIELDS:
            problems.append(f"{where}: fields {sorted(q)} (want {sorted(FIELDS)})")
            continue
        qid = q["_id"]
        if not isinstance(qid, str) or not re.fullmatch(r"s\d{3,}", qid):
            problems.append(f"{where}: bad _id {qid!r}")
            continue
        if qid in queries:
            problems.append(f"{where}: duplicate _id {qid}")
            continue
        if not isinstance(q["text"], str) or not q["text"].strip():
            problems.append(f"{qid}: empty text")
        if q["language"] not in LANGUAGES:
            problems.append(f"{qid}: language {q['language']!r} not one of {LANGUAGES}")
        if q["kind"] not in KINDS:
            problems.append(f"{qid}: kind {q['kind']!r} not one of {KINDS}")
        if not (INGEST / str(q["knowledge_base"])).is_dir():
            problems.append(f"{qid}: no knowledge base ingest/{q['knowledge_base']}")
        if not isinstance(q["answerable"], bool):
            problems.append(f"{qid}: answerable must be true or false")
        elif q["answerable"] != (q["kind"] in ("same-language", "cross-lingual")):
            problems.append(f"{qid}: answerable={q['answerable']} does not fit kind {q['kind']}")
        if not isinstance(q["answers"], list) or not all(isinstance(a, str) for a in q["answers"]):
            problems.append(f"{qid}: answers must be a list of strings")
            q["answers"] = []
        queries[qid] = q
        order.append(qid)

    qrels = defaultdict(dict)
    path = HERE / "qrels.tsv"
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0] != "query-id\tcorpus-id\tscore":
        problems.append("qrels.tsv: first line must be 'query-id<TAB>corpus-id<TAB>score'")
    for number, line in enumerate(lines[1:], 2):
        where = f"qrels.tsv:{number}"
        cells = line.split("\t")
        if len(cells) != 3:
            problems.append(f"{where}: want 3 tab-separated cells, got {len(cells)}")
            continue
        qid, corpus_id, score = cells
        if qid not in queries:
            problems.append(f"{where}: unknown query {qid}")
            continue
        if score not in ("0", "1"):
            problems.append(f"{where}: score {score!r} is not 0 or 1")
            continue
        if not (INGEST / corpus_id).is_file() or corpus_id.endswith("kb.toml"):
            problems.append(f"{where}: no document ingest/{corpus_id}")
            continue
        if corpus_id.split("/")[0] != queries[qid]["knowledge_base"]:
            problems.append(f"{where}: {corpus_id} is not in {queries[qid]['knowledge_base']}")
        if corpus_id in qrels[qid]:
            problems.append(f"{where}: duplicate pair {qid} {corpus_id}")
        qrels[qid][corpus_id] = int(score)

    documents = all_documents()
    subject_of = Counter()
    for qid in order:
        q = queries[qid]
        relevant = [d for d, s in qrels[qid].items() if s == 1]
        if q["answerable"] is True:
            if not q["answers"]:
                problems.append(f"{qid}: answerable but no answers")
            if len(q["answers"]) > 3:
                problems.append(f"{qid}: more than 3 answers")
            if not relevant:
                problems.append(f"{qid}: answerable but no qrel with score 1")
            for doc in relevant:
                subject_of[doc] += 1
            for answer in q["answers"]:
                if not answer.strip() or answer != answer.strip():
                    problems.append(f"{qid}: answer {answer!r} is empty or has outer spaces")
                bad = [m for m in MARKUP if m in answer]
                if bad:
                    problems.append(f"{qid}: answer {answer!r} contains markup {bad}")
                if "\n" in answer or "\r" in answer:
                    problems.append(f"{qid}: answer {answer!r} spans a line break")
                if relevant and not any(answer in document_text(d) for d in relevant):
                    problems.append(f"{qid}: answer {answer!r} is in none of {relevant}")
                elif relevant and not any(answer in body_text(d) for d in relevant):
                    problems.append(f"{qid}: answer {answer!r} is only in a heading of {relevant}")
                others = [d for d in documents
                          if d.split("/")[0] == q["knowledge_base"] and d not in qrels[qid]
                          and answer in document_text(d)]
                if others:
                    warnings.append(f"{qid}: answer {answer!r} also in {others} (not in qrels)")
            languages = {doc_language(d) for d in relevant}
            if q["kind"] == "same-language" and q["language"] not in languages:
                problems.append(f"{qid}: same-language, but no score-1 document is in {q['language']}")
            if q["kind"] == "cross-lingual" and q["language"] in languages:
                problems.append(f"{qid}: cross-lingual, but a score-1 document is in {q['language']}")
        elif q["answerable"] is False:
            if q["answers"]:
                problems.append(f"{qid}: {q['kind']} but has answers")
            if relevant:
                problems.append(f"{qid}: {q['kind']} but has score-1 qrels {relevant}")
            if q["kind"] == "unanswerable" and not qrels[qid]:
                problems.append(f"{qid}: unanswerable without its near-miss document (score 0)")

    for doc in documents:
        if subject_of[doc] < 2:
            warnings.append(f"{doc}: answers only {subject_of[doc]} question(s)")

    kinds = Counter(queries[q]["kind"] for q in order)
    langs = Counter(queries[q]["language"] for q in order)
    table = Counter((queries[q]["kind"], queries[q]["language"]) for q in order)
    print(f"{len(order)} questions, {sum(len(v) for v in qrels.values())} qrels")
    print(f"{'kind':<15}" + "".join(f"{l:>6}" for l in LANGUAGES) + f"{'all':>6}")
    for kind in KINDS:
        print(f"{kind:<15}" + "".join(f"{table[(kind, l)]:>6}" for l in LANGUAGES)
              + f"{kinds[kind]:>6}")
    print(f"{'all':<15}" + "".join(f"{langs[l]:>6}" for l in LANGUAGES) + f"{len(order):>6}")
    for w in warnings:
        print(f"warning: {w}")
    if problems:
        print(f"\n{len(problems)} problem(s):", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        sys.exit(1)
    print("ok")


if __name__ == "__main__":
    main()
