//! `lumbung`: serve the gRPC API, ingest the watched folders, and query a running service.

mod ask_eval;
mod bench;
mod calibrate;
mod churn;
mod client;
mod eval;
mod kb;
mod lexical_eval;
mod local;
mod mcp;
mod scale;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use lumbung_core::Config;

#[derive(Parser)]
#[command(
    name = "lumbung",
    version,
    about = "Grounded retrieval over knowledge-base folders"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Ingest the watched root, then serve the gRPC API (ingest goes on while serving).
    Serve(ServeArgs),
    /// Ingest the watched root once, with a progress bar, and exit. The service must not run.
    Ingest(IngestArgs),
    /// Compare both indexes with the catalog, document by document, and list every chunk lost
    /// or doubled; exits with status 1 when there is one. The service must not run.
    Check(CheckArgs),
    /// Retrieval quality on a collection in the BEIR layout (corpus.jsonl, queries.jsonl,
    /// qrels.tsv): ingests the corpus into a temporary knowledge base, runs every query per
    /// retriever and prints nDCG@10, Recall@100, MRR@10 and latency. With --ask, answer
    /// quality of Ask instead (see `lumbung eval --help`).
    Eval(EvalArgs),
    /// Ranked passages with citations, from a running service.
    Search(SearchArgs),
    /// A grounded answer with citations, or an explicit "no answer", from a running service.
    Ask(AskArgs),
    /// Ingest status per knowledge base, from a running service.
    Status(StatusArgs),
    /// A Model Context Protocol server on stdin/stdout for an assistant on this machine
    /// (tools search_knowledge and ask_knowledge, knowledge bases as resources), calling a
    /// running service over gRPC with the given token. Logs go to stderr.
    Mcp(McpArgs),
    /// Rebuild one knowledge base on a running service: a new generation is built beside the
    /// active one, checked, and swapped in, while searches go on against the active one.
    /// Returns at once unless --wait; --cancel stops a rebuild and discards it.
    Reindex(ReindexArgs),
    /// List, describe, create and delete knowledge bases on a running service.
    #[command(subcommand)]
    Kb(KbCommand),
    /// Back up every knowledge base (catalog rows, chunks, vectors) and the calibrated answer
    /// decision of a running service into a new or empty folder on the service's machine,
    /// while it goes on serving and ingesting.
    Backup(BackupArgs),
    /// Restore a backup into an empty data directory (the service must not run on it); the
    /// knowledge bases' folders must be there too, or the next sync removes their documents.
    Restore(RestoreArgs),
    /// Make a new API token: prints the token (to give to the assistant, it is stored nowhere)
    /// and the entry of the token file (`server.tokens_file`) that grants it, by its hash.
    NewToken(NewTokenArgs),
    /// The questions a knowledge base could not answer, most asked first: what its owner
    /// should write next. From a running service.
    Gaps(GapsArgs),
    /// Refit the answer-or-hand-off decision to labelled questions (JSON lines: question,
    /// knowledge_base, answerable, optional document or answers) asked of a running service;
    /// prints the decision before and after on a held-back part of the file, then installs
    /// the new parameters on the service (used from the next question, kept across restarts).
    /// With --rows, fits offline to rows written by `lumbung eval --ask --decision-rows`.
    Calibrate(CalibrateArgs),
    /// Time ingest of a copy of the watched root into a temporary data directory, `Search`
    /// latency per retriever and `Ask` latency through a real gRPC server, change-to-searchable
    /// of an edited file, and optionally a burst of files ingested by the watcher.
    Bench(BenchArgs),
    /// Serve a stand-in for a Qdrant server on one machine, to try `vector_store.kind =
    /// "qdrant"`, the roles and the deploy configs without a cluster: Qdrant's gRPC API over
    /// Qdrant's own storage engine (qdrant-edge) in this process. NOT a Qdrant server: one
    /// shard per collection, no replication, only the calls lumbung makes.
    QdrantStandIn(QdrantStandInArgs),
}

