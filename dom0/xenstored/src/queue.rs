//! A connection's output: encoded messages waiting for the socket or ring to take them.
//!
//! The queue is bounded: past [`OutQueue::LIMIT`] bytes the daemon stops reading requests
//! from that connection (so its replies cannot grow the queue further) and drops watch
//! events for it, counting them, as C xenstored drops events for a connection that does
//! not read.

use std::collections::VecDeque;

use xenstore::Message;

#[derive(Debug, Default)]
pub struct OutQueue {
    /// Encoded messages, each marked true for a reply (false: a watch event); the first may
    /// be partly sent (`sent` bytes).
    msgs: VecDeque<(Vec<u8>, bool)>,
    sent: usize,
    bytes: usize,
    replies: usize,
    dropped: u64,
}

impl OutQueue {
    /// Queued bytes above which requests are no longer read and watch events are dropped.
    pub const LIMIT: usize = 256 * 1024;

    pub fn new() -> Self {
        Self::default()
    }

    /// Queues a reply: always accepted (the caller stops reading requests while
    /// [`OutQueue::is_full`], which bounds how far replies can overshoot).
    pub fn push_reply(&mut self, msg: &Message) {
        self.push(msg, true);
    }

    fn push(&mut self, msg: &Message, reply: bool) {
        let data = msg.encode();
        self.bytes += data.len();
        self.replies += usize::from(reply);
        self.msgs.push_back((data, reply));
    }

    /// Queues a watch event unless the queue is full; false when it was dropped.
    pub fn push_event(&mut self, msg: &Message) -> bool {
        if self.is_full() {
            self.dropped += 1;
            return false;
        }
        self.push(msg, false);
        true
    }

    pub fn is_full(&self) -> bool {
        self.bytes >= Self::LIMIT
    }

    pub fn is_empty(&self) -> bool {
        self.bytes == 0
    }

    /// Bytes waiting.
    pub fn len(&self) -> usize {
        self.bytes
    }

    /// Drops everything queued (the dropped-event count stays).
    pub fn clear(&mut self) {
        *self = Self { dropped: self.dropped, ..Self::default() };
    }

    /// Replies not completely sent yet (xenstored's outstanding requests).
    pub fn replies(&self) -> usize {
        self.replies
    }

    /// Watch events dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The next bytes to send (empty when the queue is).
    pub fn front(&self) -> &[u8] {
        self.msgs.front().map_or(&[][..], |m| &m.0[self.sent..])
    }

    /// `n` bytes of [`OutQueue::front`] were sent.
    pub fn consume(&mut self, mut n: usize) {
        while n > 0 {
            let Some((front, reply)) = self.msgs.front() else { return };
            let left = front.len() - self.sent;
            let k = n.min(left);
            self.sent += k;
            self.bytes -= k;
            n -= k;
            if self.sent == front.len() {
                self.replies -= usize::from(*reply);
                self.msgs.pop_front();
                self.sent = 0;
            }
        }
    }

    /// Sends as much as `sink` takes: it returns bytes taken (0 = no room now).
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use xen_abi::io::xs_wire::{XS_READ, XS_WATCH_EVENT};

    fn msg(len: usize) -> Message {
        Message::new(XS_READ, 1, 0, vec![b'x'; len])
    }

    #[test]
    fn partial_sends_keep_order() {
        let mut q = OutQueue::new();
        q.push_reply(&msg(10));
        q.push_reply(&msg(20));
        assert_eq!(q.len(), 16 + 10 + 16 + 20);
        let mut out = Vec::new();
        // A sink that takes 7 bytes a call, then refuses after 30 bytes.
        let n = q
            .drain_into(|b| {
                let k = b.len().min(7).min(30 - out.len());
                out.extend_from_slice(&b[..k]);
                Ok::<_, ()>(k)
            })
            .unwrap();
        assert_eq!(n, 30);
        assert_eq!(q.len(), 62 - 30);
        assert_eq!(q.replies(), 1);
        q.drain_into(|b| {
            out.extend_from_slice(b);
            Ok::<_, ()>(b.len())
        })
        .unwrap();
        assert!(q.is_empty());
        assert_eq!(q.replies(), 0);
        assert_eq!(out, [msg(10).encode(), msg(20).encode()].concat());
    }

    #[test]
    fn full_queue_drops_events_not_replies() {
        let mut q = OutQueue::new();
        let ev = Message::new(XS_WATCH_EVENT, 0, 0, b"/a\0t\0".to_vec());
        assert!(q.push_event(&ev));
        while !q.is_full() {
            q.push_reply(&msg(4000));
        }
        let before = q.len();
        assert!(!q.push_event(&ev));
        assert_eq!(q.dropped(), 1);
        assert_eq!(q.len(), before);
        q.push_reply(&msg(1));
        assert_eq!(q.len(), before + 17);
        // Once drained below the limit, events flow again.
        q.consume(before);
        assert!(!q.is_full());
        assert!(q.push_event(&ev));
    }

    #[test]
    fn errors_stop_draining() {
        let mut q = OutQueue::new();
        q.push_reply(&msg(1));
        assert_eq!(q.drain_into(|_| Err::<usize, _>("broken")), Err("broken"));
        assert_eq!(q.len(), 17);
    }
}
