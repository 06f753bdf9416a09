//! "Will it fit?" natively: model_info reads the fixtures' safetensors headers over HTTP Range
//! requests from the local mirror and its estimates equal the sums over the real tensors; shards,
//! headers longer than the first request, other formats, servers that ignore Range, missing
//! models; and a header look that begins the download which the load then finishes (one request).
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use common::{mirror, HUB};
use hubside::hub::{RangeRead, Repo};
use hubside::serve::{self, ServeOptions};
use hubside::tasks::text_classification::TextClassifier;
use hubside::weights::fit::{model_info, stored_bytes, Memory, ModelInfo, WeightDType, WeightFile};
use hubside::Error;

const SAFETENSORS_MODELS: [&str; 4] =
    ["tiny-random/distilbert-sst2", "tiny-random/bert-sentiment-3class", "tiny-random/marian-en-de", "tiny-random/t5"];

fn info(repo: &Repo) -> hubside::Result<ModelInfo> {
    pollster::block_on(model_info(repo, None))
}

/// Parameters and memory per dtype summed over the tensors the loader really builds.
fn from_loaded_tensors(repo: &Repo) -> (u64, Memory) {
    let source = pollster::block_on(hubside::weights::open(repo)).unwrap();
    let mut parameters = 0;
    let mut memory = Memory::default();
    for name in source.names() {
        let tensor = match source.load(&name).unwrap().unwrap() {
            hubside::weights::Stored::Dense(t) => t,
            hubside::weights::Stored::Quantized(_) => panic!("the fixtures are dense"),
        };
        let shape = tensor.dims();
        parameters += tensor.elem_count() as u64;
        memory.fp32 += stored_bytes(shape, WeightDType::Fp32);
        memory.fp16 += stored_bytes(shape, WeightDType::Fp16);
        memory.q8 += stored_bytes(shape, WeightDType::Q8);
        memory.q4 += stored_bytes(shape, WeightDType::Q4);
        // The fixtures are f32: fp32 memory is the tensors' bytes.
        assert_eq!(stored_bytes(shape, WeightDType::Fp32), tensor.elem_count() as u64 * 4);
    }
    (parameters, memory)
}

fn file_size(path: impl AsRef<Path>) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

#[test]
fn estimates_from_headers_over_range_requests_equal_the_loaded_tensors() {
    let server = mirror();
    for model in SAFETENSORS_MODELS {
        let repo = Repo::remote(model, Some(&server.hub_endpoint()), None).unwrap();
        let found = info(&repo).unwrap();
        let (parameters, memory) = from_loaded_tensors(&Repo::local(format!("{HUB}/{model}")));
        let size = file_size(format!("{HUB}/{model}/model.safetensors"));
        assert_eq!(found.files, vec![WeightFile { file: "model.safetensors".into(), size: Some(size) }], "{model}");
        assert_eq!(found.download_bytes, Some(size), "{model}");
        assert_eq!(found.parameters, Some(parameters), "{model}");
        assert_eq!(found.memory, Some(memory), "{model}");
        assert!(found.exact && found.note.is_none(), "{model}: {found:?}");
        // The weight matrices shrink with the dtype.
        assert!(memory.fp32 > memory.fp16 && memory.fp16 > memory.q8 && memory.q8 > memory.q4, "{model}: {memory:?}");
        // A local directory gives the same answer.
        assert_eq!(info(&Repo::local(format!("{HUB}/{model}"))).unwrap(), found, "{model}");
    }
}

/// A safetensors file of f32 tensors (zeros): 8-byte header length, JSON header, data.
fn safetensors(tensors: &[(String, Vec<usize>)]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    for (name, shape) in tensors {
        let end = offset + shape.iter().product::<usize>() * 4;
        header.insert(name.clone(), serde_json::json!({ "dtype": "F32", "shape": shape, "data_offsets": [offset, end] }));
        offset = end;
    }
    header.insert("__metadata__".into(), serde_json::json!({ "format": "pt" }));
    let header = serde_json::Value::Object(header).to_string().into_bytes();
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(&header);
    bytes.resize(bytes.len() + offset, 0);
    bytes
}

/// A temporary Hub-layout directory, removed when dropped.
struct TempHub(PathBuf);

impl TempHub {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("hubside-fit-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        TempHub(dir)
    }

