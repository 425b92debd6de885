//! Measures embedding throughput on this machine with the configured model.
//!
//! Run from the repository root after `scripts/setup-runtime.sh`:
//! `cargo run --release -p lumbung-embed --example embed_timing [passages] [chunk_tokens]`

use std::time::Instant;

use lumbung_core::{ContentHash, DocumentPath, EmbeddingConfig, KbGeneration, KbName, Section};
use lumbung_embed::{Chunker, Embedder};

const SENTENCES: [&str; 6] = [
    "Welders must wear a helmet with a shaded lens, flame-resistant gloves and leather boots.",
    "焊接作业前必须检查设备接地是否良好，作业区域应保持通风并清除易燃物品。",
    "Pekerja wajib memakai sarung tangan tahan api dan sepatu keselamatan di area produksi.",
    "Forklift drivers check brakes, horn and lights at the start of every shift.",
    "动火作业需要办理许可证，并安排专人在现场监护直至作业结束后三十分钟。",
    "Kata sandi VPN dapat diatur ulang melalui portal layanan mandiri perusahaan.",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let passages: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(256);
    let chunk_tokens: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(200);

    let config = EmbeddingConfig::default();
    let started = Instant::now();
    let embedder = Embedder::load(&config, 0)?;
    println!("load: {:.2} s", started.elapsed().as_secs_f64());

    // Realistic passages: a long mixed-language document cut by the real chunker.
    let text: String = (0..passages * 12)
        .map(|i| SENTENCES[i % SENTENCES.len()])
        .collect::<Vec<_>>()
        .join(" ");
    let sections = [Section {
        heading_path: vec![],
        page: None,
        text,
    }];
    let chunker = Chunker::new(std::sync::Arc::clone(embedder.tokenizer()), chunk_tokens, 0)?;
    let started = Instant::now();
    let chunks = chunker.split(
        &KbGeneration::first(KbName::new("timing")?),
        &DocumentPath::new("timing.txt")?,
        &ContentHash::of_bytes(b"timing"),
        "timing",
        &sections,
    );
    let chunk_time = started.elapsed();
    let texts: Vec<&str> = chunks
        .iter()
        .take(passages)
        .map(|c| c.text.as_str())
        .collect();
    let tokens: usize = texts
        .iter()
        .map(|t| {
            embedder
                .tokenizer()
                .encode(*t, false)
                .map_or(0, |e| e.len())
        })
        .sum();
    println!(
        "chunking: {} chunks in {:.2} s; embedding {} passages, {:.0} tokens each on average",
        chunks.len(),
        chunk_time.as_secs_f64(),
        texts.len(),
        tokens as f64 / texts.len() as f64
    );

    let started = Instant::now();
    let vectors = embedder.embed_passages(&texts)?;
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "passages: {} in {:.2} s ({:.1} passages/s, batch size {})",
        vectors.len(),
        elapsed,
        vectors.len() as f64 / elapsed,
        embedder.batch_size()
    );

    let queries = [
        "What protective equipment is required when welding?",
        "如何重置VPN密码？",
        "jam buka kantin",
    ];
    for query in queries {
        let started = Instant::now();
        embedder.embed_query(query)?;
        println!(
            "query {query:?}: {:.1} ms",
            started.elapsed().as_secs_f64() * 1000.0
        );
    }
    Ok(())
}
