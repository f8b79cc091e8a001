//! One guest console: its ring, the output waiting for its pty, and what happens to guest
//! output as soon as it arrives (C xenconsoled's `buffer_append`: the whole `out` ring is
//! taken at once, written to the log first, then queued for the pty, which never blocks).

use std::io;

use xenstore::ring::SharedPage;

use crate::logfile::LogFile;
use crate::outbuf::OutBuf;
use crate::ring::{BadIndices, ConsoleRing};

/// What one [`Console::drain`] did. The caller notifies the guest if `bytes > 0` or `bad`
/// (its producer may be waiting for room).
#[derive(Debug, Default)]
pub struct Drained {
    pub bytes: usize,
    /// The indices were impossible; the ring was reset.
    pub bad: Option<BadIndices>,
    /// Writing the log failed.
    pub log_error: Option<io::Error>,
}

pub struct Console<M> {
    pub ring: ConsoleRing<M>,
    /// Output for the pty.
    pub out: OutBuf,
    /// Times the ring was reset for bad indices.
    pub resets: u64,
}

impl<M: SharedPage> Console<M> {
    pub fn new(page: M, max_out: usize) -> Self {
        Console { ring: ConsoleRing::new(page), out: OutBuf::new(max_out), resets: 0 }
    }

    /// Takes all the guest's output: into `log` (if any), then the pty buffer.
    pub fn drain(&mut self, log: Option<&mut LogFile>) -> Drained {
        let mut data = Vec::new();
        let mut d = Drained::default();
        match self.ring.drain_out(&mut data) {
            Ok(n) => d.bytes = n,
            Err(e) => {
                self.resets += 1;
                d.bad = Some(e);
            }
        }
        if !data.is_empty() {
            if let Some(l) = log {
                d.log_error = l.write(&data).err();
            }
            self.out.push(&data);
        }
        d
    }

    /// Room for input in the guest's `in` ring (0 after bad indices, which reset it).
    pub fn in_space(&mut self) -> usize {
        match self.ring.in_space() {
            Ok(n) => n,
            Err(_) => {
                self.resets += 1;
                0
            }
        }
    }

    /// Input for the guest (from the pty): as much as fits; the caller notifies if > 0.
    pub fn input(&mut self, data: &[u8]) -> Result<usize, BadIndices> {
        self.ring.push_in(data).inspect_err(|_| self.resets += 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::Index;
    use std::cell::RefCell;
    use std::io::Write;
    use std::rc::Rc;

    #[derive(Clone, Default)]
    struct Sink(Rc<RefCell<Vec<u8>>>);
    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// The guest's view of the same page.
    #[derive(Clone)]
    struct Shared(Rc<RefCell<Vec<u8>>>);
    impl SharedPage for Shared {
        fn load_u32(&self, o: usize) -> u32 {
            self.0.borrow().load_u32(o)
        }
        fn store_u32(&mut self, o: usize, v: u32) {
            self.0.borrow_mut().store_u32(o, v)
        }
        fn read(&self, o: usize, b: &mut [u8]) {
            self.0.borrow().read(o, b)
        }
        fn write(&mut self, o: usize, d: &[u8]) {
            SharedPage::write(&mut *self.0.borrow_mut(), o, d)
        }
    }

    fn setup(max_out: usize) -> (Console<Shared>, ConsoleRing<Shared>, LogFile, Sink) {
        let page = Shared(Rc::new(RefCell::new(vec![0u8; 4096])));
        let sink = Sink::default();
        let log = LogFile::new(Box::new(sink.clone()), "guest-x.log".into(), false, false);
        (Console::new(page.clone(), max_out), ConsoleRing::new(page), log, sink)
    }

    #[test]
    fn output_goes_to_log_and_pty_buffer() {
        let (mut c, mut guest, mut log, sink) = setup(1 << 20);
        let mut expect = Vec::new();
        // A guest printing more than a ring's worth in bursts, wrapping many times.
        for i in 0..50u32 {
            let line = format!("line {i} {}\n", "x".repeat((i as usize * 53) % 1900));
            let mut rest = line.as_bytes();
            while !rest.is_empty() {
                let n = guest.guest_write(rest);
                rest = &rest[n..];
                let d = c.drain(Some(&mut log));
                assert_eq!(d.bytes, n);
                assert!(d.bad.is_none() && d.log_error.is_none());
            }
            expect.extend_from_slice(line.as_bytes());
        }
        assert_eq!(*sink.0.borrow(), expect);
        let mut pty = Vec::new();
        c.out
            .drain_into(|b| {
                pty.extend_from_slice(b);
                Ok::<_, ()>(b.len())
            })
            .unwrap();
        assert_eq!(pty, expect);
        // Nothing pending: nothing moves.
        assert_eq!(c.drain(Some(&mut log)).bytes, 0);
    }

    #[test]
    fn nobody_reading_the_pty_never_stalls_the_guest() {
        let (mut c, mut guest, mut log, sink) = setup(4096);
        let mut total = 0;
        for _ in 0..100 {
            assert_eq!(guest.guest_write(&[b'a'; 2048]), 2048, "the guest found its ring full");
            total += c.drain(Some(&mut log)).bytes;
        }
        assert_eq!(total, 204_800);
        // The log has everything, the pty buffer the newest 4 KiB.
        assert_eq!(sink.0.borrow().len(), 204_800);
        assert_eq!(c.out.len(), 4096);
        assert_eq!(c.out.dropped(), 204_800 - 4096);
    }

    #[test]
    fn hostile_indices_reset_without_panic() {
        let (mut c, mut guest, mut log, sink) = setup(1 << 16);
        guest.set_index(Index::OutProd, 0x7fff_ffff);
        let d = c.drain(Some(&mut log));
        assert!(d.bad.is_some());
        assert_eq!(d.bytes, 0);
        assert!(sink.0.borrow().is_empty());
        // After the reset the guest's ring works again.
        assert_eq!(guest.guest_write(b"hello"), 5);
        assert_eq!(c.drain(Some(&mut log)).bytes, 5);
        assert_eq!(&sink.0.borrow()[..], b"hello");
        // Random indices: bounded work, never more than a ring per drain.
        let mut x = 12345u32;
        for _ in 0..10_000 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let which = [Index::InCons, Index::InProd, Index::OutCons, Index::OutProd][(x >> 28) as usize % 4];
            guest.set_index(which, x);
            let d = c.drain(None);
            assert!(d.bytes <= 2048);
            let space = c.in_space();
            assert!(space <= 1024);
            let _ = c.input(b"k");
        }
        assert!(c.resets > 0);
    }

    #[test]
    fn input_fills_the_in_ring_but_no_more() {
        let (mut c, mut guest, _, _) = setup(1 << 16);
        assert_eq!(c.in_space(), 1024);
        assert_eq!(c.input(&[b'k'; 1000]), Ok(1000));
        assert_eq!(c.in_space(), 24);
        assert_eq!(c.input(&[b'l'; 100]), Ok(24));
        assert_eq!(c.in_space(), 0);
        assert_eq!(c.input(b"m"), Ok(0));
        let got = guest.guest_read();
        assert_eq!(got.len(), 1024);
        assert_eq!(c.in_space(), 1024);
        // The guest consumer running ahead of our producer resets the ring.
        guest.set_index(Index::InCons, 5000);
        assert_eq!(c.in_space(), 0);
        assert_eq!(c.in_space(), 1024);
        assert_eq!(c.input(b"ok"), Ok(2));
        assert_eq!(guest.guest_read(), b"ok");
    }
}
