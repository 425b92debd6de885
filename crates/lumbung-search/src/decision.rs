//! Answer or hand off: the probability that the sentences `Ask` would quote answer the
//! question, from several signals at once, by a logistic regression fitted on labelled
//! questions (`lumbung calibrate`, `scripts/fit_decision.sh`).
//!
//! One similarity threshold cannot decide this: unrelated text scores 0.7 to 0.85 with the
//! embedding model, and a near-miss question ("when was the UN dissolved?" against a paragraph
//! on its founding) is as close to its paragraph as an answerable one. What separates them is
//! what the best sentence lacks: a content word, a number, an identifier of the question.

use std::collections::HashSet;
use std::path::Path;

use lumbung_core::Language;
use lumbung_index::analyzer;
use serde::{Deserialize, Serialize};

use crate::answer::{SentenceSignals, weight_share};
use crate::{Error, Passage, Result};

/// The parameters shipped with lumbung, fitted on IDK-MRC train and eval/samples.
const BUILTIN: &str = include_str!("../../../models/answer-decision.json");

/// The version of the parameter file's layout this build reads.
pub const DECISION_FORMAT: u32 = 1;

/// The names of the signals, in the order of [`DecisionFeatures::values`].
pub const FEATURE_NAMES: [&str; 28] = [
    "best_score",
    "score_margin",
    "best_similarity",
    "max_similarity",
    "similarity_margin",
    "sentence_overlap",
    "heading_overlap",
    "section_overlap",
    "passages_overlap",
    "missing_section_idf",
    "missing_sentence_idf",
    "identifiers_in_section",
    "question_has_identifiers",
    "passage_reciprocal_rank",
    "bm25_reciprocal_rank",
    "dense_reciprocal_rank",
    "retrievers_agree",
    "number_wanted_and_found",
    "cross_lingual",
    "question_terms",
    "negation_mismatch",
    "answer_type_missing",
    "missing_terms_same_language",
    "section_overlap_same_language",
    "missing_identifiers",
    "centred_similarity",
    "passage_dense_score",
    "question_han",
];

/// The signals the decision is taken on, for one question and the sentence it would quote
/// first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionFeatures {
    pub values: Vec<f32>,
}

/// What the features are computed from: the question's analysed terms and IDF, every candidate
/// sentence with its score, and the passages they came from.
pub(crate) struct DecisionInput<'a> {
    pub question: &'a str,
    pub question_language: Language,
    pub terms: &'a [(String, f32)],
    /// Candidates with their ranking score, best first.
    pub ranked: &'a [(f32, SentenceSignals)],
    pub passages: &'a [Passage],
}

