//! Hostile inputs (issue 13): one case per class of file that used to panic, hang, exhaust memory,
//! succeed when it must fail, or give a silently wrong result. Each hostile file is made here from
//! the tiny fixtures (a fixture model copied to a temp directory with one file corrupted), and
//! each case runs in a child process under a memory limit (RLIMIT_AS) and a kill timeout: the
//! built CLI for whole-model cases, this test binary itself (one test, `HOSTILE_CHILD` set) for
//! parser cases. A case passes when the child ends by itself, in time, with the CLI's error exit
//! code (not 101 = panic, not a signal = abort or out of memory) and a message naming the problem.
// Child processes and rlimits: native only (tests/web_hostile.rs covers the parsers in wasm).
#![cfg(not(target_arch = "wasm32"))]

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
const CLI: &str = env!("CARGO_BIN_EXE_hubside");
/// Address space for each child: far above what the tiny models need, far below what the
/// hostile files used to ask for.
const MEMORY_LIMIT: u64 = 3 << 30;
/// Generous: "does not hang", on a busy 2-core machine.
const TIME_LIMIT: Duration = Duration::from_secs(60);

struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Run `command` under the memory limit; fail the test if it hangs or dies of a signal.
fn run_limited(mut command: Command) -> Outcome {
    // SAFETY: only setrlimit, which is async-signal-safe, runs between fork and exec.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit { rlim_cur: MEMORY_LIMIT, rlim_max: MEMORY_LIMIT };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = pipe.read_to_end(&mut text);
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > TIME_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} hung: killed after {TIME_LIMIT:?}\n{}", stderr.join().unwrap());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    if let Some(signal) = status.signal() {
        panic!("{command:?} died of signal {signal} (abort, stack overflow or out of memory)\n{stderr}");
    }
    Outcome { code: status.code(), stdout, stderr }
}

/// The CLI refused the input cleanly: exit code 1 (not 101, a panic) and `error: ...` naming
/// `needle`.
#[track_caller]
fn assert_refused(outcome: &Outcome, needle: &str) {
    assert!(!outcome.stderr.contains("panicked"), "panic:\n{}", outcome.stderr);
    assert_eq!(outcome.code, Some(1), "stdout:\n{}\nstderr:\n{}", outcome.stdout, outcome.stderr);
    assert!(
        outcome.stderr.contains("error: ") && outcome.stderr.contains(needle),
        "expected an error naming '{needle}', got:\n{}",
        outcome.stderr
    );
}

/// A fixture model copied into its own temp directory, removed when dropped.
struct Model(PathBuf);

