use std::path::PathBuf;
use std::sync::Arc;

use lumbung_core::EmbeddingConfig;
use lumbung_embed::{Embedder, Error};

use crate::support::{PASSAGE_NICENESS, config, dot, embedder, norm};

#[test]
fn vectors_have_the_configured_dimension_and_unit_length() {
    let embedder = embedder();
    assert_eq!(embedder.dimension(), config().dimension);
    let texts = [
        "Reset your VPN password in the self-service portal.",
        "短句",
        "Kata sandi",
    ];
    let vectors = embedder.embed_passages(&texts).unwrap();
    assert_eq!(vectors.len(), texts.len());
    for vector in vectors
        .iter()
        .chain([&embedder.embed_query("vpn password").unwrap()])
    {
        assert_eq!(vector.len(), 384);
        assert!((norm(vector) - 1.0).abs() < 1e-4, "norm {}", norm(vector));
        assert!(vector.iter().all(|x| x.is_finite()));
    }
}

#[test]
fn a_query_is_closer_to_its_answer_than_to_an_unrelated_passage() {
    let embedder = embedder();
    let query = embedder
        .embed_query("How do I reset my VPN password?")
        .unwrap();
    let passages = embedder
        .embed_passages(&[
            "To reset your VPN password, open the self-service portal and choose 'Forgot password'.",
            "The staff canteen serves lunch from 11:30 to 13:30 on weekdays.",
        ])
        .unwrap();
    let (relevant, unrelated) = (dot(&query, &passages[0]), dot(&query, &passages[1]));
    assert!(
        relevant > unrelated + 0.05,
        "relevant {relevant} vs unrelated {unrelated}"
    );
}

#[test]
fn batches_give_the_same_vectors_as_single_texts_in_order() {
    let embedder = embedder();
    // More texts than one batch, of very different lengths, so padding differs between runs.
    let texts: Vec<String> = (0..embedder.batch_size() + 3)
        .map(|i| {
            format!(
                "Safety rule {i}: {}",
                "wear gloves when handling chemicals. ".repeat(i % 5 + 1)
            )
        })
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let batched = embedder.embed_passages(&refs).unwrap();
    assert_eq!(batched.len(), texts.len());
    for (text, vector) in refs.iter().zip(&batched) {
        let single = embedder.embed_passages(&[text]).unwrap().remove(0);
        assert!(
            dot(&single, vector) > 0.9999,
            "{text}: {}",
            dot(&single, vector)
        );
    }
    assert!(embedder.embed_passages(&[]).unwrap().is_empty());
}

#[test]
fn the_query_prefix_is_applied() {
    let embedder = embedder();
    let text = "welding gloves";
    let as_query = embedder.embed_query(text).unwrap();
    let as_passage = embedder.embed_passages(&[text]).unwrap().remove(0);
    let similarity = dot(&as_query, &as_passage);
    assert!(
        similarity < 0.999,
        "query and passage embeddings are identical ({similarity})"
    );
    assert!(
        similarity > 0.8,
        "same text should still be close ({similarity})"
    );
}

#[test]
fn threads_share_one_embedder() {
    let embedder = embedder();
    let expected = embedder
        .embed_query("fire extinguisher inspection")
        .unwrap();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..3)
            .map(|_| {
                scope.spawn(|| {
                    embedder
                        .embed_query("fire extinguisher inspection")
                        .unwrap()
                })
            })
            .collect();
        for handle in handles {
            assert!(dot(&handle.join().unwrap(), &expected) > 0.9999);
        }
    });
}

#[test]
fn the_tokenizer_is_the_models_and_does_not_truncate() {
    let tokenizer = embedder().tokenizer();
    let long = "alat pelindung diri ".repeat(400);
    let encoding = tokenizer.encode(long.as_str(), false).unwrap();
    assert!(encoding.len() > 1000, "{} tokens", encoding.len());
    // XLM-RoBERTa's SentencePiece vocabulary: Chinese characters are in it, not unknown.
    let zh = tokenizer.encode("焊接防护", false).unwrap();
    assert!(
        !zh.get_tokens().iter().any(|t| t == "<unk>"),
        "{:?}",
        zh.get_tokens()
    );
}

