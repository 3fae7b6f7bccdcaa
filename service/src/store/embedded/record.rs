//! The record framing shared by the log and the snapshot: `len: u32 LE | crc32(payload): u32
//! LE | payload`. A reader stops at the first record that is not whole or whose checksum is
//! wrong, which is how a torn write at the end of the log is found. A length of 0 ends the
//! records: no payload is empty, and the log's tail is zeros written ahead (`ahead.rs`).

/// The bytes before a record's payload: its length and its checksum.
const HEADER_LEN: usize = 8;

/// Appends `payload` (never empty: see the module's doc) to `out` as one record: length,
/// checksum, payload.
pub(super) fn frame(out: &mut Vec<u8>, payload: &[u8]) {
    frame_with(out, |out| out.extend_from_slice(payload));
}

/// Appends one record to `out` whose payload `write_payload` appends: written in place, not
/// built apart and copied.
pub(super) fn frame_with(out: &mut Vec<u8>, write_payload: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER_LEN]);
    write_payload(out);
    let payload = &out[start + HEADER_LEN..];
    let len = u32::try_from(payload.len()).expect("a record is smaller than 4 GiB");
    let crc = crc32fast::hash(payload);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
}

/// The complete, intact records at the start of `bytes`, in order.
pub(super) fn records(bytes: &[u8]) -> Records<'_> {
    Records { bytes, offset: 0 }
}

/// An iterator over the payloads of the intact records at the start of a byte string.
pub(super) struct Records<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl Records<'_> {
    /// The offset just after the last record returned.
    pub(super) fn end(&self) -> usize {
        self.offset
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let header = self.bytes.get(self.offset..self.offset + HEADER_LEN)?;
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        // Zeros written ahead (whose checksum, that of nothing, would match).
        if len == 0 {
            return None;
        }
        let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
        let start = self.offset + HEADER_LEN;
        let payload = self.bytes.get(start..start.checked_add(len)?)?;
        if crc32fast::hash(payload) != crc {
            return None;
        }
        self.offset = start + len;
        Some(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checksum_is_crc32_ieee() {
        assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn records_round_trip_and_a_torn_or_damaged_tail_is_not_read() {
        let mut bytes = Vec::new();
        frame(&mut bytes, b"first");
        let first = bytes.len();
        frame(&mut bytes, b"second record");
        let whole = bytes.len();
        let mut all = records(&bytes);
        assert_eq!(
            all.by_ref().collect::<Vec<_>>(),
            [&b"first"[..], b"second record"]
        );
        assert_eq!(all.end(), whole);
        for cut in first..whole {
            let mut read = records(&bytes[..cut]);
            assert_eq!(read.by_ref().count(), 1, "cut at {cut}");
            assert_eq!(read.end(), first);
        }
        bytes[whole - 1] ^= 1;
        assert_eq!(records(&bytes).count(), 1);
        let mut zeros = Vec::new();
        frame(&mut zeros, b"first");
        zeros.resize(64, 0);
        assert_eq!(records(&zeros).count(), 1);
    }
}
