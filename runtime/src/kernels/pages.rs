//! Handing the pages of a tensor's f32 copy back to the kernel while the
//! tensor lives on (its address reserved and inaccessible), and taking
//! them back before it is freed: for frozen weights that exist only in
//! their packed bf16 form ([`super::PackedWeight`]).

use super::gemm::Strided;

/// Hands back the whole pages inside a dense view's memory; the range, or
/// `None` if nothing was released (a view with gaps or negative strides,
/// less than a page, or a refusal by the kernel).
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
pub(super) fn release(v: &Strided) -> Option<(usize, usize)> {
    let len: usize = v.shape.iter().product();
    let reach: isize = v
        .shape
        .iter()
        .zip(&v.strides)
        .map(|(&d, &s)| (d as isize - 1) * s)
        .sum();
    if v.strides.iter().any(|&s| s < 0) || reach as usize + 1 != len {
        return None;
    }
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    let start = (v.ptr() as usize).next_multiple_of(page);
    let end = (v.ptr() as usize + len * 4) / page * page;
    if end <= start {
        return None;
    }
    let (addr, bytes) = (start as *mut libc::c_void, end - start);
    // Inaccessible first: if the kernel refuses, nothing has changed. Then
    // handed back: should that be refused, the pages stay resident but
    // still guarded, and are restored all the same.
    // SAFETY: whole pages inside the tensor's own elements, which the
    // packed weight keeps alive (it holds a clone) and nothing writes (frozen).
    unsafe {
        if libc::mprotect(addr, bytes, libc::PROT_NONE) != 0 {
            return None;
        }
        libc::madvise(addr, bytes, libc::MADV_DONTNEED);
    }
    Some((start, bytes))
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
pub(super) fn release(_: &Strided) -> Option<(usize, usize)> {
    None
}

/// Makes released pages accessible again (they read as zeros).
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
pub(super) fn restore(ranges: &[(usize, usize)]) {
    for &(start, bytes) in ranges {
        // SAFETY: a range that `release` protected, still mapped (the
        // packed weight's clone keeps the tensor alive until after this).
        let ok = unsafe {
            libc::mprotect(
                start as *mut libc::c_void,
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
            )
        };
        // Freeing memory the allocator cannot write would crash later, far
        // from the cause.
        assert_eq!(ok, 0, "restoring released weight pages");
    }
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
pub(super) fn restore(_: &[(usize, usize)]) {}
