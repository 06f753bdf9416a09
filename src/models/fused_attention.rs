//! Attention over long sequences, one block of query rows of one head at a time: for each
//! (batch, head, rows) the scores q kᵀ (+ bias) are computed into a small buffer, softmaxed in
//! place and multiplied by v straight into the output, laid out (batch, queries, heads·head_dim)
//! as the output projection reads it.
//!
//! Why: a Whisper window attends 1500 × 1500 per head. Through candle's batched matmul the scores
//! of every head exist at once (tiny: 54 MB, base: 72 MB, which wasm memory keeps for good), the
//! products run on one thread (candle's matmul sees one core in wasm) and the context is
//! transposed in one more copy. Here the blocks go to rayon's pool (natively all cores, in the
//! threaded wasm build its Web Workers), each block's scores stay in cache (≤ 512 KB), and the
//! arithmetic is the one the batched path does: gemm for both products, the same softmax.

use rayon::prelude::*;

use super::kernels::SharedOut;
use super::softmax::softmax_row;

/// Scores held per block of query rows (512 KB of f32): small enough for a core's L2 cache, large
/// enough that gemm's packing of k and v per block stays a few percent of the products.
const BLOCK_SCORES: usize = 1 << 17;

/// Shapes of one attention call: q is (batch, heads, queries, head_dim), k and v are
/// (batch, heads, keys, head_dim), all contiguous.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub batch: usize,
    pub heads: usize,
    pub queries: usize,
    pub keys: usize,
    pub head_dim: usize,
}

/// An additive bias broadcast to (batch, heads, queries, keys): `data[b·batch + h·head + i·query
/// + j]`, a stride 0 where the bias is broadcast. Keys must be contiguous.
#[derive(Debug, Clone, Copy)]
pub struct Bias<'a> {
    pub data: &'a [f32],
    pub batch: usize,
    pub head: usize,
    pub query: usize,
}