#[derive(Args)]
struct QdrantStandInArgs {
    /// Where the collections are kept (loaded again at the next start).
    #[arg(long, default_value = "data/qdrant-stand-in")]
    dir: PathBuf,
    /// Address to serve Qdrant's gRPC API on.
    #[arg(long, default_value = "127.0.0.1:6334")]
    listen: SocketAddr,
    /// Refuse calls without this `api-key`.
    #[arg(long, env = "LUMBUNG__VECTOR_STORE__API_KEY", hide_env_values = true)]
    api_key: Option<String>,
}

#[derive(Args)]
struct BenchArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Times each query is sent per retriever.
    #[arg(long, default_value_t = 20)]
    rounds: usize,
    /// Files saved one after another to time change-to-searchable.
    #[arg(long, default_value_t = 10)]
    edits: usize,
    /// Also drop this many small files at once into a new knowledge base and time their
    /// ingest by the watcher, with Search latency meanwhile and peak memory.
    #[arg(long, default_value_t = 0)]
    burst: usize,
    /// Also load the server with 1, 2, 4, ... up to this many concurrent clients (hybrid
    /// Search, one connection each) and print throughput, admitted latency, refusals by code
    /// and memory per phase.
    #[arg(long, default_value_t = 0)]
    load: usize,
    /// Seconds each load phase runs.
    #[arg(long, default_value_t = 10)]
    load_seconds: u64,
    /// Also rebuild each sample knowledge base through the admin API while a client searches
    /// and asks it: rebuild time, the data directory's size before, at its peak and after,
    /// and the client's latency and failures during each rebuild against before it.
    #[arg(long)]
    reindex: bool,
    /// With --reindex: then move each sample knowledge base to another embedding model (the
    /// same model's int8 file with 256-dimension vectors, configured as e5-small-int8-256) by a
    /// rebuild while the client searches and asks it.
    #[arg(long, requires = "reindex")]
    model_change: bool,
    /// Instead: ingest the samples this many times into fresh indexes, each time followed by
    /// embedding the same texts alone, and print ingest's tokens/s as a share of that ceiling
    /// (medians).
    #[arg(long)]
    ingest_share: Option<usize>,
    /// Instead: serve a copy of the samples and change them for this many rounds through the
    /// watcher (every text file edited, the PDF renamed, a file deleted and put back), while a
    /// client searches; print each part of the data directory's disk, memory, chunks and
    /// `lumbung check`'s findings after every round, and each part's growth.
    #[arg(long)]
    churn: Option<usize>,
    /// Instead of the samples: build an index of this many chunks (a real sample of
    /// ../shared/eval corpora, the rest copies with derived vectors), measure dense recall@10
    /// of the graph search against exact search, then time hybrid, BM25 and dense Search
    /// scoped to one, ten and all knowledge bases in a fresh serving process, with its memory.
    #[arg(long)]
    scale: Option<usize>,
    /// Knowledge bases of the --scale index, of Zipf-distributed sizes.
    #[arg(long, default_value_t = 600)]
    kbs: usize,
    /// Real documents ingested (embedded) as the --scale sample.
    #[arg(long, default_value_t = 150)]
    sample_documents: usize,
    /// Where the BEIR collections of the --scale sample and questions are.
    #[arg(long, default_value = "../shared/eval")]
    corpora: PathBuf,
    /// Questions per scope and retriever in --scale.
    #[arg(long, default_value_t = 30)]
    queries: usize,
    /// Keep the --scale data in this (new or empty) folder.
    #[arg(long)]
    keep: Option<PathBuf>,
    /// Exit with an error when --scale measures a dense recall@10 below this.
    #[arg(long)]
    min_recall: Option<f64>,
    /// The serving half of --scale, run by it in a fresh process: the folder it built.
    #[arg(long, hide = true)]
    serve_scale: Option<PathBuf>,
}

/// Where the configuration comes from: defaults < file < LUMBUNG__* environment < flags.
#[derive(Args)]
struct ConfigArgs {
    /// A TOML configuration file.
    #[arg(long, env = "LUMBUNG_CONFIG")]
    config: Option<PathBuf>,
    /// Overrides `data_dir`.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Overrides `ingest_root`.
    #[arg(long)]
    ingest_root: Option<PathBuf>,
}