/// The passage session's worker threads yield the cores (they embed ingest batches); the
/// thread that loaded the model, and the query session's workers, keep their priority.
#[cfg(target_os = "linux")]
#[test]
fn passage_workers_yield_and_batches_are_timed() {
    let embedder = embedder();
    let niceness: Vec<i32> = lumbung_core::process_threads()
        .into_iter()
        .map(lumbung_core::thread_niceness)
        .collect();
    let yielding = niceness.iter().filter(|&&n| n == PASSAGE_NICENESS).count();
    assert!(
        yielding >= 1,
        "no thread at nice {}: {niceness:?}",
        PASSAGE_NICENESS
    );
    assert!(yielding < niceness.len(), "not every thread: {niceness:?}");
    assert_eq!(lumbung_core::current_thread_niceness(), 0);

    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = std::sync::Arc::clone(&seen);
    embedder.observe_batches(std::sync::Arc::new(move |kind, texts, elapsed| {
        record.lock().unwrap().push((kind, texts, elapsed));
    }));
    embedder.embed_query("where is the VPN portal").unwrap();
    embedder
        .embed_passages(&["first passage", "second passage"])
        .unwrap();
    let seen = seen.lock().unwrap();
    let kinds: Vec<_> = seen
        .iter()
        .map(|(kind, texts, _)| (*kind, *texts))
        .collect();
    assert!(
        kinds.contains(&(lumbung_embed::EmbedKind::Query, 1)),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&(lumbung_embed::EmbedKind::Passage, 2)),
        "{kinds:?}"
    );
    assert!(seen.iter().all(|(_, _, elapsed)| !elapsed.is_zero()));
}

#[test]
fn a_missing_model_file_is_named() {
    let config = EmbeddingConfig {
        model_dir: PathBuf::from("/nonexistent/model"),
        ..config()
    };
    let err = Embedder::load(&config, 0).unwrap_err();
    assert!(matches!(err, Error::MissingFile { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("/nonexistent/model/model.onnx"),
        "{message}"
    );
    assert!(message.contains("scripts/setup-runtime.sh"), "{message}");
}

#[test]
fn a_missing_runtime_library_is_named() {
    let config = EmbeddingConfig {
        onnxruntime_library: PathBuf::from("/nonexistent/libonnxruntime.so"),
        ..config()
    };
    let err = Embedder::load(&config, 0).unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/libonnxruntime.so"),
        "{err}"
    );
}

#[test]
fn a_wrong_dimension_in_the_config_stops_loading() {
    let config = EmbeddingConfig {
        dimension: 768,
        ..config()
    };
    match Embedder::load(&config, 0) {
        Err(Error::Dimension {
            expected: 768,
            actual: 384,
        }) => {}
        other => panic!("expected a dimension error, got {other:?}"),
    }
}

/// `truncate_dimension` keeps a model's first entries, normalised again: a smaller store from
/// the same model, whose similarities still rank a related passage above an unrelated one.
#[test]
fn truncated_vectors_are_the_first_entries_normalised() {
    let config = EmbeddingConfig {
        dimension: 256,
        truncate_dimension: true,
        ..config()
    };
    let truncated = Embedder::load(&config, 0).unwrap();
    assert_eq!(truncated.dimension(), 256);
    // Two models of one folder share its tokenizer.
    assert!(Arc::ptr_eq(truncated.tokenizer(), embedder().tokenizer()));
    let question = "How long is a password valid?";
    let short = truncated.embed_query(question).unwrap();
    let full = embedder().embed_query(question).unwrap();
    assert_eq!(short.len(), 256);
    assert!((dot(&short, &short) - 1.0).abs() < 1e-4);
    let norm = dot(&full[..256], &full[..256]).sqrt();
    for (a, b) in short.iter().zip(&full[..256]) {
        assert!((a - b / norm).abs() < 1e-4, "{a} against {}", b / norm);
    }
    let passages = truncated
        .embed_passages(&[
            "Passwords expire after 90 days.",
            "The canteen opens at seven.",
        ])
        .unwrap();
    assert!(dot(&short, &passages[0]) > dot(&short, &passages[1]));
    // Without truncation such a configuration is a dimension error (above).
}

#[test]
fn queries_can_run_on_the_int8_model_beside_fp32_passages() {
    let config = EmbeddingConfig {
        query_onnx_file: "model-int8.onnx".to_string(),
        ..config()
    };
    let mixed = Embedder::load(&config, 0).unwrap();
    let question = "Berapa lama masa berlaku kata sandi?";
    let int8 = mixed.embed_query(question).unwrap();
    let fp32 = embedder().embed_query(question).unwrap();
    let similarity = dot(&int8, &fp32);
    // Comparable with the passages the fp32 model embedded, but another model's output.
    assert!(similarity > 0.99 && similarity < 0.99999, "{similarity}");
    let passage = "Alat pelindung diri wajib dipakai di area pengelasan.";
    let ours = mixed.embed_passages(&[passage]).unwrap();
    let reference = embedder().embed_passages(&[passage]).unwrap();
    assert!(
        dot(&ours[0], &reference[0]) > 0.99999,
        "passages stay on the fp32 model"
    );

    let missing = EmbeddingConfig {
        query_onnx_file: "no-such-model.onnx".to_string(),
        ..config
    };
    let err = Embedder::load(&missing, 0).unwrap_err().to_string();
    assert!(err.contains("no-such-model.onnx"), "{err}");
}
