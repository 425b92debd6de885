use lumbung_core::{AskConfig, ChunkId, Citation};
use lumbung_embed::Embedder;

use crate::sentences::split_sentences;
use crate::{Passage, Result};

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

#[derive(Debug, Clone)]
pub enum Answer {
    Supported(Vec<SupportingSentence>),
    NoAnswer { reason: String },
}

/// Embeds every sentence of the top passages and keeps the ones closest to the question.
///
/// The answer is the evidence itself: the sentences are quoted, never rewritten, so each one is
/// exactly what its citation points to. When even the best sentence is further from the question
/// than `config.min_similarity`, the knowledge base is taken not to hold the answer.
pub fn select_sentences(
    embedder: &Embedder,
    question: &str,
    passages: &[Passage],
    config: &AskConfig,
    max_sentences: usize,
) -> Result<Answer> {
    if passages.is_empty() {
        return Ok(Answer::NoAnswer {
            reason: "no passage in the knowledge bases matches the question".to_string(),
        });
    }
    let mut candidates: Vec<(&Passage, String)> = Vec::new();
    for passage in passages {
        let text = &passage.chunk.text;
        for range in split_sentences(text) {
            candidates.push((passage, text[range].to_string()));
        }
    }
    if candidates.is_empty() {
        return Ok(Answer::NoAnswer {
            reason: "the matching passages hold no complete sentence".to_string(),
        });
    }
    let question_vector = embedder.embed_query(question)?;
    // A sentence alone often lacks its subject ("At least 14 characters."); embedding it under
    // its headings gives the model that context, while the answer quotes the sentence alone.
    let in_context: Vec<String> = candidates
        .iter()
        .map(|(passage, text)| {
            let citation = &passage.chunk.citation;
            match citation.heading_path.last() {
                Some(heading) => format!("{heading}: {text}"),
                None => format!("{}: {text}", citation.title),
            }
        })
        .collect();
    let texts: Vec<&str> = in_context.iter().map(String::as_str).collect();
    let vectors = embedder.embed_passages(&texts)?;
    let mut scored: Vec<(f32, usize)> = vectors
        .iter()
        .enumerate()
        .map(|(index, vector)| (dot(&question_vector, vector), index))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));

    let best = scored[0].0;
    if best < config.min_similarity {
        return Ok(Answer::NoAnswer {
            reason: format!(
                "no sentence in the {} best passages is close enough to the question",
                passages.len()
            ),
        });
    }
    let mut seen = std::collections::HashSet::new();
    let sentences = scored
        .into_iter()
        .take_while(|(similarity, _)| *similarity >= best - config.support_margin)
        .filter(|(_, index)| seen.insert(candidates[*index].1.clone()))
        .take(max_sentences)
        .map(|(similarity, index)| {
            let (passage, text) = &candidates[index];
            SupportingSentence {
                text: text.clone(),
                citation: passage.chunk.citation.clone(),
                chunk_id: passage.chunk.id,
                similarity,
            }
        })
        .collect();
    Ok(Answer::Supported(sentences))
}

/// The vectors are unit length, so their dot product is their cosine similarity.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
