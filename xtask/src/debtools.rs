//! The Xen 4.17 toolstack from Debian (C xenstored, xen-init-dom0,
//! xenconsoled, xl) in dom0: a compatibility check that Xen's own tools
//! work against the hypervisor (they must on Xen 4.17 too).

use std::path::Path;

use anyhow::Result;

use crate::debian::{cache_dir, extract, Artifacts};
use crate::initramfs::Initramfs;

/// Packages whose files make up the toolstack (xen-utils-4.17's runtime closure).
const PACKAGES: &[&str] = &[
    "libc6", "libgcc-s1", "libtinfo6", "libncurses6", "libyajl2", "libext2fs2", "libfdt1", "libuuid1", "zlib1g",
    "libxentoolcore1", "libxentoollog1", "libxencall1", "libxenevtchn1", "libxenforeignmemory1", "libxengnttab1",
    "libxendevicemodel1", "libxenhypfs1", "libxenstore4", "libxenmisc4.17", "xenstore-utils", "xen-utils-4.17",
    "xen-utils-common", "bash",
];
const MODULES: &[&str] = &["xen-evtchn", "xenfs", "xen-privcmd", "xen-gntdev", "xen-gntalloc"];
const SKIP: &[&str] = &["usr/share/doc", "usr/share/man", "usr/share/locale", "usr/share/lintian", "usr/share/bug",
    "usr/lib/xen-4.17/lib/python", "usr/lib/aarch64-linux-gnu/gconv", "etc/init.d", "run", "var/run"];

pub const INIT: &str = include_str!("../../testing/init-debian-toolstack.sh");

/// Builds the dom0 initramfs with Debian's toolstack and its /init.
pub fn write_initramfs(art: &Artifacts, out: &Path) -> Result<()> {
    let mut rd = Initramfs::busybox_root(&art.busybox, INIT)?;
    add_toolstack(&mut rd)?;
    rd.add_modules(&art.cloud, &MODULES.iter().map(|m| m.to_string()).collect::<Vec<_>>())?;
    rd.write_gz(out)
}

/// Adds the files of Debian's toolstack packages (downloaded and extracted when missing):
/// the binaries under /usr/lib/xen-4.17/bin, /usr/sbin and /usr/bin, their libraries under
/// /lib/aarch64-linux-gnu and /usr/lib/aarch64-linux-gnu, and /etc/xen.
pub fn add_toolstack(rd: &mut Initramfs) -> Result<()> {
    let cache = cache_dir()?;
    for pkg in PACKAGES {
        rd.tree(&extract(&cache, pkg)?, SKIP)?;
    }
    Ok(())
}