impl ConfigArgs {
    fn load(&self) -> anyhow::Result<Config> {
        let mut config = Config::load(self.config.as_deref())?;
        if let Some(dir) = &self.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(root) = &self.ingest_root {
            config.ingest_root = root.clone();
        }
        config.validate()?;
        Ok(config)
    }
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Address to listen on; overrides `server.listen`.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Address of the HTTP port (JSON API, Dify, MCP, console); overrides
    /// `server.http_listen`.
    #[arg(long)]
    http_listen: Option<SocketAddr>,
    /// What this process does; overrides `server.role`. `query` and `ingest` need
    /// `vector_store.kind = "qdrant"`.
    #[arg(long, value_enum)]
    role: Option<NodeRoleArg>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum NodeRoleArg {
    /// Watch the folders, keep the catalog, write the indexes and answer queries (one node).
    All,
    /// Answer assistants from the cluster alone: no folders, catalog or local index.
    Query,
    /// Watch the folders, keep the catalog and write to the cluster; serve AdminService. One
    /// per cluster: a second one is refused while the first holds the ingest lease.
    Ingest,
}

#[derive(Args)]
struct IngestArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Only this knowledge base.
    #[arg(long)]
    kb: Option<String>,
    /// Re-embed documents even when unchanged.
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
struct BackupArgs {
    /// The folder to write, on the service's machine (a relative path is taken from here).
    dir: PathBuf,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Args)]
struct RestoreArgs {
    /// The backup's folder.
    dir: PathBuf,
    #[command(flatten)]
    config: ConfigArgs,
}

#[derive(Args)]
struct CheckArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Only this knowledge base.
    #[arg(long)]
    kb: Option<String>,
}

#[derive(Args)]
struct EvalArgs {
    /// The collection's folder.
    dir: PathBuf,
    #[command(flatten)]
    config: ConfigArgs,
    /// Only the first N queries (with a relevant document).
    #[arg(long, default_value_t = usize::MAX)]
    max_queries: usize,
    /// At most N documents: those relevant to the kept queries, then the first others.
    #[arg(long, default_value_t = usize::MAX)]
    max_documents: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Keep the corpus files and indexes in this folder instead of a temporary one. A later
    /// run with the same folder, collection, model and chunking re-ingests nothing, so search
    /// settings (fusion, weights, the analyzer) can be compared in seconds.
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Also score hybrid+rerank: loads the cross-encoder (rerank.model_dir) whatever
    /// rerank.enabled says. About a second per query on two cores.
    #[arg(long, conflicts_with = "ask")]
    rerank: bool,
    /// Measure Ask instead of Search, on questions that carry `answerable` and `answers`:
    /// how often the first quoted sentence, or any, holds an answer string, how often the
    /// first sentence cites a right document, hand-offs and wrong answers, per kind and
    /// language. DIR is a BEIR collection, or a question set over the knowledge-base folders
    /// of the ingest root (no corpus.jsonl; each query names its knowledge_base), asked scoped
    /// to that knowledge base and over all of them.
    #[arg(long)]
    ask: bool,
    /// Compare BM25 of the two lexical engines on the same chunks instead: tantivy and
    /// Qdrant's sparse vectors with IDF (on the stand-in Qdrant, in this process). Embeds
    /// nothing; prints each engine's scores and the chunks' average length in terms.
    #[arg(long, conflicts_with_all = ["ask", "rerank"])]
    lexical: bool,
    /// With --lexical: the average chunk lengths (analyzer terms) to write Qdrant's BM25
    /// weights with; one Qdrant collection each.
    #[arg(
        long,
        value_delimiter = ',',
        requires = "lexical",
        default_value = "110"
    )]
    average_terms: Vec<f32>,
    /// With --ask: read queries_<SPLIT>.jsonl and qrels_<SPLIT>.tsv (for example train).
    #[arg(long, requires = "ask")]
    split: Option<String>,
    /// With --ask: sentences Ask may quote per question.
    #[arg(long, default_value_t = 3, requires = "ask")]
    max_sentences: usize,
    /// With --ask: also list every question with the sentences quoted for it.
    #[arg(long, requires = "ask")]
    details: bool,
    /// With --ask: write every candidate sentence with its signals to this JSON-lines file
    /// (scripts/fit_ask_weights.py fits the [ask] weights from it).
    #[arg(long, requires = "ask")]
    dump_signals: Option<PathBuf>,
    /// With --ask: write each question's decision signals and outcome to this JSON-lines
    /// file (`lumbung calibrate --rows` fits the answer-or-hand-off decision to it).
    #[arg(long, requires = "ask")]
    decision_rows: Option<PathBuf>,
    /// With --ask: decide with these parameters (a file like models/answer-decision.json)
    /// instead of the shipped ones.
    #[arg(long, requires = "ask")]
    decision: Option<PathBuf>,
}

