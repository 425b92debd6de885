//! `lumbung eval --ask DIR`: answer quality of `Ask` on a question set whose queries say
//! whether they are answerable and with which answer strings.
//!
//! Two layouts: a BEIR collection with `corpus.jsonl` (its corpus is ingested into one
//! temporary knowledge base, as for retrieval), or a set of questions over knowledge-base
//! folders (no corpus; each query names its `knowledge_base` and qrels name documents as
//! `kb/path`), asked twice: scoped to the question's knowledge base, and over all of them.
//! Every question goes through `SearchEngine::ask`, the call behind the gRPC `Ask`.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use lumbung_core::{Config, KbName, Language};
use lumbung_search::eval::{self, AskQuery, AskSet, DecisionMeasures, DecisionOutcome};
use lumbung_search::{AnswerDecision, Scope, SentenceSignals, SupportingSentence};
use serde_json::json;

use crate::eval::{KB, WorkDir, ms, open_and_ingest, write_corpus};

pub struct AskEvalOptions {
    pub dir: PathBuf,
    /// `queries_<split>.jsonl` and `qrels_<split>.tsv` instead of the test split.
    pub split: Option<String>,
    pub max_queries: usize,
    /// For a BEIR collection: at most this many documents, those answering the kept questions
    /// first, then the others in file order.
    pub max_documents: usize,
    pub max_sentences: usize,
    pub json: bool,
    pub work_dir: Option<PathBuf>,
    /// Also list, per scope, each question with what was quoted.
    pub details: bool,
    /// Write every candidate sentence of every question, with its signals and whether it
    /// holds an answer string, to this JSON-lines file (for fitting the `[ask]` weights).
    pub dump_signals: Option<PathBuf>,
    /// Write each question's decision signals and outcome to this JSON-lines file (what
    /// `lumbung calibrate --rows` fits the decision to).
    pub decision_rows: Option<PathBuf>,
    /// Decide with these parameters instead of the shipped ones.
    pub decision: Option<PathBuf>,
}

/// What `Ask` did with one question.
struct Outcome {
    id: String,
    question: String,
    /// The quoted sentences, each with the document it cites.
    quoted: Vec<(String, String)>,
    language: String,
    kind: String,
    answerable: bool,
    /// Sentences quoted; false when `Ask` handed the question off.
    answered: bool,
    /// The decision's confidence, and whether the sentences it weighed hold the answer.
    decision: DecisionOutcome,
    /// The measures below are of the sentences `Ask` quotes or, handed off, would quote: the
    /// quality of the selection, apart from the decision.
    in_first: bool,
    in_any: bool,
    right_document_first: bool,
    latency: Duration,
}

/// Counts over a group of outcomes.
#[derive(Default)]
struct Tally {
    questions: usize,
    answerable: usize,
    in_first: usize,
    in_any: usize,
    right_document_first: usize,
    decisions: Vec<DecisionOutcome>,
}

impl Tally {
    fn add(&mut self, outcome: &Outcome) {
        self.questions += 1;
        if outcome.answerable {
            self.answerable += 1;
            self.in_first += usize::from(outcome.in_first);
            self.in_any += usize::from(outcome.in_any);
            self.right_document_first += usize::from(outcome.right_document_first);
        }
        self.decisions.push(outcome.decision);
    }

    fn json(&self, min_confidence: f32) -> serde_json::Value {
        let decided = DecisionMeasures::at(&self.decisions, min_confidence);
        let (ece, table) = eval::reliability(&self.decisions, RELIABILITY_BINS);
        json!({
            "questions": self.questions,
            "answerable": self.answerable,
            "answer_in_first_sentence": ratio(self.in_first, self.answerable),
            "answer_in_any_sentence": ratio(self.in_any, self.answerable),
            "right_document_first": ratio(self.right_document_first, self.answerable),
            "unanswerable": decided.unanswerable,
            "decision_accuracy": decided.accuracy(),
            "answerable_answered_with_answer": ratio(decided.answered_with_answer, decided.answerable),
            "unanswerable_handed_off": ratio(decided.unanswerable_handed_off, decided.unanswerable),
            "wrong_answers": decided.wrong_answer_rate(),
            "expected_calibration_error": ece,
            "reliability": table.iter().filter(|b| b.questions > 0).map(|b| json!({
                "confidence_from": b.low,
                "confidence_to": b.high,
                "questions": b.questions,
                "mean_confidence": b.mean_confidence,
                "observed": b.observed,
            })).collect::<Vec<_>>(),
        })
    }
}

