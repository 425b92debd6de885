//! `lumbung calibrate`: refits the answer-or-hand-off decision to labelled questions.
//!
//! With a question file, each question is asked of a running service through
//! `AdminService.ExplainAnswer`, which returns the decision's signals; the fit is made on one
//! part of the file, reported before and after on the part held back, and installed with
//! `SetAnswerDecision`. With `--rows`, the fit is made offline on rows that
//! `lumbung eval --ask --decision-rows` wrote (how `models/answer-decision.json` is made).

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use anyhow::Context;
use lumbung_core::Language;
use lumbung_proto::v1;
use lumbung_search::eval::{self, AskQuery, DecisionMeasures, DecisionOutcome};
use lumbung_search::{AnswerDecision, DecisionFeatures, FEATURE_NAMES};
use serde::Deserialize;

use crate::CalibrateArgs;

/// One labelled question with what the decision is fitted to.
#[derive(Debug, Clone, Deserialize)]
struct Row {
    #[serde(default)]
    language: String,
    answerable: bool,
    /// Whether the sentences the service would quote answer the question: the label.
    quote_answers: bool,
    /// The confidence of the decision in use when the row was made.
    confidence: f32,
    features: Vec<f32>,
    /// How much the row counts in the fit, from the file it came from.
    #[serde(skip, default = "unit_weight")]
    weight: f64,
}

fn unit_weight() -> f64 {
    1.0
}

impl Row {
    fn outcome(&self, confidence: f32) -> DecisionOutcome {
        DecisionOutcome {
            confidence,
            quote_answers: self.quote_answers,
            answerable: self.answerable,
        }
    }

    fn features(&self) -> DecisionFeatures {
        DecisionFeatures {
            values: self.features.clone(),
        }
    }

    /// The decision's confidence: 0 where nothing was found to quote, as `Ask` does.
    fn confidence_of(&self, decision: &AnswerDecision) -> f32 {
        if self.confidence == 0.0 && self.features.iter().all(|v| *v == 0.0) {
            0.0
        } else {
            decision.confidence(&self.features())
        }
    }
}

pub async fn calibrate(args: CalibrateArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        (0.0..1.0).contains(&args.holdout),
        "--holdout must be in [0, 1)"
    );
    match &args.file {
        Some(file) => calibrate_service(file, &args).await,
        None => calibrate_rows(&args),
    }
}

/// `--rows A[:WEIGHT] ...`: fits on every row of the files (weighted), reports on the
/// `--holdout-rows`, and writes the parameters to `--output`.
fn calibrate_rows(args: &CalibrateArgs) -> anyhow::Result<()> {
    let mut fit_rows = Vec::new();
    let mut sources = Vec::new();
    for spec in &args.rows {
        let (path, weight) = split_weight(spec)?;
        let rows = read_rows(&path, weight)?;
        let name = path
            .file_name()
            .unwrap_or(path.as_os_str())
            .to_string_lossy();
        sources.push(format!("{name} ({} rows, weight {weight})", rows.len()));
        fit_rows.extend(rows);
    }
    let mut held_out = Vec::new();
    for path in &args.holdout_rows {
        held_out.extend(read_rows(path, 1.0)?);
    }
    let decision = fit(&fit_rows, args.l2, sources.join(", "))?;
    let min_confidence = args.min_confidence.unwrap_or(0.5);
    println!("fitted on {} rows: {}", fit_rows.len(), decision.fitted_on);
    report("fitted rows", &fit_rows, &decision, min_confidence);
    if !held_out.is_empty() {
        report("held-out rows", &held_out, &decision, min_confidence);
        operating_points(&held_out, &decision);
    }
    let output = args.output.as_ref().context("--rows needs --output")?;
    if args.dry_run {
        println!("dry run: {} not written", output.display());
    } else {
        std::fs::write(output, decision.to_json() + "\n")?;
        println!("wrote {}", output.display());
    }
    Ok(())
}

/// `PATH:WEIGHT`, or `PATH` with weight 1.
fn split_weight(spec: &Path) -> anyhow::Result<(PathBuf, f64)> {
    let text = spec.to_string_lossy();
    if let Some((path, weight)) = text.rsplit_once(':')
        && let Ok(weight) = weight.parse::<f64>()
    {
        anyhow::ensure!(weight > 0.0, "{text}: the weight must be positive");
        return Ok((PathBuf::from(path), weight));
    }
    Ok((spec.to_path_buf(), 1.0))
}

