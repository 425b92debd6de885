//! Retrieval and answer quality on labelled collections in the BEIR layout (`corpus.jsonl`,
//! `queries.jsonl`, `qrels.tsv`): reading them, scoring ranked document lists with nDCG@10,
//! Recall@100 and MRR@10, as BEIR and pytrec_eval define them, and reading question sets whose
//! queries say whether they are answerable and with which answer strings.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde::Deserialize;

use crate::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CorpusDocument {
    #[serde(rename = "_id")]
    pub id: String,
    #[serde(default)]
    pub title: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Query {
    #[serde(rename = "_id")]
    pub id: String,
    pub text: String,
}

/// A collection: its documents, its queries that have at least one judged-relevant document,
/// and the judgements (query id -> document id -> graded relevance, positive only).
#[derive(Debug, Clone, Default)]
pub struct Collection {
    pub corpus: Vec<CorpusDocument>,
    pub queries: Vec<Query>,
    pub qrels: HashMap<String, HashMap<String, u32>>,
}

impl Collection {
    /// Reads `corpus.jsonl`, `queries.jsonl` and `qrels.tsv` from `dir`. Queries without a
    /// relevant document (for example unanswerable ones) are left out, as in BEIR.
    pub fn load(dir: &Path) -> Result<Collection> {
        let corpus = read_corpus(dir)?;
        let qrels = read_qrels(&dir.join("qrels.tsv"))?;
        let queries: Vec<Query> = read_jsonl::<Query>(&dir.join("queries.jsonl"))?
            .into_iter()
            .filter(|q| qrels.contains_key(&q.id))
            .collect();
        Ok(Collection {
            corpus,
            queries,
            qrels,
        })
    }

    /// The first `max_queries` queries, and a corpus of at most `max_documents`: every document
    /// judged relevant to a kept query, then the others in file order. Deterministic, so that a
    /// regression check compares like with like.
    pub fn subset(mut self, max_queries: usize, max_documents: usize) -> Collection {
        self.queries.truncate(max_queries);
        let kept: HashSet<&str> = self.queries.iter().map(|q| q.id.as_str()).collect();
        self.qrels.retain(|id, _| kept.contains(id.as_str()));
        let relevant: HashSet<String> = self
            .qrels
            .values()
            .flat_map(|docs| docs.keys().cloned())
            .collect();
        Collection {
            corpus: subset_corpus(self.corpus, &relevant, max_documents),
            queries: self.queries,
            qrels: self.qrels,
        }
    }
}

/// At most `max_documents` of `corpus`: every document in `relevant`, then the others in file
/// order. Deterministic, so that a regression check compares like with like.
pub fn subset_corpus(
    corpus: Vec<CorpusDocument>,
    relevant: &HashSet<String>,
    max_documents: usize,
) -> Vec<CorpusDocument> {
    let room = max_documents.saturating_sub(relevant.len());
    let mut others = 0;
    corpus
        .into_iter()
        .filter(|doc| {
            if relevant.contains(&doc.id) {
                return true;
            }
            others += 1;
            others <= room
        })
        .collect()
}

/// Reads `corpus.jsonl` from `dir`.
pub fn read_corpus(dir: &Path) -> Result<Vec<CorpusDocument>> {
    read_jsonl(&dir.join("corpus.jsonl"))
}

/// A question of an answer set: a BEIR query with what `Ask` should do with it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AskQuery {
    /// Absent in an admin's calibration file, where questions need no name.
    #[serde(rename = "_id", default)]
    pub id: String,
    #[serde(alias = "question")]
    pub text: String,
    /// Whether some document answers it; absent means answerable when `answers` is not empty.
    #[serde(default)]
    pub answerable: Option<bool>,
    /// Short strings copied from the answering document; one of them in a quoted sentence
    /// means the sentence answers.
    #[serde(default)]
    pub answers: Vec<String>,
    /// The question's language (`en`, `id`, `zh`); detected when absent.
    #[serde(default)]
    pub language: Option<String>,
    /// What sort of question it is (for example `cross-lingual`); from `answerable` when
    /// absent.
    #[serde(default)]
    pub kind: Option<String>,
    /// The knowledge base the question is meant for, in sets over knowledge-base folders.
    #[serde(default)]
    pub knowledge_base: Option<String>,
    /// The document (`path` in its knowledge base) that answers it, in an admin's
    /// calibration file, where there are no answer strings.
    #[serde(default)]
    pub document: Option<String>,
}

