//! The record layout (version 1) in which the durable stores keep an update.
//!
//! All integers little-endian. Every length is checked on decode, and a record must end
//! exactly after its frame: anything else is [`StoreError::Corrupt`], never a panic.
//!
//! | bytes | field |
//! |---|---|
//! | 1 | version, `1` |
//! | 1 | flags: bit 0 = `private`; the other bits are reserved and must be 0 |
//! | 4 | topic count `n` (u32) |
//! | `n` × (4 + len) | each topic: length (u32), then UTF-8 bytes; canonical topic first |
//! | 4 + len | id: length (u32), then UTF-8 bytes |
//! | 4 + len | frame: length (u32), then the encoded SSE frame |
//!
//! The seq is not in the record: the redb store keys records by seq, and the Redis store
//! puts them in stream entries whose id carries the seq. One layout means one decoder to
//! harden.

use bytes::Bytes;

use super::StoreError;
use crate::update::Update;

/// The record version this code writes and reads.
const RECORD_VERSION: u8 = 1;
/// Record flag bit: the update is private.
const FLAG_PRIVATE: u8 = 0b0000_0001;

/// Writes `update` as a version-1 record into `out` (cleared first).
pub(crate) fn encode_record(update: &Update, out: &mut Vec<u8>) -> Result<(), StoreError> {
    out.clear();
    out.push(RECORD_VERSION);
    out.push(if update.private { FLAG_PRIVATE } else { 0 });
    put_len(out, update.topics.len())?;
    for topic in &update.topics {
        put_bytes(out, topic.as_bytes())?;
    }
    put_bytes(out, update.id.as_bytes())?;
    put_bytes(out, &update.frame)
}

fn put_len(out: &mut Vec<u8>, len: usize) -> Result<(), StoreError> {
    // Unreachable in practice (publish bodies are far smaller), but never truncate silently.
    let len = u32::try_from(len).map_err(|_| {
        StoreError::Unavailable(format!("update field of {len} bytes is too large to store"))
    })?;
    out.extend_from_slice(&len.to_le_bytes());
    Ok(())
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) -> Result<(), StoreError> {
    put_len(out, bytes.len())?;
    out.extend_from_slice(bytes);
    Ok(())
}

/// Decodes the record stored under `seq`.
pub(crate) fn decode_record(seq: u64, bytes: &[u8]) -> Result<Update, StoreError> {
    let mut reader = RecordReader { seq, bytes };
    let private = reader.header()?;
    let count = reader.len("topic count")?;
    // Each topic takes at least its 4-byte length, so a corrupt count cannot make this
    // reserve more than the record could hold.
    let mut topics = Vec::with_capacity(count.min(reader.bytes.len() / 4));
    for _ in 0..count {
        topics.push(reader.str("topic")?.to_owned());
    }
    let id = reader.str("id")?.to_owned();
    let frame = Bytes::copy_from_slice(reader.field("frame")?);
    reader.end()?;
    Ok(Update {
        seq,
        id,
        topics,
        private,
        frame,
    })
}

/// Decodes only the id of the record stored under `seq` (trimming needs nothing else).
pub(crate) fn decode_id(seq: u64, bytes: &[u8]) -> Result<&str, StoreError> {
    let mut reader = RecordReader { seq, bytes };
    reader.header()?;
    for _ in 0..reader.len("topic count")? {
        reader.field("topic")?;
    }
    reader.str("id")
}

/// A cursor over one record; every read is bounds-checked.
struct RecordReader<'a> {
    /// For error messages.
    seq: u64,
    /// What is left to read.
    bytes: &'a [u8],
}

impl<'a> RecordReader<'a> {
    fn corrupt(&self, what: &str) -> StoreError {
        StoreError::Corrupt(format!("record {}: {what}", self.seq))
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], StoreError> {
        if self.bytes.len() < n {
            return Err(self.corrupt(&format!("truncated {what}")));
        }
        let (taken, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(taken)
    }

    /// Checks version and flags; returns the private flag.
    fn header(&mut self) -> Result<bool, StoreError> {
        let header = self.take(2, "header")?;
        if header[0] != RECORD_VERSION {
            return Err(self.corrupt(&format!("unknown record version {}", header[0])));
        }
        if header[1] & !FLAG_PRIVATE != 0 {
            return Err(self.corrupt(&format!("unknown flags {:#04x}", header[1])));
        }
        Ok(header[1] & FLAG_PRIVATE != 0)
    }

    fn len(&mut self, what: &str) -> Result<usize, StoreError> {
        let bytes = self.take(4, what)?;
        let len = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        usize::try_from(len).map_err(|_| self.corrupt(what))
    }

    fn field(&mut self, what: &str) -> Result<&'a [u8], StoreError> {
        let len = self.len(what)?;
        self.take(len, what)
    }

    fn str(&mut self, what: &str) -> Result<&'a str, StoreError> {
        let bytes = self.field(what)?;
        std::str::from_utf8(bytes).map_err(|_| self.corrupt(&format!("{what} is not UTF-8")))
    }

    fn end(&self) -> Result<(), StoreError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(self.corrupt(&format!("{} trailing bytes", self.bytes.len())))
        }
    }
}
