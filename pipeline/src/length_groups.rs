//! `group_by_length = true`: batches of examples of similar lengths, so
//! that less of each batch is padding (a batch is padded to its longest
//! example). As Hugging Face's `group_by_length` does: the epoch's shuffled
//! order is cut into windows of [`WINDOW_BATCHES`] batches and each window
//! is sorted by length, longest first. The windows stay in shuffled order,
//! so each part of an epoch still sees a random sample of the data; only
//! the order within a window changes. The order is a function of the
//! epoch's shuffle and the lengths, so a resumed run draws the same
//! batches.

/// Batches per window: large enough that a window's lengths are spread
/// like the whole data's, small enough that an epoch is still mixed.
pub(crate) const WINDOW_BATCHES: usize = 50;

/// Reorders `order` (indices into `lengths`) in place.
pub(crate) fn group_by_length(order: &mut [usize], lengths: &[u32], batch: usize) {
    let window = (batch * WINDOW_BATCHES).max(1);
    for w in order.chunks_mut(window) {
        // Stable: equal lengths keep their shuffled order.
        w.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random order and lengths.
    fn data(n: usize) -> (Vec<usize>, Vec<u32>) {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let lengths = (0..n).map(|_| 5 + (next() % 120) as u32).collect();
        let mut order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            order.swap(i, (next() % (i as u64 + 1)) as usize);
        }
        (order, lengths)
    }

    /// Padded tokens of the batches of `order`, as the collator pads.
    fn padded(order: &[usize], lengths: &[u32], batch: usize) -> u64 {
        order
            .chunks(batch)
            .map(|b| {
                let longest = b.iter().map(|&i| lengths[i]).max().unwrap() as u64;
                b.iter().map(|&i| longest - lengths[i] as u64).sum::<u64>()
            })
            .sum()
    }

    #[test]
    fn a_permutation_of_the_same_examples_with_less_padding() {
        let (order, lengths) = data(5000);
        let mut grouped = order.clone();
        group_by_length(&mut grouped, &lengths, 16);
        let mut a = order.clone();
        let mut b = grouped.clone();
        a.sort();
        b.sort();
        assert_eq!(a, b, "every example once");
        let (before, after) = (padded(&order, &lengths, 16), padded(&grouped, &lengths, 16));
        assert!(after * 10 < before, "padding {before} → {after}");
    }

    #[test]
    fn windows_keep_their_examples_and_sort_longest_first() {
        let (order, lengths) = data(2000);
        let mut grouped = order.clone();
        group_by_length(&mut grouped, &lengths, 8);
        let w = 8 * WINDOW_BATCHES;
        for (before, after) in order.chunks(w).zip(grouped.chunks(w)) {
            let (mut x, mut y) = (before.to_vec(), after.to_vec());
            x.sort();
            y.sort();
            assert_eq!(x, y, "an example left its window");
            assert!(after.windows(2).all(|p| lengths[p[0]] >= lengths[p[1]]));
        }
    }
}
