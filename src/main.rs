//! The `fitcheck` command: parses arguments and delegates to the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use fitcheck::commands::{self, CompareRequest, Exit, Outputs};
use fitcheck::compare::{self, FailOn, Gate};
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
    ///
    /// Exit status: 0 every case passed, 1 some case failed, 2 nothing could be judged.
    Run {
        /// The cases directory (holds fitcheck.toml).
        #[arg(long, default_value = "cases")]
        suite: PathBuf,
        #[command(flatten)]
        model: ModelArgs,
        /// Also write every result, at full precision, with a convention manifest, to this JSON file.
        #[arg(long, value_name = "PATH")]
        json: Option<PathBuf>,
        /// Also write the report as GitHub-flavoured Markdown (e.g. $GITHUB_STEP_SUMMARY).
        #[arg(long, value_name = "PATH")]
        markdown: Option<PathBuf>,
        /// Also write an HTML report with every case's images to DIR/index.html (DIR/thumbs/ beside it).
        #[arg(long, value_name = "DIR")]
        html: Option<PathBuf>,
    },
    /// Compare checkpoints on the suite: leaderboard, regressions, fixes, movements, significance.
    ///
    /// Exit status: 0 the gate passed, 1 it failed (see --fail-on, --max-drop), 2 nothing could be judged.
    Compare {
        /// Candidates: registered names, checkpoint directories or hub-id[@revision].
        checkpoints: Vec<String>,
        #[arg(long, default_value = "cases")]
        suite: PathBuf,
        /// The baseline, instead of the suite file's [model] (FITCHECK_MODEL is ignored here).
        #[arg(long)]
        baseline: Option<String>,
        /// Compare every checkpoint registered in the suite file's [[checkpoints]].
        #[arg(long)]
        all: bool,
        /// Use only files already in the hub cache.
        #[arg(long)]
        offline: bool,
        /// When to exit with status 1.
        #[arg(long, value_enum, default_value_t = FailOn::Regression)]
        fail_on: FailOn,
        /// Also fail when a suite mean drops by more than this, e.g. recall=0.02 (repeatable).
        #[arg(long, value_name = "METRIC=DROP", value_parser = compare::parse_max_drop)]
        max_drop: Vec<(fitcheck::metrics::Metric, f64)>,
        /// Write the candidate's snapshots as the accepted ones (for a pull request adopting it).
        #[arg(long)]
        write_snapshots: bool,
        /// Write the comparison, at full precision, with a convention manifest, to this JSON file.
        #[arg(long, value_name = "PATH")]
        json: Option<PathBuf>,
        /// Write the comparison as GitHub-flavoured Markdown.
        #[arg(long, value_name = "PATH")]
        markdown: Option<PathBuf>,
        /// Write the comparison as an HTML report with both contact sheets to DIR/index.html.
        #[arg(long, value_name = "DIR")]
        html: Option<PathBuf>,
    },
    /// List the revisions of watched hub models (the suite's [watch]) that the suite has not registered.
    ///
    /// One line per new revision: repository, commit sha, why it is new. Needs the hub (HF_ENDPOINT,
    /// HF_TOKEN); offline it is an error. Exit status: 0 listed (maybe nothing), 2 the hub or suite failed.
    Hub {
        #[arg(long, default_value = "cases")]
        suite: PathBuf,
        /// Print JSON ({"endpoint", "new": [{repo, sha, revision, why, branch}]}) for scripts.
        #[arg(long)]
        json: bool,
        /// Look at this one repository (org/name) instead of the suite's [watch].
        #[arg(long)]
        repo: Option<String>,
        /// With --repo: the branch, tag or commit to look at.
        #[arg(long, default_value = "main", requires = "repo")]
        revision: String,
    },
    /// Switch the suite's [model] to a hub revision and register it in [[checkpoints]], editing only
    /// those lines of the suite file.
    Adopt {
        /// org/name@<commit sha>.
        model: String,
        #[arg(long, default_value = "cases")]
        suite: PathBuf,
        /// The registry name (default: the repository name and the short sha).
        #[arg(long)]
        name: Option<String>,
    },
    /// List the catalog items a selector matches (an id, a glob, or tag:a+b).
    Items {
        selector: String,
        #[arg(long, default_value = "cases")]
        suite: PathBuf,
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
        #[arg(long, value_enum)]
        alpha: Option<AlphaArg>,
        /// Convert to RGB then resize (rgb_first), or resize in the source mode then convert (open_clip).
        #[arg(long, value_enum, default_value_t = Pipeline::RgbFirst)]
        pipeline: Pipeline,
    },
    /// Build the embedding cache, or one shard of it on one of several machines.
    Cache {
        #[command(subcommand)]
        action: CacheAction,
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

#[derive(Subcommand)]
enum CacheAction {
    /// Embed the catalog (or one shard of it) into the cache that `cargo test` reads.
    ///
    /// With --shard i/n, embeds the items whose id hashes into part i of n and writes them to a shard
    /// file (default: <cache>/shards/); shard files in <cache>/shards/ are read with the cache.
    Build {
        #[arg(long, default_value = "cases")]
        suite: PathBuf,
        #[command(flatten)]
        model: ModelArgs,
        /// Which part of the catalog, e.g. 3/20 (default: all of it, into the cache itself).
        #[arg(long, value_parser = |s: &str| s.parse::<fitcheck::cache::Shard>())]
        shard: Option<fitcheck::cache::Shard>,
        /// Where to write the shard file.
        #[arg(long, value_name = "PATH", requires = "shard")]
        out: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum AlphaArg {
    Drop,
    White,
    Black,
}

impl From<AlphaArg> for Alpha {
    fn from(a: AlphaArg) -> Alpha {
        match a {
            AlphaArg::Drop => Alpha::Drop,
            AlphaArg::White => Alpha::White,
            AlphaArg::Black => Alpha::Black,
        }
    }
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

impl ModelArgs {
    /// The environment's overrides, with these flags taking precedence.
    fn overrides(self) -> Overrides {
        let mut overrides = Overrides::from_env();
        overrides.model = self.model.or(overrides.model);
        overrides.revision = self.revision.or(overrides.revision);
        overrides.offline |= self.offline;
        overrides
    }
}

/// Prints a command's report, or its error on stderr with exit status 2.
fn finish(result: fitcheck::Result<(String, Exit)>) -> ExitCode {
    match result {
        Ok((text, exit)) => {
            print!("{text}");
            exit.into()
        }
        Err(e) => {
            eprintln!("error: {e}");
            Exit::Broken.into()
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { suite, model, json, markdown, html } => {
            finish(commands::run(&suite, &model.overrides(), &Outputs { json, markdown, html }))
        }
        Command::Cache { action: CacheAction::Build { suite, model, shard, out } } => {
            finish(commands::cache_build(&suite, &model.overrides(), shard, out.as_deref()).map(|t| (t, Exit::Passed)))
        }
        Command::Compare {
            checkpoints,
            suite,
            baseline,
            all,
            offline,
            fail_on,
            max_drop,
            write_snapshots,
            json,
            markdown,
            html,
        } => finish(commands::compare(&CompareRequest {
            suite,
            checkpoints,
            baseline,
            all,
            offline,
            gate: Gate { fail_on, max_drop },
            write_snapshots,
            outputs: Outputs { json, markdown, html },
        })),
        Command::Hub { suite, json, repo, revision } => {
            let only = repo.map(|r| (r, revision));
            finish(commands::hub(&suite, json, only.as_ref().map(|(r, v)| (r.as_str(), v.as_str()))))
        }
        Command::Adopt { model, suite, name } => finish(commands::adopt(&suite, &model, name.as_deref())),
        Command::Items { selector, suite } => finish(commands::items(&suite, &selector).map(|t| (t, Exit::Passed))),
        Command::Embed { model, revision, texts, images, json, tokens, offline, alpha, pipeline } => {
            let alpha = alpha.map(Alpha::from);
            let request = EmbedRequest { model, revision, texts, images, json, tokens, offline, alpha, pipeline };
            finish(embed_command(&request).map(|t| (t, Exit::Passed)))
        }
        Command::Test { suite, args } => {
            let argv = std::iter::once("fitcheck-test".to_string()).chain(args);
            harness::run(&suite, libtest_mimic::Arguments::from_iter(argv))
        }
    }
}