/// Confidence bins of the reliability table.
const RELIABILITY_BINS: usize = 10;

fn ratio(part: usize, whole: usize) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// The results of one scope: every outcome, grouped.
struct ScopeReport {
    name: &'static str,
    outcomes: Vec<Outcome>,
}

impl ScopeReport {
    /// `all`, then one group per kind and per language, in name order.
    fn groups(&self) -> Vec<(String, Tally)> {
        let mut all = Tally::default();
        let mut by_kind: BTreeMap<String, Tally> = BTreeMap::new();
        let mut by_language: BTreeMap<String, Tally> = BTreeMap::new();
        for outcome in &self.outcomes {
            all.add(outcome);
            by_kind
                .entry(format!("kind {}", outcome.kind))
                .or_default()
                .add(outcome);
            by_language
                .entry(format!("language {}", outcome.language))
                .or_default()
                .add(outcome);
        }
        let mut groups = vec![("all".to_string(), all)];
        groups.extend(by_kind);
        groups.extend(by_language);
        groups
    }

    fn latencies(&self) -> (Duration, Duration) {
        let mut latencies: Vec<Duration> = self.outcomes.iter().map(|o| o.latency).collect();
        latencies.sort();
        (
            crate::bench::percentile(&latencies, 0.5),
            crate::bench::percentile(&latencies, 0.99),
        )
    }
}

pub async fn eval_ask(mut config: Config, options: AskEvalOptions) -> anyhow::Result<()> {
    let mut set = AskSet::load(&options.dir, options.split.as_deref())?;
    set.queries.truncate(options.max_queries);
    anyhow::ensure!(
        !set.queries.is_empty(),
        "{} has no questions",
        options.dir.display()
    );
    let work_dir = WorkDir::new(options.work_dir.as_deref())?;
    let work = work_dir.path();
    config.data_dir = work.join("data");
    let beir = options.dir.join("corpus.jsonl").is_file();
    // The document id a citation stands for: the corpus id for BEIR collections, `kb/path`
    // for questions over knowledge-base folders.
    let document_of: Option<HashMap<String, String>> = if beir {
        // The documents answering the kept questions, then the others, up to max_documents.
        let relevant = set
            .queries
            .iter()
            .filter_map(|q| set.qrels.get(&q.id))
            .flat_map(|docs| docs.keys().cloned())
            .collect();
        let corpus = eval::subset_corpus(
            eval::read_corpus(&options.dir)?,
            &relevant,
            options.max_documents,
        );
        config.ingest_root = work.join("ingest");
        Some(write_corpus(&corpus, &config.ingest_root.join(KB))?)
    } else {
        anyhow::ensure!(
            set.queries.iter().all(|q| q.knowledge_base.is_some()),
            "{}: without a corpus.jsonl every question must name its knowledge_base",
            options.dir.display()
        );
        None
    };
    let settings = json!({ "search": config.search, "ask": config.ask });
    let min_confidence = config.ask.min_confidence;
    let (app, report, ingest_seconds) = open_and_ingest(config).await?;
    if let Some(path) = &options.decision {
        app.engine.set_decision(AnswerDecision::load(path)?);
    }
    let decision = app.engine.decision();
    let ingestor = app.ingestor()?;
    let all_kbs = ingestor
        .knowledge_bases()?
        .iter()
        .map(|kb| ingestor.serving(kb))
        .collect::<Result<Vec<_>, _>>()?;
    if !options.json {
        println!(
            "{}: {} questions; {} chunks embedded now, ingest {ingest_seconds:.1} s; decision \
             fitted on {}, answering from confidence {min_confidence}",
            options.dir.display(),
            set.queries.len(),
            report.chunks_embedded,
            decision.fitted_on,
        );
    }

    let scopes: Vec<&'static str> = if beir {
        vec!["collection"]
    } else {
        vec!["knowledge base", "all knowledge bases"]
    };
    let create = |path: &Option<PathBuf>| -> anyhow::Result<_> {
        Ok(match path {
            Some(path) => Some(std::io::BufWriter::new(std::fs::File::create(path)?)),
            None => None,
        })
    };
    let mut dump = create(&options.dump_signals)?;
    let mut rows = create(&options.decision_rows)?;
    let mut reports = Vec::new();
    for scope in scopes {
        let mut outcomes = Vec::with_capacity(set.queries.len());
        for query in &set.queries {
            // The evaluation owns the whole data directory: it reads every knowledge base.
            let kbs = Scope::resolved(match (scope, &query.knowledge_base) {
                ("knowledge base", Some(kb)) => {
                    vec![ingestor.serving(&KbName::new(kb.clone())?)?]
                }
                ("collection", _) => vec![ingestor.serving(&KbName::new(KB)?)?],
                _ => all_kbs.clone(),
            });
            if let Some(dump) = &mut dump {
                let signals = app.engine.ask_signals(&query.text, &kbs).await?;
                write_signals(dump, scope, query, &signals)?;
            }
            let started = Instant::now();
            let answer = app
                .engine
                .ask(&query.text, &kbs, options.max_sentences)
                .await?;
            let latency = started.elapsed();
            let outcome = judge(
                query,
                &answer,
                set.qrels.get(&query.id),
                document_of.as_ref(),
                latency,
            );
            if let Some(rows) = &mut rows {
                let row = json!({
                    "scope": scope,
                    "id": query.id,
                    "language": outcome.language,
                    "answerable": outcome.decision.answerable,
                    "quote_answers": outcome.decision.quote_answers,
                    "confidence": outcome.decision.confidence,
                    "features": answer.features.values,
                });
                writeln!(rows, "{row}")?;
            }
            outcomes.push(outcome);
        }
        reports.push(ScopeReport {
            name: scope,
            outcomes,
        });
    }

    if options.json {
        let scopes: Vec<_> = reports
            .iter()
            .map(|report| {
                let (p50, p99) = report.latencies();
                let groups: serde_json::Map<String, serde_json::Value> = report
                    .groups()
                    .into_iter()
                    .map(|(name, tally)| (name, tally.json(min_confidence)))
                    .collect();
                let mut scope = json!({
                    "scope": report.name,
                    "latency_p50_ms": ms(p50),
                    "latency_p99_ms": ms(p99),
                    "groups": groups,
                });
                if options.details {
                    scope["questions"] = report.outcomes.iter().map(Outcome::json).collect();
                }
                scope
            })
            .collect();
        let body = json!({
            "set": options.dir.display().to_string(),
            "split": options.split,
            "questions": set.queries.len(),
            "max_sentences": options.max_sentences,
            "decision_fitted_on": decision.fitted_on,
            "min_confidence": min_confidence,
            "settings": settings,
            "scopes": scopes,
        });
        println!("{}", serde_json::to_string_pretty(&body)?);
    } else {
        for report in &reports {
            print_scope(report, min_confidence);
            if options.details {
                for outcome in &report.outcomes {
                    outcome.print();
                }
            }
        }
    }
    Ok(())
}

