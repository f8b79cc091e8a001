//! A tiny command-line parser: options are taken out by name, then `finish`
//! rejects anything left over, so typos never pass silently.

use anyhow::{bail, Result};

pub struct Args(Vec<String>);

impl Args {
    pub fn from_env() -> Self {
        Self(std::env::args().skip(1).collect())
    }

    /// Removes and returns the first argument that is not an option.
    pub fn next_positional(&mut self) -> Option<String> {
        let i = self.0.iter().position(|a| !a.starts_with('-'))?;
        Some(self.0.remove(i))
    }

    /// Removes `name`; true when it was present.
    pub fn flag(&mut self, name: &str) -> bool {
        let before = self.0.len();
        self.0.retain(|a| a != name);
        self.0.len() != before
    }

    /// Removes every `name VALUE` / `name=VALUE` and returns the values in order.
    pub fn values(&mut self, name: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.0.len() {
            if self.0[i] == name {
                if i + 1 == self.0.len() {
                    bail!("{name} needs a value");
                }
                self.0.remove(i);
                out.push(self.0.remove(i));
            } else if let Some(v) = self.0[i].strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
                out.push(v.to_owned());
                self.0.remove(i);
            } else {
                i += 1;
            }
        }
        Ok(out)
    }

    /// Like `values`, for an option given at most once.
    pub fn value(&mut self, name: &str) -> Result<Option<String>> {
        let mut v = self.values(name)?;
        if v.len() > 1 {
            bail!("{name} given more than once");
        }
        Ok(v.pop())
    }

    pub fn finish(self) -> Result<()> {
        if !self.0.is_empty() {
            bail!("unexpected arguments: {}", self.0.join(" "));
        }
        Ok(())
    }
}
