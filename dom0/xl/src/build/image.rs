//! The arm64 Linux `Image` header (`Documentation/arm64/booting.rst`), as
//! libxenguest's zimage64 loader reads it: `text_offset` at 8, `image_size`
//! at 16, the magic `ARM\x64` at 0x38.

use std::fmt;

/// Bytes of the header.
pub const HEADER_LEN: usize = 64;
/// `ARM\x64` at [`MAGIC_OFFSET`], little endian.
pub const MAGIC: u32 = 0x644d_5241;
/// Where the magic is.
pub const MAGIC_OFFSET: usize = 0x38;

/// What the header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arm64Image {
    /// Load offset from a 2 MiB-aligned RAM base (0 since Linux 5.10).
    pub text_offset: u64,
    /// Bytes the kernel occupies once running (bss included); 0 in kernels
    /// older than 3.17.
    pub image_size: u64,
}

/// Why a kernel file cannot be booted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageError {
    /// gzip data (a Debian `vmlinuz`): we load only uncompressed Images.
    Gzip,
    /// Shorter than the header.
    TooSmall,
    /// No `ARM\x64` magic.
    NotArm64,
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ImageError::Gzip => {
                "is gzip-compressed; only uncompressed arm64 Images are supported \
                 (decompress it first: gunzip -c vmlinuz > Image)"
            }
            ImageError::TooSmall => "is too small to be an arm64 Image",
            ImageError::NotArm64 => "is not an arm64 Image (no \"ARM\\x64\" magic at 0x38)",
        })
    }
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().expect("8 bytes"))
}

/// Reads the header of a kernel file.
pub fn parse(data: &[u8]) -> Result<Arm64Image, ImageError> {
    if data.starts_with(&[0x1f, 0x8b]) {
        return Err(ImageError::Gzip);
    }
    if data.len() < HEADER_LEN {
        return Err(ImageError::TooSmall);
    }
    let magic = u32::from_le_bytes(data[MAGIC_OFFSET..MAGIC_OFFSET + 4].try_into().expect("4"));
    if magic != MAGIC {
        return Err(ImageError::NotArm64);
    }
    Ok(Arm64Image {
        text_offset: u64_at(data, 8),
        image_size: u64_at(data, 16),
    })
}

/// An Image header with these fields, followed by `body` (for tests).
pub fn fake_image(text_offset: u64, image_size: u64, body: usize) -> Vec<u8> {
    let mut v = vec![0u8; HEADER_LEN + body];
    v[8..16].copy_from_slice(&text_offset.to_le_bytes());
    v[16..24].copy_from_slice(&image_size.to_le_bytes());
    v[MAGIC_OFFSET..MAGIC_OFFSET + 4].copy_from_slice(&MAGIC.to_le_bytes());
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields() {
        let img = fake_image(0x8_0000, 0x1234_0000, 100);
        assert_eq!(
            parse(&img),
            Ok(Arm64Image {
                text_offset: 0x8_0000,
                image_size: 0x1234_0000
            })
        );
    }

    #[test]
    fn rejects() {
        assert_eq!(parse(&[0x1f, 0x8b, 8, 0]), Err(ImageError::Gzip));
        assert_eq!(parse(&[0; 10]), Err(ImageError::TooSmall));
        assert_eq!(parse(&[0; 64]), Err(ImageError::NotArm64));
        assert!(ImageError::Gzip.to_string().contains("gzip"));
    }
}