impl DecisionFeatures {
    pub(crate) fn compute(input: &DecisionInput<'_>) -> DecisionFeatures {
        let Some((best_score, best)) = input.ranked.first() else {
            return DecisionFeatures {
                values: vec![0.0; FEATURE_NAMES.len()],
            };
        };
        let runner_up = input
            .ranked
            .iter()
            .find(|(_, s)| s.text != best.text)
            .map_or(0.0, |(score, _)| *score);
        let mut similarities: Vec<f32> = input.ranked.iter().map(|(_, s)| s.similarity).collect();
        similarities.sort_by(|a, b| b.total_cmp(a));
        let max_similarity = similarities[0];
        let similarity_margin = max_similarity - similarities.get(1).copied().unwrap_or(0.0);

        let mut analyzer = analyzer::analyzer();
        let mut terms_of = |text: &str| analyzer::term_set(&mut analyzer, text);
        let passage = &input.passages[best.passage_rank - 1];
        let section = terms_of(&format!(
            "{}\n{}",
            passage.chunk.context(),
            passage.chunk.text
        ));
        let sentence = terms_of(&best.text);
        let everywhere: HashSet<String> = input
            .passages
            .iter()
            .flat_map(|p| terms_of(&p.chunk.text))
            .chain(section.iter().cloned())
            .collect();
        let heaviest = input.terms.iter().map(|(_, w)| *w).fold(0.0, f32::max);
        let share = |found: &HashSet<String>| weight_share(input.terms, found);
        // The heaviest term the text lacks, against the question's heaviest: a near miss
        // changes one telling word.
        let missing = |found: &HashSet<String>| {
            if heaviest <= 0.0 {
                return 0.0;
            }
            input
                .terms
                .iter()
                .filter(|(t, _)| !found.contains(t))
                .map(|(_, w)| *w)
                .fold(0.0, f32::max)
                / heaviest
        };
        let identifiers: Vec<&String> = input
            .terms
            .iter()
            .map(|(t, _)| t)
            .filter(|t| is_identifier(t))
            .collect();
        let reciprocal = |rank: Option<u32>| rank.map_or(0.0, |r| 1.0 / r as f32);
        let bm25_rank = passage.bm25.map(|s| s.rank);
        let dense_rank = passage.dense.map(|s| s.rank);
        let flag = |b: bool| f32::from(u8::from(b));
        // Words can only be compared within one language; across languages only the
        // embeddings and the identifiers (codes, numbers) speak.
        let same_language = flag(passage.chunk.language == input.question_language);
        let missing_terms = input
            .terms
            .iter()
            .filter(|(t, _)| !section.contains(t))
            .count() as f32;
        let missing_identifiers = identifiers
            .iter()
            .filter(|t| !section.contains(**t))
            .count() as f32;
        let identifiers_in_section = if identifiers.is_empty() {
            1.0
        } else {
            1.0 - missing_identifiers / identifiers.len() as f32
        };
        let values = vec![
            *best_score,
            best_score - runner_up,
            best.similarity,
            max_similarity,
            similarity_margin,
            best.overlap,
            best.heading_overlap,
            share(&section),
            share(&everywhere),
            missing(&section),
            missing(&sentence),
            identifiers_in_section,
            flag(!identifiers.is_empty()),
            1.0 / best.passage_rank as f32,
            reciprocal(bm25_rank),
            reciprocal(dense_rank),
            flag(bm25_rank.is_some() && bm25_rank == dense_rank),
            flag(best.number),
            1.0 - same_language,
            (input.terms.len() as f32).ln_1p(),
            flag(is_negated(input.question) && !is_negated(&best.text)),
            flag(answer_type_missing(input.question, &best.text)),
            missing_terms * same_language,
            share(&section) * same_language,
            missing_identifiers,
            best.similarity_centred,
            passage.dense.map_or(0.0, |s| s.score),
            flag(input.question_language == Language::Zh),
        ];
        debug_assert_eq!(values.len(), FEATURE_NAMES.len());
        DecisionFeatures { values }
    }
}

/// Words that turn a statement around; a near-miss question often adds one ("which branch
/// does not study reptiles?").
const NEGATIONS: &[&str] = &[
    "not", "never", "no", "without", "tidak", "bukan", "tanpa", "belum", "tak",
];
const HAN_NEGATIONS: &[char] = &['不', '没', '無', '无', '非', '未'];

fn is_negated(text: &str) -> bool {
    text.chars().any(|c| HAN_NEGATIONS.contains(&c))
        || text
            .split(|c: char| !c.is_alphanumeric())
            .any(|word| NEGATIONS.contains(&word.to_lowercase().as_str()) || word.ends_with("n't"))
}

/// The question asks for something the sentence cannot hold: a number or date and the
/// sentence has no digits the question lacks, or a person or place ("who", "where", "siapa",
/// "di mana", "谁", "哪里") and the sentence names nothing the question does not.
fn answer_type_missing(question: &str, sentence: &str) -> bool {
    let lower = question.to_lowercase();
    let question_words: HashSet<&str> = lower.split(|c: char| !c.is_alphanumeric()).collect();
    let new_words = || {
        sentence
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .filter(|w| !question_words.contains(w.to_lowercase().as_str()))
    };
    if crate::question::asks_for_number(question) {
        return !new_words().any(|w| w.chars().any(|c| c.is_ascii_digit()));
    }
    let asks_for_name = ["who", "whom", "where", "siapa", "mana", "manakah", "dimana"]
        .iter()
        .any(|w| question_words.contains(w))
        || ["谁", "哪里", "哪儿", "何处"]
            .iter()
            .any(|w| question.contains(w));
    if asks_for_name {
        // Han text has no capitals: any Han the question lacks may name the answer.
        return !new_words().any(|w| {
            w.chars().next().is_some_and(char::is_uppercase)
                || w.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
        });
    }
    false
}

/// A term that names one thing exactly: it holds a digit (a line, a month, an error code).
fn is_identifier(term: &str) -> bool {
    term.chars().any(|c| c.is_ascii_digit())
}

/// The fitted decision: a logistic regression over standardised [`FEATURE_NAMES`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerDecision {
    /// The layout of this file, [`DECISION_FORMAT`].
    pub format: u32,
    /// What it was fitted on, for people reading the file.
    pub fitted_on: String,
    pub features: Vec<String>,
    pub mean: Vec<f32>,
    pub scale: Vec<f32>,
    pub weights: Vec<f32>,
    pub bias: f32,
}

