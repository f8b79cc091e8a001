//! `cargo xtask image`: the hypervisor ELF, built for EL2, flattened to the raw image QEMU loads.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};
use object::elf::PT_LOAD;
use object::read::elf::{ElfFile64, ProgramHeader};
use object::Endianness;

use crate::{run_checked, say, target_dir, workspace_root};

const TARGET: &str = "aarch64-unknown-none-softfloat";
/// A flat image larger than this means the segments' physical addresses are far apart.
const MAX_IMAGE: u64 = 64 << 20;

/// Builds `hv` in release mode and writes `target/ferrovisor.bin`; returns its absolute path.
pub fn build() -> Result<PathBuf> {
    say!("cargo build -p hv --release --target {TARGET}");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run_checked(
        Command::new(cargo)
            .args(["build", "-p", "hv", "--release", "--target", TARGET])
            .current_dir(workspace_root()),
    )?;
    let elf_path = target_dir().join(TARGET).join("release/ferrovisor");
    let elf = std::fs::read(&elf_path).with_context(|| format!("reading {}", elf_path.display()))?;
    let bin = flatten(&elf).with_context(|| format!("converting {} to a flat image", elf_path.display()))?;
    let out = target_dir().join("ferrovisor.bin");
    std::fs::write(&out, &bin).with_context(|| format!("writing {}", out.display()))?;
    say!("{} ({} bytes)", out.display(), bin.len());
    Ok(out)
}

/// Lays the file contents of the PT_LOAD segments out by physical address, from the lowest
/// one; gaps are zero-filled and trailing zero-init memory (memsz > filesz) is not emitted,
/// as `objcopy -O binary` does.
fn flatten(elf: &[u8]) -> Result<Vec<u8>> {
    let file = ElfFile64::<Endianness>::parse(elf)?;
    let endian = file.endian();
    let mut segs = Vec::new();
    for ph in file.elf_program_headers() {
        if ph.p_type(endian) != PT_LOAD || ph.p_filesz(endian) == 0 {
            continue;
        }
        let data = ph.data(endian, elf).map_err(|()| anyhow::anyhow!("PT_LOAD segment outside the file"))?;
        segs.push((ph.p_paddr(endian), data));
    }
    segs.sort_by_key(|&(paddr, _)| paddr);
    let Some(&(base, _)) = segs.first() else {
        bail!("the ELF has no PT_LOAD segment with file contents (is hv still a stub?)");
    };
    let (last, last_data) = segs.last().expect("non-empty");
    let size = last - base + last_data.len() as u64;
    if size > MAX_IMAGE {
        bail!("PT_LOAD segments span {size:#x} bytes from {base:#x}: check the linker script's load addresses");
    }
    let mut bin = vec![0u8; size as usize];
    let mut end = base;
    for (paddr, data) in segs {
        if paddr < end {
            bail!("PT_LOAD segment at {paddr:#x} overlaps the previous one (ends at {end:#x})");
        }
        let off = (paddr - base) as usize;
        bin[off..off + data.len()].copy_from_slice(data);
        end = paddr + data.len() as u64;
    }
    Ok(bin)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 little-endian AArch64 executable with the given (paddr, bytes, memsz) PT_LOADs.
    fn elf(segs: &[(u64, &[u8], u64)]) -> Vec<u8> {
        let phoff = 64u64;
        let mut data_off = phoff + 56 * segs.len() as u64;
        let mut out = Vec::new();
        out.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
        out.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        out.extend_from_slice(&183u16.to_le_bytes()); // EM_AARCH64
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&0u64.to_le_bytes()); // e_entry
        out.extend_from_slice(&phoff.to_le_bytes());
        out.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
        out.extend_from_slice(&0u32.to_le_bytes());
        for v in [64u16, 56, segs.len() as u16, 64, 0, 0] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for &(paddr, bytes, memsz) in segs {
            out.extend_from_slice(&PT_LOAD.0.to_le_bytes());
            out.extend_from_slice(&7u32.to_le_bytes());
            for v in [data_off, paddr + 0x1000, paddr, bytes.len() as u64, memsz, 16] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            data_off += bytes.len() as u64;
        }
        for &(_, bytes, _) in segs {
            out.extend_from_slice(bytes);
        }
        out
    }

    #[test]
    fn segments_are_laid_out_by_physical_address() {
        let bin = flatten(&elf(&[(0x4000_0010, b"cd", 0x100), (0x4000_0000, b"ab", 2)])).unwrap();
        assert_eq!(bin.len(), 0x12);
        assert_eq!(&bin[..2], b"ab");
        assert!(bin[2..0x10].iter().all(|&b| b == 0));
        assert_eq!(&bin[0x10..], b"cd");
    }

    #[test]
    fn no_load_segment_is_an_error() {
        let err = flatten(&elf(&[])).unwrap_err().to_string();
        assert!(err.contains("no PT_LOAD"), "{err}");
    }
}
