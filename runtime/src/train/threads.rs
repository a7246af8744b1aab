//! `train { threads = N }`: a run's parallel work on a pool of N threads.

use super::{Event, TrainError};

/// Runs `f` on a rayon pool of `n` threads. Burn's CPU operations and ft's
/// kernels size their work by `rayon::current_num_threads()`, which inside
/// the pool is `n`. The run's events cross back to the calling thread, where
/// `on_event` renders them as they come.
pub(super) fn with_threads<T: Send>(
    n: usize,
    on_event: &mut dyn FnMut(&Event),
    f: impl FnOnce(&mut dyn FnMut(&Event)) -> T + Send,
) -> Result<T, TrainError> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(|i| format!("ft-train-{i}"))
        // A training step's backward pass recurses as deep as on the main
        // thread, whose stack is 8 MiB.
        .stack_size(8 << 20)
        .build()
        .map_err(|e| TrainError::io(format!("starting {n} training threads: {e}")))?;
    let (tx, rx) = std::sync::mpsc::channel::<Event>();
    std::thread::scope(|s| {
        let worker = s.spawn(move || {
            pool.install(move || {
                f(&mut |e: &Event| {
                    let _ = tx.send(e.clone());
                })
            })
        });
        // Ends when the run ends (its sender is dropped with `f`).
        for e in rx {
            on_event(&e);
        }
        match worker.join() {
            Ok(out) => Ok(out),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}
