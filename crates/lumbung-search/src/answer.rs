use std::collections::HashSet;

use lumbung_core::{AskConfig, ChunkId, Citation, KbName};
use lumbung_index::analyzer;

use crate::decision::DecisionFeatures;
use crate::dense::QueryScorers;
use crate::{Passage, question};

/// Most supporting sentences one answer may carry.
pub const MAX_SENTENCES: usize = 10;

#[derive(Debug, Clone)]
pub struct SupportingSentence {
    pub text: String,
    pub citation: Citation,
    pub chunk_id: ChunkId,
    /// Cosine similarity between the question and the sentence: for ordering, not a confidence.
    pub similarity: f32,
}

/// What `Ask` found: the sentences it would quote, how likely they answer the question, and
/// whether that is enough to answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The supporting sentences, best first: quoted when answered, kept for explanation and
    /// evaluation when handed off. Empty when no sentence matched.
    pub sentences: Vec<SupportingSentence>,
    /// The calibrated probability that `sentences` answer the question.
    pub confidence: f32,
    /// What the confidence was computed from.
    pub features: DecisionFeatures,
    /// `None` when answered.
    pub hand_off: Option<HandOff>,
    /// The knowledge base of the best passage, when a passage matched.
    pub closest_kb: Option<KbName>,
}

impl Answer {
    pub fn answered(&self) -> bool {
        self.hand_off.is_none()
    }
}

/// Why a question is handed off to a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandOff {
    /// Nothing in the knowledge bases matches the question.
    NoPassage,
    /// Passages match, but none of their sentences supports an answer confidently enough.
    NotSupported,
}

impl HandOff {
    /// The reason in plain words, for people.
    pub fn explanation(self) -> &'static str {
        match self {
            HandOff::NoPassage => "no passage in the knowledge bases matches the question",
            HandOff::NotSupported => {
                "passages match the question, but none of their sentences supports an answer"
            }
        }
    }
}

/// The question as the sentences are compared with it.
pub(crate) struct Question<'a> {
    pub text: &'a str,
    /// Its embeddings, the ones the passages were retrieved with (one per model).
    pub scorers: &'a QueryScorers,
    /// Its distinct analysed terms with their inverse document frequencies.
    pub terms: &'a [(String, f32)],
}

/// One sentence of a retrieved passage with the signals `Ask` ranks it by. Shares are of the
/// question's term weight (the sum of its terms' IDF), from 0 to 1.
#[derive(Debug, Clone)]
pub struct SentenceSignals {
    pub text: String,
    pub citation: Citation,
    pub chunk_id: ChunkId,
    /// Cosine similarity of the question's and the sentence's embeddings.
    pub similarity: f32,
    /// The same with the languages' means taken out (see `dense.rs`), scaled to 0..1 among the
    /// candidates of the question: what ranks sentences of different languages fairly.
    pub similarity_scaled: f32,
    /// The same before scaling: comparable between questions.
    pub similarity_centred: f32,
    /// Share found in the sentence.
    pub overlap: f32,
    /// Share found in the sentence and the headings above it.
    pub heading_overlap: f32,
    /// Share found in the sentence before or after it (the better of the two): a step or a row
    /// next to the one that names the subject.
    pub neighbour_overlap: f32,
    /// Its passage's fused score over the best passage's.
    pub passage: f32,
    /// 1-based rank of its passage.
    pub passage_rank: usize,
    /// The question asks how many, how long or when, and the sentence holds a digit.
    pub number: bool,
}

impl SentenceSignals {
    /// The weighted sum `Ask` ranks sentences by.
    pub fn score(&self, config: &AskConfig) -> f32 {
        config.similarity_weight * self.similarity_scaled
            + config.overlap_weight * self.overlap
            + config.heading_overlap_weight * self.heading_overlap
            + config.neighbour_overlap_weight * self.neighbour_overlap
            + config.passage_weight * self.passage
            + config.number_weight * f32::from(u8::from(self.number))
    }
}

/// The share of the question's term weight (the sum of its terms' IDF) that `found` holds,
/// from 0 to 1.
pub(crate) fn weight_share(terms: &[(String, f32)], found: &HashSet<String>) -> f32 {
    let total: f32 = terms.iter().map(|(_, w)| w).sum();
    if total <= 0.0 {
        return 0.0;
    }
    let weight: f32 = terms
        .iter()
        .filter(|(term, _)| found.contains(term))
        .map(|(_, w)| w)
        .sum();
    weight / total
}

