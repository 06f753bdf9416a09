//! The `hubside` command line: run tasks on Hub models natively, and serve the page + a Hub mirror.

mod long_form;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

mod live;
use hubside::hub::{Progress, Repo, Status};
use hubside::generation::EarlyStopping;
use hubside::tasks::speech_recognition::{ReturnTimestamps, SpeechRecognizer, SpeechTask, TranscribeOptions};
use hubside::tasks::subtitles::{self, SubtitleFormat};
use hubside::tasks::text_classification::TextClassifier;
use hubside::tasks::translation::{TranslateOptions, Translator};
use hubside::tasks::{LoadOptions, Task};
use hubside::weights::WeightDType;

#[derive(Parser)]
#[command(name = "hubside", version, about = "Hugging Face Hub models, client-side (CLI and local server)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Threads to compute with (default: all cores).
    #[arg(long, global = true, value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
    /// Seconds a download may take to connect or to answer, and the window in which a body must
    /// keep arriving (at least 1 KiB per window), before it fails.
    #[arg(long, global = true, value_name = "SECS", default_value_t = hubside::hub::DEFAULT_TIMEOUT_SECS, value_parser = clap::value_parser!(u64).range(1..=86400))]
    timeout: u64,
}

/// How downloads treat the network, from `--timeout` (set once in `main`).
static NET: std::sync::OnceLock<hubside::hub::NetOptions> = std::sync::OnceLock::new();

/// `Repo::open` with the command line's download options.
fn open_repo(model: &str, endpoint: &str, revision: Option<&str>) -> hubside::Result<Repo> {
    Ok(Repo::open(model, Some(endpoint), revision)?.with_net(NET.get().cloned().unwrap_or_default()))
}

#[derive(Args)]
struct ModelArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// How weight matrices are stored and multiplied: fp32, fp16, q8 or q4.
    #[arg(long, default_value = "fp32", value_parser = parse_dtype)]
    dtype: WeightDType,
}

/// Where a model comes from; `convert` takes only this (its `--dtype` is the ggml file's storage).
#[derive(Args)]
struct SourceArgs {
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

fn parse_dtype(name: &str) -> Result<WeightDType, String> {
    WeightDType::parse(name).map_err(|e| e.to_string())
}

impl ModelArgs {
    fn load_options(&self) -> LoadOptions {
        LoadOptions { dtype: self.dtype, file: None }
    }

