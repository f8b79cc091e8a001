//! The QEMU command line, for every way of booting dom0 (Xen's boot protocol on `virt`).

use std::path::PathBuf;
use std::process::Command;
use std::str::FromStr;

use anyhow::{bail, Result};

use crate::debian::Artifacts;
use crate::image;

/// Dom0's console under Ferrovisor for the boot tests, `bench boot` and `run`. Ferrovisor gives
/// dom0 the Xen console (hvc0), as under Xen; `Dom0Console::Pl011` gives it the
/// emulated PL011 instead. The Xen ABI test and `bench abi` always use hvc0.
pub const FERROVISOR_DOM0_CONSOLE: Dom0Console = Dom0Console::Hvc;

/// Dom0's console, and so its kernel's base command line, under Ferrovisor.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Dom0Console {
    /// The emulated PL011 at the host UART's address.
    Pl011,
    /// The Xen PV console (`console_io` hypercalls), as under Xen.
    Hvc,
}

impl Dom0Console {
    pub fn args(self) -> &'static str {
        match self {
            Self::Pl011 => FERROVISOR_PL011_ARGS,
            Self::Hvc => XEN_DOM0_ARGS,
        }
    }
}

/// Dom0's arguments under Ferrovisor on the emulated PL011.
pub const FERROVISOR_PL011_ARGS: &str = "console=ttyAMA0 earlycon=pl011,0x9000000 panic=-1";
/// Dom0's console arguments under Xen 4.17 (the PV console), and under Ferrovisor with hvc0.
pub const XEN_DOM0_ARGS: &str = "console=hvc0 panic=-1";
/// Linux booted directly by QEMU.
pub const NATIVE_ARGS: &str = "console=ttyAMA0 panic=-1";

/// The hypervisor's own command line (Xen syntax; Ferrovisor parses the same).
const HV_ARGS: &str = "dom0_mem=512M console=dtuart dtuart=/pl011@9000000 loglvl=all guest_loglvl=all";
/// guest-loader addresses of dom0's kernel and initrd (QEMU virt RAM starts at 0x4000_0000).
const DOM0_KERNEL_ADDR: &str = "0x49000000";
const DOM0_INITRD_ADDR: &str = "0x50000000";

/// What runs at EL2 (the `--hypervisor` choice).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Hypervisor {
    Ferrovisor,
    Xen,
    Native,
}

impl FromStr for Hypervisor {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "ferrovisor" => Ok(Self::Ferrovisor),
            "xen" => Ok(Self::Xen),
            "native" => Ok(Self::Native),
            _ => bail!("unknown hypervisor {s:?} (ferrovisor|xen|native)"),
        }
    }
}

impl Hypervisor {
    pub const ALL: [Self; 3] = [Self::Native, Self::Xen, Self::Ferrovisor];

    pub fn name(self) -> &'static str {
        match self {
            Self::Ferrovisor => "ferrovisor",
            Self::Xen => "xen",
            Self::Native => "native",
        }
    }

    /// Builds (Ferrovisor) or locates (Xen) the hypervisor image.
    pub fn prepare(self, art: &Artifacts) -> Result<Host> {
        Ok(match self {
            Self::Ferrovisor => Host::Ferrovisor(image::build()?),
            Self::Xen => Host::Xen(art.xen.clone()),
            Self::Native => Host::Native,
        })
    }
}

/// A hypervisor ready to boot, with its image.
#[derive(Clone)]
pub enum Host {
    Ferrovisor(PathBuf),
    Xen(PathBuf),
    Native,
}

impl Host {
    pub fn image(&self) -> Option<&PathBuf> {
        match self {
            Host::Ferrovisor(p) | Host::Xen(p) => Some(p),
            Host::Native => None,
        }
    }
}

pub struct Vm {
    pub host: Host,
    /// -cpu model, e.g. cortex-a57.
    pub cpu: String,
    pub smp: u32,
    pub mem_mib: u32,
    /// -icount shift=0: guest time advances 1 ns per instruction (deterministic guest clock).
    pub icount: bool,
    /// Linux Image (dom0, or the native kernel).
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// Appended to the kernel command line.
    pub extra_args: Option<String>,
    /// Appended to the hypervisor's command line (Xen syntax, e.g. `dom0_max_vcpus=1`).
    pub hv_args: Option<String>,
    /// Dom0's console under Ferrovisor (under Xen it is always hvc0).
    pub fv_console: Dom0Console,
}

impl Vm {
    pub fn command(&self) -> Command {
        let mut cmd = Command::new("qemu-system-aarch64");
        cmd.args(["-M", "virt,virtualization=on,gic-version=3", "-cpu", &self.cpu])
            .args(["-smp", &self.smp.to_string(), "-m", &self.mem_mib.to_string()])
            .args(["-nographic", "-no-reboot", "-nic", "none"]);
        if self.icount {
            cmd.args(["-icount", "shift=0"]);
        }
        let linux_args = |base: &str| match &self.extra_args {
            Some(extra) => format!("{base} {extra}"),
            None => base.to_owned(),
        };
        let (hv, dom0_args) = match &self.host {
            Host::Native => {
                cmd.arg("-kernel").arg(&self.kernel).arg("-initrd").arg(&self.initrd);
                cmd.args(["-append", &linux_args(NATIVE_ARGS)]);
                return cmd;
            }
            Host::Ferrovisor(hv) => (hv, self.fv_console.args()),
            Host::Xen(hv) => (hv, XEN_DOM0_ARGS),
        };
        let hv_args = match &self.hv_args {
            Some(extra) => format!("{HV_ARGS} {extra}"),
            None => HV_ARGS.to_owned(),
        };
        cmd.arg("-kernel").arg(hv).args(["-append", &hv_args]);
        // -device values are comma-separated key=value lists: ',' in a value is written ",,".
        let esc = |p: &PathBuf| p.display().to_string().replace(',', ",,");
        let dom0 = format!(
            "guest-loader,addr={DOM0_KERNEL_ADDR},kernel={},bootargs={}",
            esc(&self.kernel),
            linux_args(dom0_args).replace(',', ",,")
        );
        cmd.args(["-device", &dom0]);
        cmd.args(["-device", &format!("guest-loader,addr={DOM0_INITRD_ADDR},initrd={}", esc(&self.initrd))]);
        cmd
    }
}

/// A command as a shell would show it (for logs and error messages).
pub fn display(cmd: &Command) -> String {
    let quote = |s: &str| {
        if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=,:@%+".contains(c)) {
            s.to_owned()
        } else {
            format!("'{}'", s.replace('\'', r"'\''"))
        }
    };
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| quote(&a.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}