fn read_rows(path: &Path, weight: f64) -> anyhow::Result<Vec<Row>> {
    let mut rows: Vec<Row> = eval::read_jsonl(path)?;
    for (number, row) in rows.iter_mut().enumerate() {
        anyhow::ensure!(
            row.features.len() == FEATURE_NAMES.len(),
            "{}: row {}: {} features, this build computes {}",
            path.display(),
            number + 1,
            row.features.len(),
            FEATURE_NAMES.len()
        );
        row.weight = weight;
    }
    Ok(rows)
}

/// The decision fitted to the rows that found something to quote (the others are handed off
/// whatever the parameters).
fn fit(rows: &[Row], l2: f64, fitted_on: String) -> anyhow::Result<AnswerDecision> {
    let data: Vec<(DecisionFeatures, bool, f64)> = rows
        .iter()
        .filter(|row| row.features.iter().any(|v| *v != 0.0))
        .map(|row| (row.features(), row.quote_answers, row.weight))
        .collect();
    Ok(AnswerDecision::fit(&data, l2, fitted_on)?)
}

/// The service's decision (the rows' recorded confidence) against `decision`, on `rows`.
fn report(title: &str, rows: &[Row], decision: &AnswerDecision, min_confidence: f32) {
    println!(
        "\n{title}: {} questions, answering from confidence {min_confidence}",
        rows.len()
    );
    println!(
        "{:<14} {:>5} {:>9} {:>10} {:>10} {:>7} {:>6}",
        "", "n", "decided", "answ.+ans", "unans off", "wrong", "ECE"
    );
    let mut groups: BTreeMap<String, Vec<&Row>> = BTreeMap::new();
    for row in rows {
        groups.entry("all".to_string()).or_default().push(row);
        if !row.language.is_empty() {
            groups
                .entry(format!("language {}", row.language))
                .or_default()
                .push(row);
        }
    }
    for (name, group) in &groups {
        for (when, outcomes) in [
            (
                "before",
                group
                    .iter()
                    .map(|r| r.outcome(r.confidence))
                    .collect::<Vec<_>>(),
            ),
            (
                "after",
                group
                    .iter()
                    .map(|r| r.outcome(r.confidence_of(decision)))
                    .collect(),
            ),
        ] {
            let m = DecisionMeasures::at(&outcomes, min_confidence);
            let (ece, _) = eval::reliability(&outcomes, 10);
            println!(
                "{:<14} {:>5} {:>8.1}% {:>9.1}% {:>9.1}% {:>6.1}% {:>6.3}",
                format!("{name} {when}"),
                m.questions,
                100.0 * m.accuracy(),
                100.0 * m.answered_with_answer_rate(),
                100.0 * m.unanswerable_handed_off_rate(),
                100.0 * m.wrong_answer_rate(),
                ece
            );
        }
    }
}

/// What each operating point would give on `rows`: the trade-off `ask.min_confidence` sets.
fn operating_points(rows: &[Row], decision: &AnswerDecision) {
    let outcomes: Vec<DecisionOutcome> = rows
        .iter()
        .map(|r| r.outcome(r.confidence_of(decision)))
        .collect();
    println!(
        "\n{:<15} {:>9} {:>10} {:>10} {:>7}",
        "min_confidence", "decided", "answ.+ans", "unans off", "wrong"
    );
    for step in 1..=19 {
        let threshold = step as f32 * 0.05;
        let m = DecisionMeasures::at(&outcomes, threshold);
        println!(
            "{:<15.2} {:>8.1}% {:>9.1}% {:>9.1}% {:>6.1}%",
            threshold,
            100.0 * m.accuracy(),
            100.0 * m.answered_with_answer_rate(),
            100.0 * m.unanswerable_handed_off_rate(),
            100.0 * m.wrong_answer_rate()
        );
    }
}

