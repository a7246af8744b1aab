//! Products with frozen weights in bfloat16 on Intel AMX, for recipes that
//! ask for it (`precision = bf16` in the train block).
//!
//! Why: under LoRA and the other adapter methods nearly all of a step's
//! arithmetic is products with frozen weights (`x·W` forward, `dY·Wᵀ`
//! backward, the tied LM head both ways). In f32 they run at the AVX-512
//! FMA rate (~115 GFLOP/s per core here); the AMX tile unit multiplies
//! bf16 pairs into f32 accumulators about seven times faster. Only those
//! products change: each input is rounded to bf16 (nearest even), each
//! product is accumulated in f32, and adapter weights, gradients, norms,
//! softmax and the optimizer stay in f32 — the same numerics as PyTorch's
//! CPU autocast to bfloat16, applied to fewer operations.
//!
//! A weight is packed once, into the tile layout `tdpbf16ps` reads, in
//! both orientations (`W` and `Wᵀ`), as a [`super::PackedWeight`] that the
//! layer using the weight owns and passes to its products.
//!
//! Once packed, a weight that only ever enters products (a frozen `Linear`
//! under LoRA, IA3, prompts, prefixes or bottleneck adapters) no longer
//! needs its f32 copy: its pages can be handed back to the kernel
//! (`madvise(MADV_DONTNEED)`) and made inaccessible (`PROT_NONE`), so that a
//! stray read through some other path stops the process with a
//! segmentation fault instead of reading zeros. Dropping the packed weight
//! makes them accessible again (as zeros) before the tensor can be freed,
//! so the allocator can reuse that memory.

use std::sync::{Mutex, OnceLock};

use rayon::prelude::*;

use super::gemm::Strided;

/// Rows of a tile, and bf16 elements (64 bytes) of a tile row.
const TILE_ROWS: usize = 16;
const TILE_K: usize = 32;
/// bf16 elements in one packed 16 × 32 tile.
const TILE_LEN: usize = TILE_ROWS * TILE_K;
/// Bytes of B that one pass over a group of row pairs reads, and bytes of
/// A in such a group (see `Job::run`): together they stay in L2.
const B_GROUP_BYTES: usize = 1 << 19;
const A_GROUP_BYTES: usize = 1 << 20;
/// 32-deep blocks per pass over the inner dimension. Only the head's
/// input gradient (1536 blocks) is split; the layer products (12–48
/// blocks) finish each output tile in one pass, never storing and
/// reloading partial sums.
const K_CHUNK_BLOCKS: usize = 64;

