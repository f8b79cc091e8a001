//! The hypervisor's console UART (a physical PL011, polled for output,
//! interrupt-driven for input).

use super::mmio::Mmio;

const DR: usize = 0x00;
const FR: usize = 0x18;
const IMSC: usize = 0x38;
const ICR: usize = 0x44;
const CR: usize = 0x30;
const FR_TXFF: u32 = 1 << 5;
const FR_RXFE: u32 = 1 << 4;
const INT_RX: u32 = 1 << 4;
const INT_RT: u32 = 1 << 6;

pub struct Pl011 {
    regs: Mmio,
}

impl Pl011 {
    /// # Safety
    /// `base` must be the PL011 the host DT names as the console, mapped as
    /// Device memory and not given to any guest.
    pub const unsafe fn new(base: usize) -> Pl011 {
        // SAFETY: forwarded from this function's contract.
        Pl011 { regs: unsafe { Mmio::new(base, 0x1000) } }
    }

    pub fn putc(&self, c: u8) {
        // Bounded by the UART draining; a wedged UART would be a platform bug.
        while self.regs.read32(FR) & FR_TXFF != 0 {
            core::hint::spin_loop();
        }
        self.regs.write32(DR, c as u32);
    }

    pub fn getc(&self) -> Option<u8> {
        if self.regs.read32(FR) & FR_RXFE != 0 {
            None
        } else {
            Some(self.regs.read32(DR) as u8)
        }
    }

    /// Enable receive interrupts (RX FIFO level and receive timeout).
    pub fn enable_rx_irq(&self) {
        self.regs.write32(ICR, 0x7ff);
        self.regs.write32(IMSC, INT_RX | INT_RT);
        let cr = self.regs.read32(CR);
        self.regs.write32(CR, cr | (1 << 9) | (1 << 8) | 1); // RXE, TXE, UARTEN
    }
}
