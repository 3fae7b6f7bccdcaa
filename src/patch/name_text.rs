//! The text of a patch's names, back to back: kept inside the patch while it is short.
//!
//! A patch of a few traits names about 30 to 60 bytes. Kept in a `String`, that was an
//! allocation of its own, made when the patch was parsed or cloned and freed when a merge
//! that took it by value dropped it: in a batch of merges, with no allocation in between to
//! take the freed block back, glibc's free went past its per-thread cache for every one
//! (callgrind, `bash benches/icount.sh small`: 230 of `ours_in_place`'s 1637 instructions).

use std::ops::Deref;

use arrayvec::ArrayString;

/// Bytes of names kept inside the patch: a group and three or four traits of typical names.
pub(super) const INLINE_BYTES: usize = 64;

/// Names back to back, in the patch while they fit [`INLINE_BYTES`], then in a `String`.
#[derive(Clone)]
pub(super) enum NameText {
    Inline(ArrayString<INLINE_BYTES>),
    Heap(String),
}

impl Default for NameText {
    fn default() -> Self {
        NameText::Inline(ArrayString::new())
    }
}

impl NameText {
    /// Appends `name`, moving the text to the heap when it no longer fits inside.
    #[inline]
    pub(super) fn push_str(&mut self, name: &str) {
        match self {
            NameText::Inline(inline) => {
                if inline.try_push_str(name).is_err() {
                    let mut heap = String::with_capacity(2 * (inline.len() + name.len()));
                    heap.push_str(inline);
                    heap.push_str(name);
                    *self = NameText::Heap(heap);
                }
            }
            NameText::Heap(heap) => heap.push_str(name),
        }
    }

    /// The heap buffer, emptied, if the text had moved there.
    pub(super) fn heap_buffer(&mut self) -> Option<&mut String> {
        match self {
            NameText::Inline(_) => None,
            NameText::Heap(heap) => {
                heap.clear();
                Some(heap)
            }
        }
    }
}

impl Deref for NameText {
    type Target = str;

    #[inline]
    fn deref(&self) -> &str {
        match self {
            NameText::Inline(inline) => inline,
            NameText::Heap(heap) => heap,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_inside_until_they_overflow_then_keep_every_byte_on_the_heap() {
        let mut text = NameText::default();
        let name = "é".repeat(10); // 20 bytes, multi-byte characters
        for round in 1..=3 {
            text.push_str(&name);
            assert!(
                matches!(text, NameText::Inline(_)),
                "{round} names fit inside"
            );
        }
        text.push_str(&name);
        assert!(matches!(text, NameText::Heap(_)), "the fourth overflows");
        assert_eq!(&*text, name.repeat(4));
        text.push_str("x");
        assert_eq!(text.len(), 81);
        assert_eq!(text.heap_buffer().map(|heap| heap.len()), Some(0));
    }
}
