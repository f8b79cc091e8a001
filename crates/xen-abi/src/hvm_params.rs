//! `public/hvm/params.h`: `HVM_PARAM_*` indexes for `HVMOP_{get,set}_param`
//! and the Arm encoding of `HVM_PARAM_CALLBACK_IRQ`.

/// Event-channel upcall delivery: `val[63:56]` = `HVM_PARAM_CALLBACK_TYPE_*`.
/// On Arm (type PPI): `val[15:8]` = flags (bit 8: edge(1)/level(0), bit 9:
/// active-low(1)/high(0)), `val[7:0]` = PPI number, other bits zero.
pub const HVM_PARAM_CALLBACK_IRQ: u32 = 0;
pub const HVM_PARAM_CALLBACK_IRQ_TYPE_MASK: u64 = 0xFF00_0000_0000_0000;
pub const HVM_PARAM_CALLBACK_TYPE_GSI: u64 = 0;
pub const HVM_PARAM_CALLBACK_TYPE_PCI_INTX: u64 = 1;
/// Arm: `val[7:0]` is a PPI (x86 uses 2 for `HVM_PARAM_CALLBACK_TYPE_VECTOR`).
pub const HVM_PARAM_CALLBACK_TYPE_PPI: u64 = 2;
/// Mask of the PPI flag byte within the value (`val[15:8]`).
pub const HVM_PARAM_CALLBACK_TYPE_PPI_FLAG_MASK: u64 = 0xFF00;
/// Flag (within the flag byte `val[15:8]`): level-triggered, active-low.
pub const HVM_PARAM_CALLBACK_TYPE_PPI_FLAG_LOW_LEVEL: u64 = 2;

/// GFN of the xenstore ring page.
pub const HVM_PARAM_STORE_PFN: u32 = 1;
/// Event channel port of xenstore.
pub const HVM_PARAM_STORE_EVTCHN: u32 = 2;
/// Tools only.
pub const HVM_PARAM_PAE_ENABLED: u32 = 4;
pub const HVM_PARAM_IOREQ_PFN: u32 = 5;
pub const HVM_PARAM_BUFIOREQ_PFN: u32 = 6;
/// x86 only.
pub const HVM_PARAM_VIRIDIAN: u32 = 9;
pub const HVM_PARAM_TIMER_MODE: u32 = 10;
pub const HVM_PARAM_HPET_ENABLED: u32 = 11;
pub const HVM_PARAM_IDENT_PT: u32 = 12;
/// Tools only.
pub const HVM_PARAM_DM_DOMAIN: u32 = 13;
pub const HVM_PARAM_ACPI_S_STATE: u32 = 14;
pub const HVM_PARAM_VM86_TSS: u32 = 15;
pub const HVM_PARAM_VPT_ALIGN: u32 = 16;
/// GFN of the PV console ring page.
pub const HVM_PARAM_CONSOLE_PFN: u32 = 17;
/// Event channel port of the PV console.
pub const HVM_PARAM_CONSOLE_EVTCHN: u32 = 18;
pub const HVM_PARAM_ACPI_IOPORTS_LOCATION: u32 = 19;
/// Tools only.
pub const HVM_PARAM_MEMORY_EVENT_CR0: u32 = 20;
/// Tools only.
pub const HVM_PARAM_MEMORY_EVENT_CR3: u32 = 21;
/// Tools only.
pub const HVM_PARAM_MEMORY_EVENT_CR4: u32 = 22;
/// Tools only.
pub const HVM_PARAM_MEMORY_EVENT_INT3: u32 = 23;
/// Tools only.
pub const HVM_PARAM_NESTEDHVM: u32 = 24;
/// Tools only.
pub const HVM_PARAM_MEMORY_EVENT_SINGLE_STEP: u32 = 25;
/// Tools only.
pub const HVM_PARAM_BUFIOREQ_EVTCHN: u32 = 26;
pub const HVM_PARAM_PAGING_RING_PFN: u32 = 27;
pub const HVM_PARAM_MONITOR_RING_PFN: u32 = 28;
pub const HVM_PARAM_SHARING_RING_PFN: u32 = 29;
/// Tools only.
pub const HVM_PARAM_MEMORY_EVENT_MSR: u32 = 30;
pub const HVM_PARAM_TRIPLE_FAULT_REASON: u32 = 31;
pub const HVM_PARAM_IOREQ_SERVER_PFN: u32 = 32;
pub const HVM_PARAM_NR_IOREQ_SERVER_PAGES: u32 = 33;
pub const HVM_PARAM_VM_GENERATION_ID_ADDR: u32 = 34;
pub const HVM_PARAM_ALTP2M: u32 = 35;
pub const HVM_PARAM_X87_FIP_WIDTH: u32 = 36;
pub const HVM_PARAM_VM86_TSS_SIZED: u32 = 37;
pub const HVM_PARAM_MCA_CAP: u32 = 38;
/// Number of HVM params (valid indexes are `0 .. HVM_NR_PARAMS`).
pub const HVM_NR_PARAMS: u32 = 39;