impl AnswerDecision {
    /// The parameters shipped in `models/answer-decision.json`.
    pub fn builtin() -> AnswerDecision {
        Self::parse(BUILTIN).expect("the shipped decision parameters are valid")
    }

    pub fn load(path: &Path) -> Result<AnswerDecision> {
        let text = std::fs::read_to_string(path)
            .map_err(|err| Error::Decision(format!("{}: {err}", path.display())))?;
        Self::parse(&text).map_err(|err| Error::Decision(format!("{}: {err}", path.display())))
    }

    /// Reads and checks a parameter file: its format, and one value per feature this build
    /// computes, in the same order.
    pub fn parse(text: &str) -> std::result::Result<AnswerDecision, String> {
        let decision: AnswerDecision = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if decision.format != DECISION_FORMAT {
            return Err(format!(
                "format {} is not the {DECISION_FORMAT} this build reads",
                decision.format
            ));
        }
        if decision.features != FEATURE_NAMES {
            return Err(format!(
                "features {:?} are not the {:?} this build computes",
                decision.features, FEATURE_NAMES
            ));
        }
        let n = FEATURE_NAMES.len();
        if decision.mean.len() != n || decision.scale.len() != n || decision.weights.len() != n {
            return Err(format!("mean, scale and weights must hold {n} values each"));
        }
        let finite = decision
            .mean
            .iter()
            .chain(&decision.scale)
            .chain(&decision.weights)
            .chain(std::iter::once(&decision.bias))
            .all(|v| v.is_finite());
        if !finite || decision.scale.iter().any(|s| *s <= 0.0) {
            return Err("values must be finite and scales positive".to_string());
        }
        Ok(decision)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("plain numbers and strings serialise")
    }

    /// The probability that the quoted sentences answer the question.
    pub fn confidence(&self, features: &DecisionFeatures) -> f32 {
        let z = self.bias
            + features
                .values
                .iter()
                .zip(self.mean.iter().zip(&self.scale).zip(&self.weights))
                .map(|(x, ((m, s), w))| w * (x - m) / s)
                .sum::<f32>();
        1.0 / (1.0 + (-z).exp())
    }

