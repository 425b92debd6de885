//! One ONNX Runtime session of a BERT-style encoder, fed by a tokenizer it does not own.
//!
//! fastembed's `TextEmbedding` owns its tokenizer, and the XLM-RoBERTa tokenizer takes about
//! 280 MiB once loaded: the query session, the passage session and chunk sizing held three
//! copies. Here the [`crate::Embedder`] keeps one plain tokenizer and each session truncates,
//! pads and pools for itself, as fastembed does (BatchLongest padding, right truncation that
//! keeps the closing special token, mean or CLS pooling, L2 normalisation).

use std::path::Path;
use std::sync::{Mutex, PoisonError};

use lumbung_core::Pooling;
use ort::environment::Environment;
use ort::session::builder::{GraphOptimizationLevel, PrepackedWeights};
use ort::session::{Session, SessionInputValue};
use ort::value::Tensor;
use tokenizers::{Encoding, Tokenizer};

use crate::{Error, Result};

/// The output an encoder's token vectors are read from when the model names it.
const HIDDEN_STATE_OUTPUT: &str = "last_hidden_state";

/// How a session is made: shared by the query and passage sessions of one model.
pub(crate) struct EncoderSettings<'a> {
    pub environment: &'a Environment,
    pub model: &'a Path,
    /// Weights ONNX Runtime reorders for its kernels, kept once for both sessions.
    pub prepacked: &'a PrepackedWeights,
    pub threads: usize,
    pub max_tokens: usize,
    pub pad_id: u32,
    pub pooling: Pooling,
}

pub(crate) struct EncoderSession {
    session: Mutex<Session>,
    needs_token_type_ids: bool,
    max_tokens: usize,
    pad_id: u32,
    pooling: Pooling,
}

impl EncoderSession {
    pub(crate) fn new(settings: &EncoderSettings<'_>) -> Result<EncoderSession> {
        let model_error = |reason: String| Error::Session {
            path: settings.model.to_path_buf(),
            reason,
        };
        let builder_error =
            |err: ort::Error<ort::session::builder::SessionBuilder>| model_error(err.to_string());
        // ONNX Runtime reads the file itself: no copy of the model stays in this process's heap.
        let session = Session::builder(settings.environment)
            .map_err(|err| model_error(err.to_string()))?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(builder_error)?
            .with_intra_threads(settings.threads)
            .map_err(builder_error)?
            .with_prepacked_weights(settings.prepacked)
            .map_err(builder_error)?
            .commit_from_file(settings.model)
            .map_err(|err| model_error(err.to_string()))?;
        let needs_token_type_ids = session
            .inputs()
            .iter()
            .any(|input| input.name() == "token_type_ids");
        Ok(EncoderSession {
            session: Mutex::new(session),
            needs_token_type_ids,
            max_tokens: settings.max_tokens.max(2),
            pad_id: settings.pad_id,
            pooling: settings.pooling,
        })
    }

    /// One unit-length vector per text (as token ids from [`tokenize`]), in order, and the
    /// number of tokens read (padding not counted); every text goes through the model in one
    /// run.
    pub(crate) fn embed_tokens(&self, token_ids: &[&[u32]]) -> Result<(Vec<Vec<f32>>, u64)> {
        if token_ids.is_empty() {
            return Ok((Vec::new(), 0));
        }
        let batch = PaddedBatch::new(token_ids, self.max_tokens, self.pad_id);
        let shape = [batch.rows, batch.columns];
        let tokens = batch.mask.iter().filter(|&&m| m != 0).count() as u64;
        let mut inputs: Vec<(&'static str, SessionInputValue<'_>)> = vec![
            ("input_ids", Tensor::from_array((shape, batch.ids))?.into()),
            (
                "attention_mask",
                Tensor::from_array((shape, batch.mask.clone()))?.into(),
            ),
        ];
        if self.needs_token_type_ids {
            let type_ids = vec![0i64; batch.rows * batch.columns];
            inputs.push((
                "token_type_ids",
                Tensor::from_array((shape, type_ids))?.into(),
            ));
        }
        let mut session = self
            .session
            .lock()
            // A panic elsewhere cannot leave the session half-updated: runs keep no state.
            .unwrap_or_else(PoisonError::into_inner);
        let outputs = session.run(inputs)?;
        let output = match outputs.get(HIDDEN_STATE_OUTPUT) {
            Some(output) => output,
            None => &outputs[0],
        };
        let (output_shape, values) = output.try_extract_tensor::<f32>()?;
        let dims: Vec<usize> = output_shape.iter().map(|&d| d.max(0) as usize).collect();
        let vectors =
            match dims.as_slice() {
                // Already pooled by the model.
                [rows, width] if *rows == batch.rows => Ok(values
                    .chunks_exact((*width).max(1))
                    .map(normalized)
                    .collect()),
                [rows, columns, width] if *rows == batch.rows && *columns == batch.columns => Ok(
                    pool(values, &batch.mask, batch.columns, *width, self.pooling),
                ),
                _ => Err(Error::Output(format!(
                    "the model returned a tensor of shape {dims:?} for a batch of {} x {}",
                    batch.rows, batch.columns
                ))),
            }?;
        Ok((vectors, tokens))
    }
}

