//! An emulated Arm PL011 UART (PrimeCell UART r1p5 register layout) for a
//! guest console, complete enough for Linux's `amba-pl011` driver and its
//! earlycon.
//!
//! Transmission is instantaneous: every data-register write hands the byte to
//! the caller, so the TX FIFO is always empty (`FR.TXFE = 1`, `FR.TXFF = 0`,
//! `FR.BUSY = 0`). The receive side is a 32-byte FIFO the caller fills with
//! [`Vpl011::push_rx`].
//!
//! Interrupts: `TXIS` is latched: set at reset and on every DR write (the FIFO
//! is empty again at once), cleared only by `ICR`. `RXIS` and `RTIS` are
//! levels: set exactly while the RX FIFO holds data (writing them to `ICR` has
//! no lasting effect while data remains). The line is
//! `(RIS & IMSC) != 0`; the binary must re-sample [`Vpl011::irq_level`] after
//! every [`Vpl011::read`] / [`Vpl011::write`] / [`Vpl011::push_rx`] and drive
//! the SPI accordingly (level-sensitive).
//!
//! Accesses: 8-, 16- and 32-bit reads/writes at their natural alignment reach
//! the byte lanes of the 32-bit registers; a 64-bit or misaligned access, and
//! any unknown offset, is RAZ/WI. Nothing here panics.

/// Register offsets.
pub mod reg {
    /// Data register.
    pub const DR: u64 = 0x000;
    /// Receive status / error clear.
    pub const RSR_ECR: u64 = 0x004;
    /// Flag register.
    pub const FR: u64 = 0x018;
    /// IrDA low-power counter.
    pub const ILPR: u64 = 0x020;
    /// Integer baud rate divisor.
    pub const IBRD: u64 = 0x024;
    /// Fractional baud rate divisor.
    pub const FBRD: u64 = 0x028;
    /// Line control.
    pub const LCR_H: u64 = 0x02C;
    /// Control.
    pub const CR: u64 = 0x030;
    /// Interrupt FIFO level select.
    pub const IFLS: u64 = 0x034;
    /// Interrupt mask set/clear.
    pub const IMSC: u64 = 0x038;
    /// Raw interrupt status.
    pub const RIS: u64 = 0x03C;
    /// Masked interrupt status.
    pub const MIS: u64 = 0x040;
    /// Interrupt clear (write 1 to clear).
    pub const ICR: u64 = 0x044;
    /// DMA control (RAZ/WI here).
    pub const DMACR: u64 = 0x048;
    /// PeriphID0; PeriphID1..3 and PCellID0..3 follow every 4 bytes.
    pub const PERIPH_ID0: u64 = 0xFE0;
}

/// Flag register bits.
pub mod fr {
    /// Busy transmitting.
    pub const BUSY: u32 = 1 << 3;
    /// Receive FIFO empty.
    pub const RXFE: u32 = 1 << 4;
    /// Transmit FIFO full.
    pub const TXFF: u32 = 1 << 5;
    /// Receive FIFO full.
    pub const RXFF: u32 = 1 << 6;
    /// Transmit FIFO empty.
    pub const TXFE: u32 = 1 << 7;
}

/// Interrupt bits (IMSC/RIS/MIS/ICR).
pub mod int {
    /// Receive.
    pub const RX: u32 = 1 << 4;
    /// Transmit.
    pub const TX: u32 = 1 << 5;
    /// Receive timeout.
    pub const RT: u32 = 1 << 6;
    /// Framing error.
    pub const FE: u32 = 1 << 7;
    /// Parity error.
    pub const PE: u32 = 1 << 8;
    /// Break error.
    pub const BE: u32 = 1 << 9;
    /// Overrun error.
    pub const OE: u32 = 1 << 10;
    /// All eleven implemented interrupt bits.
    pub const ALL: u32 = 0x7FF;
}

/// CR bit: loopback enable (TX is fed back into RX).
pub const CR_LBE: u32 = 1 << 7;
/// Reset value of CR: TXE | RXE.
pub const CR_RESET: u32 = 0x0300;
/// Reset value of IFLS: both FIFOs at half.
pub const IFLS_RESET: u32 = 0x12;
/// Receive FIFO depth (PL011 r1p5; Linux derives 32 from PeriphID2's revision 3).
pub const RX_FIFO_SIZE: usize = 32;