    /// Fits the decision to `rows`, each labelled true where the quoted sentences answered and
    /// weighted (a small set of the company's own questions can count more than a large
    /// public one): L2-regularised logistic regression (strength `l2` on the standardised
    /// weights, not on the bias) by Newton's method, which converges in a few steps here.
    pub fn fit(
        rows: &[(DecisionFeatures, bool, f64)],
        l2: f64,
        fitted_on: impl Into<String>,
    ) -> Result<AnswerDecision> {
        let n = FEATURE_NAMES.len();
        let positives = rows.iter().filter(|(_, y, _)| *y).count();
        if positives == 0 || positives == rows.len() {
            return Err(Error::Decision(
                "fitting needs questions of both kinds: answered and not".to_string(),
            ));
        }
        let count: f64 = rows.iter().map(|(_, _, weight)| weight).sum();
        let mut mean = vec![0f64; n];
        for (x, _, weight) in rows {
            for (m, v) in mean.iter_mut().zip(&x.values) {
                *m += weight * f64::from(*v) / count;
            }
        }
        let mut scale = vec![0f64; n];
        for (x, _, weight) in rows {
            for ((s, v), m) in scale.iter_mut().zip(&x.values).zip(&mean) {
                *s += weight * (f64::from(*v) - m).powi(2) / count;
            }
        }
        // A constant feature keeps weight 0; a unit scale keeps it harmless.
        let scale: Vec<f64> = scale
            .iter()
            .map(|v| if *v > 1e-12 { v.sqrt() } else { 1.0 })
            .collect();
        let data: Vec<(Vec<f64>, f64, f64)> = rows
            .iter()
            .map(|(x, y, weight)| {
                let mut z: Vec<f64> = x
                    .values
                    .iter()
                    .zip(&mean)
                    .zip(&scale)
                    .map(|((v, m), s)| (f64::from(*v) - m) / s)
                    .collect();
                z.push(1.0);
                (z, f64::from(u8::from(*y)), *weight)
            })
            .collect();
        let dim = n + 1;
        let mut beta = vec![0f64; dim];
        for _ in 0..50 {
            let mut gradient = vec![0f64; dim];
            let mut hessian = vec![vec![0f64; dim]; dim];
            for (z, y, weight) in &data {
                let p = sigmoid(dot(z, &beta));
                let w = weight * (p * (1.0 - p)).max(1e-9);
                for ((g, row), zi) in gradient.iter_mut().zip(&mut hessian).zip(z) {
                    *g += weight * (p - y) * zi;
                    for (h, zj) in row.iter_mut().zip(z) {
                        *h += w * zi * zj;
                    }
                }
            }
            for i in 0..n {
                gradient[i] += l2 * beta[i];
                hessian[i][i] += l2;
            }
            let step = solve(hessian, gradient)
                .ok_or_else(|| Error::Decision("the fit did not converge".to_string()))?;
            let size = step.iter().map(|s| s.abs()).fold(0.0, f64::max);
            for (b, s) in beta.iter_mut().zip(&step) {
                *b -= s;
            }
            if size < 1e-8 {
                break;
            }
        }
        Ok(AnswerDecision {
            format: DECISION_FORMAT,
            fitted_on: fitted_on.into(),
            features: FEATURE_NAMES.iter().map(|s| s.to_string()).collect(),
            mean: mean.iter().map(|v| *v as f32).collect(),
            scale: scale.iter().map(|v| *v as f32).collect(),
            weights: beta[..n].iter().map(|v| *v as f32).collect(),
            bias: beta[n] as f32,
        })
    }
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Solves `a x = b` for a symmetric positive-definite `a` by Cholesky decomposition.
fn solve(mut a: Vec<Vec<f64>>, b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    for j in 0..n {
        let d = a[j][j] - a[j][..j].iter().map(|x| x * x).sum::<f64>();
        if d <= 0.0 || !d.is_finite() {
            return None;
        }
        a[j][j] = d.sqrt();
        for i in j + 1..n {
            let s = a[i][j] - dot(&a[i][..j], &a[j][..j]);
            a[i][j] = s / a[j][j];
        }
    }
    let mut y = vec![0f64; n];
    for i in 0..n {
        let s: f64 = (0..i).map(|k| a[i][k] * y[k]).sum();
        y[i] = (b[i] - s) / a[i][i];
    }
    let mut x = vec![0f64; n];
    for i in (0..n).rev() {
        let s: f64 = (i + 1..n).map(|k| a[k][i] * x[k]).sum();
        x[i] = (y[i] - s) / a[i][i];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn features(values: &[(usize, f32)]) -> DecisionFeatures {
        let mut all = vec![0.0; FEATURE_NAMES.len()];
        for (index, value) in values {
            all[*index] = *value;
        }
        DecisionFeatures { values: all }
    }

    #[test]
    fn the_fit_learns_a_signal_and_its_probabilities_match_the_rates() {
        // Feature 5 (sentence_overlap) answers 80% of the time when high, 20% when low; the
        // others carry nothing.
        let mut rows = Vec::new();
        for i in 0..1000 {
            let high = i % 2 == 0;
            let answered = if high { i % 10 != 0 } else { i % 10 == 1 };
            let noise = (i % 7) as f32 / 7.0;
            rows.push((
                features(&[(5, if high { 0.9 } else { 0.1 }), (2, noise)]),
                answered,
                1.0,
            ));
        }
        let decision = AnswerDecision::fit(&rows, 1.0, "test").unwrap();
        let high = decision.confidence(&features(&[(5, 0.9), (2, 0.5)]));
        let low = decision.confidence(&features(&[(5, 0.1), (2, 0.5)]));
        assert!((high - 0.8).abs() < 0.03, "{high}");
        assert!((low - 0.2).abs() < 0.03, "{low}");
        assert!(decision.weights[5] > 0.0);
        assert!(decision.weights[2].abs() < 0.1, "noise gets little weight");

        let again = AnswerDecision::parse(&decision.to_json()).unwrap();
        assert_eq!(again, decision);
        assert!(AnswerDecision::fit(&rows[..1], 1.0, "one kind").is_err());
    }

    #[test]
    fn a_near_miss_shows_in_its_missing_identifier_and_terms() {
        use lumbung_core::{Chunk, ChunkId, Citation, ContentHash, DocumentPath, KbName};

        let kb = KbName::new("it").unwrap();
        let path = DocumentPath::new("tickets.md").unwrap();
        let text = "P3 tickets are answered within 1 working day.";
        let chunk = Chunk {
            id: ChunkId::derive(
                &lumbung_core::KbGeneration::first(kb.clone()),
                &path,
                &ContentHash::of_bytes(text.as_bytes()),
                0,
            ),
            ordinal: 0,
            citation: Citation {
                kb,
                document_path: path,
                title: "Ticket priorities".to_string(),
                heading_path: vec!["Response times".to_string()],
                page: None,
                char_range: 0..text.chars().count() as u32,
            },
            language: Language::En,
            sentences: Vec::new(),
            text: text.to_string(),
        };
        let signal = SentenceSignals {
            text: text.to_string(),
            citation: chunk.citation.clone(),
            chunk_id: chunk.id,
            similarity: 0.85,
            similarity_scaled: 1.0,
            similarity_centred: 0.6,
            overlap: 0.5,
            heading_overlap: 0.7,
            neighbour_overlap: 0.0,
            passage: 1.0,
            passage_rank: 1,
            number: true,
        };
        let passage = Passage {
            chunk,
            fused_score: 1.0,
            bm25: None,
            bm25_coverage: None,
            dense: None,
            best_sentence: None,
            rerank: None,
        };
        let features = |question: &str, terms: &[(&str, f32)]| {
            let terms: Vec<(String, f32)> =
                terms.iter().map(|(t, w)| (t.to_string(), *w)).collect();
            let values = DecisionFeatures::compute(&DecisionInput {
                question,
                question_language: Language::En,
                terms: &terms,
                ranked: &[(3.0, signal.clone())],
                passages: std::slice::from_ref(&passage),
            })
            .values;
            let named: std::collections::HashMap<&str, f32> =
                FEATURE_NAMES.iter().copied().zip(values).collect();
            named
        };

        let near_miss = features(
            "How fast are P4 tickets answered?",
            &[("p4", 3.0), ("ticket", 1.0), ("answer", 1.0)],
        );
        assert_eq!(near_miss["missing_identifiers"], 1.0);
        assert_eq!(near_miss["identifiers_in_section"], 0.0);
        assert_eq!(near_miss["question_has_identifiers"], 1.0);
        assert_eq!(
            near_miss["missing_section_idf"], 1.0,
            "p4 is the heaviest term"
        );
        assert_eq!(near_miss["section_overlap"], 0.4);
        assert_eq!(near_miss["missing_terms_same_language"], 1.0);
        assert_eq!(near_miss["cross_lingual"], 0.0);

        let answerable = features(
            "How fast are P3 tickets answered?",
            &[("p3", 3.0), ("ticket", 1.0), ("answer", 1.0)],
        );
        assert_eq!(answerable["missing_identifiers"], 0.0);
        assert_eq!(answerable["identifiers_in_section"], 1.0);
        assert_eq!(answerable["section_overlap"], 1.0);
        assert_eq!(answerable["negation_mismatch"], 0.0);
        let negated = features(
            "Which tickets are not answered within a day?",
            &[("ticket", 1.0), ("answer", 1.0), ("dai", 1.0)],
        );
        assert_eq!(negated["negation_mismatch"], 1.0);
        assert_eq!(
            DecisionFeatures::compute(&DecisionInput {
                question: "anything",
                question_language: Language::En,
                terms: &[],
                ranked: &[],
                passages: &[],
            })
            .values,
            vec![0.0; FEATURE_NAMES.len()],
            "nothing to quote: no signal"
        );
    }

    #[test]
    fn parameter_files_for_other_features_or_formats_are_refused() {
        let decision = AnswerDecision::builtin();
        assert_eq!(decision.features, FEATURE_NAMES);
        let mut other = decision.clone();
        other.format = DECISION_FORMAT + 1;
        assert!(AnswerDecision::parse(&other.to_json()).is_err());
        let mut other = decision.clone();
        other.features.pop();
        assert!(AnswerDecision::parse(&other.to_json()).is_err());
        let mut other = decision;
        other.scale[0] = 0.0;
        assert!(AnswerDecision::parse(&other.to_json()).is_err());
    }

    #[test]
    fn negations_and_missing_answer_types_are_seen_in_three_languages() {
        assert!(is_negated("Which branch does not study reptiles?"));
        assert!(is_negated("Cabang ilmu apa yang tidak mempelajari reptil?"));
        assert!(is_negated("哪个部门不负责安全培训？"));
        assert!(!is_negated("Which branch studies reptiles?"));
        assert!(answer_type_missing(
            "How long must my password be?",
            "Passwords must be long."
        ));
        assert!(!answer_type_missing(
            "How long must my password be?",
            "At least 14 characters."
        ));
        assert!(answer_type_missing(
            "Siapa pendiri Cape Town?",
            "kota ini terletak di pantai."
        ));
        assert!(!answer_type_missing(
            "Siapa pendiri Cape Town?",
            "Cape Town didirikan oleh Jan van Riebeeck."
        ));
        assert!(!answer_type_missing("谁负责重置密码？", "班组长负责重置。"));
        assert!(!answer_type_missing(
            "What does the VPN do?",
            "it encrypts traffic"
        ));
    }
}