/// The signals of every embedded sentence of `passages`, in passage and sentence order. Uses
/// the sentence embeddings stored at ingest: nothing is embedded here.
pub(crate) fn sentence_signals(
    question: &Question<'_>,
    passages: &[Passage],
) -> Vec<SentenceSignals> {
    let mut analyzer = analyzer::analyzer();
    let mut terms_of = |text: &str| analyzer::term_set(&mut analyzer, text);
    let share = |found: &HashSet<String>| weight_share(question.terms, found);
    let wants_number = question::asks_for_number(question.text);
    let best_passage = passages.iter().map(|p| p.fused_score).fold(0f32, f32::max);

    let mut signals = Vec::new();
    let mut centred = Vec::new();
    for (rank, passage) in passages.iter().enumerate() {
        let chunk = &passage.chunk;
        let Some(scorer) = question.scorers.for_kb(&chunk.citation.kb) else {
            continue;
        };
        let context_terms = terms_of(&chunk.context());
        // A line that only repeats the title or a heading (a PDF's title line) states nothing.
        let citation = &chunk.citation;
        let names: HashSet<String> = std::iter::once(&citation.title)
            .chain(&citation.heading_path)
            .map(|name| name.trim().to_lowercase())
            .collect();
        let sentence_terms: Vec<HashSet<String>> = chunk
            .sentences
            .iter()
            .map(|sentence| terms_of(chunk.sentence_text(sentence)))
            .collect();
        let own_share: Vec<f32> = sentence_terms.iter().map(&share).collect();
        for (index, sentence) in chunk.sentences.iter().enumerate() {
            let Some(embedding) = &sentence.embedding else {
                continue;
            };
            let text = chunk.sentence_text(sentence);
            if names.contains(&text.trim().to_lowercase()) {
                continue;
            }
            let with_context: HashSet<String> = sentence_terms[index]
                .union(&context_terms)
                .cloned()
                .collect();
            let before = index.checked_sub(1).map_or(0.0, |i| own_share[i]);
            let after = own_share.get(index + 1).copied().unwrap_or(0.0);
            centred.push(scorer.sentence(embedding, chunk.language));
            signals.push(SentenceSignals {
                text: text.to_string(),
                citation: chunk.citation.clone(),
                chunk_id: chunk.id,
                similarity: embedding.dot(&scorer.raw_query),
                similarity_scaled: 0.0,
                similarity_centred: 0.0,
                overlap: own_share[index],
                heading_overlap: share(&with_context),
                neighbour_overlap: before.max(after),
                passage: if best_passage > 0.0 {
                    passage.fused_score / best_passage
                } else {
                    0.0
                },
                passage_rank: rank + 1,
                number: wants_number && text.chars().any(|c| c.is_ascii_digit()),
            });
        }
    }
    let (lowest, highest) = centred
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), x| {
            (lo.min(*x), hi.max(*x))
        });
    for (signal, centred) in signals.iter_mut().zip(centred) {
        signal.similarity_centred = centred;
        signal.similarity_scaled = if highest > lowest {
            (centred - lowest) / (highest - lowest)
        } else {
            1.0
        };
    }
    signals
}

/// The candidates ranked by [`SentenceSignals::score`], best first; equal scores keep passage
/// and sentence order.
pub(crate) fn rank(
    signals: Vec<SentenceSignals>,
    config: &AskConfig,
) -> Vec<(f32, SentenceSignals)> {
    let mut scored: Vec<(f32, SentenceSignals)> = signals
        .into_iter()
        .map(|signal| (signal.score(config), signal))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored
}

