use lumbung_core::RerankConfig;
use lumbung_embed::Reranker;

use crate::support::{config, runtime_dir};

#[test]
fn the_cross_encoder_scores_the_answer_above_the_rest() {
    let root = runtime_dir().parent().unwrap().to_path_buf();
    let defaults = RerankConfig::default();
    let rerank = RerankConfig {
        model_dir: root.join(&defaults.model_dir),
        ..defaults
    };
    let reranker = Reranker::load(&rerank, &config()).unwrap();
    let passages = [
        "The staff canteen serves lunch from 11:30 to 13:30 on weekdays.",
        "A new password must have at least 12 characters, one of them a digit.",
        "Passwords are stored by the identity service.",
    ];
    let scores = reranker
        .score("How many characters must a new password have?", &passages)
        .unwrap();
    assert_eq!(scores.len(), 3);
    assert!(scores[1] > scores[2] && scores[2] > scores[0], "{scores:?}");
    assert!(reranker.score("anything", &[]).unwrap().is_empty());
}
