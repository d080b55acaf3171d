//! Finding the payload of an executable: the three-way answer.
//!
//! `Ok(None)`: a plain pyferry binary (the builder). `Ok(Some(_))`: a packed
//! app. `Err(_)`: a packed app whose payload is gone or damaged (truncated,
//! section removed, corrupted), which must say so rather than pretend to be
//! the builder. The answer costs one `open`, one `fstat` and one `pread`.

use crate::error::{Error, Result, io};
use crate::format::manifest::Manifest;
use crate::format::stamp::Stamp;
use crate::format::{Damage, end_record};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// A packed executable, open, with its validated manifest.
#[derive(Debug)]
pub struct Payload {
    pub path: PathBuf,
    pub file: File,
    pub len: u64,
    pub manifest: Manifest,
    /// Central directory entries according to the end record, if known.
    pub entries: Option<u64>,
    pub central_directory: Option<end_record::CentralDirectory>,
}

impl Payload {
    /// Another handle on the same executable (its file opened again).
    pub fn try_clone(&self) -> std::io::Result<Payload> {
        Ok(Payload {
            path: self.path.clone(),
            file: self.file.try_clone()?,
            len: self.len,
            manifest: self.manifest.clone(),
            entries: self.entries,
            central_directory: self.central_directory,
        })
    }
}

/// A read-only view of `len` bytes of a file from `start` (the native
/// archive's stream, the whole executable), read in place. It reads with
/// `pread`, never moving the file's shared offset, so several threads read
/// the same file at once.
pub struct Window<'a> {
    file: &'a File,
    start: u64,
    len: u64,
    position: u64,
}

impl<'a> Window<'a> {
    pub fn over(file: &'a File, start: u64, len: u64) -> Window<'a> {
        Window {
            file,
            start,
            len,
            position: 0,
        }
    }
}

impl Read for Window<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.len.saturating_sub(self.position);
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let read = self
            .file
            .read_at(&mut buf[..want], self.start + self.position)?;
        self.position += read as u64;
        Ok(read)
    }
}

impl Seek for Window<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let position = match to {
            SeekFrom::Start(offset) => Some(offset),
            SeekFrom::End(offset) => self.len.checked_add_signed(offset),
            SeekFrom::Current(offset) => self.position.checked_add_signed(offset),
        };
        self.position = position.ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "a seek before the start")
        })?;
        Ok(self.position)
    }
}

/// Reads the payload of `path`. `stamp` is what the file's runtime says about
/// itself (`None` when unknown, as for `inspect` on another file).
pub fn locate(path: &Path, stamp: Option<&Stamp>) -> Result<Option<Payload>> {
    let file = File::open(path).map_err(io("open", path))?;
    let len = file.metadata().map_err(io("read the size of", path))?.len();
    let tail_len = len.min(end_record::MAX_TAIL_LEN as u64);
    let mut tail = vec![0; tail_len as usize];
    file.read_exact_at(&mut tail, len - tail_len)
        .map_err(io("read", path))?;

    let corrupt = |reason: Damage| Error::PayloadCorrupt {
        exe: path.to_owned(),
        reason,
    };
    let end_record = end_record::parse(&tail, len).map_err(corrupt)?;
    match (end_record, stamp) {
        (None, Some(Stamp::Packed { .. })) => Err(Error::PayloadMissing {
            exe: path.to_owned(),
        }),
        (None, _) => Ok(None),
        (Some(_), Some(Stamp::Unpacked)) => Err(corrupt(Damage::AppendedByHand)),
        (Some(found), Some(Stamp::Packed { hash, .. })) if *hash != found.manifest.hash => {
            Err(corrupt(Damage::OtherBuild))
        }
        (Some(found), _) => Ok(Some(Payload {
            path: path.to_owned(),
            file,
            len,
            manifest: found.manifest,
            entries: found.entries,
            central_directory: found.central_directory,
        })),
    }
}
