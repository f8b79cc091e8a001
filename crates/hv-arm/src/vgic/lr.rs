//! `ICH_LR<n>_EL2` list-register encoding (GICv3 architecture specification,
//! IHI 0069, "`ICH_LR<n>_EL2`, Interrupt Controller List Registers").
//!
//! | bits  | field                                                         |
//! |-------|---------------------------------------------------------------|
//! | 31:0  | vINTID                                                        |
//! | 44:32 | pINTID when HW = 1 (only 41:32 used: INTIDs < 1020)           |
//! | 41    | EOI: maintenance interrupt on deactivation, when HW = 0       |
//! | 55:48 | Priority                                                      |
//! | 60    | Group (always 1 here: every virtual interrupt is Group 1)     |
//! | 61    | HW: deactivating the virtual INTID deactivates pINTID         |
//! | 63:62 | State: 0 invalid, 1 pending, 2 active, 3 pending and active   |
//!
//! Decoding accepts every `u64`; encoding never produces a reserved pattern
//! (pINTID is truncated to 10 bits, vINTID to 32).

/// vINTID field mask (bits 31:0).
pub const VINTID_MASK: u64 = 0xFFFF_FFFF;
/// pINTID field shift.
pub const PINTID_SHIFT: u32 = 32;
/// pINTID field mask as decoded (bits 44:32).
pub const PINTID_MASK: u64 = 0x1FFF << PINTID_SHIFT;
/// EOI maintenance request (bit 41, only meaningful when HW = 0).
pub const EOI: u64 = 1 << 41;
/// Priority field shift (bits 55:48).
pub const PRIORITY_SHIFT: u32 = 48;
/// Group bit (60): 1 = Group 1.
pub const GROUP1: u64 = 1 << 60;
/// HW bit (61).
pub const HW: u64 = 1 << 61;
/// State field shift (bits 63:62).
pub const STATE_SHIFT: u32 = 62;

/// List-register state.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum State {
    /// Free slot (or the guest completed the interrupt).
    #[default]
    Invalid,
    /// Pending, not yet acknowledged by the guest.
    Pending,
    /// Acknowledged, not yet deactivated.
    Active,
    /// Active, and pending again behind it.
    PendingActive,
}

impl State {
    /// The two-bit field value.
    pub const fn bits(self) -> u64 {
        match self {
            State::Invalid => 0,
            State::Pending => 1,
            State::Active => 2,
            State::PendingActive => 3,
        }
    }

    /// Decode the two-bit field (higher bits ignored).
    pub const fn from_bits(b: u64) -> State {
        match b & 3 {
            0 => State::Invalid,
            1 => State::Pending,
            2 => State::Active,
            _ => State::PendingActive,
        }
    }

    /// Build from the pending and active flags.
    pub const fn from_flags(pending: bool, active: bool) -> State {
        match (pending, active) {
            (false, false) => State::Invalid,
            (true, false) => State::Pending,
            (false, true) => State::Active,
            (true, true) => State::PendingActive,
        }
    }

    /// Pending bit set.
    pub const fn is_pending(self) -> bool {
        matches!(self, State::Pending | State::PendingActive)
    }

    /// Active bit set.
    pub const fn is_active(self) -> bool {
        matches!(self, State::Active | State::PendingActive)
    }
}

/// A decoded list register.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Lr {
    /// Virtual INTID presented to the guest.
    pub vintid: u32,
    /// `Some(pINTID)` for a hardware-backed interrupt (HW = 1).
    pub pintid: Option<u32>,
    /// EOI maintenance request (ignored, and not encoded, when `pintid` is set).
    pub eoi: bool,
    /// Priority (lower is more urgent).
    pub priority: u8,
    /// Group 1 (the model always sets it).
    pub group1: bool,
    /// State.
    pub state: State,
}

impl Lr {
    /// Encode as an `ICH_LR<n>_EL2` value.
    pub const fn encode(&self) -> u64 {
        let mut v = self.vintid as u64 & VINTID_MASK;
        match self.pintid {
            Some(p) => v |= HW | ((p as u64 & 0x3FF) << PINTID_SHIFT),
            None => {
                if self.eoi {
                    v |= EOI;
                }
            }
        }
        v |= (self.priority as u64) << PRIORITY_SHIFT;
        if self.group1 {
            v |= GROUP1;
        }
        v | (self.state.bits() << STATE_SHIFT)
    }

    /// Decode any `ICH_LR<n>_EL2` value.
    pub const fn decode(v: u64) -> Lr {
        let hw = v & HW != 0;
        Lr {
            vintid: (v & VINTID_MASK) as u32,
            pintid: if hw {
                Some(((v & PINTID_MASK) >> PINTID_SHIFT) as u32)
            } else {
                None
            },
            eoi: !hw && v & EOI != 0,
            priority: (v >> PRIORITY_SHIFT) as u8,
            group1: v & GROUP1 != 0,
            state: state(v),
        }
    }
}

/// The state field of a raw list-register value.
pub const fn state(v: u64) -> State {
    State::from_bits(v >> STATE_SHIFT)
}

/// The vINTID field of a raw list-register value.
pub const fn vintid(v: u64) -> u32 {
    (v & VINTID_MASK) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vgic_lr_round_trip() {
        let lr = Lr {
            vintid: 27,
            pintid: Some(27),
            eoi: false,
            priority: 0xa0,
            group1: true,
            state: State::Pending,
        };
        let v = lr.encode();
        assert_eq!(v, (1 << 62) | HW | GROUP1 | (0xa0 << 48) | (27 << 32) | 27);
        assert_eq!(Lr::decode(v), lr);

        let lr = Lr {
            vintid: 1,
            pintid: None,
            eoi: true,
            priority: 0,
            group1: true,
            state: State::PendingActive,
        };
        let v = lr.encode();
        assert_eq!(v, (3 << 62) | GROUP1 | EOI | 1);
        assert_eq!(Lr::decode(v), lr);
        // EOI is not encoded for HW interrupts (bit 41 is part of pINTID).
        let hw = Lr {
            pintid: Some(0x3FF),
            eoi: true,
            ..lr
        };
        assert_eq!(hw.encode() & PINTID_MASK, 0x3FF << 32);
        assert!(!Lr::decode(hw.encode()).eoi);
    }

    #[test]
    fn vgic_lr_states() {
        for b in 0..4u64 {
            let s = State::from_bits(b);
            assert_eq!(s.bits(), b);
            assert_eq!(State::from_flags(s.is_pending(), s.is_active()), s);
            assert_eq!(state(b << 62), s);
        }
        assert_eq!(vintid(u64::MAX), u32::MAX);
    }
}
