//! Guest output waiting for the pty: bounded, so a console nobody reads cannot grow
//! xenconsoled. When a new chunk does not fit, the oldest bytes go (C xenconsoled's
//! `--overflow-data=discard`, which is its default); the count of dropped bytes is kept.

use std::collections::VecDeque;

#[derive(Debug)]
pub struct OutBuf {
    data: VecDeque<u8>,
    max: usize,
    dropped: u64,
}

impl OutBuf {
    /// Default bound when the toolstack sets no `console/limit`.
    pub const DEFAULT_MAX: usize = 64 * 1024;
    /// Largest bound a `console/limit` may set.
    pub const MAX_MAX: usize = 4 * 1024 * 1024;

    pub fn new(max: usize) -> Self {
        OutBuf { data: VecDeque::new(), max: max.clamp(1, Self::MAX_MAX), dropped: 0 }
    }

    pub fn set_max(&mut self, max: usize) {
        self.max = max.clamp(1, Self::MAX_MAX);
        self.trim();
    }

    /// Appends `bytes`, dropping the oldest beyond the bound.
    pub fn push(&mut self, bytes: &[u8]) {
        let bytes = if bytes.len() > self.max {
            self.dropped += (bytes.len() - self.max) as u64;
            &bytes[bytes.len() - self.max..]
        } else {
            bytes
        };
        self.data.extend(bytes);
        self.trim();
    }

    fn trim(&mut self) {
        if self.data.len() > self.max {
            let over = self.data.len() - self.max;
            self.data.drain(..over);
            self.dropped += over as u64;
        }
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The oldest bytes, contiguous (possibly fewer than [`OutBuf::len`]).
    pub fn front(&self) -> &[u8] {
        self.data.as_slices().0
    }

    /// `n` bytes of [`OutBuf::front`] were written.
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.data.len());
        self.data.drain(..n);
    }

    /// Writes as much as `sink` takes; `sink` returns the bytes taken (0 = no room now).
    pub fn drain_into<E>(&mut self, mut sink: impl FnMut(&[u8]) -> Result<usize, E>) -> Result<usize, E> {
        let mut total = 0;
        while !self.is_empty() {
            let n = sink(self.front())?;
            if n == 0 {
                break;
            }
            self.consume(n);
            total += n;
        }
        Ok(total)
    }

    pub fn clear(&mut self) {
        self.data.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_keeps_newest() {
        let mut b = OutBuf::new(10);
        b.push(b"0123456");
        b.push(b"789abc");
        assert_eq!(b.len(), 10);
        assert_eq!(b.dropped(), 3);
        let mut out = Vec::new();
        b.drain_into(|s| {
            out.extend_from_slice(s);
            Ok::<_, ()>(s.len())
        })
        .unwrap();
        assert_eq!(out, b"3456789abc");
        b.push(&[b'x'; 25]);
        assert_eq!(b.len(), 10);
        assert_eq!(b.dropped(), 18);
    }

    #[test]
    fn partial_writes_and_no_room() {
        let mut b = OutBuf::new(100);
        b.push(b"hello world");
        let mut out = Vec::new();
        let n = b
            .drain_into(|s| {
                let k = s.len().min(4).min(6 - out.len());
                out.extend_from_slice(&s[..k]);
                Ok::<_, ()>(k)
            })
            .unwrap();
        assert_eq!(n, 6);
        assert_eq!(out, b"hello ");
        assert_eq!(b.len(), 5);
        assert_eq!(b.drain_into(|_| Err::<usize, _>("eio")), Err("eio"));
        assert_eq!(b.len(), 5);
        b.set_max(2);
        assert_eq!(b.front(), b"ld");
    }
}