impl Outcome {
    fn verdict(&self) -> &'static str {
        match (self.answerable, self.answered) {
            (true, true) if self.in_first => "first",
            (true, true) if self.in_any => "any",
            (true, true) => "MISSED",
            (true, false) => "HANDED OFF",
            (false, true) => "ANSWERED",
            (false, false) => "handed off",
        }
    }

    fn json(&self) -> serde_json::Value {
        json!({
            "id": self.id,
            "question": self.question,
            "kind": self.kind,
            "language": self.language,
            "verdict": self.verdict(),
            "confidence": self.decision.confidence,
            "right_document_first": self.right_document_first,
            "quoted": self.quoted.iter().map(|(place, text)| json!({"place": place, "text": text})).collect::<Vec<_>>(),
        })
    }

    fn print(&self) {
        println!(
            "{:<10} {} [{} {}, confidence {:.2}] {}",
            self.verdict(),
            self.id,
            self.kind,
            self.language,
            self.decision.confidence,
            self.question
        );
        for (place, text) in &self.quoted {
            println!("           {place}: {text}");
        }
    }
}

fn write_signals(
    out: &mut impl std::io::Write,
    scope: &str,
    query: &AskQuery,
    signals: &[SentenceSignals],
) -> anyhow::Result<()> {
    let candidates: Vec<_> = signals
        .iter()
        .map(|s| {
            json!({
                "document": format!("{}/{}", s.citation.kb, s.citation.document_path),
                "text": s.text,
                "has_answer": query.answered_by(&s.text),
                "similarity": s.similarity,
                "similarity_scaled": s.similarity_scaled,
                "overlap": s.overlap,
                "heading_overlap": s.heading_overlap,
                "neighbour_overlap": s.neighbour_overlap,
                "passage": s.passage,
                "passage_rank": s.passage_rank,
                "number": s.number,
            })
        })
        .collect();
    let line = json!({
        "scope": scope,
        "id": query.id,
        "question": query.text,
        "answerable": query.is_answerable(),
        "kind": query.kind,
        "language": query.language,
        "candidates": candidates,
    });
    writeln!(out, "{line}")?;
    Ok(())
}