impl AskQuery {
    pub fn is_answerable(&self) -> bool {
        self.answerable.unwrap_or(!self.answers.is_empty())
    }

    /// Whether `sentence` holds one of the answer strings, compared without case and with
    /// runs of whitespace as one space.
    pub fn answered_by(&self, sentence: &str) -> bool {
        let sentence = normalize_answer_text(sentence);
        self.answers
            .iter()
            .map(|answer| normalize_answer_text(answer))
            .any(|answer| !answer.is_empty() && sentence.contains(&answer))
    }
}

fn normalize_answer_text(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Questions for `Ask` and the documents that answer them (`qrels` with a positive score).
#[derive(Debug, Clone, Default)]
pub struct AskSet {
    pub queries: Vec<AskQuery>,
    pub qrels: HashMap<String, HashMap<String, u32>>,
}

impl AskSet {
    /// Reads `queries.jsonl` and `qrels.tsv`, or `queries_<split>.jsonl` and
    /// `qrels_<split>.tsv` for another split (`train`, `dev`). Every question is kept,
    /// unanswerable ones included.
    pub fn load(dir: &Path, split: Option<&str>) -> Result<AskSet> {
        let (queries, qrels) = match split {
            None => ("queries.jsonl".to_string(), "qrels.tsv".to_string()),
            Some(split) => (
                format!("queries_{split}.jsonl"),
                format!("qrels_{split}.tsv"),
            ),
        };
        let queries: Vec<AskQuery> = read_jsonl(&dir.join(queries))?;
        let qrels_path = dir.join(qrels);
        let qrels = if qrels_path.is_file() {
            read_qrels(&qrels_path)?
        } else {
            HashMap::new()
        };
        Ok(AskSet { queries, qrels })
    }
}

/// Every non-blank line of a JSON-lines file, parsed; an error names the file and line.
pub fn read_jsonl<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>> {
    let text = read(path)?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| {
            serde_json::from_str(line)
                .map_err(|err| Error::Collection(format!("{}:{}: {err}", path.display(), n + 1)))
        })
        .collect()
}

fn read_qrels(path: &Path) -> Result<HashMap<String, HashMap<String, u32>>> {
    let text = read(path)?;
    let mut qrels: HashMap<String, HashMap<String, u32>> = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split('\t').collect();
        if n == 0 && fields.first() == Some(&"query-id") || line.trim().is_empty() {
            continue;
        }
        let [query, document, score] = fields.as_slice() else {
            return Err(Error::Collection(format!(
                "{}:{}: expected three tab-separated fields",
                path.display(),
                n + 1
            )));
        };
        let score: u32 = score.trim().parse().map_err(|_| {
            Error::Collection(format!(
                "{}:{}: score {score:?} is not a number",
                path.display(),
                n + 1
            ))
        })?;
        if score > 0 {
            qrels
                .entry(query.to_string())
                .or_default()
                .insert(document.to_string(), score);
        }
    }
    Ok(qrels)
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|err| Error::Collection(format!("{}: {err}", path.display())))
}

/// nDCG at `k` with graded gains (`rel`, linear as in pytrec_eval) over `ranked` document ids.
pub fn ndcg_at(ranked: &[String], relevant: &HashMap<String, u32>, k: usize) -> f64 {
    let discount = |rank: usize| 1.0 / ((rank + 2) as f64).log2();
    let dcg: f64 = ranked
        .iter()
        .take(k)
        .enumerate()
        .map(|(rank, id)| f64::from(*relevant.get(id).unwrap_or(&0)) * discount(rank))
        .sum();
    let mut ideal: Vec<u32> = relevant.values().copied().collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let idcg: f64 = ideal
        .iter()
        .take(k)
        .enumerate()
        .map(|(rank, gain)| f64::from(*gain) * discount(rank))
        .sum();
    if idcg == 0.0 { 0.0 } else { dcg / idcg }
}