/// The sentences to quote from `ranked`: the best one and those within
/// `config.support_margin` of it, at most `max_sentences`, each text once.
///
/// The answer is the evidence itself: the sentences are quoted, never rewritten, so each one is
/// exactly what its citation points to.
pub(crate) fn quote(
    ranked: &[(f32, SentenceSignals)],
    config: &AskConfig,
    max_sentences: usize,
) -> Vec<SupportingSentence> {
    let Some((best, _)) = ranked.first() else {
        return Vec::new();
    };
    let mut seen = HashSet::new();
    ranked
        .iter()
        .take_while(|(score, _)| *score >= best - config.support_margin)
        .filter(|(_, signal)| seen.insert(signal.text.as_str()))
        .take(max_sentences)
        .map(|(_, signal)| SupportingSentence {
            text: signal.text.clone(),
            citation: signal.citation.clone(),
            chunk_id: signal.chunk_id,
            similarity: signal.similarity,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use lumbung_core::{
        Chunk, ChunkId, Citation, ContentHash, DocumentPath, KbName, Language, QuantizedVector,
        Sentence,
    };

    use super::*;
    use crate::dense::DenseScorer;

    /// A unit vector pointing mostly along `axis` of four.
    fn vector(axis: usize, lean: f32) -> Vec<f32> {
        let mut v = [lean; 4];
        v[axis] = 1.0;
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / norm).collect()
    }

    fn passage(
        path: &str,
        headings: &[&str],
        sentences: &[(&str, Vec<f32>)],
        fused: f32,
    ) -> Passage {
        let kb = KbName::new("it").unwrap();
        let document_path = DocumentPath::new(path).unwrap();
        let mut text = String::new();
        let mut ranges = Vec::new();
        for (sentence, _) in sentences {
            let start = text.len() as u32;
            text.push_str(sentence);
            ranges.push(start..text.len() as u32);
            text.push('\n');
        }
        let chunk = Chunk {
            id: ChunkId::derive(
                &lumbung_core::KbGeneration::first(kb.clone()),
                &document_path,
                &ContentHash::of_bytes(path.as_bytes()),
                0,
            ),
            ordinal: 0,
            citation: Citation {
                kb,
                document_path,
                title: "Password rules".to_string(),
                heading_path: headings.iter().map(|h| h.to_string()).collect(),
                page: None,
                char_range: 0..text.chars().count() as u32,
            },
            language: Language::En,
            sentences: ranges
                .into_iter()
                .zip(sentences)
                .map(|(range, (_, v))| Sentence {
                    range,
                    embedding: Some(QuantizedVector::quantize(v)),
                })
                .collect(),
            text,
        };
        Passage {
            chunk,
            fused_score: fused,
            bm25: None,
            bm25_coverage: None,
            dense: None,
            best_sentence: None,
            rerank: None,
        }
    }

    #[test]
    fn signals_rank_the_sentence_that_answers_and_skip_repeated_titles() {
        let passages = [
            passage(
                "password.md",
                &["Password rules"],
                &[
                    ("Password rules", vector(0, 0.0)),
                    (
                        "You are reminded by email before it expires.",
                        vector(0, 0.2),
                    ),
                    ("At least 14 characters.", vector(0, 0.3)),
                ],
                1.0,
            ),
            passage(
                "vpn.md",
                &["VPN"],
                &[("The VPN session lasts 12 hours.", vector(1, 0.1))],
                0.5,
            ),
        ];
        let scorer = DenseScorer::new(vector(0, 0.25), Language::En, &[], 0.0);
        let scorers = QueryScorers::new(vec![(Vec::new(), scorer)]);
        let terms = [("password".to_string(), 1.0), ("long".to_string(), 1.0)];
        let question = Question {
            text: "How long must my password be?",
            scorers: &scorers,
            terms: &terms,
        };
        let signals = sentence_signals(&question, &passages);
        let texts: Vec<&str> = signals.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "You are reminded by email before it expires.",
                "At least 14 characters.",
                "The VPN session lasts 12 hours."
            ],
            "a line that only repeats the title is not a candidate"
        );
        let rules = &signals[1];
        assert!(rules.number, "a number question and a sentence with digits");
        assert!(!signals[0].number);
        assert_eq!(rules.heading_overlap, 0.5, "'password' is in its heading");
        assert_eq!(rules.overlap, 0.0);
        assert_eq!((rules.passage, rules.passage_rank), (1.0, 1));
        assert_eq!(signals[2].passage, 0.5);
        assert!(signals.iter().any(|s| s.similarity_scaled == 1.0));

        let config = AskConfig::default();
        let ranked = rank(signals, &config);
        let sentences = quote(&ranked, &config, 1);
        assert_eq!(sentences.len(), 1);
        assert_eq!(sentences[0].text, "At least 14 characters.");
        assert_eq!(sentences[0].citation.document_path.as_str(), "password.md");
    }

    #[test]
    fn quotes_the_sentences_within_the_margin_each_text_once() {
        let signal = |text: &str, similarity_scaled: f32| SentenceSignals {
            text: text.to_string(),
            citation: passage("a.md", &[], &[], 1.0).chunk.citation,
            chunk_id: ChunkId::from_hex(&"0".repeat(32)).unwrap(),
            similarity: 0.9,
            similarity_scaled,
            similarity_centred: similarity_scaled,
            overlap: 0.0,
            heading_overlap: 0.0,
            neighbour_overlap: 0.0,
            passage: 1.0,
            passage_rank: 1,
            number: false,
        };
        let config = AskConfig {
            support_margin: 0.3,
            ..AskConfig::default()
        };
        let ranked = rank(
            vec![
                signal("far", 0.1),
                signal("best", 1.0),
                signal("best", 1.0),
                signal("near", 0.8),
            ],
            &config,
        );
        let texts: Vec<String> = quote(&ranked, &config, 10)
            .into_iter()
            .map(|s| s.text)
            .collect();
        assert_eq!(texts, ["best", "near"]);
        assert!(quote(&[], &config, 3).is_empty());
    }
}