/// Asks each question of the service, fits on the part not held back, reports on the part
/// held back, and installs the new parameters unless `--dry-run`.
async fn calibrate_service(file: &Path, args: &CalibrateArgs) -> anyhow::Result<()> {
    let questions: Vec<AskQuery> = eval::read_jsonl(file)?;
    anyhow::ensure!(
        !questions.is_empty(),
        "{} holds no question",
        file.display()
    );

    let mut client = crate::client::admin_client(&args.client).await?;
    let mut fitted = Vec::new();
    let mut held_back = Vec::new();
    let mut min_confidence = args.min_confidence;
    for query in &questions {
        let explained = client
            .explain_answer(v1::ExplainAnswerRequest {
                question: query.text.clone(),
                knowledge_bases: query.knowledge_base.iter().cloned().collect(),
            })
            .await
            .map_err(crate::client::status_error)
            .with_context(|| format!("asking {:?}", query.text))?
            .into_inner();
        anyhow::ensure!(
            explained.feature_names == FEATURE_NAMES,
            "the service computes other signals than this lumbung ({:?}); use the same version",
            explained.feature_names
        );
        min_confidence.get_or_insert(explained.min_confidence);
        let answer = explained.answer.unwrap_or_default();
        let features = if explained.features.is_empty() {
            vec![0.0; FEATURE_NAMES.len()]
        } else {
            explained.features
        };
        let row = Row {
            language: query
                .language
                .clone()
                .unwrap_or_else(|| Language::detect(&query.text).code().to_string()),
            answerable: query.is_answerable(),
            quote_answers: quote_answers(query, &explained.candidate_sentences),
            confidence: answer.confidence,
            features,
            weight: 1.0,
        };
        if is_held_back(&query.text, args.holdout) {
            held_back.push(row);
        } else {
            fitted.push(row);
        }
    }
    let min_confidence = min_confidence.unwrap_or(0.5);
    let fitted_on = format!(
        "{} ({} of {} questions; the other {} held back)",
        file.display(),
        fitted.len(),
        questions.len(),
        held_back.len()
    );
    let decision = fit(&fitted, args.l2, fitted_on).with_context(|| {
        "the questions not held back must include some the service answers rightly and some it \
         must hand off"
    })?;
    report("fitted questions", &fitted, &decision, min_confidence);
    if held_back.is_empty() {
        println!("\nno question held back: --holdout 0 reports on the fitted questions only");
    } else {
        report("held-back questions", &held_back, &decision, min_confidence);
        operating_points(&held_back, &decision);
    }
    if args.dry_run {
        println!("\ndry run: the service keeps its decision");
        return Ok(());
    }
    let installed = client
        .set_answer_decision(v1::SetAnswerDecisionRequest {
            parameters: decision.to_json(),
        })
        .await
        .map_err(crate::client::status_error)?
        .into_inner();
    println!(
        "\ninstalled on the service: fitted on {}",
        installed.fitted_on
    );
    Ok(())
}

/// Whether the service's sentences answer `query`: one holds an answer string, or else the
/// first cites the expected document; an answerable question without either is taken as
/// answered by whatever is quoted.
fn quote_answers(query: &AskQuery, sentences: &[v1::SupportingSentence]) -> bool {
    if !query.is_answerable() || sentences.is_empty() {
        return false;
    }
    if !query.answers.is_empty() {
        return sentences.iter().any(|s| query.answered_by(&s.text));
    }
    match &query.document {
        Some(document) => sentences[0].citation.as_ref().is_some_and(|c| {
            c.document_path == *document
                || format!("{}/{}", c.knowledge_base, c.document_path) == *document
        }),
        None => true,
    }
}

/// The same question is always on the same side, whatever the order of the file.
fn is_held_back(question: &str, share: f64) -> bool {
    let mut hasher = DefaultHasher::new();
    question.trim().to_lowercase().hash(&mut hasher);
    (hasher.finish() % 10_000) as f64 / 10_000.0 < share
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_and_held_back_questions_are_stable() {
        assert_eq!(
            split_weight(Path::new("rows/idk.jsonl:2.5")).unwrap(),
            (PathBuf::from("rows/idk.jsonl"), 2.5)
        );
        assert_eq!(
            split_weight(Path::new("rows/idk.jsonl")).unwrap(),
            (PathBuf::from("rows/idk.jsonl"), 1.0)
        );
        assert!(split_weight(Path::new("a.jsonl:0")).is_err());
        let held: Vec<bool> = (0..1000)
            .map(|i| is_held_back(&format!("question {i}"), 0.3))
            .collect();
        let share = held.iter().filter(|h| **h).count();
        assert!((200..400).contains(&share), "{share} of 1000 held back");
        assert_eq!(
            is_held_back("Who resets a PIN?", 0.3),
            is_held_back(" who resets a pin? ", 0.3)
        );
    }
}