/// softmax(scale · (q kᵀ + bias)) v for every batch and head, as (batch, queries, heads·head_dim)
/// row-major. Panics if a slice is shorter than its shape says (callers pass whole tensors).
pub fn attend(q: &[f32], k: &[f32], v: &[f32], s: Shape, bias: Option<Bias>, scale: f32) -> Vec<f32> {
    let Shape { batch, heads, queries, keys, head_dim } = s;
    let inner = heads * head_dim;
    assert!(q.len() >= batch * heads * queries * head_dim, "attend: q too short");
    assert!(k.len() >= batch * heads * keys * head_dim && v.len() >= batch * heads * keys * head_dim, "attend: k/v too short");
    let mut out = vec![0f32; batch * queries * inner];
    if batch * heads * queries * keys == 0 || head_dim == 0 {
        return out;
    }
    if let Some(b) = bias {
        let last = (batch - 1) * b.batch + (heads - 1) * b.head + (queries - 1) * b.query + keys;
        assert!(b.data.len() >= last, "attend: bias too short");
    }
    let rows_per_block = (BLOCK_SCORES / keys).clamp(1, queries);
    let blocks_per_head = queries.div_ceil(rows_per_block);
    let out_ptr = SharedOut(out.as_mut_ptr());
    let run = |scores: &mut Vec<f32>, block: usize| {
        let (bh, first) = (block / blocks_per_head, (block % blocks_per_head) * rows_per_block);
        let (b, h) = (bh / heads, bh % heads);
        let rows = rows_per_block.min(queries - first);
        scores.resize(rows_per_block * keys, 0.0);
        let scores = &mut scores[..rows * keys];
        let q_rows = &q[(bh * queries + first) * head_dim..][..rows * head_dim];
        let k_head = &k[bh * keys * head_dim..][..keys * head_dim];
        let v_head = &v[bh * keys * head_dim..][..keys * head_dim];
        // SAFETY: q_rows is rows × head_dim, k_head keys × head_dim (read transposed: element
        // (p, j) of kᵀ is k_head[j·head_dim + p]) and scores rows × keys, as the strides say.
        unsafe {
            gemm::gemm(
                rows, keys, head_dim,
                scores.as_mut_ptr(), 1, keys as isize, false,
                q_rows.as_ptr(), 1, head_dim as isize,
                k_head.as_ptr(), head_dim as isize, 1,
                0.0, 1.0, false, false, false, gemm::Parallelism::None,
            );
        }
        for (i, row) in scores.chunks_exact_mut(keys).enumerate() {
            if let Some(bias) = bias {
                let at = b * bias.batch + h * bias.head + (first + i) * bias.query;
                row.iter_mut().zip(&bias.data[at..at + keys]).for_each(|(x, &add)| *x += add);
            }
            softmax_row(row, scale);
        }
        // SAFETY: this block writes rows first..first + rows of batch b, columns h·head_dim ..
        // (h + 1)·head_dim: inside `out` (batch · queries · inner values) and written by no other
        // block, since (b, h, first) differs between blocks.
        unsafe {
            let dst = out_ptr.at((b * queries + first) * inner + h * head_dim);
            gemm::gemm(
                rows, head_dim, keys,
                dst, 1, inner as isize, false,
                scores.as_ptr(), 1, keys as isize,
                v_head.as_ptr(), 1, head_dim as isize,
                0.0, 1.0, false, false, false, gemm::Parallelism::None,
            );
        }
    };
    let blocks = batch * heads * blocks_per_head;
    if rayon::current_num_threads() > 1 {
        (0..blocks).into_par_iter().for_each_init(Vec::new, |scores, block| run(scores, block));
    } else {
        let mut scores = Vec::new();
        (0..blocks).for_each(|block| run(&mut scores, block));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook formula in f64.
    fn reference(q: &[f32], k: &[f32], v: &[f32], s: Shape, bias: Option<Bias>, scale: f32) -> Vec<f64> {
        let Shape { batch, heads, queries, keys, head_dim } = s;
        let mut out = vec![0f64; batch * queries * heads * head_dim];
        for b in 0..batch {
            for h in 0..heads {
                let bh = b * heads + h;
                for i in 0..queries {
                    let mut row: Vec<f64> = (0..keys)
                        .map(|j| {
                            let dot: f64 = (0..head_dim).map(|p| q[(bh * queries + i) * head_dim + p] as f64 * k[(bh * keys + j) * head_dim + p] as f64).sum();
                            let add = bias.map_or(0.0, |x| x.data[b * x.batch + h * x.head + i * x.query + j] as f64);
                            (dot + add) * scale as f64
                        })
                        .collect();
                    let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    row.iter_mut().for_each(|x| *x = (*x - max).exp());
                    let sum: f64 = row.iter().sum();
                    for p in 0..head_dim {
                        let value: f64 = (0..keys).map(|j| row[j] / sum * v[(bh * keys + j) * head_dim + p] as f64).sum();
                        out[(b * queries + i) * heads * head_dim + h * head_dim + p] = value;
                    }
                }
            }
        }
        out
    }

    fn random(rng: &mut fastrand::Rng, n: usize) -> Vec<f32> {
        (0..n).map(|_| rng.f32() * 2.0 - 1.0).collect()
    }

    fn check(s: Shape, with_bias: bool, threads: usize) {
        let mut rng = fastrand::Rng::with_seed(5);
        let Shape { batch, heads, queries, keys, head_dim } = s;
        let q = random(&mut rng, batch * heads * queries * head_dim);
        let k = random(&mut rng, batch * heads * keys * head_dim);
        let v = random(&mut rng, batch * heads * keys * head_dim);
        // A padding-style mask per batch and key (broadcast over heads and queries), −∞ included.
        let mask: Vec<f32> = (0..batch * keys).map(|i| if i % keys == keys - 1 && keys > 1 { f32::NEG_INFINITY } else { (i % 3) as f32 * 0.5 }).collect();
        let bias = with_bias.then_some(Bias { data: &mask, batch: keys, head: 0, query: 0 });
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let got = pool.install(|| attend(&q, &k, &v, s, bias, 0.3));
        let want = reference(&q, &k, &v, s, bias, 0.3);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!((*g as f64 - w).abs() < 1e-5, "{s:?} bias {with_bias} threads {threads}: [{i}] {g} vs {w}");
        }
    }

    #[test]
    fn matches_the_formula_for_every_block_split() {
        // Blocks of one row (keys beyond BLOCK_SCORES), several rows, one block per head.
        for s in [
            Shape { batch: 2, heads: 3, queries: 5, keys: 7, head_dim: 4 },
            Shape { batch: 1, heads: 2, queries: 3, keys: BLOCK_SCORES + 3, head_dim: 2 },
            Shape { batch: 1, heads: 2, queries: 300, keys: 600, head_dim: 8 },
        ] {
            for threads in [1, 3] {
                check(s, false, threads);
                check(s, true, threads);
            }
        }
    }

    #[test]
    fn empty_shapes_give_empty_or_zero_outputs() {
        let s = Shape { batch: 1, heads: 2, queries: 0, keys: 4, head_dim: 3 };
        assert!(attend(&[], &[0.0; 24], &[0.0; 24], s, None, 1.0).is_empty());
    }
}
