//! In headless Chromium, the threaded wasm build only (scripts/test.sh runs it through
//! scripts/wasm-pack-variant.sh threads with `--features threads`): rayon's global pool starts on Web
//! Workers sharing the module's memory, every one of its threads runs work, and it is sized once.
#![cfg(all(target_arch = "wasm32", target_feature = "atomics"))]

use hubside::error::Error;
use hubside::threads;
use rayon::prelude::*;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn the_pool_starts_once_and_every_thread_works() {
    assert_eq!(threads::BUILD, "threads");
    assert_eq!(threads::threads(), None, "no pool before it is asked for");
    assert_eq!(threads::ensure_pool(Some(2)).await.unwrap(), 2);
    assert_eq!(threads::threads(), Some(2));

    // Each of the pool's threads (Web Workers) answers with its own index.
    let mut answered = rayon::broadcast(|context| context.index());
    answered.sort_unstable();
    assert_eq!(answered, [0, 1]);

    // Work split across them gives what one thread gives.
    let values: Vec<u64> = (0..100_000u64).map(|i| i * i % 1_000_003).collect();
    let parallel: u64 = values.par_iter().with_min_len(1_000).sum();
    assert_eq!(parallel, values.iter().sum::<u64>());

    // Later pipelines share it: no count, or the same one, is fine; another one is refused.
    assert_eq!(threads::ensure_pool(None).await.unwrap(), 2);
    assert_eq!(threads::ensure_pool(Some(2)).await.unwrap(), 2);
    let refused = threads::ensure_pool(Some(3)).await.unwrap_err();
    assert!(matches!(&refused, Error::Input(m) if m.contains("already runs 2 threads")), "{refused}");
    assert!(matches!(threads::ensure_pool(Some(0)).await, Err(Error::Input(_))));
}
