//! Files larger than memory are streamed, not slurped: building a dataset
//! and sampling from it hold a few bytes per row on the heap, not the
//! rows' text or tokens. Measured with a counting global allocator (this
//! test binary's own), on a generated JSONL file of 200,000 rows.
//!
//! The bound is per row (`PER_ROW` bytes, plus a fixed allowance for the
//! tokenizing block and the tokenizer's own buffers), and the file is
//! several times larger than it; a pipeline that held every row (as a
//! parsed value, its rendered text or its tokens) needs more than the
//! file's size and fails.

mod common;
use common::*;
use ft_plan::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(n: usize) {
    let now = CURRENT.fetch_add(n, Relaxed) + n;
    PEAK.fetch_max(now, Relaxed);
}

// SAFETY: every call is passed to the system allocator unchanged; the
// counters only observe sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = System.alloc(l);
        if !p.is_null() {
            grew(l.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(l);
        if !p.is_null() {
            grew(l.size());
        }
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l);
        CURRENT.fetch_sub(l.size(), Relaxed);
    }

    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = System.realloc(p, l, new);
        if !q.is_null() {
            CURRENT.fetch_sub(l.size(), Relaxed);
            grew(new);
        }
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Heap bytes held now, and the peak since the last call (relative to the
/// bytes held at that call).
fn start() -> usize {
    let now = CURRENT.load(Relaxed);
    PEAK.store(now, Relaxed);
    now
}

fn peak_since(base: usize) -> usize {
    PEAK.load(Relaxed).saturating_sub(base)
}

const ROWS: usize = 200_000;
/// Heap bytes per row the pipeline may hold at its peak (the build keeps
/// about 60 per row: position, file, line, key and text hashes, offsets).
const PER_ROW: usize = 128;
/// Fixed allowance: one tokenizing block (1 MiB of text, rendered and
/// parsed), the tokenizer's caches, buffered writers.
const FIXED: usize = 16 << 20;

const WORDS: &[&str] = &[
    "photosynthesis",
    "thermodynamics",
    "circumnavigate",
    "extraordinarily",
    "misunderstanding",
    "responsibilities",
    "characterization",
    "incomprehensible",
    "internationalize",
    "electromagnetism",
    "counterproductive",
    "disproportionately",
];

fn words(k: usize, n: usize) -> String {
    (0..n)
        .map(|i| WORDS[(k * 7 + i * 5 + i * i) % WORDS.len()])
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn a_large_file_streams_through_build_and_sampler_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.jsonl");
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        for k in 0..ROWS {
            writeln!(
                w,
                "{{\"id\": {k}, \"q\": \"question {k}: {}\", \"a\": \"{}\"}}",
                words(k, 14),
                words(k + 3, 14)
            )
            .unwrap();
        }
    }
    let size = std::fs::metadata(&path).unwrap().len() as usize;
    let mut ds = jsonl_ds("big", &path, completion_fields("{q}", "{a}"));
    ds.split = split(&[("train", 0.9), ("val", 0.1)], 11);
    let p = plan(
        vec![ds],
        TrainData::Dataset(data_ref("big")),
        Head::CausalLm,
        16,
        64,
        Length::Steps(200),
    );
    let vocab = format!("question : {}", WORDS.join(" "));
    let tok = word_tokenizer(&[&vocab], false);

    let base = start();
    let data = build(&p, tok).unwrap();
    let build_peak = peak_since(base);
    let held = CURRENT.load(Relaxed).saturating_sub(base);

    let rep = &data.report().datasets[0];
    assert_eq!(rep.sources[0].rows_read, ROWS);
    let examples: usize = rep.splits.iter().map(|s| s.examples).sum();
    assert_eq!(examples, ROWS, "every row became an example");
    let store = data.dataset("big").unwrap().store().bytes();

    let base2 = start();
    let mut sampler = data.train_sampler().unwrap();
    let mut tokens = 0;
    for b in sampler.by_ref() {
        tokens += b.data.main().attention_mask.len();
    }
    assert_eq!(sampler.state().step, 200);
    assert!(tokens > 0);
    let sampler_peak = peak_since(base2);

    eprintln!(
        "{ROWS} rows, file {:.1} MiB, store {:.1} MiB; heap: build peak {:.1} MiB \
         ({} B/row), held after build {:.1} MiB, sampler peak {:.1} MiB",
        size as f64 / 1048576.0,
        store as f64 / 1048576.0,
        build_peak as f64 / 1048576.0,
        build_peak / ROWS,
        held as f64 / 1048576.0,
        sampler_peak as f64 / 1048576.0,
    );
    let bound = ROWS * PER_ROW + FIXED;
    assert!(
        size > 2 * bound,
        "the file ({size} B) must dwarf the bound ({bound} B) for this test to mean anything"
    );
    assert!(
        build_peak < bound,
        "building held {build_peak} B at its peak, over {PER_ROW} B/row + {FIXED} B ({bound} B); the file is {size} B"
    );
    assert!(
        held < ROWS * 16 + (1 << 20),
        "a built dataset holds {held} B on the heap: its examples should be on disk"
    );
    assert!(
        sampler_peak < bound,
        "the sampler held {sampler_peak} B at its peak (bound {bound} B)"
    );
}
