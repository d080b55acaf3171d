//! The archive hash, the manifest's `hash`: SHA-256 over every entry of the
//! executable's zip in order (its name, mode and length, then its bytes),
//! then over the manifest with `hash` empty. `pack` computes it as it
//! writes; the runtime computes it again to verify a copy before it trusts
//! it (`runtime::verify`), so both use this one definition.

use super::manifest::Manifest;
use super::{Damage, pyc_zstd};
use sha2::{Digest, Sha256};
use std::io::{Read, Seek};

/// The mode a directory entry is hashed with.
pub const DIR_MODE: u32 = 0o755;

#[derive(Default)]
pub struct ArchiveHasher(Sha256);

impl ArchiveHasher {
    /// Starts an entry: what the hash covers before its bytes.
    pub fn entry(&mut self, name: &str, mode: u32, len: u64) {
        self.0.update((name.len() as u64).to_le_bytes());
        self.0.update(name.as_bytes());
        self.0.update(mode.to_le_bytes());
        self.0.update(len.to_le_bytes());
    }

    /// Bytes of the current entry.
    pub fn bytes(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// A whole entry of a zip being read (`name` as the zip names it):
    /// a directory by `DIR_MODE`, a file by its mode and its bytes, as
    /// `pack` wrote them (an error reading them is the reader's: a CRC or
    /// inflate error is damage).
    pub fn zip_entry<R: std::io::Read>(
        &mut self,
        name: &str,
        entry: &mut zip::read::ZipFile<'_, R>,
    ) -> std::io::Result<()> {
        if entry.is_dir() {
            self.entry(name, DIR_MODE, 0);
            return Ok(());
        }
        let mode = entry.unix_mode().unwrap_or(0) & 0o777;
        self.entry(name, mode, entry.size());
        std::io::copy(entry, self).map(|_| ())
    }

    /// Entry `index` of `zip`, as `zip_entry` hashes it. A pyc compressed
    /// with the zip's dictionary (`pyc_zstd`, which the zip crate cannot
    /// decode) is decoded here, by `pycs`, which loads the dictionary when
    /// the first one comes. A CRC, inflate or zstd error is a
    /// `HashMismatch`, as a wrong hash would be.
    pub fn zip_entry_at<R: Read + Seek>(
        &mut self,
        zip: &mut zip::ZipArchive<R>,
        index: usize,
        pycs: &mut Option<pyc_zstd::Decompressor>,
    ) -> Result<(), Damage> {
        let unreadable = |e: zip::result::ZipError| Damage::Unreadable(e.to_string());
        // Zip's method 93, `pyc_zstd::METHOD`; the zip crate, built
        // without zstd, calls it `Unsupported`. (From the central
        // directory: no entry is opened twice.)
        let method = zip.by_index_data(index).map_err(unreadable)?.compression();
        if method != zip::CompressionMethod::ZSTD {
            let mut entry = zip.by_index(index).map_err(unreadable)?;
            let name = entry.name().map_err(unreadable)?.into_owned();
            return self
                .zip_entry(&name, &mut entry)
                .map_err(|_| Damage::HashMismatch);
        }
        let mut raw = zip.by_index_raw(index).map_err(unreadable)?;
        let (name, mode, len, crc) = (
            raw.name().map_err(unreadable)?.into_owned(),
            raw.unix_mode().unwrap_or(0) & 0o777,
            raw.size(),
            raw.crc32(),
        );
        let mut frame = Vec::new();
        raw.read_to_end(&mut frame)
            .map_err(|_| Damage::HashMismatch)?;
        drop(raw);
        if pycs.is_none() {
            // None: the frames were made without one (`pyc_zstd`).
            let mut dictionary = Vec::new();
            match zip.by_name(pyc_zstd::DICTIONARY_ENTRY) {
                Ok(mut entry) => entry
                    .read_to_end(&mut dictionary)
                    .map_err(|_| Damage::HashMismatch)?,
                Err(zip::result::ZipError::FileNotFound) => 0,
                Err(e) => return Err(unreadable(e)),
            };
            *pycs =
                Some(pyc_zstd::Decompressor::new(&dictionary).map_err(|_| Damage::HashMismatch)?);
        }
        let pyc = pycs
            .as_mut()
            .expect("made above")
            .decompress(&frame, len)
            .map_err(|_| Damage::HashMismatch)?;
        if crc32fast::hash(&pyc) != crc {
            return Err(Damage::HashMismatch);
        }
        self.entry(&name, mode, len);
        self.bytes(&pyc);
        Ok(())
    }

    /// The hash, hex, of the entries and `manifest` (its `hash` ignored).
    pub fn finish(mut self, manifest: &Manifest) -> String {
        let mut unhashed = manifest.clone();
        unhashed.hash = String::new();
        self.0
            .update(serde_json::to_vec(&unhashed).expect("a manifest always serializes"));
        hex(&self.0.finalize())
    }
}

impl std::io::Write for ArchiveHasher {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.bytes(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
