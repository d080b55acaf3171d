//! Writing the executable: runtime image, deterministic zip, manifest in the
//! zip comment, stamp patched last; through a temp file and one rename.
//!
//! Bytecode is stored uncompressed (see `compression_for`), the rest deflated.
//! Determinism: entries in sorted order, one fixed timestamp
//! (`SOURCE_DATE_EPOCH`, else 1980-01-01), modes normalized to 0644/0755.
//! The hash covers every entry (name, mode, bytes) and the manifest.

use super::tree::SourceFile;
use crate::error::{Error, Reason, Result, io};
use crate::manifest::Manifest;
use crate::stamp::{self, Stamp};
use crate::trailer;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

/// One archive entry: a directory or a file's bytes from disk.
#[derive(Debug, Clone)]
pub enum Entry {
    Dir,
    File(SourceFile),
}

/// Writes `runtime` + the zip of `entries` to `output`; returns the manifest
/// with its hash filled in.
pub fn write_executable(
    runtime: &[u8],
    entries: &BTreeMap<String, Entry>,
    mut manifest: Manifest,
    output: &Path,
    timestamp: DateTime,
) -> Result<Manifest> {
    let stamp_at = stamp::find_unpacked(runtime).ok_or_else(|| Error::Pack {
        reason: Reason("this pyferry binary has no unique runtime stamp; rebuild pyferry".into()),
    })?;
    let temp = temp_path(output);
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o755)
        .open(&temp)
        .map_err(io("create", &temp))?;
    let mut guard = RemoveOnDrop(Some(temp.clone()));

    let mut out = BufWriter::with_capacity(1 << 20, file);
    out.write_all(runtime).map_err(io("write", &temp))?;
    let mut zip = ZipWriter::new(out);
    let mut hasher = Sha256::new();
    let zip_error = |e: zip::result::ZipError| Error::Io {
        op: "write the archive into",
        path: temp.clone(),
        source: std::io::Error::other(e),
    };
    for (name, entry) in entries {
        match entry {
            Entry::Dir => {
                let options = options(timestamp, 0o755);
                zip.add_directory(name.trim_end_matches('/'), options)
                    .map_err(zip_error)?;
                hash_entry(&mut hasher, name, 0o755, b"");
            }
            Entry::File(source) => {
                let mode = if source.executable { 0o755 } else { 0o644 };
                let data = fs::read(&source.path).map_err(io("read", &source.path))?;
                let options = options(timestamp, mode)
                    .compression_method(compression_for(name))
                    .large_file(data.len() >= u32::MAX as usize);
                zip.start_file(name.as_str(), options).map_err(zip_error)?;
                zip.write_all(&data).map_err(io("write", &temp))?;
                hash_entry(&mut hasher, name, mode, &data);
            }
        }
    }
    manifest.hash = String::new();
    hasher.update(serde_json::to_vec(&manifest).expect("a manifest always serializes"));
    manifest.hash = hex(&hasher.finalize());

    let comment = trailer::encode_comment(&manifest);
    if comment.len() > usize::from(u16::MAX) {
        return Err(Error::Pack {
            reason: Reason(format!(
                "the manifest is {} bytes, more than a zip comment holds (65535)",
                comment.len()
            )),
        });
    }
    zip.set_raw_comment(comment.into_boxed_slice())
        .map_err(zip_error)?;
    let mut out = zip.finish().map_err(zip_error)?;
    let file_len = out.stream_position().map_err(io("write", &temp))?;
    let stamp = Stamp::Packed {
        file_len,
        hash: manifest.hash.clone(),
    };
    out.seek(SeekFrom::Start(stamp_at as u64))
        .and_then(|_| out.write_all(&stamp.encode()))
        .and_then(|()| out.flush())
        .map_err(io("write", &temp))?;
    let file = out.into_inner().map_err(|e| Error::Io {
        op: "write",
        path: temp.clone(),
        source: e.into_error(),
    })?;
    file.sync_all().map_err(io("flush", &temp))?;
    fs::rename(&temp, output).map_err(io("move the packed executable to", output))?;
    guard.0 = None;
    Ok(manifest)
}

fn options(timestamp: DateTime, mode: u32) -> SimpleFileOptions {
    SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(timestamp)
        .unix_permissions(mode)
}

/// Bytecode is stored: zipimport then reads it with no `zlib` import and no
/// inflate on every start. Everything else is deflated.
fn compression_for(name: &str) -> CompressionMethod {
    if name.ends_with(".pyc") {
        CompressionMethod::Stored
    } else {
        CompressionMethod::Deflated
    }
}

fn hash_entry(hasher: &mut Sha256, name: &str, mode: u32, data: &[u8]) {
    hasher.update((name.len() as u64).to_le_bytes());
    hasher.update(name.as_bytes());
    hasher.update(mode.to_le_bytes());
    hasher.update((data.len() as u64).to_le_bytes());
    hasher.update(data);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `dir/.name.pyferry-tmp-PID`: a sibling, so the final rename is atomic.
fn temp_path(output: &Path) -> PathBuf {
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    output.with_file_name(format!(".{name}.pyferry-tmp-{}", std::process::id()))
}

struct RemoveOnDrop(Option<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(path) = &self.0 {
            let _ = fs::remove_file(path);
        }
    }
}

/// The zip timestamp for `SOURCE_DATE_EPOCH` (seconds since 1970, UTC),
/// clamped to what zip can store; 1980-01-01 when unset.
pub fn timestamp_from_epoch(epoch: Option<u64>) -> DateTime {
    let Some(seconds) = epoch else {
        return DateTime::default();
    };
    let days = (seconds / 86_400) as i64;
    let rest = seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    if year < 1980 {
        return DateTime::default();
    }
    let year = year.min(2107);
    DateTime::from_date_and_time(
        year as u16,
        month as u8,
        day as u8,
        (rest / 3600) as u8,
        (rest % 3600 / 60) as u8,
        (rest % 60) as u8,
    )
    .unwrap_or_default()
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn timestamps_clamp() {
        assert_eq!(timestamp_from_epoch(None), DateTime::default());
        assert_eq!(timestamp_from_epoch(Some(0)), DateTime::default());
        let t = timestamp_from_epoch(Some(1_700_000_000));
        assert_eq!((t.year(), t.month(), t.day()), (2023, 11, 14));
        assert_eq!((t.hour(), t.minute(), t.second() / 2 * 2), (22, 13, 20));
    }
}