/// How to reach a running service.
#[derive(Args)]
struct ClientArgs {
    /// The service's address: `host:port` as `serve` prints it, or a URL (`https://` for TLS).
    #[arg(long, env = "LUMBUNG_ADDR", default_value = "http://127.0.0.1:50051")]
    addr: String,
    /// The API token, when the service has a token file.
    #[arg(long, env = "LUMBUNG_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// With TLS (an https:// address): the CA that issued the service's certificate (PEM);
    /// without it the system's roots are not consulted, so it is needed.
    #[arg(long, env = "LUMBUNG_TLS_CA")]
    tls_ca: Option<PathBuf>,
    /// This client's certificate and key (PEM), when the service checks client certificates.
    #[arg(long, env = "LUMBUNG_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    #[arg(long, env = "LUMBUNG_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Print JSON instead of readable text.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct McpArgs {
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Args)]
struct SearchArgs {
    query: String,
    /// Knowledge bases to search (repeatable); all when omitted.
    #[arg(long = "kb")]
    kbs: Vec<String>,
    #[arg(long, default_value_t = 5)]
    top_k: u32,
    /// Which retrievers rank the passages.
    #[arg(long, value_enum, default_value_t = RetrieverArg::Hybrid)]
    retriever: RetrieverArg,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum RetrieverArg {
    Hybrid,
    Bm25,
    Dense,
    /// Hybrid reordered by the cross-encoder (needs rerank.enabled on the server).
    HybridRerank,
}

impl RetrieverArg {
    fn to_proto(self) -> lumbung_proto::v1::Retriever {
        match self {
            RetrieverArg::Hybrid => lumbung_proto::v1::Retriever::Hybrid,
            RetrieverArg::Bm25 => lumbung_proto::v1::Retriever::Bm25,
            RetrieverArg::Dense => lumbung_proto::v1::Retriever::Dense,
            RetrieverArg::HybridRerank => lumbung_proto::v1::Retriever::HybridRerank,
        }
    }
}

#[derive(Args)]
struct AskArgs {
    question: String,
    /// Knowledge bases to draw from (repeatable); all when omitted.
    #[arg(long = "kb")]
    kbs: Vec<String>,
    #[arg(long, default_value_t = 3)]
    max_sentences: u32,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Args)]
struct StatusArgs {
    /// Only this knowledge base.
    #[arg(long)]
    kb: Option<String>,
    /// List every document, not only the failed ones.
    #[arg(long, conflicts_with = "failed")]
    documents: bool,
    /// Only the failed documents (the default listing).
    #[arg(long)]
    failed: bool,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Args)]
struct NewTokenArgs {
    /// What the token is for; `kb.toml` `readers` lists this name.
    #[arg(long)]
    name: String,
    #[arg(long, value_enum, default_value_t = RoleArg::Reader)]
    role: RoleArg,
    /// Knowledge bases it may read, by name or pattern (`it-*`, `*`); repeatable.
    #[arg(long = "kb", required = true)]
    kbs: Vec<String>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum RoleArg {
    /// Search, Ask, and the status and gaps of its knowledge bases.
    Reader,
    /// Everything, including reindexing and the answer decision.
    Admin,
}

#[derive(Args)]
struct GapsArgs {
    /// The knowledge base.
    #[arg(long)]
    kb: String,
    /// Only questions asked again since then: a span back from now (30m, 12h, 7d) or an RFC
    /// 3339 time.
    #[arg(long)]
    since: Option<String>,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Args)]