fn judge(
    query: &AskQuery,
    answer: &lumbung_search::Answer,
    relevant: Option<&HashMap<String, u32>>,
    document_of: Option<&HashMap<String, String>>,
    latency: Duration,
) -> Outcome {
    let document = |sentence: &SupportingSentence| -> Option<String> {
        let citation = &sentence.citation;
        match document_of {
            Some(map) => map.get(citation.document_path.as_str()).cloned(),
            None => Some(format!("{}/{}", citation.kb, citation.document_path)),
        }
    };
    let answerable = query.is_answerable();
    let sentences = &answer.sentences;
    let first = sentences.first();
    let in_any = answerable && sentences.iter().any(|s| query.answered_by(&s.text));
    Outcome {
        id: query.id.clone(),
        question: query.text.clone(),
        quoted: sentences
            .iter()
            .map(|s| {
                let citation = &s.citation;
                let place = format!(
                    "{}/{} > {}",
                    citation.kb,
                    citation.document_path,
                    citation.heading_path.join(" > ")
                );
                (place, s.text.clone())
            })
            .collect(),
        language: query
            .language
            .clone()
            .unwrap_or_else(|| Language::detect(&query.text).code().to_string()),
        kind: query.kind.clone().unwrap_or_else(|| {
            if answerable {
                "answerable"
            } else {
                "unanswerable"
            }
            .to_string()
        }),
        answerable,
        answered: answer.answered(),
        decision: DecisionOutcome {
            confidence: answer.confidence,
            quote_answers: in_any,
            answerable,
        },
        in_first: first.is_some_and(|s| query.answered_by(&s.text)),
        in_any,
        right_document_first: first
            .and_then(document)
            .is_some_and(|doc| relevant.is_some_and(|r| r.contains_key(&doc))),
        latency,
    }
}

fn print_scope(report: &ScopeReport, min_confidence: f32) {
    let (p50, p99) = report.latencies();
    println!(
        "\nscope: {} (Ask p50 {:.1} ms, p99 {:.1} ms)",
        report.name,
        ms(p50),
        ms(p99)
    );
    println!(
        "{:<26} {:>5} {:>6} {:>7} {:>7} {:>8} | {:>8} {:>9} {:>9} {:>7} {:>6}",
        "group",
        "n",
        "answ.",
        "first",
        "any",
        "doc 1st",
        "decided",
        "answ.+ans",
        "unans off",
        "wrong",
        "ECE"
    );
    let percent = |value: Option<f64>| match value {
        Some(v) => format!("{:.1}%", v * 100.0),
        None => "-".to_string(),
    };
    let groups = report.groups();
    for (name, t) in &groups {
        let d = DecisionMeasures::at(&t.decisions, min_confidence);
        let (ece, _) = eval::reliability(&t.decisions, RELIABILITY_BINS);
        println!(
            "{:<26} {:>5} {:>6} {:>7} {:>7} {:>8} | {:>8} {:>9} {:>9} {:>7} {:>6.3}",
            name,
            t.questions,
            t.answerable,
            percent(ratio(t.in_first, t.answerable)),
            percent(ratio(t.in_any, t.answerable)),
            percent(ratio(t.right_document_first, t.answerable)),
            percent(Some(d.accuracy())),
            percent(ratio(d.answered_with_answer, d.answerable)),
            percent(ratio(d.unanswerable_handed_off, d.unanswerable)),
            percent(Some(d.wrong_answer_rate())),
            ece,
        );
    }
    let (_, all) = &groups[0];
    let (ece, table) = eval::reliability(&all.decisions, RELIABILITY_BINS);
    println!("reliability (ECE {ece:.3}): confidence bin, questions, mean confidence, observed");
    for bin in table.iter().filter(|b| b.questions > 0) {
        println!(
            "  {:.1}-{:.1} {:>6} {:>8.3} {:>8.3}",
            bin.low, bin.high, bin.questions, bin.mean_confidence, bin.observed
        );
    }
}