    fn write(&self, file: &str, bytes: &[u8]) {
        let path = self.0.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    fn serve(&self) -> serve::Running {
        serve::start("127.0.0.1:0", ServeOptions { hub: vec![self.0.clone()], ..Default::default() }).unwrap()
    }
}

impl Drop for TempHub {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn shards_are_summed_and_long_headers_read_in_a_second_request() {
    let hub = TempHub::new("shards");
    // Enough tensors that the header is longer than the first 64 KiB request.
    let tensors: Vec<(String, Vec<usize>)> = (0..1500)
        .map(|i| (format!("encoder.layer.{i}.a.rather.long.name.for.a.weight.matrix"), if i % 3 == 0 { vec![7] } else { vec![4, 32 * (i % 5 + 1)] }))
        .collect();
    let single = safetensors(&tensors);
    assert!(u64::from_le_bytes(single[..8].try_into().unwrap()) > 64 * 1024, "header over 64 KiB");
    hub.write("org/single/model.safetensors", &single);
    let (first, second) = (safetensors(&tensors[..700]), safetensors(&tensors[700..]));
    let weight_map: serde_json::Map<String, serde_json::Value> = tensors
        .iter()
        .enumerate()
        .map(|(i, (name, _))| (name.clone(), if i < 700 { "model-00001-of-00002.safetensors" } else { "model-00002-of-00002.safetensors" }.into()))
        .collect();
    hub.write("org/sharded/model.safetensors.index.json", serde_json::json!({ "weight_map": weight_map }).to_string().as_bytes());
    hub.write("org/sharded/model-00001-of-00002.safetensors", &first);
    hub.write("org/sharded/model-00002-of-00002.safetensors", &second);
    let server = hub.serve();

    let mut expected = Memory::default();
    let mut parameters = 0;
    for (_, shape) in &tensors {
        parameters += shape.iter().product::<usize>() as u64;
        expected.fp32 += stored_bytes(shape, WeightDType::Fp32);
        expected.fp16 += stored_bytes(shape, WeightDType::Fp16);
        expected.q8 += stored_bytes(shape, WeightDType::Q8);
        expected.q4 += stored_bytes(shape, WeightDType::Q4);
    }
    let single_info = info(&Repo::remote("org/single", Some(&server.hub_endpoint()), None).unwrap()).unwrap();
    assert_eq!((single_info.parameters, single_info.memory), (Some(parameters), Some(expected)));
    assert_eq!(single_info.download_bytes, Some(single.len() as u64));

