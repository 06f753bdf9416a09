//! The `hubside` command line: run tasks on Hub models natively, and serve the page + a Hub mirror.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use hubside::hub::{Progress, Repo, Status};
use hubside::tasks::text_classification::TextClassifier;

#[derive(Parser)]
#[command(name = "hubside", version, about = "Hugging Face Hub models, client-side (CLI and local server)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct ModelArgs {
    /// Hub repo id (org/name) or a local directory in Hub layout.
    #[arg(long)]
    model: String,
    /// Hub endpoint.
    #[arg(long, default_value = hubside::hub::DEFAULT_ENDPOINT)]
    endpoint: String,
    /// Branch, tag or commit.
    #[arg(long, default_value = hubside::hub::DEFAULT_REVISION)]
    revision: String,
    /// Print download progress on stderr.
    #[arg(long)]
    progress: bool,
}

impl ModelArgs {
    fn repo(&self) -> hubside::Result<Repo> {
        let repo = Repo::open(&self.model, Some(&self.endpoint), Some(&self.revision))?;
        Ok(if self.progress { repo.with_progress(Box::new(print_progress)) } else { repo })
    }
}

#[derive(Subcommand)]
enum Command {
    /// Sentiment analysis / text classification of each TEXT.
    #[command(alias = "text-classification")]
    Sentiment {
        #[command(flatten)]
        model: ModelArgs,
        /// One JSON object per text: label, score, scores, input_ids.
        #[arg(long)]
        json: bool,
        /// Number of labels to print (default 1; 0 = all). Ignored with --json.
        #[arg(long, default_value_t = 1)]
        top_k: usize,
        #[arg(required = true)]
        text: Vec<String>,
    },
    /// Benchmarks with real-size random models (see BENCHMARKS.md).
    Bench {
        /// What to benchmark: sentiment.
        #[arg(default_value = "sentiment")]
        what: String,
        /// Timed runs per input (median is reported).
        #[arg(long, default_value_t = 10)]
        runs: usize,
        /// A BERT uncased tokenizer.json.
        #[arg(long, default_value = "tests/fixtures/hub/tiny-random/distilbert-sst2/tokenizer.json")]
        tokenizer: PathBuf,
    },
    /// Serve the page (www/, pkg/) and a local Hub mirror at /hub, with COOP/COEP headers.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: String,
        /// Directory of models in Hub layout ({org}/{name}/{file}), served at /hub (repeatable).
        #[arg(long)]
        hub: Vec<PathBuf>,
        /// Directories served at / (first match wins).
        #[arg(long = "root", default_values = ["www"])]
        roots: Vec<PathBuf>,
        /// The wasm-pack output directory, served at /pkg/.
        #[arg(long, default_value = "pkg")]
        pkg: PathBuf,
        /// Log each request.
        #[arg(long)]
        log: bool,
    },
}

fn print_progress(p: &Progress) {
    match (p.status, p.total) {
        (Status::Done, _) => eprintln!("{}: {} ({} bytes)", p.name, p.file, p.loaded),
        (Status::Progress, Some(total)) if total > 0 => {
            eprint!("\r{}: {} {:>3}%", p.name, p.file, p.loaded * 100 / total)
        }
        _ => {}
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> hubside::Result<()> {
    match cli.command {
        Command::Sentiment { model, json, top_k, text } => {
            let classifier = pollster::block_on(TextClassifier::load(&model.repo()?))?;
            let results = classifier.classify(&text)?;
            for result in &results {
                let ranked = classifier.top_k(result, Some(if json || top_k == 0 { usize::MAX } else { top_k }));
                if json {
                    let scores: serde_json::Map<String, serde_json::Value> = classifier
                        .labels()
                        .iter()
                        .zip(&result.scores)
                        .map(|(label, score)| (label.clone(), (*score).into()))
                        .collect();
                    let line = serde_json::json!({
                        "label": ranked[0].label,
                        "score": ranked[0].score,
                        "scores": scores,
                        "input_ids": result.input_ids,
                    });
                    println!("{line}");
                } else {
                    let shown: Vec<String> = ranked.iter().map(|r| format!("{} {:.4}", r.label, r.score)).collect();
                    println!("{}", shown.join("\t"));
                }
            }
            Ok(())
        }
        Command::Bench { what, runs, tokenizer } => {
            if what != "sentiment" {
                return Err(hubside::Error::Input(format!("unknown benchmark '{what}'; available: sentiment")));
            }
            let tokenizer = std::fs::read(&tokenizer)
                .map_err(|e| hubside::Error::Io(format!("{}: {e}", tokenizer.display())))?;
            let result = pollster::block_on(hubside::bench::sentiment(tokenizer, runs))?;
            println!("{}", serde_json::to_string(&result).unwrap_or_default());
            Ok(())
        }
        Command::Serve { addr, hub, roots, pkg, log } => {
            let options = hubside::serve::ServeOptions { roots, pkg: Some(pkg), hub: hub.clone(), log };
            let server = hubside::serve::start(&addr, options)?;
            eprintln!("serving on {}", server.url());
            if !hub.is_empty() {
                eprintln!("Hub mirror endpoint: {}", server.hub_endpoint());
            }
            server.wait();
            Ok(())
        }
    }
}