/// The share of relevant documents found in the first `k`.
pub fn recall_at(ranked: &[String], relevant: &HashMap<String, u32>, k: usize) -> f64 {
    if relevant.is_empty() {
        return 0.0;
    }
    let found = ranked
        .iter()
        .take(k)
        .filter(|id| relevant.contains_key(*id))
        .count();
    found as f64 / relevant.len() as f64
}

/// The reciprocal rank of the first relevant document within the first `k`, else 0.
pub fn mrr_at(ranked: &[String], relevant: &HashMap<String, u32>, k: usize) -> f64 {
    ranked
        .iter()
        .take(k)
        .position(|id| relevant.contains_key(id))
        .map_or(0.0, |rank| 1.0 / (rank + 1) as f64)
}

/// Document ids in order of their best passage: passages of one document after its first
/// count no more (max pooling, as BEIR does for passage-level retrieval of documents).
pub fn documents_by_best_passage<'a>(
    passage_documents: impl Iterator<Item = &'a str>,
) -> Vec<String> {
    let mut seen = HashSet::new();
    passage_documents
        .filter(|id| seen.insert(*id))
        .map(str::to_string)
        .collect()
}

/// One question's answer-or-hand-off outcome, as the decision measures need it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecisionOutcome {
    /// The decision's confidence that the quoted sentences answer.
    pub confidence: f32,
    /// Whether they do (the question is answerable and a quoted sentence holds its answer).
    pub quote_answers: bool,
    pub answerable: bool,
}

/// How an operating point decides a set of questions.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DecisionMeasures {
    pub questions: usize,
    pub answerable: usize,
    pub unanswerable: usize,
    /// Answered exactly the answerable questions.
    pub right_decisions: usize,
    /// Answerable, answered, and a quoted sentence holds the answer.
    pub answered_with_answer: usize,
    pub unanswerable_handed_off: usize,
    /// Answered when unanswerable, or answered without the answer in a quoted sentence.
    pub wrong_answers: usize,
}

impl DecisionMeasures {
    pub fn at(outcomes: &[DecisionOutcome], min_confidence: f32) -> DecisionMeasures {
        let mut m = DecisionMeasures::default();
        for o in outcomes {
            let answered = o.confidence > 0.0 && o.confidence >= min_confidence;
            m.questions += 1;
            m.right_decisions += usize::from(answered == o.answerable);
            m.wrong_answers += usize::from(answered && !o.quote_answers);
            if o.answerable {
                m.answerable += 1;
                m.answered_with_answer += usize::from(answered && o.quote_answers);
            } else {
                m.unanswerable += 1;
                m.unanswerable_handed_off += usize::from(!answered);
            }
        }
        m
    }

    pub fn accuracy(&self) -> f64 {
        share(self.right_decisions, self.questions)
    }

    pub fn answered_with_answer_rate(&self) -> f64 {
        share(self.answered_with_answer, self.answerable)
    }

    pub fn unanswerable_handed_off_rate(&self) -> f64 {
        share(self.unanswerable_handed_off, self.unanswerable)
    }

    pub fn wrong_answer_rate(&self) -> f64 {
        share(self.wrong_answers, self.questions)
    }
}

fn share(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// One bin of a reliability table: questions whose confidence fell in `[low, high)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReliabilityBin {
    pub low: f32,
    pub high: f32,
    pub questions: usize,
    pub mean_confidence: f64,
    /// The share whose quoted sentences did answer.
    pub observed: f64,
}

