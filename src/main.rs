//! The `fitcheck` command: parses arguments and delegates to the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use fitcheck::embed::{Alpha, Pipeline};
use fitcheck::harness::{self, Overrides};
use fitcheck::model::cli::{embed_command, EmbedRequest};

#[derive(Parser)]
#[command(version, about = "Regression tests for text-to-image retrieval models")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every case of a suite and print per-case metrics and the suite's means.
    Run {
        /// The cases directory (holds fitcheck.toml).
        #[arg(long, default_value = "cases")]
        suite: PathBuf,
        #[command(flatten)]
        model: ModelArgs,
        /// Also write every case's metrics, at full precision, to this JSON file.
        #[arg(long, value_name = "PATH")]
        json: Option<PathBuf>,
    },
    /// Print a checkpoint's normalised embeddings of texts and images (for debugging a checkpoint).
    Embed {
        /// A checkpoint directory or hub id.
        #[arg(long)]
        model: String,
        /// The hub revision (branch, tag or commit sha).
        #[arg(long)]
        revision: Option<String>,
        /// A text to embed (repeatable).
        #[arg(long = "text")]
        texts: Vec<String>,
        /// An image file to embed (repeatable).
        #[arg(long = "image")]
        images: Vec<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Also print each text's cleaned form and token ids.
        #[arg(long)]
        tokens: bool,
        /// Use only files already in the hub cache.
        #[arg(long)]
        offline: bool,
        /// Transparent pixels: drop (PIL convert('RGB'), the default), white or black (rgb_first only).
        #[arg(long, value_parser = ["drop", "white", "black"])]
        alpha: Option<String>,
        /// Convert to RGB then resize (rgb_first), or resize in the source mode then convert (open_clip).
        #[arg(long, value_enum, default_value_t = Pipeline::RgbFirst)]
        pipeline: Pipeline,
    },
    /// Run a suite as a test harness (what `cargo test` does); arguments after `--` go to the harness.
    Test {
        #[arg(long, default_value = "cases")]
        suite: PathBuf,
        /// libtest arguments: a filter, --exact, --list, --ignored, ...
        #[arg(last = true)]
        args: Vec<String>,
    },
}

#[derive(clap::Args)]
struct ModelArgs {
    /// A checkpoint directory or hub id, instead of the suite's.
    #[arg(long)]
    model: Option<String>,
    /// The hub revision (branch, tag or commit sha).
    #[arg(long)]
    revision: Option<String>,
    /// Use only files already in the hub cache.
    #[arg(long)]
    offline: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { suite, model, json } => {
            let mut overrides = Overrides::from_env();
            overrides.model = model.model.or(overrides.model);
            overrides.revision = model.revision.or(overrides.revision);
            overrides.offline |= model.offline;
            match harness::summarize(&suite, &overrides) {
                Ok(report) => {
                    print!("{}", report.text);
                    if let Some(path) = json {
                        let text = serde_json::to_string_pretty(&report.json).expect("json values serialise");
                        if let Err(e) = std::fs::write(&path, text + "\n") {
                            eprintln!("error: {}: {e}", path.display());
                            return ExitCode::FAILURE;
                        }
                    }
                    if report.ok {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Embed { model, revision, texts, images, json, tokens, offline, alpha, pipeline } => {
            let alpha = alpha.as_deref().and_then(Alpha::from_key);
            let request = EmbedRequest { model, revision, texts, images, json, tokens, offline, alpha, pipeline };
            match embed_command(&request) {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Test { suite, args } => {
            let argv = std::iter::once("fitcheck-test".to_string()).chain(args);
            harness::run(&suite, libtest_mimic::Arguments::from_iter(argv))
        }
    }
}