/// AMBA IDs at 0xFE0..=0xFFC: PeriphID0..3 (part 0x011, designer Arm, rev 3)
/// then PCellID0..3 (0xB105F00D).
const ID_REGS: [u8; 8] = [0x11, 0x10, 0x34, 0x00, 0x0D, 0xF0, 0x05, 0xB1];

/// The emulated UART.
#[derive(Clone, Debug)]
pub struct Vpl011 {
    rx: [u8; RX_FIFO_SIZE],
    rx_head: usize,
    rx_len: usize,
    ilpr: u32,
    ibrd: u32,
    fbrd: u32,
    lcr_h: u32,
    cr: u32,
    ifls: u32,
    imsc: u32,
    /// Latched interrupt bits (TX only; RX/RT are derived from the FIFO).
    latched: u32,
}

impl Default for Vpl011 {
    fn default() -> Self {
        Self::new()
    }
}

impl Vpl011 {
    /// A UART in its reset state (TX FIFO empty, so TXIS is raised but masked).
    pub const fn new() -> Self {
        Vpl011 {
            rx: [0; RX_FIFO_SIZE],
            rx_head: 0,
            rx_len: 0,
            ilpr: 0,
            ibrd: 0,
            fbrd: 0,
            lcr_h: 0,
            cr: CR_RESET,
            ifls: IFLS_RESET,
            imsc: 0,
            latched: int::TX,
        }
    }

    /// Raw interrupt status.
    fn ris(&self) -> u32 {
        let rx = if self.rx_len > 0 {
            int::RX | int::RT
        } else {
            0
        };
        (self.latched | rx) & int::ALL
    }

    fn flags(&self) -> u32 {
        let mut f = fr::TXFE;
        if self.rx_len == 0 {
            f |= fr::RXFE;
        }
        if self.rx_len == RX_FIFO_SIZE {
            f |= fr::RXFF;
        }
        f
    }

    fn pop_rx(&mut self) -> Option<u8> {
        if self.rx_len == 0 {
            return None;
        }
        let b = self.rx[self.rx_head];
        self.rx_head = (self.rx_head + 1) % RX_FIFO_SIZE;
        self.rx_len -= 1;
        Some(b)
    }

    /// Queue a received byte for the guest. `false` (byte not taken) when the
    /// FIFO is full: keep it and retry after the guest reads DR.
    pub fn push_rx(&mut self, byte: u8) -> bool {
        if self.rx_len == RX_FIFO_SIZE {
            return false;
        }
        let tail = (self.rx_head + self.rx_len) % RX_FIFO_SIZE;
        self.rx[tail] = byte;
        self.rx_len += 1;
        true
    }

    /// Bytes waiting in the RX FIFO.
    pub fn rx_pending(&self) -> usize {
        self.rx_len
    }

    /// Room left in the RX FIFO.
    pub fn rx_space(&self) -> usize {
        RX_FIFO_SIZE - self.rx_len
    }

    /// Level of the UART's interrupt line: `(RIS & IMSC) != 0`.
    pub fn irq_level(&self) -> bool {
        self.ris() & self.imsc != 0
    }

    /// Current value of a whole 32-bit register, with read side effects when
    /// `consume` (DR pops the RX FIFO).
    fn reg_read(&mut self, reg: u64, consume: bool) -> u32 {
        match reg {
            // Error bits 11:8 are always clear.
            reg::DR if consume => self.pop_rx().map_or(0, u32::from),
            reg::RSR_ECR => 0,
            reg::FR => self.flags(),
            reg::ILPR => self.ilpr,
            reg::IBRD => self.ibrd,
            reg::FBRD => self.fbrd,
            reg::LCR_H => self.lcr_h,
            reg::CR => self.cr,
            reg::IFLS => self.ifls,
            reg::IMSC => self.imsc,
            reg::RIS => self.ris(),
            reg::MIS => self.ris() & self.imsc,
            0xFE0..=0xFFC if reg.is_multiple_of(4) => {
                ID_REGS[((reg - reg::PERIPH_ID0) / 4) as usize & 7] as u32
            }
            _ => 0, // DR without consuming, ICR, DMACR, reserved: RAZ
        }
    }

    /// Guest read of `size` bytes at `offset` within the 4 KiB frame.
    pub fn read(&mut self, offset: u64, size: u8) -> u64 {
        let Some((reg, shift, mask)) = lane(offset, size) else {
            return 0;
        };
        // Reading DR pops a byte only when the access covers its data lane.
        let consume = shift == 0;
        ((self.reg_read(reg, consume) >> shift) & mask) as u64
    }