/// Whether this process can run AMX bf16 products: the CPU has AMX-TILE and
/// AMX-BF16 and the kernel granted the tile-data state (Linux asks each
/// process to request it once).
pub fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(detect)
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn detect() -> bool {
    // CPUID leaf 7: EDX bit 22 is AMX-BF16, bit 24 AMX-TILE.
    let leaf = core::arch::x86_64::__cpuid_count(7, 0);
    if leaf.edx >> 22 & 1 == 0 || leaf.edx >> 24 & 1 == 0 {
        return false;
    }
    const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_long = 18;
    // SAFETY: a request for a permission; no memory is passed.
    unsafe {
        libc::syscall(
            libc::SYS_arch_prctl,
            ARCH_REQ_XCOMP_PERM,
            XFEATURE_XTILEDATA,
        ) == 0
    }
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
fn detect() -> bool {
    false
}

/// f32 → bf16, rounding to nearest even (NaN stays NaN). Branch-free, so
/// that a loop of it vectorises.
#[inline(always)]
fn bf16(x: f32) -> u16 {
    let b = x.to_bits();
    let rounded = b.wrapping_add(0x7fff + ((b >> 16) & 1)) >> 16;
    let nan = (b & 0x7fff_ffff) > 0x7f80_0000;
    (if nan { (b >> 16) | 0x40 } else { rounded }) as u16
}

super::fastmath::simd_fn! {
    /// Row `r` of each tile of a 16-row strip of the left operand (see
    /// [`convert_left`]) from one contiguous row, zero past its end.
    fn bf16_tile_row(src: &[f32], tiles: &mut [u16], r: usize) {
        for (piece, tile) in src.chunks(TILE_K).zip(tiles.chunks_exact_mut(TILE_LEN)) {
            let line = &mut tile[r * TILE_K..(r + 1) * TILE_K];
            for (o, x) in line.iter_mut().zip(piece) {
                *o = bf16(*x);
            }
            line[piece.len()..].fill(0);
        }
        for tile in tiles.chunks_exact_mut(TILE_LEN).skip(src.len().div_ceil(TILE_K)) {
            tile[r * TILE_K..(r + 1) * TILE_K].fill(0);
        }
    }
}

/// bf16 → f32 (exact).
#[cfg(test)]
fn f32_of(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

/// The right operand `B: [k, n]` of a product, in `tdpbf16ps`'s layout:
/// for each 16-column tile `t` and each 32-row block `p`, a 16 × 32 tile
/// whose row `r` holds, for each column `c`, the pair
/// `B[32p + 2r][16t + c], B[32p + 2r + 1][16t + c]`. Rows past `k` are zero.
pub struct Packed {
    k: usize,
    n: usize,
    /// 32-row blocks (`k` rounded up).
    blocks: usize,
    data: Vec<u16>,
}

impl Packed {
    /// Packs `B[i][j] = src[i·rs + j·cs]`; `n` must be a multiple of 16.
    ///
    /// # Safety
    /// Every such element is readable.
    unsafe fn new(src: *const f32, k: usize, n: usize, rs: isize, cs: isize) -> Packed {
        assert_eq!(n % TILE_ROWS, 0);
        let blocks = k.div_ceil(TILE_K);
        let mut data = vec![0u16; n / TILE_ROWS * blocks * TILE_LEN];
        let src = src as usize;
        data.par_chunks_mut(blocks * TILE_LEN)
            .enumerate()
            .for_each(|(t, tiles)| {
                let src = src as *const f32;
                for (p, tile) in tiles.chunks_exact_mut(TILE_LEN).enumerate() {
                    for (r, line) in tile.chunks_exact_mut(TILE_K).enumerate() {
                        for e in 0..2 {
                            let row = p * TILE_K + 2 * r + e;
                            if row >= k {
                                continue;
                            }
                            for c in 0..TILE_ROWS {
                                let col = t * TILE_ROWS + c;
                                // SAFETY: row < k, col < n: inside the caller's operand.
                                let x =
                                    unsafe { *src.offset(row as isize * rs + col as isize * cs) };
                                line[2 * c + e] = bf16(x);
                            }
                        }
                    }
                }
            });
        Packed { k, n, blocks, data }
    }

    /// Packs the view `B: [k, n]` of a 2-d tensor, if its `n` is a
    /// multiple of 16.
    ///
    /// # Safety
    /// The view describes readable elements.
    pub(super) unsafe fn of_view(v: &Strided) -> Option<Packed> {
        let (k, n) = (v.shape[0], v.shape[1]);
        if n % TILE_ROWS != 0 || n == 0 || k == 0 {
            return None;
        }
        // SAFETY: the caller's promise.
        Some(unsafe { Packed::new(v.ptr(), k, n, v.strides[0], v.strides[1]) })
    }

    /// Bytes of the packed tiles.
    pub fn bytes(&self) -> usize {
        self.data.len() * 2
    }
}

/// Addresses cross into rayon's workers as integers.
#[derive(Clone, Copy)]
struct Addr(usize);

/// `dst = A · B` for `A[i][j] = a[i·a_rs + j·a_cs]` (`m × b.k`), `dst`
/// row-major `m × b.n`, every element written.
///
/// # Safety
/// `a` covers its view, `dst` has `m · b.n` writable elements, and
/// [`available`] is true.
pub unsafe fn gemm(m: usize, a: *const f32, a_rs: isize, a_cs: isize, b: &Packed, dst: *mut f32) {
    let window = Window {
        tiles: 0..b.n / TILE_ROWS,
        blocks: 0..b.blocks,
        dst_rs: b.n,
        accumulate: false,
    };
    // SAFETY: the caller's promises, for the whole of B.
    unsafe { gemm_window(m, a, a_rs, a_cs, b, &window, dst) }
}

/// A part of a product with a packed `B`: its column tiles `tiles` (16
/// columns each) and its 32-row blocks `blocks` (rows `32·blocks.start ..`
/// of B, which meet columns `0..` of A), written (or, with `accumulate`,
/// added) to a `dst` whose rows are `dst_rs` apart.
pub struct Window {
    pub tiles: std::ops::Range<usize>,
    pub blocks: std::ops::Range<usize>,
    pub dst_rs: usize,
    pub accumulate: bool,
}

impl Packed {
    /// Rows of B (its inner dimension).
    pub fn k(&self) -> usize {
        self.k
    }

    /// Columns of B.
    pub fn n(&self) -> usize {
        self.n
    }
}

/// `dst[:, window columns] (+)= A · B[window rows, window columns]`, with
/// `A[i][j] = a[i·a_rs + j·a_cs]` for `j` below the window's rows of B
/// (`min(b.k, 32·blocks.end) − 32·blocks.start`): the tied LM head takes
/// the logits a slice of the vocabulary at a time, and adds each slice's
/// probabilities times the embedding into one accumulator.
///
/// # Safety
/// `a` covers its view; `dst` has `m` rows of `dst_rs` elements, each
/// covering the window's columns (`16·tiles.len()` from `dst`); the
/// window lies inside B; [`available`] is true.
pub unsafe fn gemm_window(
    m: usize,
    a: *const f32,
    a_rs: isize,
    a_cs: isize,
    b: &Packed,
    window: &Window,
    dst: *mut f32,
) {
    let tiles = window.tiles.len();
    let a_blocks = window.blocks.len();
    if m == 0 || tiles == 0 {
        return;
    }
    assert!(window.tiles.end * TILE_ROWS <= b.n && window.blocks.end <= b.blocks);
    let width = tiles * TILE_ROWS;
    let k = b.k.min(window.blocks.end * TILE_K) - window.blocks.start * TILE_K;
    let pairs = m.div_ceil(2 * TILE_ROWS);
    let need = pairs * 2 * a_blocks * TILE_LEN;
    let mut abuf = take_scratch(need);
    convert_left(m, k, a, a_rs, a_cs, a_blocks, &mut abuf[..need]);
    // Output rows past the last whole 32-row pair go to a side buffer
    // (holding dst's rows when adding to them).
    let full = m / (2 * TILE_ROWS);
    let edge_rows = m - full * 2 * TILE_ROWS;
    let mut edge = if full < pairs {
        vec![0f32; 2 * TILE_ROWS * width]
    } else {
        Vec::new()
    };
    let edge_at = |r: usize| unsafe { dst.add((full * 2 * TILE_ROWS + r) * window.dst_rs) };
    if window.accumulate {
        for (r, line) in edge.chunks_exact_mut(width).take(edge_rows).enumerate() {
            // SAFETY: row full·32 + r < m of dst, `width` columns.
            line.copy_from_slice(unsafe { std::slice::from_raw_parts(edge_at(r), width) });
        }
    }
    // Column tiles shared between the threads, in even counts.
    let threads = rayon::current_num_threads().clamp(1, tiles);
    let per = tiles.div_ceil(threads).next_multiple_of(2).min(tiles);
    let chunk = a_blocks.clamp(1, K_CHUNK_BLOCKS);
    // B from the window's first tile and block; its tiles stay b.blocks apart.
    let b_start = (window.tiles.start * b.blocks + window.blocks.start) * TILE_LEN;
    let (abuf_a, b_a, dst_a, edge_a) = (
        Addr(abuf.as_ptr() as usize),
        Addr(b.data[b_start..].as_ptr() as usize),
        Addr(dst as usize),
        Addr(edge.as_mut_ptr() as usize),
    );
    let (b_blocks, dst_rs, accumulate) = (b.blocks, window.dst_rs, window.accumulate);
    (0..tiles.div_ceil(per)).into_par_iter().for_each(|w| {
        let t1 = ((w + 1) * per).min(tiles);
        let job = Job {
            abuf: abuf_a.0 as *const u16,
            a_blocks,
            b: b_a.0 as *const u16,
            b_blocks,
            accumulate,
            full,
            pairs,
            dst: dst_a.0 as *mut f32,
            dst_rs,
            edge: edge_a.0 as *mut f32,
            edge_rs: width,
        };
        // SAFETY: each worker writes the columns of its own tiles.
        unsafe { job.run(w * per, t1, chunk) };
    });
    for (r, line) in edge.chunks_exact(width).take(edge_rows).enumerate() {
        // SAFETY: row full·32 + r < m of dst, `width` columns.
        unsafe { std::ptr::copy_nonoverlapping(line.as_ptr(), edge_at(r), width) };
    }
    put_scratch(abuf);
}

/// The left operand in bf16 for [`gemm`]: for each 16-row tile `rt` and
/// each 32-deep block `p`, the 16 × 32 tile `A[16rt..][32p..]` as 1 KiB
/// of consecutive rows (`out[(rt·blocks + p)·512 + 32r + c]`), so that a
/// tile load reads one contiguous kibibyte rather than 16 rows of A's
/// full width apart (the head's input gradient has rows of 96 KiB).
/// Rows past `m` and columns past `k` are written as zeros: `out` may hold
/// anything on entry.
fn convert_left(
    m: usize,
    k: usize,
    a: *const f32,
    rs: isize,
    cs: isize,
    blocks: usize,
    out: &mut [u16],
) {
    let a_addr = Addr(a as usize);
    out.par_chunks_mut(blocks * TILE_LEN)
        .enumerate()
        .for_each(|(rt, tiles)| {
            for r in 0..TILE_ROWS {
                let i = rt * TILE_ROWS + r;
                if i >= m {
                    for tile in tiles.chunks_exact_mut(TILE_LEN) {
                        tile[r * TILE_K..(r + 1) * TILE_K].fill(0);
                    }
                    continue;
                }
                // SAFETY: i < m: row i of the caller's operand.
                let row = unsafe { (a_addr.0 as *const f32).offset(i as isize * rs) };
                if cs == 1 {
                    // SAFETY: row i is k contiguous elements.
                    let src = unsafe { std::slice::from_raw_parts(row, k) };
                    bf16_tile_row(src, tiles, r);
                } else {
                    for (p, tile) in tiles.chunks_exact_mut(TILE_LEN).enumerate() {
                        let line = &mut tile[r * TILE_K..(r + 1) * TILE_K];
                        for (c, out) in line.iter_mut().enumerate() {
                            let j = p * TILE_K + c;
                            // SAFETY: j < k: inside row i, through the column stride.
                            *out = if j < k {
                                bf16(unsafe { *row.offset(j as isize * cs) })
                            } else {
                                0
                            };
                        }
                    }
                }
            }
        });
}

/// A reusable buffer for the left operand: the products of a step ask for
/// the same few sizes again and again, and a fresh allocation each time
/// costs page faults and the kernel's zeroing of every page.
static SCRATCH: Mutex<Vec<u16>> = Mutex::new(Vec::new());

/// A buffer of at least `len` elements, holding anything. It keeps its
/// length when a smaller product borrows it, so the largest size a step
/// needs (the head's input gradient: 48 MiB for SmolLM2 at 512 positions)
/// is allocated once and stays.
fn take_scratch(len: usize) -> Vec<u16> {
    let buf = SCRATCH
        .lock()
        .map(|mut s| std::mem::take(&mut *s))
        .unwrap_or_default();
    if buf.len() < len {
        vec![0; len]
    } else {
        buf
    }
}

/// Returns a buffer to [`take_scratch`] (the larger one is kept).
fn put_scratch(buf: Vec<u16>) {
    if let Ok(mut s) = SCRATCH.lock() {
        if buf.len() > s.len() {
            *s = buf;
        }
    }
}

/// One worker's share of [`gemm_window`]: column tiles `t0..t1` of the
/// window (numbered from its first).
struct Job {
    /// The left operand as [`convert_left`] lays it out.
    abuf: *const u16,
    /// 32-deep blocks of the left operand (the window's blocks of B).
    a_blocks: usize,
    /// B at the window's first tile and block.
    b: *const u16,
    /// Blocks per column tile of B (the distance between its tiles).
    b_blocks: usize,
    /// Add to what `dst` holds rather than overwrite it.
    accumulate: bool,
    /// Row pairs (32 rows) written straight to `dst`; the pair after them,
    /// if `pairs > full`, goes to `edge`.
    full: usize,
    pairs: usize,
    dst: *mut f32,
    dst_rs: usize,
    edge: *mut f32,
    edge_rs: usize,
}

/// The tile configuration: palette 1, all eight tiles 16 rows × 64 bytes.
#[repr(C, align(64))]
struct TileConfig {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    colsb: [u16; 16],
    rows: [u8; 16],
}

impl Job {
    /// # Safety
    /// As for [`gemm`]; `t0..t1` are this worker's own tiles.
    unsafe fn run(&self, t0: usize, t1: usize, chunk: usize) {
        let mut config = TileConfig {
            palette: 1,
            start_row: 0,
            reserved: [0; 14],
            colsb: [0; 16],
            rows: [0; 16],
        };
        for i in 0..8 {
            config.colsb[i] = 64;
            config.rows[i] = TILE_ROWS as u8;
        }
        // SAFETY: AMX is available (the caller's promise); the configuration
        // is valid and the tiles are released before returning.
        unsafe {
            tiles::configure(&config);
            let mut p0 = 0;
            while p0 < self.a_blocks {
                let p1 = (p0 + chunk).min(self.a_blocks);
                // Row pairs in groups whose A (for these inner blocks) stays
                // in L2, column tiles in groups whose B does, while every
                // row pair of the group passes over every tile of the
                // group; within a group a row pair's outputs are stored side
                // by side, so that consecutive tile stores touch the same
                // pages (a row of the head's logits is 192 KiB wide).
                let tile_bytes = (p1 - p0) * TILE_LEN * 2;
                let group = (B_GROUP_BYTES / tile_bytes).max(2) & !1;
                let pair_group = (A_GROUP_BYTES / (2 * tile_bytes)).max(1);
                let mut q0 = 0;
                while q0 < self.pairs {
                    let q1 = (q0 + pair_group).min(self.pairs);
                    let mut g0 = t0;
                    while g0 < t1 {
                        let g1 = (g0 + group).min(t1);
                        for pair in q0..q1 {
                            let mut t = g0;
                            while t < g1 {
                                let two = t + 1 < g1;
                                self.block(pair, t, two, p0, p1);
                                t += if two { 2 } else { 1 };
                            }
                        }
                        g0 = g1;
                    }
                    q0 = q1;
                }
                p0 = p1;
            }
            tiles::release();
        }
    }

    /// Rows `32·pair..+32` × columns of tile `t` (and `t + 1` if `two`),
    /// over inner blocks `p0..p1`, added to what earlier blocks stored.
    ///
    /// # Safety
    /// As for [`Job::run`], with the tiles configured.
    #[inline(always)]
    unsafe fn block(&self, pair: usize, t: usize, two: bool, p0: usize, p1: usize) {
        let (c, rs) = if pair < self.full {
            let at = pair * 2 * TILE_ROWS * self.dst_rs + t * TILE_ROWS;
            (unsafe { self.dst.add(at) }, self.dst_rs)
        } else {
            (unsafe { self.edge.add(t * TILE_ROWS) }, self.edge_rs)
        };
        let cs = rs * 4;
        let c_lo = unsafe { c.add(TILE_ROWS * rs) };
        unsafe {
            if p0 == 0 && !self.accumulate {
                tiles::zero_acc();
            } else {
                tiles::load_acc(c, c_lo, cs);
            }
            let a = self.abuf.add(pair * 2 * self.a_blocks * TILE_LEN);
            let a_lo = a.add(self.a_blocks * TILE_LEN);
            let b0 = self.b.add(t * self.b_blocks * TILE_LEN);
            let b1 = b0.add(self.b_blocks * TILE_LEN);
            for p in p0..p1 {
                let off = p * TILE_LEN;
                if two {
                    tiles::step2(a.add(off), a_lo.add(off), b0.add(off), b1.add(off));
                } else {
                    tiles::step1(a.add(off), a_lo.add(off), b0.add(off));
                }
            }
            tiles::store_acc(c, c_lo, cs, two);
        }
    }
}

/// The AMX instructions, one `asm!` each group. Tiles 0–3 accumulate
/// (0: top-left, 1: top-right, 2: bottom-left, 3: bottom-right of a 32 × 32
/// output block), 4–5 hold the two 16-row slices of A, 6–7 two tiles of B.
#[cfg(target_arch = "x86_64")]
mod tiles {
    use std::arch::asm;

    pub unsafe fn configure(config: &super::TileConfig) {
        unsafe {
            asm!("ldtilecfg [{}]", in(reg) config as *const super::TileConfig, options(nostack))
        };
    }

    pub unsafe fn release() {
        unsafe { asm!("tilerelease", options(nostack, nomem)) };
    }

    pub unsafe fn zero_acc() {
        unsafe {
            asm!(
                "tilezero tmm0",
                "tilezero tmm1",
                "tilezero tmm2",
                "tilezero tmm3",
                options(nostack, nomem)
            )
        };
    }

    pub unsafe fn load_acc(hi: *const f32, lo: *const f32, stride: usize) {
        unsafe {
            asm!(
                "tileloadd tmm0, [{hi} + {s}*1]",
                "tileloadd tmm1, [{hi} + {s}*1 + 64]",
                "tileloadd tmm2, [{lo} + {s}*1]",
                "tileloadd tmm3, [{lo} + {s}*1 + 64]",
                hi = in(reg) hi,
                lo = in(reg) lo,
                s = in(reg) stride,
                options(nostack, readonly)
            )
        };
    }

    /// Stores tiles 0 and 2 (and 1 and 3 if `two`).
    pub unsafe fn store_acc(hi: *mut f32, lo: *mut f32, stride: usize, two: bool) {
        unsafe {
            asm!(
                "tilestored [{hi} + {s}*1], tmm0",
                "tilestored [{lo} + {s}*1], tmm2",
                hi = in(reg) hi,
                lo = in(reg) lo,
                s = in(reg) stride,
                options(nostack)
            );
            if two {
                asm!(
                    "tilestored [{hi} + {s}*1 + 64], tmm1",
                    "tilestored [{lo} + {s}*1 + 64], tmm3",
                    hi = in(reg) hi,
                    lo = in(reg) lo,
                    s = in(reg) stride,
                    options(nostack)
                );
            }
        }
    }

    /// One 32-deep step into all four accumulators.
    pub unsafe fn step2(a: *const u16, a_lo: *const u16, b0: *const u16, b1: *const u16) {
        unsafe {
            asm!(
                "tileloadd tmm4, [{a} + {bs}*1]",
                "tileloadd tmm5, [{al} + {bs}*1]",
                "tileloadd tmm6, [{b0} + {bs}*1]",
                "tileloadd tmm7, [{b1} + {bs}*1]",
                "tdpbf16ps tmm0, tmm4, tmm6",
                "tdpbf16ps tmm1, tmm4, tmm7",
                "tdpbf16ps tmm2, tmm5, tmm6",
                "tdpbf16ps tmm3, tmm5, tmm7",
                a = in(reg) a,
                al = in(reg) a_lo,
                b0 = in(reg) b0,
                b1 = in(reg) b1,
                bs = in(reg) 64usize,
                options(nostack, readonly)
            )
        };
    }

    /// One 32-deep step into accumulators 0 and 2 (a single column tile).
    pub unsafe fn step1(a: *const u16, a_lo: *const u16, b0: *const u16) {
        unsafe {
            asm!(
                "tileloadd tmm4, [{a} + {bs}*1]",
                "tileloadd tmm5, [{al} + {bs}*1]",
                "tileloadd tmm6, [{b0} + {bs}*1]",
                "tdpbf16ps tmm0, tmm4, tmm6",
                "tdpbf16ps tmm2, tmm5, tmm6",
                a = in(reg) a,
                al = in(reg) a_lo,
                b0 = in(reg) b0,
                bs = in(reg) 64usize,
                options(nostack, readonly)
            )
        };
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod tiles {
    // `available()` is false off x86-64: nothing here is ever called.
    pub unsafe fn configure(_: &super::TileConfig) {}
    pub unsafe fn release() {}
    pub unsafe fn zero_acc() {}
    pub unsafe fn load_acc(_: *const f32, _: *const f32, _: usize) {}
    pub unsafe fn store_acc(_: *mut f32, _: *mut f32, _: usize, _: bool) {}
    pub unsafe fn step2(_: *const u16, _: *const u16, _: *const u16, _: *const u16) {}
    pub unsafe fn step1(_: *const u16, _: *const u16, _: *const u16) {}
}

#[cfg(test)]
#[path = "amx_tests.rs"]
mod tests;