/// The reliability table of `outcomes` over `bins` equal-width confidence bins, and the
/// expected calibration error: the questions-weighted mean gap between the confidence and
/// the observed rate of each bin.
pub fn reliability(outcomes: &[DecisionOutcome], bins: usize) -> (f64, Vec<ReliabilityBin>) {
    let mut table: Vec<ReliabilityBin> = (0..bins)
        .map(|i| ReliabilityBin {
            low: i as f32 / bins as f32,
            high: (i + 1) as f32 / bins as f32,
            questions: 0,
            mean_confidence: 0.0,
            observed: 0.0,
        })
        .collect();
    for o in outcomes {
        let bin = ((o.confidence * bins as f32) as usize).min(bins - 1);
        let b = &mut table[bin];
        b.questions += 1;
        b.mean_confidence += f64::from(o.confidence);
        b.observed += f64::from(u8::from(o.quote_answers));
    }
    let mut ece = 0.0;
    for b in &mut table {
        if b.questions > 0 {
            b.mean_confidence /= b.questions as f64;
            b.observed /= b.questions as f64;
            ece += (b.mean_confidence - b.observed).abs() * b.questions as f64;
        }
    }
    (ece / outcomes.len().max(1) as f64, table)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn rel(list: &[(&str, u32)]) -> HashMap<String, u32> {
        list.iter().map(|(id, g)| (id.to_string(), *g)).collect()
    }

    #[test]
    fn ndcg_matches_hand_computed_values() {
        let relevant = rel(&[("a", 1), ("b", 1)]);
        assert_eq!(ndcg_at(&ids(&["a", "b", "c"]), &relevant, 10), 1.0);
        // Relevant at ranks 2 and 3: (1/log2(3) + 1/log2(4)) / (1 + 1/log2(3)).
        let expected = (1.0 / 3f64.log2() + 0.5) / (1.0 + 1.0 / 3f64.log2());
        let got = ndcg_at(&ids(&["c", "a", "b"]), &relevant, 10);
        assert!((got - expected).abs() < 1e-12, "{got} vs {expected}");
        assert_eq!(ndcg_at(&ids(&["c", "d"]), &relevant, 10), 0.0);
        // Outside the cut-off counts nothing.
        assert_eq!(ndcg_at(&ids(&["c", "a"]), &relevant, 1), 0.0);
        // Graded: the better document first is ideal.
        let graded = rel(&[("a", 2), ("b", 1)]);
        assert_eq!(ndcg_at(&ids(&["a", "b"]), &graded, 10), 1.0);
        assert!(ndcg_at(&ids(&["b", "a"]), &graded, 10) < 1.0);
    }

    #[test]
    fn recall_and_mrr() {
        let relevant = rel(&[("a", 1), ("b", 1)]);
        assert_eq!(recall_at(&ids(&["x", "a"]), &relevant, 100), 0.5);
        assert_eq!(recall_at(&ids(&["x", "a"]), &relevant, 1), 0.0);
        assert_eq!(mrr_at(&ids(&["x", "y", "b"]), &relevant, 10), 1.0 / 3.0);
        assert_eq!(mrr_at(&ids(&["x", "y", "b"]), &relevant, 2), 0.0);
    }

    #[test]
    fn documents_rank_by_their_best_passage() {
        let ranked = documents_by_best_passage(["d2", "d1", "d2", "d3", "d1"].into_iter());
        assert_eq!(ranked, ids(&["d2", "d1", "d3"]));
    }

    #[test]
    fn answers_match_without_case_or_spacing_and_sets_load() {
        let query = AskQuery {
            id: "q".into(),
            text: "How long must my password be?".into(),
            answerable: None,
            answers: vec!["at least 14  characters".into(), " ".into()],
            language: None,
            kind: None,
            knowledge_base: None,
            document: None,
        };
        assert!(query.is_answerable());
        assert!(query.answered_by("Passwords need At least 14\ncharacters."));
        assert!(!query.answered_by("At least 12 characters."));
        assert!(
            !query.answered_by(""),
            "a blank answer string matches nothing"
        );

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("queries_train.jsonl"),
            "{\"_id\":\"a\",\"text\":\"Berapa?\",\"answerable\":true,\"answers\":[\"14\"]}\n\
             {\"_id\":\"b\",\"text\":\"Siapa?\",\"answerable\":false,\"answers\":[],\
             \"kind\":\"unanswerable\",\"knowledge_base\":\"it\"}\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("qrels_train.tsv"),
            "query-id\tcorpus-id\tscore\na\tit/x.md\t1\nb\tit/y.md\t0\n",
        )
        .unwrap();
        let set = AskSet::load(dir.path(), Some("train")).unwrap();
        assert_eq!(set.queries.len(), 2, "unanswerable questions are kept");
        assert!(!set.queries[1].is_answerable());
        assert_eq!(set.queries[1].knowledge_base.as_deref(), Some("it"));
        assert_eq!(set.qrels["a"], rel(&[("it/x.md", 1)]));
        assert!(!set.qrels.contains_key("b"), "a zero score is not relevant");
        assert!(AskSet::load(dir.path(), None).is_err(), "no queries.jsonl");
    }

    #[test]
    fn collections_load_and_subset_keeps_relevant_documents() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("corpus.jsonl"),
            "{\"_id\":\"d1\",\"title\":\"T1\",\"text\":\"one\"}\n\
             {\"_id\":\"d2\",\"text\":\"two\"}\n\
             {\"_id\":\"d3\",\"title\":\"\",\"text\":\"three\"}\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("queries.jsonl"),
            "{\"_id\":\"q1\",\"text\":\"first\"}\n{\"_id\":\"q2\",\"text\":\"second\"}\n\
             {\"_id\":\"q3\",\"text\":\"unjudged\"}\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("qrels.tsv"),
            "query-id\tcorpus-id\tscore\nq1\td3\t1\nq2\td2\t1\nq2\td1\t0\n",
        )
        .unwrap();
        let collection = Collection::load(dir.path()).unwrap();
        assert_eq!(collection.corpus.len(), 3);
        assert_eq!(collection.queries.len(), 2, "q3 has no relevant document");
        assert_eq!(collection.qrels["q2"], rel(&[("d2", 1)]));

        let subset = collection.subset(1, 2);
        assert_eq!(subset.queries.len(), 1);
        let kept: Vec<&str> = subset.corpus.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(kept, ["d1", "d3"], "the relevant d3, then the first other");

        std::fs::write(dir.path().join("qrels.tsv"), "q1\td3\n").unwrap();
        let err = Collection::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("qrels.tsv:1"), "{err}");
    }

    #[test]
    fn decision_measures_count_each_outcome_once() {
        let o = |confidence, quote_answers, answerable| DecisionOutcome {
            confidence,
            quote_answers,
            answerable,
        };
        let outcomes = [
            o(0.9, true, true),   // answered rightly
            o(0.8, false, true),  // answered without the answer: wrong
            o(0.2, true, true),   // handed off though answerable
            o(0.7, false, false), // answered an unanswerable one: wrong
            o(0.1, false, false), // handed off rightly
            o(0.0, false, false), // nothing matched: handed off whatever the threshold
        ];
        let m = DecisionMeasures::at(&outcomes, 0.5);
        assert_eq!((m.answerable, m.unanswerable), (3, 3));
        assert_eq!(m.answered_with_answer, 1);
        assert_eq!(m.wrong_answers, 2);
        assert_eq!(m.unanswerable_handed_off, 2);
        assert_eq!(m.right_decisions, 4);
        assert_eq!(
            DecisionMeasures::at(&outcomes, 0.0).unanswerable_handed_off,
            1
        );

        let (ece, table) = reliability(&outcomes, 10);
        assert_eq!(table.len(), 10);
        assert_eq!(table.iter().map(|b| b.questions).sum::<usize>(), 6);
        assert_eq!(table[9].questions, 1);
        assert!((table[9].observed - 1.0).abs() < 1e-9);
        // Bins 0.0, 0.1, 0.2, 0.7, 0.8, 0.9: gaps 0, 0.1, 0.8, 0.7, 0.8, 0.1 over 6.
        assert!((ece - 2.5 / 6.0).abs() < 1e-6, "{ece}");
    }
}