    /// Guest write of `size` bytes at `offset`. Returns the byte to transmit
    /// for a DR write (unless the UART is in loopback mode, where the byte
    /// goes to the RX FIFO instead).
    pub fn write(&mut self, offset: u64, size: u8, value: u64) -> Option<u8> {
        let (reg, shift, mask) = lane(offset, size)?;
        let v = (value as u32 & mask) << shift;
        let lanes = mask << shift;
        // Merge into the register's other byte lanes (sub-word writes).
        let merge = |old: u32, writable: u32| (old & !(lanes & writable)) | (v & writable);
        match reg {
            reg::DR => {
                if shift != 0 {
                    return None; // error-flag lanes: WI
                }
                let byte = v as u8;
                self.latched |= int::TX;
                if self.cr & CR_LBE != 0 {
                    let _ = self.push_rx(byte);
                    return None;
                }
                return Some(byte);
            }
            reg::ILPR => self.ilpr = merge(self.ilpr, 0xFF),
            reg::IBRD => self.ibrd = merge(self.ibrd, 0xFFFF),
            reg::FBRD => self.fbrd = merge(self.fbrd, 0x3F),
            reg::LCR_H => self.lcr_h = merge(self.lcr_h, 0xFF),
            reg::CR => self.cr = merge(self.cr, 0xFF87),
            reg::IFLS => self.ifls = merge(self.ifls, 0x3F),
            reg::IMSC => self.imsc = merge(self.imsc, int::ALL),
            reg::ICR => self.latched &= !(v & int::ALL),
            // RSR/ECR (clear errors: none), FR, RIS, MIS, DMACR, IDs, reserved.
            _ => {}
        }
        None
    }
}