struct CalibrateArgs {
    /// The labelled questions (JSON lines).
    #[arg(required_unless_present = "rows")]
    file: Option<PathBuf>,
    /// Fit offline to these decision rows (`lumbung eval --ask --decision-rows`) instead of
    /// asking a service; repeatable.
    #[arg(long, conflicts_with = "file", requires = "output")]
    rows: Vec<PathBuf>,
    /// With --rows: also report on these rows, held out from the fit (for example a dev
    /// split); repeatable.
    #[arg(long, requires = "rows")]
    holdout_rows: Vec<PathBuf>,
    /// With --rows: write the parameters to this file.
    #[arg(long)]
    output: Option<PathBuf>,
    /// The share of the questions held back to report on (not fitted to).
    #[arg(long, default_value_t = 0.3)]
    holdout: f64,
    /// L2 regularisation of the fit; more for few questions.
    #[arg(long, default_value_t = 1.0)]
    l2: f64,
    /// The operating point the figures are reported at; by default the service's
    /// `ask.min_confidence` (with --rows: 0.5).
    #[arg(long)]
    min_confidence: Option<f32>,
    /// Print the figures without installing the parameters.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Args)]
struct ReindexArgs {
    /// The knowledge base to rebuild.
    #[arg(long)]
    kb: String,
    /// Follow the rebuild with a progress bar until it ends; exits with status 1 unless its
    /// generation was made active.
    #[arg(long, conflicts_with = "cancel")]
    wait: bool,
    /// Cancel the rebuild under way instead: its generation is discarded.
    #[arg(long)]
    cancel: bool,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Subcommand)]
