//! The buffers of the last patch a thread dropped, kept for the next patch it parses.
//!
//! A parsed patch holds its names and changes in three buffers sized for its input. Made
//! and freed for every request, the change buffer (over 1 KiB from a few dozen traits on)
//! went through glibc's arena rather than its per-thread cache, and each such allocation
//! first consolidated every small block freed since: the values a merge had just replaced.
//! A thread now keeps one set of buffers, at most [`KEPT_BYTES`] of each, cleared.
//!
//! It pays where one thread parses and drops its patches (parsing, then merging by value);
//! a patch sent to another thread leaves its buffers to that thread.

use std::cell::RefCell;
use std::mem;

use super::{Entry, GroupEntry, Patch};

/// The largest buffer kept, in bytes: a patch of a few hundred traits. A larger one is freed,
/// so a thread keeps at most about 3 times this.
const KEPT_BYTES: usize = 16 * 1024;

/// Emptied buffers of a patch: the ones it had on the heap.
#[derive(Default)]
pub(super) struct Buffers {
    pub(super) names: String,
    pub(super) groups: Vec<GroupEntry>,
    pub(super) entries: Vec<Entry>,
}

thread_local! {
    static SPARE: RefCell<Option<Buffers>> = const { RefCell::new(None) };
}

/// The buffers this thread kept, if any, or new empty ones.
pub(super) fn take() -> Buffers {
    SPARE
        .try_with(|spare| spare.borrow_mut().take())
        .ok()
        .flatten()
        .unwrap_or_default()
}

impl Drop for Patch {
    /// Keeps the patch's buffers for the thread's next parse when none are kept yet and
    /// they are small enough; frees them otherwise. Names and a group kept inside the
    /// patch need nothing kept.
    fn drop(&mut self) {
        let small = |bytes: usize| bytes <= KEPT_BYTES;
        let entries_bytes = self.entries.capacity() * mem::size_of::<Entry>();
        if entries_bytes == 0 || !small(entries_bytes) {
            return;
        }
        // Taken by reference: a patch's inline names and group are not moved to be dropped.
        let names = match self.names.heap_buffer() {
            Some(heap) if small(heap.capacity()) => mem::take(heap),
            _ => String::new(),
        };
        let mut groups = Vec::new();
        if self.groups.spilled() && small(self.groups.capacity() * mem::size_of::<GroupEntry>()) {
            groups = mem::take(&mut self.groups).into_vec();
            groups.clear();
        }
        let mut entries = mem::take(&mut self.entries);
        entries.clear();
        let buffers = Buffers {
            names,
            groups,
            entries,
        };
        // Buffers not kept (some already are, or the thread is ending) are freed here.
        let _ = SPARE.try_with(|spare| {
            let mut spare = spare.borrow_mut();
            if spare.is_none() {
                *spare = Some(buffers);
            }
        });
    }
}