/// Register, bit shift and value mask for an access, or `None` when it is
/// not a naturally aligned 1/2/4-byte access inside the 4 KiB frame.
fn lane(offset: u64, size: u8) -> Option<(u64, u32, u32)> {
    let mask = match size {
        1 => 0xFF,
        2 => 0xFFFF,
        4 => 0xFFFF_FFFF,
        _ => return None,
    };
    if offset >= 0x1000 || !offset.is_multiple_of(size as u64) {
        return None;
    }
    Some((offset & !3, ((offset & 3) * 8) as u32, mask))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_registers() {
        let mut u = Vpl011::new();
        let want = [0x11, 0x10, 0x34, 0x00, 0x0D, 0xF0, 0x05, 0xB1];
        for (i, w) in want.iter().enumerate() {
            let off = 0xFE0 + 4 * i as u64;
            assert_eq!(u.read(off, 4), *w, "{off:#x}");
            assert_eq!(u.read(off, 1), *w);
            assert_eq!(u.read(off, 2), *w);
            assert_eq!(u.read(off + 1, 1), 0);
        }
        // Linux's amba bus builds the IDs from the low byte of each word.
        let pid = (0..4).fold(0u64, |acc, i| {
            acc | (u.read(0xFE0 + 4 * i, 4) & 0xFF) << (8 * i)
        });
        let cid = (0..4).fold(0u64, |acc, i| {
            acc | (u.read(0xFF0 + 4 * i, 4) & 0xFF) << (8 * i)
        });
        assert_eq!(pid, 0x0034_1011);
        assert_eq!(cid, 0xB105_F00D);
        // IDs are read-only.
        u.write(0xFE0, 4, 0);
        assert_eq!(u.read(0xFE0, 4), 0x11);
    }

    #[test]
    fn reset_state() {
        let mut u = Vpl011::new();
        assert_eq!(u.read(reg::FR, 4) as u32, fr::TXFE | fr::RXFE);
        assert_eq!(u.read(reg::CR, 4), 0x300);
        assert_eq!(u.read(reg::IFLS, 4), 0x12);
        assert_eq!(u.read(reg::IMSC, 4), 0);
        assert_eq!(u.read(reg::RIS, 4) as u32, int::TX);
        assert_eq!(u.read(reg::MIS, 4), 0);
        assert!(!u.irq_level());
        assert_eq!(u.read(reg::DR, 4), 0);
    }

    #[test]
    fn transmit() {
        let mut u = Vpl011::new();
        assert_eq!(u.write(reg::DR, 4, 0x41), Some(b'A'));
        assert_eq!(u.write(reg::DR, 4, 0xFFFF_FF42), Some(b'B'));
        // earlycon: byte writes; 16-bit writes (UPIO_MEM).
        assert_eq!(u.write(reg::DR, 1, 0x43), Some(b'C'));
        assert_eq!(u.write(reg::DR, 2, 0x144), Some(b'D'));
        // Writes to DR's upper lanes transmit nothing.
        assert_eq!(u.write(1, 1, 0x45), None);
        assert_eq!(u.write(2, 2, 0x45), None);
        let f = u.read(reg::FR, 4) as u32;
        assert_ne!(f & fr::TXFE, 0);
        assert_eq!(f & (fr::TXFF | fr::BUSY), 0);
        // Other registers never transmit.
        for off in (0..0x1000).step_by(4).filter(|&o| o != 0) {
            assert_eq!(u.write(off, 4, 0x41), None, "{off:#x}");
        }
    }

    #[test]
    fn receive_fifo_order_and_overflow() {
        let mut u = Vpl011::new();
        for i in 0..RX_FIFO_SIZE as u8 {
            assert!(u.push_rx(b'a' + i));
        }
        assert!(!u.push_rx(b'!'));
        assert_eq!(u.rx_space(), 0);
        let f = u.read(reg::FR, 4) as u32;
        assert_ne!(f & fr::RXFF, 0);
        assert_eq!(f & fr::RXFE, 0);
        // A non-data-lane read does not consume.
        assert_eq!(u.read(1, 1), 0);
        assert_eq!(u.rx_pending(), 32);
        for i in 0..RX_FIFO_SIZE as u8 {
            assert_eq!(u.read(reg::DR, 4), (b'a' + i) as u64);
            if i == 0 {
                assert_eq!(u.read(reg::FR, 4) as u32 & fr::RXFF, 0);
                assert!(u.push_rx(b'z'));
            }
        }
        assert_eq!(u.read(reg::DR, 1), b'z' as u64);
        assert_ne!(u.read(reg::FR, 4) as u32 & fr::RXFE, 0);
        assert_eq!(u.read(reg::DR, 4), 0);
        // Wrap-around many times.
        for round in 0..100u32 {
            for k in 0..(round % 7 + 1) {
                assert!(u.push_rx((round + k) as u8));
            }
            for k in 0..(round % 7 + 1) {
                assert_eq!(u.read(reg::DR, 2), ((round + k) as u8) as u64);
            }
        }
    }

    #[test]
    fn tx_interrupt_sequence() {
        let mut u = Vpl011::new();
        // Driver startup: clear everything, unmask RX|RT.
        u.write(reg::ICR, 4, 0x7FF);
        u.write(reg::IMSC, 4, (int::RX | int::RT) as u64);
        assert!(!u.irq_level());
        // Start TX: write chars, then enable TXIM with more to send.
        assert!(u.write(reg::DR, 4, b'x' as u64).is_some());
        u.write(reg::IMSC, 4, (int::RX | int::RT | int::TX) as u64);
        assert!(u.irq_level(), "TX FIFO empty with TXIM set must interrupt");
        // IRQ handler: MIS shows TX; it writes more chars.
        assert_eq!(u.read(reg::MIS, 4) as u32, int::TX);
        u.write(reg::DR, 4, b'y' as u64);
        assert!(u.irq_level());
        // Done: mask TXIM; the line drops even though TXIS stays raw-set.
        u.write(reg::IMSC, 4, (int::RX | int::RT) as u64);
        assert!(!u.irq_level());
        assert_eq!(u.read(reg::RIS, 4) as u32 & int::TX, int::TX);
        // ICR clears TXIS until the next DR write.
        u.write(reg::ICR, 4, int::TX as u64);
        assert_eq!(u.read(reg::RIS, 4) as u32 & int::TX, 0);
        u.write(reg::IMSC, 4, int::TX as u64);
        assert!(!u.irq_level());
        u.write(reg::DR, 4, b'z' as u64);
        assert!(u.irq_level());
    }

    #[test]
    fn rx_interrupt_sequence() {
        let mut u = Vpl011::new();
        u.write(reg::IMSC, 4, (int::RX | int::RT) as u64);
        assert!(!u.irq_level());
        u.push_rx(b'1');
        u.push_rx(b'2');
        assert!(u.irq_level());
        assert_eq!(u.read(reg::MIS, 4) as u32, int::RX | int::RT);
        // Handler clears RX/RT sources (Linux clears only error bits, but ICR
        // of RX bits must not lose data or drop the level while data remains).
        u.write(reg::ICR, 4, (int::RX | int::RT) as u64);
        assert!(u.irq_level());
        assert_eq!(u.read(reg::DR, 4), b'1' as u64);
        assert!(u.irq_level());
        assert_eq!(u.read(reg::DR, 4), b'2' as u64);
        assert!(!u.irq_level());
        assert_eq!(u.read(reg::RIS, 4) as u32 & (int::RX | int::RT), 0);
        // Masked: no line even with data.
        u.write(reg::IMSC, 4, 0);
        u.push_rx(b'3');
        assert!(!u.irq_level());
        u.write(reg::IMSC, 4, int::RT as u64);
        assert!(u.irq_level());
    }

    #[test]
    fn loopback() {
        let mut u = Vpl011::new();
        u.write(reg::CR, 4, (CR_RESET | CR_LBE | 1) as u64);
        assert_eq!(u.write(reg::DR, 4, 0x55), None);
        assert_eq!(u.read(reg::DR, 4), 0x55);
        u.write(reg::CR, 4, (CR_RESET | 1) as u64);
        assert_eq!(u.write(reg::DR, 4, 0x55), Some(0x55));
    }

    #[test]
    fn config_registers_and_sub_word() {
        let mut u = Vpl011::new();
        u.write(reg::IBRD, 4, 0xFFFF_1234);
        assert_eq!(u.read(reg::IBRD, 4), 0x1234);
        u.write(reg::FBRD, 4, 0xFF);
        assert_eq!(u.read(reg::FBRD, 4), 0x3F);
        u.write(reg::LCR_H, 2, 0x70);
        assert_eq!(u.read(reg::LCR_H, 4), 0x70);
        u.write(reg::CR, 4, 0x301);
        assert_eq!(u.read(reg::CR, 4), 0x301);
        // Byte write to CR's upper lane keeps the lower lane.
        u.write(reg::CR + 1, 1, 0x01);
        assert_eq!(u.read(reg::CR, 4), 0x101);
        assert_eq!(u.read(reg::CR + 1, 1), 0x01);
        assert_eq!(u.read(reg::CR, 1), 0x01);
        u.write(reg::IMSC, 2, 0xFFFF);
        assert_eq!(u.read(reg::IMSC, 4), 0x7FF);
        u.write(reg::IFLS, 4, 0xFFFF);
        assert_eq!(u.read(reg::IFLS, 4), 0x3F);
        u.write(reg::ILPR, 4, 0x1FF);
        assert_eq!(u.read(reg::ILPR, 4), 0xFF);
        // RAZ/WI registers.
        u.write(reg::DMACR, 4, 7);
        assert_eq!(u.read(reg::DMACR, 4), 0);
        u.write(reg::RSR_ECR, 4, 0xF);
        assert_eq!(u.read(reg::RSR_ECR, 4), 0);
        u.write(reg::FR, 4, 0);
        assert_eq!(u.read(reg::FR, 4) as u32, fr::TXFE | fr::RXFE);
        assert_eq!(u.read(reg::ICR, 4), 0);
    }

    #[test]
    fn odd_accesses_do_not_panic() {
        let mut u = Vpl011::new();
        u.push_rx(7);
        for off in [
            0u64,
            1,
            2,
            3,
            5,
            0x17,
            0x4C,
            0x800,
            0xFFC,
            0xFFD,
            0xFFF,
            0x1000,
            0x1004,
            u64::MAX,
            u64::MAX - 3,
        ] {
            for size in [0u8, 1, 2, 3, 4, 5, 8, 16, 255] {
                let _ = u.read(off, size);
                let _ = u.write(off, size, u64::MAX);
            }
        }
        // 64-bit and misaligned accesses are RAZ/WI: the RX byte is still there.
        let mut u = Vpl011::new();
        u.push_rx(7);
        assert_eq!(u.read(0, 8), 0);
        assert_eq!(u.read(2, 4), 0);
        assert_eq!(u.write(0, 8, 0x41), None);
        assert_eq!(u.rx_pending(), 1);
        assert_eq!(u.read(0, 4), 7);
    }
}