enum KbCommand {
    /// Every knowledge base the token may read: generation, documents, chunks, source size,
    /// last change and rebuild.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// One knowledge base: counts, size, generation, embedding model, last change, failures,
    /// failed documents and its last rebuild.
    Describe {
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Create a knowledge base: its folder under the watched root, with a kb.toml holding
    /// these settings and the others commented out.
    Create {
        name: String,
        #[arg(long)]
        title: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// The documents' main language (en, id, zh-CN).
        #[arg(long)]
        language: Option<String>,
        /// Who takes the questions it cannot answer.
        #[arg(long)]
        escalation: Option<String>,
        /// A reader that may search it (repeatable); every reader when none is given.
        #[arg(long = "reader")]
        readers: Vec<String>,
        /// The embedding model it is embedded with, as the service's configuration names it
        /// ([embedding] or [embedding_models]); the service's default when not given.
        #[arg(long)]
        embedding_model: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Delete a knowledge base's chunks and catalog rows. Its folder stays (and is no longer
    /// indexed) unless --remove-folder.
    Delete {
        name: String,
        /// Also remove its folder and every document in it.
        #[arg(long)]
        remove_folder: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tantivy=warn,ort=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Serve(args) => {
            init_tracing();
            let mut config = args.config.load()?;
            if let Some(listen) = args.listen {
                config.server.listen = listen;
            }
            if let Some(http_listen) = args.http_listen {
                config.server.http_listen = Some(http_listen);
            }
            if let Some(role) = args.role {
                config.server.role = match role {
                    NodeRoleArg::All => lumbung_core::NodeRole::All,
                    NodeRoleArg::Query => lumbung_core::NodeRole::Query,
                    NodeRoleArg::Ingest => lumbung_core::NodeRole::Ingest,
                };
            }
            config.validate()?;
            runtime.block_on(local::serve(config))
        }
        Command::Ingest(args) => {
            let config = args.config.load()?;
            local::ingest(config, args.kb, args.force)
        }
        Command::Restore(args) => {
            init_tracing();
            let config = args.config.load()?;
            local::restore(config, &args.dir)
        }
        Command::Backup(args) => runtime.block_on(kb::backup(args)),
        Command::Check(args) => {
            let config = args.config.load()?;
            if !local::check(config, args.kb)? {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Eval(args) if args.ask => {
            let config = args.config.load()?;
            let options = ask_eval::AskEvalOptions {
                dir: args.dir,
                split: args.split,
                max_queries: args.max_queries,
                max_documents: args.max_documents,
                max_sentences: args.max_sentences,
                json: args.json,
                work_dir: args.work_dir,
                details: args.details,
                dump_signals: args.dump_signals,
                decision_rows: args.decision_rows,
                decision: args.decision,
            };
            runtime.block_on(ask_eval::eval_ask(config, options))
        }
        Command::Eval(args) if args.lexical => {
            let config = args.config.load()?;
            let options = lexical_eval::LexicalEvalOptions {
                dir: args.dir,
                max_queries: args.max_queries,
                max_documents: args.max_documents,
                average_terms: args.average_terms,
            };
            lexical_eval::eval_lexical(config, options)
        }
        Command::Eval(args) => {
            let config = args.config.load()?;
            let options = eval::EvalOptions {
                dir: args.dir,
                max_queries: args.max_queries,
                max_documents: args.max_documents,
                json: args.json,
                work_dir: args.work_dir,
                rerank: args.rerank,
            };
            runtime.block_on(eval::eval(config, options))
        }
        Command::QdrantStandIn(args) => {
            init_tracing();
            let stand_in = lumbung_qdrant::stand_in::StandInQdrant::start_on(
                &args.dir,
                args.api_key.as_deref().filter(|key| !key.is_empty()),
                args.listen,
            )?;
            println!(
                "stand-in Qdrant (not a Qdrant server) on {} with its data in {}; Ctrl-C stops it",
                stand_in.url(),
                args.dir.display()
            );
            runtime.block_on(tokio::signal::ctrl_c())?;
            drop(stand_in);
            Ok(())
        }
        Command::Search(args) => runtime.block_on(client::search(args)),
        Command::Ask(args) => runtime.block_on(client::ask(args)),
        Command::Status(args) => runtime.block_on(client::status(args)),
        Command::Mcp(args) => {
            init_tracing();
            runtime.block_on(mcp::serve_stdio(args))
        }
        Command::Reindex(args) => runtime.block_on(kb::reindex(args)),
        Command::Kb(command) => runtime.block_on(kb::kb(command)),
        Command::Gaps(args) => runtime.block_on(client::gaps(args)),
        Command::NewToken(args) => {
            let role = match args.role {
                RoleArg::Reader => "reader",
                RoleArg::Admin => "admin",
            };
            let (token, entry) = lumbung_server::new_token(&args.name, role, &args.kbs)?;
            println!("token: {token}\n\nadd to the token file:\n\n{entry}");
            Ok(())
        }
        Command::Calibrate(args) => runtime.block_on(calibrate::calibrate(args)),
        Command::Bench(args) => {
            init_tracing();
            let config = args.config.load()?;
            if let Some(work) = args.serve_scale {
                let options = scale::ServeOptions {
                    work,
                    corpora: args.corpora,
                    queries: args.queries,
                    rounds: args.rounds,
                };
                return runtime.block_on(scale::serve_scale(config, options));
            }
            if let Some(chunks) = args.scale {
                let options = scale::ScaleOptions {
                    chunks,
                    kbs: args.kbs,
                    sample_documents: args.sample_documents,
                    corpora: args.corpora,
                    queries: args.queries,
                    rounds: args.rounds,
                    keep: args.keep,
                    min_recall: args.min_recall,
                };
                return runtime.block_on(scale::scale(config, args.config.config.clone(), options));
            }
            if let Some(rounds) = args.churn {
                return runtime.block_on(churn::churn(config, rounds));
            }
            if let Some(rounds) = args.ingest_share {
                return runtime.block_on(bench::ingest_share(config, rounds));
            }
            let options = bench::BenchOptions {
                rounds: args.rounds,
                edits: args.edits,
                burst: args.burst,
                load: args.load,
                load_seconds: args.load_seconds,
                reindex: args.reindex,
                model_change: args.model_change,
            };
            runtime.block_on(bench::bench(config, options))
        }
    }
}