    fn repo(&self) -> hubside::Result<Repo> {
        self.source.repo()
    }
}

impl SourceArgs {
    fn repo(&self) -> hubside::Result<Repo> {
        let repo = open_repo(&self.model, &self.endpoint, Some(&self.revision))?;
        Ok(if self.progress { repo.with_progress(Box::new(print_progress)) } else { repo })
    }
}

#[derive(Subcommand)]
enum Command {
    /// Sentiment analysis / text classification of each TEXT.
    #[command(visible_aliases = task_names(Task::TextClassification), mut_arg("model", |arg| default_model(arg, Task::TextClassification)))]
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
    #[cfg(feature = "bench")]
    Bench {
        /// What to benchmark: sentiment, translation, transcription, or kernels (matrix products).
        #[arg(default_value = "sentiment")]
        what: String,
        /// Timed runs (the median is reported).
        #[arg(long, default_value_t = 10)]
        runs: usize,
        /// sentiment: a BERT uncased tokenizer.json.
        #[arg(long, default_value = "tests/fixtures/hub/tiny-random/distilbert-sst2/tokenizer.json")]
        tokenizer: PathBuf,
        /// translation: input tokens and new tokens.
        #[arg(long, default_value_t = 32)]
        input_tokens: usize,
        #[arg(long, default_value_t = 64)]
        new_tokens: usize,
        /// transcription: the Whisper model (repo id with --endpoint, or a directory).
        #[arg(long, default_value = "Systran/faster-whisper-tiny.en")]
        model: String,
        #[arg(long, default_value = hubside::hub::DEFAULT_ENDPOINT)]
        endpoint: String,
        /// transcription: the audio file.
        #[arg(long, default_value = "tests/fixtures/audio/jfk16.wav")]
        audio: PathBuf,
    },
    /// Speech recognition (Whisper) of each audio FILE (WAV, FLAC, MP3, OGG/Vorbis).
    #[command(visible_aliases = task_names(Task::SpeechRecognition), mut_arg("model", |arg| default_model(arg, Task::SpeechRecognition)))]
    Transcribe {
        #[command(flatten)]
        model: ModelArgs,
        /// Spoken language (code or English name); detected when omitted (multilingual models).
        #[arg(long)]
        language: Option<String>,
        /// transcribe, or translate (speech to English).
        #[arg(long, default_value = "transcribe")]
        task: String,
        /// Print timed segments.
        #[arg(long)]
        timestamps: bool,
        /// Print timed words, one per line (with --format json: one chunk per word; with srt/vtt:
        /// words gathered into cues of --max-line-width characters, default 42).
        #[arg(long)]
        word_timestamps: bool,
        /// One JSON object per file: text, chunks, language, tokens (the same as --format json).
        #[arg(long, conflicts_with = "format")]
        json: bool,
        /// What to print: text (the transcript; with --timestamps, one timed segment per line),
        /// json (as --json), or subtitles: srt or vtt (timed segments; timestamps are implied).
        #[arg(long, value_parser = ["text", "json", "srt", "vtt"])]
        format: Option<String>,
        /// Subtitles: gather chunks into cues of at most this many characters (default: one cue
        /// per segment).
        #[arg(long)]
        max_line_width: Option<usize>,
        /// Write each FILE's result to DIR/<file stem>.<txt|json|srt|vtt> instead of printing it
        /// (needed for subtitles of more than one file).
        #[arg(long, value_name = "DIR")]
        output_dir: Option<PathBuf>,
        /// A whisper.cpp ggml model file in the repo (e.g. ggml-tiny.en-q5_1.bin in ggerganov/whisper.cpp).
        #[arg(long)]
        model_file: Option<String>,
        /// Replay each file through a live transcription session as if it were being recorded,
        /// printing `committed | tentative` text to stderr as it is decoded.
        #[arg(long)]
        live: bool,
        /// With --live: how fast to replay (1: real time, 2: twice as fast, 0: as fast as decoding goes).
        #[arg(long, default_value_t = 1.0, requires = "live")]
        live_speed: f64,
        #[command(flatten)]
        long_form: long_form::LongFormArgs,
        #[arg(required = true)]
        file: Vec<PathBuf>,
    },
    /// Translate each TEXT (Marian / opus-mt, T5, M2M100, NLLB).
    #[command(visible_aliases = task_names(Task::Translation), mut_arg("model", |arg| default_model(arg, Task::Translation)))]
    Translate {
        #[command(flatten)]
        model: ModelArgs,
        /// Source language (T5: picks translation_SRC_to_TGT; Marian: checked against the model;
        /// M2M100: en, de, ...; NLLB: eng_Latn, deu_Latn, ...).
        #[arg(long)]
        src_lang: Option<String>,
        /// Target language (T5: as above; multilingual Marian: the >>TGT<< token; M2M100, NLLB:
        /// the language token forced first, in their codes as for --src-lang).
        #[arg(long)]
        tgt_lang: Option<String>,
        /// Beam width (default: the model's generation_config; 1 = greedy).
        #[arg(long)]
        num_beams: Option<usize>,
        /// Most tokens to generate per piece of text (default: the model's generation_config).
        #[arg(long)]
        max_new_tokens: Option<usize>,
        /// Beam search stop rule: true, false or never, as in transformers (default: the model's
        /// generation_config).
        #[arg(long, value_parser = parse_early_stopping)]
        early_stopping: Option<EarlyStopping>,
        /// One JSON object per text: translation_text, input_ids, generated_ids.
        #[arg(long)]
        json: bool,
        #[arg(required = true)]
        text: Vec<String>,
    },
    /// Write a CTranslate2 Whisper model (Systran/faster-whisper-*) as a whisper.cpp ggml file.
    Convert {
        #[command(flatten)]
        model: SourceArgs,
        /// Target format: ggml (whisper.cpp).
        #[arg(long, default_value = "ggml")]
        to: String,
        /// Storage of the matrices: f32, f16, q4_0, q4_1, q5_0, q5_1, q8_0, q2_k … q6_k.
        #[arg(long, default_value = "f16")]
        dtype: String,
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// The models suggested for each task (or for TASK), with their estimated sizes; any other
    /// repo id of a supported architecture works as well.
    Models {
        /// A task name or alias (default: every task).
        task: Option<String>,
        /// Print one JSON object per model.
        #[arg(long)]
        json: bool,
    },
    /// Which weight files a model would download, their size, its parameters and the memory it
    /// needs per dtype, found before downloading (safetensors headers by HTTP Range requests).
    Info {
        /// Hub repo id (org/name) or a local directory in Hub layout.
        repo: String,
        /// Hub endpoint.
        #[arg(long, default_value = hubside::hub::DEFAULT_ENDPOINT)]
        endpoint: String,
        /// Branch, tag or commit.
        #[arg(long, default_value = hubside::hub::DEFAULT_REVISION)]
        revision: String,
        /// The weights file, for repos of several single-file models (e.g. a ggml file).
        #[arg(long)]
        file: Option<String>,
        /// Print the report as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Serve the page (www/, pkg/) and a local Hub mirror at /hub; pages are cross-origin
    /// isolated (COOP/COEP headers) so they run the threaded wasm build, unless --no-isolation.
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
        /// Send no COOP/COEP headers: pages are not cross-origin isolated and run the
        /// single-thread wasm build (as from a plain static host).
        #[arg(long)]
        no_isolation: bool,
    },
}

/// `--model`'s default: the task's default model in the table.
fn default_model(arg: clap::Arg, task: Task) -> clap::Arg {
    arg.default_value(task.info().default_model).required(false)
}

/// A task's names in the table, as aliases of its subcommand.
fn task_names(task: Task) -> Vec<&'static str> {
    let info = task.info();
    std::iter::once(info.name).chain(info.aliases.iter().copied()).collect()
}

/// `true`, `false` or `never`, read as generation_config reads `early_stopping`.
fn parse_early_stopping(value: &str) -> Result<EarlyStopping, String> {
    let json = match value {
        "true" => serde_json::Value::Bool(true),
        "false" => serde_json::Value::Bool(false),
        other => serde_json::Value::String(other.to_string()),
    };
    EarlyStopping::from_json(&json).ok_or_else(|| format!("'{value}' is not true, false or never"))
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

/// One line of `hubside models`: repo id, size class, what it does.
fn describe_suggestion(suggestion: &hubside::tasks::suggestions::Suggestion) -> String {
    use hubside::weights::{fit::format_bytes, WeightDType};
    format!(
        "  {}  {}M parameters, about {} as fp32, {} as q8: {}\n",
        suggestion.model,
        suggestion.parameters / 1_000_000,
        format_bytes(suggestion.estimated_bytes(WeightDType::Fp32)),
        format_bytes(suggestion.estimated_bytes(WeightDType::Q8)),
        suggestion.about
    )
}

/// `hubside info` in words: the files, the download, the parameters, the memory per dtype.
fn describe_info(repo: &str, info: &hubside::weights::fit::ModelInfo) -> String {
    use hubside::weights::fit::{format_bytes, WeightDType};
    let size = |bytes: Option<u64>| bytes.map_or("size unknown".to_string(), format_bytes);
    let mut out = format!("{repo}\n");
    for file in &info.files {
        out += &format!("  {}  {}\n", file.file, size(file.size));
    }
    out += &format!("download: {}\n", size(info.download_bytes));
    let about = if info.exact { "" } else { "about " };
    if let Some(parameters) = info.parameters {
        out += &format!("parameters: {about}{parameters}\n");
    }
    match &info.memory {
        Some(memory) => {
            let per_dtype: Vec<String> =
                WeightDType::ALL.iter().map(|&d| format!("{} {}", d.name(), format_bytes(memory.get(d)))).collect();
            out += &format!("memory: {about}{}\n", per_dtype.join(" · "));
        }
        None => out += "memory: unknown\n",
    }
    if let Some(note) = &info.note {
        out += &format!("note: {note}\n");
    }
    out
}

/// Sizes rayon's global pool, which the kernels use, and candle's own matmul threads (it reads
/// rayon's variable) alike. Must run before anything computes.
fn use_threads(threads: u16) -> hubside::Result<()> {
    std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads.into())
        .build_global()
        .map_err(|e| hubside::Error::Io(format!("cannot start {threads} threads: {e}")))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let net = hubside::hub::NetOptions { timeout: std::time::Duration::from_secs(cli.timeout), ..Default::default() };
    let _ = NET.set(net);
    match cli.threads.map_or(Ok(()), use_threads).and_then(|()| run(cli)) {
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
            let started = std::time::Instant::now();
            let classifier = pollster::block_on(TextClassifier::load_with(&model.repo()?, &model.load_options()))?;
            if model.source.progress {
                eprintln!("model loaded in {:.2} s", started.elapsed().as_secs_f64());
            }
            let started = std::time::Instant::now();
            let results = classifier.classify(&text)?;
            if model.source.progress {
                eprintln!("{} texts classified in {:.3} s", text.len(), started.elapsed().as_secs_f64());
            }
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
        #[cfg(feature = "bench")]
        Command::Bench { what, runs, tokenizer, input_tokens, new_tokens, model, endpoint, audio } => {
            let read = |path: &PathBuf| std::fs::read(path).map_err(|e| hubside::Error::Io(format!("{}: {e}", path.display())));
            let json = match what.as_str() {
                "sentiment" => serde_json::to_string(&pollster::block_on(hubside::bench::sentiment(read(&tokenizer)?, runs))?),
                "translation" => serde_json::to_string(&hubside::bench::translation(input_tokens, new_tokens, runs)?),
                "kernels" => serde_json::to_string(&hubside::bench::kernels(runs)?),
                "transcription" => {
                    let decoded = hubside::audio::decode::decode(&read(&audio)?, &audio.display().to_string())?;
                    let mono = hubside::audio::to_mono_16k(hubside::audio::Pcm {
                        samples: &decoded.samples,
                        sample_rate: decoded.sample_rate,
                        channels: decoded.channels,
                    })?;
                    let repo = open_repo(&model, &endpoint, None)?;
                    serde_json::to_string(&pollster::block_on(hubside::bench::transcription(&repo, &mono, 16_000, runs))?)
                }
                other => {
                    return Err(hubside::Error::Input(format!(
                        "unknown benchmark '{other}'; available: sentiment, translation, transcription, kernels"
                    )))
                }
            };
            println!("{}", json.map_err(|e| hubside::Error::Io(e.to_string()))?);
            Ok(())
        }
        Command::Transcribe { model, language, task, timestamps, word_timestamps, json, format, max_line_width, output_dir, model_file, live, live_speed, long_form, file } => {
            if live && (word_timestamps || output_dir.is_some() || matches!(format.as_deref(), Some("srt" | "vtt"))) {
                return Err(hubside::Error::Input(
                    "--live prints the session's updates: subtitles, word timestamps and --output-dir are for transcriptions without --live".into(),
                ));
            }
            let format = if json { "json".to_string() } else { format.unwrap_or_else(|| "text".into()) };
            let subtitles = match format.as_str() {
                "srt" | "vtt" => Some(SubtitleFormat::parse(&format)?),
                _ => None,
            };
            if subtitles.is_some() && file.len() > 1 && output_dir.is_none() {
                return Err(hubside::Error::Input(format!(
                    "--format {format} with {} files: give --output-dir DIR to write one subtitle file per input",
                    file.len()
                )));
            }
            // Subtitles are made of timed segments, or of words gathered into lines.
            let return_timestamps =
                if word_timestamps { ReturnTimestamps::Words } else { (timestamps || subtitles.is_some()).into() };
            let max_line_width = max_line_width.or(word_timestamps.then_some(subtitles::DEFAULT_LINE_WIDTH));
            let options = long_form.apply(TranscribeOptions { language, task: SpeechTask::parse(&task)?, return_timestamps, ..Default::default() });
            // Each input's output file name, when writing files: two inputs must not share one.
            let stem = |path: &PathBuf| path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "audio".into());
            if output_dir.is_some() {
                let mut seen = std::collections::HashMap::new();
                for path in &file {
                    if let Some(other) = seen.insert(stem(path), path) {
                        return Err(hubside::Error::Input(format!(
                            "{} and {} would both be written as {}.*: give them different names or run them separately",
                            other.display(),
                            path.display(),
                            stem(path)
                        )));
                    }
                }
            }
            if let Some(dir) = &output_dir {
                std::fs::create_dir_all(dir).map_err(|e| hubside::Error::Io(format!("{}: {e}", dir.display())))?;
            }
            let started = std::time::Instant::now();
            let load = LoadOptions { file: model_file.clone(), ..model.load_options() };
            let recognizer = pollster::block_on(SpeechRecognizer::load_with(&model.repo()?, &load))?;
            if model.source.progress {
                eprintln!("model loaded in {:.2} s", started.elapsed().as_secs_f64());
            }
            if live {
                // A live session replays the files as if recorded; its own output (committed and
                // tentative text per decode, or JSON lines).
                let live_options = hubside::whisper::live::LiveOptions { language: options.language.clone(), task: options.task, ..Default::default() };
                return live::replay_files(&recognizer, &file, live_options, live_speed, format == "json", timestamps);
            }
            let mut failed = 0;
            for path in &file {
                let result = std::fs::read(path)
                    .map_err(|e| hubside::Error::Io(e.to_string()))
                    .and_then(|bytes| hubside::audio::decode::decode(&bytes, &path.display().to_string()))
                    .and_then(|audio| {
                        let pcm = hubside::audio::Pcm { samples: &audio.samples, sample_rate: audio.sample_rate, channels: audio.channels };
                        let started = std::time::Instant::now();
                        let mut on_partial = |p: &hubside::tasks::speech_recognition::Partial| {
                            if model.source.progress {
                                eprintln!("{}: window {} done, {:.1}/{:.1} s", path.display(), p.window + 1, p.processed, p.duration);
                            }
                        };
                        let result = recognizer.transcribe(pcm, &options, &mut on_partial)?;
                        if model.source.progress {
                            let elapsed = started.elapsed().as_secs_f64();
                            eprintln!("{}: {:.2} s for {:.2} s of audio (real-time factor {:.3})", path.display(), elapsed, result.duration, elapsed / result.duration.max(1e-9));
                        }
                        Ok(result)
                    })
                    .and_then(|result| {
                        // One file's output, without the file-name prefix a shared stdout needs.
                        let (text, extension) = match subtitles {
                            Some(sub) => (subtitles::write(&result.chunks, sub, max_line_width)?, sub.extension()),
                            None if format == "json" => {
                                let mut value = serde_json::to_value(&result).map_err(|e| hubside::Error::Io(e.to_string()))?;
                                value["file"] = path.display().to_string().into();
                                (format!("{value}\n"), "json")
                            }
                            None if options.return_timestamps.any() => {
                                let lines: String = result
                                    .chunks
                                    .iter()
                                    .map(|c| format!("[{:>7.2} -> {:>7.2}] {}\n", c.timestamp[0], c.timestamp[1], c.text.trim()))
                                    .collect();
                                (lines, "txt")
                            }
                            None => (format!("{}\n", result.text.trim()), "txt"),
                        };
                        Ok((text, extension))
                    });
                match result {
                    Ok((text, extension)) => match &output_dir {
                        Some(dir) => {
                            let out = dir.join(format!("{}.{extension}", stem(path)));
                            if let Err(e) = std::fs::write(&out, text) {
                                eprintln!("error: {}: {e}", out.display());
                                failed += 1;
                            } else if model.source.progress {
                                eprintln!("{}: wrote {}", path.display(), out.display());
                            }
                        }
                        // Several files on stdout: JSON lines name their file; text is prefixed by it.
                        None if file.len() > 1 && format != "json" && options.return_timestamps.any() => print!("{}:\n{text}", path.display()),
                        None if file.len() > 1 && format != "json" => print!("{}: {text}", path.display()),
                        None => print!("{text}"),
                    },
                    Err(e) => {
                        eprintln!("error: {}: {e}", path.display());
                        failed += 1;
                    }
                }
            }
            match failed {
                0 => Ok(()),
                n => Err(hubside::Error::Io(format!("{n} of {} files could not be transcribed", file.len()))),
            }
        }
        Command::Translate { model, src_lang, tgt_lang, num_beams, max_new_tokens, early_stopping, json, text } => {
            let started = std::time::Instant::now();
            let translator = pollster::block_on(Translator::load_with(&model.repo()?, &model.load_options()))?;
            if model.source.progress {
                eprintln!("model loaded in {:.2} s", started.elapsed().as_secs_f64());
            }
            let options = TranslateOptions { src_lang, tgt_lang, num_beams, max_new_tokens, early_stopping, ..Default::default() };
            for text in &text {
                let started = std::time::Instant::now();
                let result = translator.translate(text, &options, None)?;
                if model.source.progress {
                    let elapsed = started.elapsed().as_secs_f64();
                    let new_tokens = result.generated_ids.len().saturating_sub(1);
                    eprintln!("{new_tokens} new tokens in {elapsed:.2} s ({:.1} tokens/s)", new_tokens as f64 / elapsed.max(1e-9));
                }
                if json {
                    println!("{}", serde_json::to_string(&result).map_err(|e| hubside::Error::Io(e.to_string()))?);
                } else {
                    println!("{}", result.translation_text);
                }
            }
            Ok(())
        }
        Command::Convert { model, to, dtype, out } => {
            use hubside::weights::{ctranslate2, ggml::FileType, ggml_writer};
            if to != "ggml" {
                return Err(hubside::Error::Input(format!("--to {to}: only ggml is supported")));
            }
            let file_type = FileType::parse(&dtype).ok_or_else(|| {
                hubside::Error::Input(format!("unknown --dtype '{dtype}'; supported: {}", FileType::names()))
            })?;
            let repo = model.repo()?;
            let tensors = ctranslate2::from_bytes(&pollster::block_on(repo.get_blob("model.bin"))?, "model.bin")?;
            let (tokenizer, _) = pollster::block_on(hubside::tokenizer::load(&repo))?;
            let written = ggml_writer::convert_ctranslate2(&tensors, &tokenizer, file_type)?;
            std::fs::write(&out, &written).map_err(|e| hubside::Error::Io(format!("{}: {e}", out.display())))?;
            eprintln!("wrote {} ({} bytes, {})", out.display(), written.len(), file_type.name());
            Ok(())
        }
        Command::Models { task, json } => {
            let tasks: Vec<&hubside::tasks::TaskInfo> = match task {
                Some(name) => vec![Task::parse(&name)?.task.info()],
                None => hubside::tasks::TASKS.iter().collect(),
            };
            for info in tasks {
                if !json {
                    println!("{} (model types: {})", info.name, info.model_types().join(", "));
                }
                for suggestion in info.suggested {
                    if json {
                        let mut value = serde_json::to_value(suggestion.info()).map_err(|e| hubside::Error::Io(e.to_string()))?;
                        value["task"] = info.name.into();
                        println!("{value}");
                    } else {
                        print!("{}", describe_suggestion(suggestion));
                    }
                }
            }
            Ok(())
        }
        Command::Info { repo, endpoint, revision, file, json } => {
            let source = open_repo(&repo, &endpoint, Some(&revision))?;
            let info = pollster::block_on(hubside::weights::fit::model_info(&source, file.as_deref()))?;
            if json {
                println!("{}", serde_json::to_string(&info).map_err(|e| hubside::Error::Io(e.to_string()))?);
            } else {
                print!("{}", describe_info(&repo, &info));
            }
            Ok(())
        }
        Command::Serve { addr, hub, roots, pkg, log, no_isolation } => {
            let options = hubside::serve::ServeOptions { roots, pkg: Some(pkg), hub: hub.clone(), log, cross_origin_isolation: !no_isolation };
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