    let sharded = info(&Repo::remote("org/sharded", Some(&server.hub_endpoint()), None).unwrap()).unwrap();
    assert_eq!(
        sharded.files,
        vec![
            WeightFile { file: "model-00001-of-00002.safetensors".into(), size: Some(first.len() as u64) },
            WeightFile { file: "model-00002-of-00002.safetensors".into(), size: Some(second.len() as u64) },
        ]
    );
    assert_eq!(sharded.download_bytes, Some((first.len() + second.len()) as u64));
    assert_eq!((sharded.parameters, sharded.memory, sharded.exact), (Some(parameters), Some(expected), true));
}

#[test]
fn other_formats_report_their_size_and_say_the_memory_is_estimated() {
    let server = mirror();
    let model = "tiny-random/distilbert-sst2-legacy";
    let found = info(&Repo::remote(model, Some(&server.hub_endpoint()), None).unwrap()).unwrap();
    let size = file_size(format!("{HUB}/{model}/pytorch_model.bin"));
    assert_eq!(found.files, vec![WeightFile { file: "pytorch_model.bin".into(), size: Some(size) }]);
    assert_eq!(found.download_bytes, Some(size));
    assert!(!found.exact);
    assert!(found.note.as_deref().unwrap().contains("only its size is known"), "{found:?}");
    // The archive holds f32 storages: parameters ≈ size / 4, within the archive's overhead.
    let (parameters, memory) = from_loaded_tensors(&Repo::local(format!("{HUB}/{model}")));
    let estimated = found.parameters.unwrap();
    assert!(estimated >= parameters && estimated < parameters + parameters / 50, "{estimated} vs {parameters}");
    assert!(found.memory.unwrap().fp32 >= memory.fp32);

    // A ggml file named by `file`: its ftype says how wide its weights are.
    let hub = TempHub::new("ggml");
    let mut ggml = 0x6767_6d6cu32.to_le_bytes().to_vec();
    (0..10).for_each(|_| ggml.extend(0u32.to_le_bytes()));
    ggml.extend(8u32.to_le_bytes()); // q5_0: 22 bytes per 32 weights
    ggml.resize(22 * 1000, 0);
    hub.write("org/ggml/ggml-tiny.bin", &ggml);
    let server = hub.serve();
    let repo = Repo::remote("org/ggml", Some(&server.hub_endpoint()), None).unwrap();
    let found = pollster::block_on(model_info(&repo, Some("ggml-tiny.bin"))).unwrap();
    assert_eq!(found.files, vec![WeightFile { file: "ggml-tiny.bin".into(), size: Some(22_000) }]);
    assert_eq!(found.parameters, Some(32_000));
    assert_eq!(found.memory.unwrap().fp32, 128_000);
}

#[test]
fn a_model_without_weights_is_not_found_naming_every_file_looked_for() {
    let server = mirror();
    let repo = Repo::remote("tiny-random/does-not-exist", Some(&server.hub_endpoint()), None).unwrap();
    match info(&repo) {
        Err(Error::NotFound { url }) => {
            assert!(url.ends_with("/model.safetensors (nor model.safetensors.index.json, pytorch_model.bin or model.bin)"), "{url}")
        }
        other => panic!("{other:?}"),
    }
    let repo = Repo::remote("tiny-random/t5", Some(&server.hub_endpoint()), None).unwrap();
    assert!(matches!(pollster::block_on(model_info(&repo, Some("ggml-none.bin"))), Err(Error::NotFound { .. })));
}

/// A server on 127.0.0.1 that answers every request with `respond` (ignoring Range) and records
/// the paths asked for.
fn plain_server(
    respond: impl Fn(&str) -> Option<tiny_http::ResponseBox> + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<String>>>) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let url = format!("http://{}", server.server_addr().to_ip().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (server, log, respond) = (Arc::new(server), seen.clone(), Arc::new(respond));
    for _ in 0..4 {
        let (server, log, respond) = (server.clone(), log.clone(), respond.clone());
        std::thread::spawn(move || {
            while let Ok(request) = server.recv() {
                let path = request.url().to_string();
                log.lock().unwrap().push(path.clone());
                let response = respond(&path).unwrap_or_else(|| tiny_http::Response::empty(404).boxed());
                let _ = request.respond(response);
            }
        });
    }
    (url, seen)
}

/// Zeros, counting how many bytes were read.
struct CountingZeros {
    left: u64,
    read: Arc<AtomicU64>,
}

impl Read for CountingZeros {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (buf.len() as u64).min(self.left) as usize;
        buf[..n].fill(0);
        self.left -= n as u64;
        self.read.fetch_add(n as u64, Ordering::SeqCst);
        Ok(n)
    }
}

#[test]
fn a_server_that_ignores_range_is_not_downloaded_whole() {
    const SIZE: u64 = 1 << 30;
    let pulled = Arc::new(AtomicU64::new(0));
    let counter = pulled.clone();
    let (url, _) = plain_server(move |path| {
        path.ends_with("/model.safetensors").then(|| {
            let body = CountingZeros { left: SIZE, read: counter.clone() };
            tiny_http::Response::new(200.into(), vec![], body, Some(SIZE as usize), None).with_chunked_threshold(usize::MAX).boxed()
        })
    });
    let repo = Repo::remote("org/huge", Some(&url), None).unwrap();
    let started = std::time::Instant::now();
    let read = pollster::block_on(repo.read_range("model.safetensors", 0, 8)).unwrap();
    assert_eq!(read, Some(RangeRead::Ignored { size: Some(SIZE) }));
    let found = info(&repo).unwrap();
    assert_eq!(found.files, vec![WeightFile { file: "model.safetensors".into(), size: Some(SIZE) }]);
    assert_eq!((found.parameters, found.memory, found.exact), (None, None, false));
    assert!(found.note.as_deref().unwrap().contains("does not answer Range requests"), "{found:?}");
    assert!(started.elapsed().as_secs() < 10, "not downloaded: {:?}", started.elapsed());
    std::thread::sleep(std::time::Duration::from_millis(300));
    let pulled = pulled.load(Ordering::SeqCst);
    assert!(pulled < SIZE / 8, "the server only got to send {pulled} of {SIZE} bytes");
}

#[test]
fn a_header_look_while_holding_downloads_is_finished_by_the_load_in_one_request() {
    let (url, seen) = plain_server(|path| {
        let rel = path.strip_prefix('/')?.replacen("/resolve/main/", "/", 1);
        let file = std::fs::File::open(Path::new(HUB).join(rel)).ok()?;
        Some(tiny_http::Response::from_file(file).with_chunked_threshold(usize::MAX).boxed())
    });
    let model = "tiny-random/distilbert-sst2";
    let repo = Repo::remote(model, Some(&url), None).unwrap().holding_downloads();
    let found = info(&repo).unwrap();
    assert_eq!(found, info(&Repo::local(format!("{HUB}/{model}"))).unwrap(), "the same answer without Range");
    let classifier = pollster::block_on(TextClassifier::load(&repo)).unwrap();
    let reference: serde_json::Value = common::reference(model);
    let case = &reference["cases"][0];
    let result = &classifier.classify(&[case["text"].as_str().unwrap()]).unwrap()[0];
    assert_eq!(classifier.top_k(result, Some(1))[0].label, case["label"].as_str().unwrap());
    let weights = seen.lock().unwrap().iter().filter(|p| p.ends_with("/model.safetensors")).count();
    assert_eq!(weights, 1, "model.safetensors requested once: {:?}", seen.lock().unwrap());
}