/// The tokens of each text as the model reads them, special tokens included (before the
/// session's truncation).
pub(crate) fn tokenize(tokenizer: &Tokenizer, texts: Vec<String>) -> Result<Vec<Encoding>> {
    tokenizer
        .encode_batch(texts, true)
        .map_err(|err| Error::Tokenization(err.to_string()))
}

/// Token ids and attention mask of a batch, padded to its longest text.
struct PaddedBatch {
    rows: usize,
    columns: usize,
    ids: Vec<i64>,
    mask: Vec<i64>,
}

impl PaddedBatch {
    /// Texts longer than `max_tokens` keep their first tokens and their closing special token,
    /// as the tokenizer's own right truncation does.
    fn new(token_ids: &[&[u32]], max_tokens: usize, pad_id: u32) -> PaddedBatch {
        let columns = token_ids
            .iter()
            .map(|tokens| tokens.len().min(max_tokens))
            .max()
            .unwrap_or(0);
        let rows = token_ids.len();
        let mut ids = Vec::with_capacity(rows * columns);
        let mut mask = Vec::with_capacity(rows * columns);
        for tokens in token_ids {
            let kept = if tokens.len() > max_tokens {
                let mut kept: Vec<u32> = tokens[..max_tokens - 1].to_vec();
                kept.extend(tokens.last());
                kept
            } else {
                tokens.to_vec()
            };
            ids.extend(kept.iter().map(|&id| i64::from(id)));
            mask.extend(std::iter::repeat_n(1i64, kept.len()));
            ids.extend(std::iter::repeat_n(i64::from(pad_id), columns - kept.len()));
            mask.extend(std::iter::repeat_n(0i64, columns - kept.len()));
        }
        PaddedBatch {
            rows,
            columns,
            ids,
            mask,
        }
    }
}

/// Pools `[rows, columns, width]` token vectors into one unit-length vector per row.
fn pool(
    values: &[f32],
    mask: &[i64],
    columns: usize,
    width: usize,
    pooling: Pooling,
) -> Vec<Vec<f32>> {
    values
        .chunks_exact((columns * width).max(1))
        .zip(mask.chunks_exact(columns.max(1)))
        .map(|(tokens, mask)| match pooling {
            Pooling::Cls => normalized(&tokens[..width]),
            Pooling::Mean => {
                let mut sum = vec![0f32; width];
                let mut count = 0f32;
                for (token, &attended) in tokens.chunks_exact(width).zip(mask) {
                    if attended != 0 {
                        for (total, x) in sum.iter_mut().zip(token) {
                            *total += x;
                        }
                        count += 1.0;
                    }
                }
                let count = if count == 0.0 { 1.0 } else { count };
                for total in &mut sum {
                    *total /= count;
                }
                normalized(&sum)
            }
        })
        .collect()
}

fn normalized(vector: &[f32]) -> Vec<f32> {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    // As fastembed and sentence-transformers do: a zero vector stays zero.
    vector.iter().map(|x| x / (norm + 1e-12)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_texts_keep_their_closing_token_and_short_ones_are_padded() {
        let long: &[u32] = &[0, 10, 11, 12, 13, 2];
        let short: &[u32] = &[0, 10, 2];
        let batch = PaddedBatch::new(&[long, short], 4, 1);
        assert_eq!((batch.rows, batch.columns), (2, 4));
        assert_eq!(batch.ids, vec![0, 10, 11, 2, 0, 10, 2, 1]);
        assert_eq!(batch.mask, vec![1, 1, 1, 1, 1, 1, 1, 0]);
    }

    #[test]
    fn mean_pooling_ignores_padding_and_normalises() {
        // Two rows of two tokens, width 2; the second row's second token is padding.
        let values = [1.0, 0.0, 0.0, 1.0, 3.0, 4.0, 100.0, 100.0];
        let mask = [1, 1, 1, 0];
        let pooled = pool(&values, &mask, 2, 2, Pooling::Mean);
        let half = std::f32::consts::FRAC_1_SQRT_2;
        assert!((pooled[0][0] - half).abs() < 1e-6 && (pooled[0][1] - half).abs() < 1e-6);
        assert!((pooled[1][0] - 0.6).abs() < 1e-6 && (pooled[1][1] - 0.8).abs() < 1e-6);
        let cls = pool(&values, &mask, 2, 2, Pooling::Cls);
        assert_eq!(cls[0], vec![1.0, 0.0]);
    }
}