impl Model {
    fn copy(name: &str) -> Model {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("hubside-hostile-{}-{n}-{}", std::process::id(), name.replace('/', "-")));
        std::fs::create_dir_all(&dir).unwrap();
        for entry in std::fs::read_dir(Path::new(FIXTURES).join("hub/tiny-random").join(name)).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
        }
        Model(dir)
    }

    fn read(&self, file: &str) -> Vec<u8> {
        std::fs::read(self.0.join(file)).unwrap()
    }

    fn write(&self, file: &str, bytes: impl AsRef<[u8]>) -> &Self {
        std::fs::write(self.0.join(file), bytes).unwrap();
        self
    }

    fn edit_json(&self, file: &str, edit: impl FnOnce(&mut Value)) -> &Self {
        let mut value: Value = serde_json::from_slice(&self.read(file)).unwrap();
        edit(&mut value);
        self.write(file, serde_json::to_vec(&value).unwrap())
    }

    fn cli(&self, command: &str, args: &[&str]) -> Outcome {
        let mut cli = Command::new(CLI);
        cli.args([command, "--model", self.0.to_str().unwrap(), "--threads", "2"]).args(args);
        run_limited(cli)
    }

    fn sentiment(&self) -> Outcome {
        self.cli("sentiment", &["I love this movie"])
    }

    fn translate(&self, args: &[&str]) -> Outcome {
        self.cli("translate", args)
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Run `body` in a child process of this test binary (only the test `name`), under the same
/// limits as the CLI; in that child, run it.
fn in_child(name: &str, body: impl FnOnce()) {
    if std::env::var_os("HOSTILE_CHILD").is_some() {
        body();
        return;
    }
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.args([name, "--exact", "--test-threads=1", "--nocapture"]).env("HOSTILE_CHILD", "1");
    let outcome = run_limited(command);
    assert!(
        outcome.code == Some(0) && outcome.stdout.contains("1 passed"),
        "child test {name} failed:\n{}\n{}",
        outcome.stdout,
        outcome.stderr
    );
}

// ---------------------------------------------------------------------------------------------
// tokenizer.json

#[test]
fn tokenizer_json_cut_inside_decoder() {
    let model = Model::copy("distilbert-sst2");
    let json = model.read("tokenizer.json");
    let at = json.windows(10).position(|w| w == b"\"decoder\":").unwrap();
    model.write("tokenizer.json", &json[..at + 14]);
    assert_refused(&model.sentiment(), "tokenizer.json: not valid JSON");
    model.write("tokenizer.json", br#"{"decoder":"#);
    assert_refused(&model.sentiment(), "tokenizer.json: not valid JSON");
}

#[test]
fn tokenizer_json_exponential_replace_normalizers() {
    let model = Model::copy("distilbert-sst2");
    let doubling = json!({ "type": "Replace", "pattern": { "String": "a" }, "content": "aa" });
    model.edit_json("tokenizer.json", |t| {
        t["normalizer"] = json!({ "type": "Sequence", "normalizers": vec![doubling; 40] });
    });
    assert_refused(&model.sentiment(), "Replace normalizers can grow a text");
}

#[test]
fn tokenizer_json_padding_of_a_billion() {
    let model = Model::copy("distilbert-sst2");
    let padding = |strategy: Value, multiple: Value| {
        json!({ "strategy": strategy, "direction": "Right", "pad_to_multiple_of": multiple,
                "pad_id": 0, "pad_type_id": 0, "pad_token": "[PAD]" })
    };
    model.edit_json("tokenizer.json", |t| t["padding"] = padding(json!({ "Fixed": 1_000_000_000 }), Value::Null));
    assert_refused(&model.sentiment(), "padding.strategy.Fixed");
    model.edit_json("tokenizer.json", |t| t["padding"] = padding(json!("BatchLongest"), json!(1_000_000_000)));
    assert_refused(&model.sentiment(), "padding.pad_to_multiple_of");
}

#[test]
fn tokenizer_json_token_ids_past_the_vocabulary() {
    let model = Model::copy("distilbert-sst2");
    model.edit_json("tokenizer.json", |t| t["model"]["vocab"]["love"] = json!(u32::MAX));
    assert_refused(&model.sentiment(), "model.vocab holds a token id");
    // Below the tokenizer's limit but past this model's 30522-row embedding table.
    model.edit_json("tokenizer.json", |t| t["model"]["vocab"]["love"] = json!(1_000_000));
    assert_refused(&model.sentiment(), "token id 1000000 is outside");
}

#[test]
fn tokenizer_json_unigram_piece_of_200_kb() {
    // Found by fuzzing: the tokenizers crate drops a Unigram trie one stack frame per byte of a
    // piece, so a long piece overflowed the stack (SIGSEGV) once the model was dropped.
    let model = Model::copy("t5");
    model.edit_json("tokenizer.json", |t| t["model"]["vocab"][5][0] = json!("x".repeat(200_000)));
    assert_refused(&model.translate(&["The house is small."]), "model.vocab holds a piece of 200000 bytes");
}

#[test]
fn tokenizer_json_truncation_stride_past_its_length() {
    let model = Model::copy("t5");
    model.edit_json("tokenizer.json", |t| {
        t["truncation"] = json!({ "max_length": 1, "stride": 5, "strategy": "LongestFirst", "direction": "Right" });
    });
    assert_refused(&model.translate(&["The house is small."]), "truncation.stride 5 is not below");
}

#[test]
fn tokenizer_json_template_and_charsmap_the_crate_would_index_blindly() {
    let model = Model::copy("distilbert-sst2");
    model.edit_json("tokenizer.json", |t| {
        t["post_processor"] = json!({ "type": "TemplateProcessing", "pair": [], "special_tokens": {},
            "single": [{ "SpecialToken": { "id": "[NOPE]", "type_id": 0 } }] });
    });
    assert_refused(&model.sentiment(), "special token \"[NOPE]\", which it does not define");
    let model = Model::copy("t5");
    // A charsmap of 4 zero bytes: a trie of no units, which the crate would index at 0.
    model.edit_json("tokenizer.json", |t| t["normalizer"] = json!({ "type": "Precompiled", "precompiled_charsmap": "AAAAAA==" }));
    assert_refused(&model.translate(&["The house is small."]), "Precompiled normalizer: invalid SentencePiece model: charsmap trie is empty");
}

// ---------------------------------------------------------------------------------------------
// SentencePiece (.spm)

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn proto_bytes(field: u64, bytes: &[u8], out: &mut Vec<u8>) {
    varint(field << 3 | 2, out);
    varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

/// `spm` with one more piece (type 1 normal, 4 user-defined) appended.
fn with_piece(spm: &[u8], piece: &[u8], kind: u64) -> Vec<u8> {
    let mut entry = Vec::new();
    proto_bytes(1, piece, &mut entry);
    varint(3 << 3, &mut entry);
    varint(kind, &mut entry);
    let mut out = spm.to_vec();
    proto_bytes(1, &entry, &mut out);
    out
}

#[test]
fn spm_empty_user_defined_piece() {
    let model = Model::copy("marian-en-de");
    let spm = with_piece(&model.read("source.spm"), b"", 4);
    model.write("source.spm", spm);
    assert_refused(&model.translate(&["The house is small."]), "a piece is empty");
}

#[test]
fn spm_megabyte_piece() {
    let model = Model::copy("marian-en-de");
    let spm = with_piece(&model.read("source.spm"), &vec![b'a'; 1 << 20], 1);
    model.write("source.spm", spm);
    assert_refused(&model.translate(&["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"]), "longer than 512");
}

#[test]
fn spm_bpe_model_and_100_kb_of_text() {
    let model = Model::copy("marian-en-de");
    let mut spm = model.read("source.spm");
    let mut trainer = Vec::new();
    varint(3 << 3, &mut trainer);
    varint(2, &mut trainer); // model_type BPE; the last trainer_spec wins
    proto_bytes(2, &trainer, &mut spm);
    model.write("source.spm", spm);
    // Merging by rescanning every pair took 34 s here; the queue takes well under a second.
    let text = "the house is small and ".repeat(4_500);
    let outcome = model.translate(&["--max-new-tokens", "2", &text]);
    assert_eq!(outcome.code, Some(0), "{}", outcome.stderr);
}

/// A precompiled charsmap (Darts double array) with one entry: the byte 0xC3, the first half of
/// "é", maps to "x".
fn half_character_charsmap() -> Vec<u8> {
    let mut units = vec![0u32; 0x100];
    units[0] = 1 << 10; // root: children at offset 1
    units[1 ^ 0xC3] = 0xC3 | 1 << 8 | 1 << 10; // label 0xC3, has a leaf, leaf at offset 1 further
    units[(1 ^ 0xC3) ^ 1] = 1 << 31; // the leaf: replacement at byte 0
    let mut blob = ((units.len() * 4) as u32).to_le_bytes().to_vec();
    blob.extend(units.iter().flat_map(|u| u.to_le_bytes()));
    blob.extend_from_slice(b"x\0");
    blob
}

#[test]
fn spm_charsmap_mapping_half_a_character() {
    let model = Model::copy("marian-en-de");
    let mut normalizer = Vec::new();
    proto_bytes(1, b"hostile", &mut normalizer);
    proto_bytes(2, &half_character_charsmap(), &mut normalizer);
    let mut spm = model.read("source.spm");
    proto_bytes(3, &normalizer, &mut spm); // the last normalizer_spec wins
    model.write("source.spm", spm);
    // Not an error: the half-character entry is not applied, and "é" is translated as text.
    let outcome = model.translate(&["Café é"]);
    assert_eq!(outcome.code, Some(0), "{}", outcome.stderr);
}

#[test]
fn deberta_spm_charsmap_mapping_half_a_character() {
    // DeBERTa's spm.model goes to the tokenizers crate's Precompiled normaliser, not ours.
    let model = Model::copy("deberta-v3-sentiment");
    let mut normalizer = Vec::new();
    proto_bytes(1, b"hostile", &mut normalizer);
    proto_bytes(2, &half_character_charsmap(), &mut normalizer);
    let mut spm = model.read("spm.model");
    proto_bytes(3, &normalizer, &mut spm);
    model.write("spm.model", spm);
    let outcome = model.cli("sentiment", &["Café é"]);
    assert_eq!(outcome.code, Some(0), "{}", outcome.stderr);
}

#[test]
fn deberta_spm_bpe_model() {
    let model = Model::copy("deberta-v3-sentiment");
    let mut spm = model.read("spm.model");
    let mut trainer = Vec::new();
    varint(3 << 3, &mut trainer);
    varint(2, &mut trainer);
    proto_bytes(2, &trainer, &mut spm);
    model.write("spm.model", spm);
    assert_refused(&model.sentiment(), "unigram");
}

#[test]
fn deberta_spm_truncated() {
    let model = Model::copy("deberta-v3-sentiment");
    let spm = model.read("spm.model");
    model.write("spm.model", &spm[..spm.len() / 2]);
    assert_refused(&model.sentiment(), "spm.model");
}

// ---------------------------------------------------------------------------------------------
// Configs

#[test]
fn config_num_labels_of_a_trillion() {
    let model = Model::copy("distilbert-sst2");
    model.edit_json("config.json", |c| {
        let c = c.as_object_mut().unwrap();
        c.remove("id2label");
        c.remove("label2id");
        c.insert("num_labels".into(), json!(1_000_000_000_000u64));
    });
    assert_refused(&model.sentiment(), "num_labels");
}

#[test]
fn config_deberta_relative_positions() {
    for (field, value, needle) in [
        ("max_relative_positions", json!(1u64 << 40), "max_relative_positions"),
        ("position_buckets", json!(1u64 << 40), "position_buckets"),
        ("position_buckets", json!(1), "position_buckets"),
        ("conv_kernel_size", json!(1u64 << 40), "conv_kernel_size"),
        ("conv_groups", json!(0), "conv_groups"),
    ] {
        let model = Model::copy("deberta-v3-sentiment");
        model.edit_json("config.json", |c| {
            c[field] = value.clone();
            // A convolution to size from the groups.
            if field == "conv_groups" {
                c["conv_kernel_size"] = json!(3);
            }
        });
        assert_refused(&model.sentiment(), needle);
    }
}

#[test]
fn config_marian_max_position_embeddings() {
    let model = Model::copy("marian-en-de");
    for positions in [1u64 << 62, 100_000_000, 1_000_000_000_000] {
        model.edit_json("config.json", |c| c["max_position_embeddings"] = json!(positions));
        assert_refused(&model.translate(&["The house is small."]), "config.json: max_position_embeddings");
    }
    // Within the limit the table is not built whole: this loads and translates.
    model.edit_json("config.json", |c| c["max_position_embeddings"] = json!(1 << 20));
    let outcome = model.translate(&["The house is small."]);
    assert_eq!(outcome.code, Some(0), "{}", outcome.stderr);
}

#[test]
fn config_dims_zero_and_overflowing_products() {
    let model = Model::copy("marian-en-de");
    model.edit_json("config.json", |c| c["d_model"] = json!(0));
    assert_refused(&model.translate(&["The house is small."]), "d_model");
    model.edit_json("config.json", |c| {
        c["d_model"] = json!(1 << 18);
        c["vocab_size"] = json!(1 << 22);
    });
    assert_refused(&model.translate(&["The house is small."]), "elements in one matrix");
}

#[test]
fn config_t5_relative_attention_out_of_range() {
    let model = Model::copy("t5");
    model.edit_json("config.json", |c| c["relative_attention_max_distance"] = json!(1));
    assert_refused(&model.translate(&["The house is small."]), "relative_attention_max_distance is 1");
    model.edit_json("config.json", |c| c["relative_attention_num_buckets"] = json!(1));
    assert_refused(&model.translate(&["The house is small."]), "relative_attention_num_buckets is 1");
}

#[test]
fn generation_config_num_beams_of_a_million() {
    let model = Model::copy("marian-en-de");
    model.edit_json("generation_config.json", |g| g["num_beams"] = json!(1_000_000));
    assert_refused(&model.translate(&["The house is small."]), "generation_config.json: num_beams");
    let model = Model::copy("marian-en-de");
    assert_refused(&model.translate(&["--num-beams", "1000000", "The house is small."]), "num_beams");
}

#[test]
fn config_negative_layer_norm_eps() {
    let model = Model::copy("bert-sentiment-3class");
    model.edit_json("config.json", |c| c["layer_norm_eps"] = json!(-1e-5));
    assert_refused(&model.sentiment(), "layer_norm_eps");
}

// ---------------------------------------------------------------------------------------------
// Generation and long inputs

#[test]
fn t5_a_billion_new_tokens_and_an_unreachable_eos() {
    let model = Model::copy("t5");
    for file in ["config.json", "generation_config.json"] {
        model.edit_json(file, |c| c["eos_token_id"] = json!(100_000));
    }
    let outcome = model.translate(&["--max-new-tokens", "1000000000", "--json", "The house is small."]);
    assert_eq!(outcome.code, Some(0), "{}", outcome.stderr);
    let result: Value = serde_json::from_str(outcome.stdout.trim()).unwrap();
    let generated = result["generated_ids"].as_array().unwrap().len();
    assert!(generated <= 512, "{generated} tokens: not capped at the model's 512 positions");
}

#[test]
fn t5_translating_100_kb_of_text() {
    let model = Model::copy("t5");
    let text = "The house is small. ".repeat(5_000);
    let outcome = model.translate(&["--max-new-tokens", "4", &text]);
    assert_eq!(outcome.code, Some(0), "{}", outcome.stderr);
}

// ---------------------------------------------------------------------------------------------
// Weights

/// A safetensors file with its header edited (tensor data left as is).
fn edit_safetensors(bytes: &[u8], edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Vec<u8> {
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Map<String, Value> = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    edit(&mut header);
    let header = serde_json::to_vec(&header).unwrap();
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&header);
    out.extend_from_slice(&bytes[8 + header_len..]);
    out
}

#[test]
fn safetensors_overlapping_tensors() {
    let model = Model::copy("distilbert-sst2");
    let edited = edit_safetensors(&model.read("model.safetensors"), |h| {
        let offsets = h["distilbert.embeddings.LayerNorm.weight"]["data_offsets"].clone();
        h["distilbert.embeddings.LayerNorm.bias"]["data_offsets"] = offsets;
    });
    model.write("model.safetensors", edited);
    assert_refused(&model.sentiment(), "share bytes");
}

#[test]
fn safetensors_offsets_wrapping_around() {
    let model = Model::copy("distilbert-sst2");
    let edited = edit_safetensors(&model.read("model.safetensors"), |h| {
        let len = 32 * 4u64;
        h["distilbert.embeddings.LayerNorm.bias"]["data_offsets"] = json!([u64::MAX - 2 * len + 1, u64::MAX - len + 1]);
    });
    model.write("model.safetensors", edited);
    assert_refused(&model.sentiment(), "runs past the end of the file");
}

#[test]
fn nan_weights_are_an_error_not_a_label() {
    let model = Model::copy("distilbert-sst2");
    let mut bytes = model.read("model.safetensors");
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    let start = 8 + header_len + header["classifier.bias"]["data_offsets"][0].as_u64().unwrap() as usize;
    bytes[start..start + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    model.write("model.safetensors", bytes);
    assert_refused(&model.sentiment(), "NaN");
}

/// A pytorch_model.bin (zip, stored) holding `pickle` as archive/data.pkl and `storage` as
/// archive/data/0.
fn pytorch_zip(pickle: &[u8], storage: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("archive/data.pkl", stored).unwrap();
    zip.write_all(pickle).unwrap();
    zip.start_file("archive/data/0", stored).unwrap();
    zip.write_all(storage).unwrap();
    zip.finish().unwrap().into_inner()
}

fn pickle_str(s: &str, out: &mut Vec<u8>) {
    out.push(b'X');
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// `{"w": _rebuild_tensor_v2(storage "0" of 4 floats, offset, (2, 2), (2, 1), False, {})}` as
/// torch.save pickles it; `value` replaces the tensor when given.
fn state_dict_pickle(offset: u64, value: Option<&[u8]>) -> Vec<u8> {
    let mut p = vec![0x80, 2, b'}', b'('];
    pickle_str("w", &mut p);
    match value {
        Some(value) => p.extend_from_slice(value),
        None => {
            p.extend_from_slice(b"ctorch._utils\n_rebuild_tensor_v2\n(");
            p.push(b'(');
            pickle_str("storage", &mut p);
            p.extend_from_slice(b"ctorch\nFloatStorage\n");
            pickle_str("0", &mut p);
            pickle_str("cpu", &mut p);
            p.extend_from_slice(&[b'K', 4, b't', b'Q']);
            p.extend_from_slice(&[0x8a, 8]);
            p.extend_from_slice(&offset.to_le_bytes());
            p.extend_from_slice(&[b'(', b'K', 2, b'K', 2, b't', b'(', b'K', 2, b'K', 1, b't', 0x89, b'}', b't', b'R']);
        }
    }
    p.extend_from_slice(b"u.");
    p
}

fn pytorch_error(pickle: &[u8]) -> String {
    match hubside::weights::pytorch::from_bytes(&pytorch_zip(pickle, &[0u8; 16]), "pytorch_model.bin") {
        Err(e @ hubside::Error::Weights { .. }) => e.to_string(),
        other => panic!("not refused: {:?}", other.map(|t| t.len())),
    }
}

#[test]
fn pytorch_storage_offset_of_2_to_the_62() {
    in_child("pytorch_storage_offset_of_2_to_the_62", || {
        // The builder is right: offset 0 reads the tensor.
        let tensors = hubside::weights::pytorch::from_bytes(&pytorch_zip(&state_dict_pickle(0, None), &[0u8; 16]), "m").unwrap();
        assert_eq!(tensors["w"].dims(), &[2, 2]);
        let error = pytorch_error(&state_dict_pickle(1 << 62, None));
        assert!(error.contains("overflows") || error.contains("runs past"), "{error}");
    });
}

#[test]
fn pickle_nested_a_million_deep() {
    in_child("pickle_nested_a_million_deep", || {
        let mut value = vec![b']'; 1_000_000];
        value.extend(std::iter::repeat_n(b'a', 999_999));
        let error = pytorch_error(&state_dict_pickle(0, Some(&value)));
        assert!(error.contains("nest more than"), "{error}");
    });
}

#[test]
fn pickle_calls_are_refused_not_skipped() {
    in_child("pickle_calls_are_refused_not_skipped", || {
        let error = pytorch_error(&state_dict_pickle(0, Some(b"cos\nsystem\n(X\x02\x00\x00\x00idtR")));
        assert!(error.contains("os.system") && error.contains("refused"), "{error}");
        // An allowed class called as something other than a tensor.
        let error = pytorch_error(&state_dict_pickle(0, Some(b"ctorch\nFloatStorage\n)R")));
        assert!(error.contains("not of a tensor constructor"), "{error}");
        // A string claiming 4 GB.
        let error = pytorch_error(&state_dict_pickle(0, Some(b"X\xff\xff\xff\xff")));
        assert!(error.contains("truncated"), "{error}");
    });
}

#[test]
fn ctranslate2_dims_whose_product_overflows() {
    in_child("ctranslate2_dims_whose_product_overflows", || {
        let mut bin = 6u32.to_le_bytes().to_vec();
        let string = |s: &str, out: &mut Vec<u8>| {
            out.extend_from_slice(&(s.len() as u16 + 1).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
            out.push(0);
        };
        string("WhisperSpec", &mut bin);
        bin.extend_from_slice(&3u32.to_le_bytes());
        bin.extend_from_slice(&1u32.to_le_bytes());
        string("encoder/conv1/weight", &mut bin);
        bin.push(4);
        for dim in [0, u32::MAX, u32::MAX, u32::MAX] {
            bin.extend_from_slice(&dim.to_le_bytes());
        }
        bin.push(0); // f32
        bin.extend_from_slice(&0u32.to_le_bytes());
        bin.extend_from_slice(&0u32.to_le_bytes()); // no aliases
        let error = hubside::weights::ctranslate2::from_bytes(&bin[..], "model.bin").map(|t| t.len()).unwrap_err();
        assert!(matches!(error, hubside::Error::Weights { .. }) && error.to_string().contains("does not match"), "{error}");
    });
}

// ---------------------------------------------------------------------------------------------
// Audio

fn audio_error(bytes: &[u8], name: &str) -> String {
    match hubside::audio::decode::decode(bytes, name) {
        Err(e @ hubside::Error::Input(_)) => e.to_string(),
        other => panic!("{name} not refused: {:?}", other.map(|d| (d.sample_rate, d.channels, d.samples.len()))),
    }
}

#[test]
fn audio_sample_rate_zero_and_absurd_channels() {
    in_child("audio_sample_rate_zero_and_absurd_channels", || {
        let wav = std::fs::read(format!("{FIXTURES}/audio/jfk16.wav")).unwrap();
        let fmt = wav.windows(4).position(|w| w == b"fmt ").unwrap() + 8;
        let mut zero_rate = wav.clone();
        zero_rate[fmt + 4..fmt + 8].copy_from_slice(&0u32.to_le_bytes());
        audio_error(&zero_rate, "zero.wav");
        let mut channels = wav.clone();
        channels[fmt + 2..fmt + 4].copy_from_slice(&u16::MAX.to_le_bytes());
        audio_error(&channels, "channels.wav");
        // A data chunk claiming 4 GB in a 350 kB file decodes what is there, within the bounds.
        let data = wav.windows(4).position(|w| w == b"data").unwrap() + 4;
        let mut long = wav.clone();
        long[data..data + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        if let Ok(decoded) = hubside::audio::decode::decode(&long, "long.wav") {
            assert!(decoded.samples.len() <= wav.len() / 2, "{} samples from {} bytes", decoded.samples.len(), wav.len());
        }

        // FLAC STREAMINFO: the sample rate is the first 20 bits after the 10 bytes of block and
        // frame sizes (the block starts at byte 8, after "fLaC" and the block header).
        let mut flac = std::fs::read(format!("{FIXTURES}/audio/jfk16.flac")).unwrap();
        flac[18] = 0;
        flac[19] = 0;
        flac[20] &= 0x0f;
        audio_error(&flac, "zero.flac");
    });
}
