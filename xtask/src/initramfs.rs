//! Busybox initramfs images, packed as gzip'd newc cpio in memory.
//!
//! Output is deterministic: entries are emitted in path order (a parent always
//! sorts before its children), with inode numbers by position, uid/gid 0 and mtime 0.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use flate2::{write::GzEncoder, Compression};
use object::{Object, ObjectSection};

use crate::debian::Kernel;

/// /init of the QEMU boot tests and of the benchmark (prints the FV-* markers, powers off).
pub const TEST_INIT: &str = include_str!("../../testing/init-test.sh");
/// /init of `cargo xtask run`: an interactive shell on the console.
pub const SHELL_INIT: &str = include_str!("../../testing/init-shell.sh");

enum Entry {
    Dir { mode: u32 },
    File { mode: u32, data: Vec<u8> },
    Symlink { target: String },
}

#[derive(Default)]
pub struct Initramfs {
    /// Paths are relative, without a leading '/' or "./".
    entries: BTreeMap<String, Entry>,
}

impl Initramfs {
    /// `/bin/busybox` (+ `/bin/sh`), the usual empty mount points and `init` as /init.
    pub fn busybox_root(busybox: &Path, init: &str) -> Result<Self> {
        let mut rd = Self::default();
        let data = std::fs::read(busybox).with_context(|| format!("reading {}", busybox.display()))?;
        rd.file("bin/busybox", 0o755, data);
        rd.entries.insert("bin/sh".into(), Entry::Symlink { target: "busybox".into() });
        for d in ["dev", "etc", "proc", "sys", "root", "lib/modules"] {
            rd.dir(d, 0o755);
        }
        rd.dir("tmp", 0o1777);
        rd.file("init", 0o755, init.as_bytes().to_vec());
        Ok(rd)
    }

    /// Adds a regular file, creating missing parent directories.
    pub fn file(&mut self, path: &str, mode: u32, data: Vec<u8>) {
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent, 0o755);
        }
        self.entries.insert(path.into(), Entry::File { mode, data });
    }

    /// Adds a symbolic link, creating missing parent directories.
    pub fn symlink(&mut self, path: &str, target: &str) {
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent, 0o755);
        }
        self.entries.insert(path.into(), Entry::Symlink { target: target.into() });
    }

    fn dir(&mut self, path: &str, mode: u32) {
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent, 0o755);
        }
        self.entries.entry(path.into()).or_insert(Entry::Dir { mode });
    }

    /// Copies the named modules and everything they depend on (`depends=` of .modinfo) to
    /// `/lib/modules/<name>.ko`, and writes `/etc/modules.order`: one name a line, each after
    /// its dependencies, ready for `insmod /lib/modules/$m.ko`. Returns that order.
    pub fn add_modules(&mut self, kernel: &Kernel, names: &[String]) -> Result<Vec<String>> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let mut index = HashMap::new();
        index_modules(&kernel.modules.join("kernel"), &mut index)?;
        let mut order = Vec::new();
        for name in names {
            self.add_module(&index, &kernel.release, name, &mut order)?;
        }
        let list: String = order.iter().map(|m| format!("{m}\n")).collect();
        self.file("etc/modules.order", 0o644, list.into_bytes());
        Ok(order)
    }

    fn add_module(
        &mut self,
        index: &HashMap<String, PathBuf>,
        release: &str,
        name: &str,
        order: &mut Vec<String>,
    ) -> Result<()> {
        let path = index.get(&module_key(name)).ok_or_else(|| anyhow!("module {name} not found in {release}"))?;
        let stem = path.file_stem().expect("indexed .ko files have a stem").to_string_lossy().into_owned();
        if order.contains(&stem) {
            return Ok(());
        }
        let data = std::fs::read(path)?;
        for dep in module_depends(&data).with_context(|| format!("reading .modinfo of {}", path.display()))? {
            self.add_module(index, release, &dep, order)?;
        }
        self.file(&format!("lib/modules/{stem}.ko"), 0o644, data);
        order.push(stem);
        Ok(())
    }

    /// Copies the tree below `root` (files, directories, symlinks) to the same
    /// paths in the archive, skipping paths that start with one of `skip`.
    pub fn tree(&mut self, root: &Path, skip: &[&str]) -> Result<()> {
        fn walk(rd: &mut Initramfs, root: &Path, dir: &Path, skip: &[&str]) -> Result<()> {
            for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
                let path = e?.path();
                let rel = path.strip_prefix(root)?.to_string_lossy().into_owned();
                if skip.iter().any(|s| rel.starts_with(s)) {
                    continue;
                }
                let meta = std::fs::symlink_metadata(&path)?;
                if meta.file_type().is_symlink() {
                    let target = std::fs::read_link(&path)?.to_string_lossy().into_owned();
                    if let Some((parent, _)) = rel.rsplit_once('/') {
                        rd.dir(parent, 0o755);
                    }
                    rd.entries.insert(rel, Entry::Symlink { target });
                } else if meta.is_dir() {
                    rd.dir(&rel, 0o755);
                    walk(rd, root, &path, skip)?;
                } else {
                    use std::os::unix::fs::PermissionsExt;
                    rd.file(&rel, meta.permissions().mode() & 0o7777, std::fs::read(&path)?);
                }
            }
            Ok(())
        }
        walk(self, root, root, skip)
    }

    /// Writes the gzip'd newc archive to `path`.
    pub fn write_gz(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.to_gz()?).with_context(|| format!("writing {}", path.display()))
    }

    /// The gzip'd newc archive.
    pub fn to_gz(&self) -> Result<Vec<u8>> {
        // GzEncoder writes mtime 0 and no file name: the output depends on the contents only.
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        gz.write_all(&self.newc())?;
        Ok(gz.finish()?)
    }

    fn newc(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (ino, (path, entry)) in (1u32..).zip(&self.entries) {
            let (mode, nlink, data) = match entry {
                Entry::Dir { mode } => (0o040000 | mode, 2, &[][..]),
                Entry::File { mode, data } => (0o100000 | mode, 1, &data[..]),
                Entry::Symlink { target } => (0o120777, 1, target.as_bytes()),
            };
            newc_entry(&mut out, ino, mode, nlink, path, data);
        }
        newc_entry(&mut out, 0, 0, 1, "TRAILER!!!", &[]);
        out
    }
}

/// One newc record: "070701", 13 8-digit hex fields, NUL-terminated name, data; name and data
/// are each padded so that the next item starts 4-byte aligned.
fn newc_entry(out: &mut Vec<u8>, ino: u32, mode: u32, nlink: u32, name: &str, data: &[u8]) {
    let size = u32::try_from(data.len()).expect("cpio newc entries are < 4 GiB");
    let name_size = u32::try_from(name.len() + 1).expect("short names");
    let fields = [ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, name_size, 0];
    out.extend_from_slice(b"070701");
    for f in fields {
        out.extend_from_slice(format!("{f:08x}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
    out.extend_from_slice(data);
    pad4(out);
}

fn pad4(out: &mut Vec<u8>) {
    out.resize(out.len().next_multiple_of(4), 0);
}

/// Module names use '-' and '_' interchangeably (`depends=` and file names differ).
fn module_key(name: &str) -> String {
    name.replace('-', "_")
}

fn index_modules(dir: &Path, index: &mut HashMap<String, PathBuf>) -> Result<()> {
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = e?.path();
        if path.is_dir() {
            index_modules(&path, index)?;
        } else if let Some(stem) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".ko")) {
            index.insert(module_key(stem), path.clone());
        }
    }
    Ok(())
}

/// The `depends=` list of a .ko's .modinfo section (NUL-separated key=value strings).
fn module_depends(ko: &[u8]) -> Result<Vec<String>> {
    let elf = object::File::parse(ko)?;
    let section = elf.section_by_name(".modinfo").ok_or_else(|| anyhow!("no .modinfo section"))?;
    let deps = section
        .data()?
        .split(|&b| b == 0)
        .find_map(|kv| kv.strip_prefix(b"depends="))
        .map(|d| String::from_utf8_lossy(d).into_owned())
        .unwrap_or_default();
    Ok(deps.split(',').filter(|d| !d.is_empty()).map(str::to_owned).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newc_layout_is_aligned_and_parents_come_first() {
        let mut rd = Initramfs::default();
        rd.file("a/b/c", 0o644, b"hello".to_vec());
        rd.entries.insert("a-z".into(), Entry::Symlink { target: "a".into() });
        let names: Vec<&str> = rd.entries.keys().map(String::as_str).collect();
        assert_eq!(names, ["a", "a-z", "a/b", "a/b/c"]);

        let cpio = rd.newc();
        assert_eq!(cpio.len() % 4, 0);
        // Walk the archive back: every header is at a 4-byte boundary and sizes add up.
        let mut off = 0;
        let mut seen = Vec::new();
        loop {
            let h = &cpio[off..off + 110];
            assert_eq!(&h[..6], b"070701");
            let field = |i: usize| u32::from_str_radix(std::str::from_utf8(&h[6 + 8 * i..14 + 8 * i]).unwrap(), 16).unwrap() as usize;
            let (size, name_size) = (field(6), field(11));
            let name = std::str::from_utf8(&cpio[off + 110..off + 110 + name_size - 1]).unwrap().to_owned();
            let data_off = (off + 110 + name_size).next_multiple_of(4);
            if name == "a/b/c" {
                assert_eq!(&cpio[data_off..data_off + size], b"hello");
            }
            off = (data_off + size).next_multiple_of(4);
            seen.push(name);
            if seen.last().unwrap() == "TRAILER!!!" {
                break;
            }
        }
        assert_eq!(off, cpio.len());
        assert_eq!(seen, ["a", "a-z", "a/b", "a/b/c", "TRAILER!!!"]);
    }
}
