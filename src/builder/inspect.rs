//! `pyferry inspect`: what is inside a packed executable, read back through
//! the very types the runtime uses.

use crate::error::{Error, Result};
use crate::format::manifest::{ExtractOnImport, GlibcFloor, QtPlatforms};
use crate::format::units::{LEFT_OUT, Placement, REPORT, UnitReport};
use crate::format::{Damage, Flavor, elf};
use crate::runtime::{extract, payload};
use serde::Serialize;
use std::io::Read;
use std::path::Path;

#[derive(Debug, Serialize)]
pub struct Report {
    pub name: String,
    pub entry_point: String,
    pub python: String,
    pub flavor: Flavor,
    pub pyferry: String,
    pub archive_hash: String,
    pub file_size: u64,
    pub runtime_size: u64,
    pub archive_size: u64,
    pub archive_entries: usize,
    /// Top-level units extracted to the cache.
    pub extracted_units: Vec<String>,
    /// Every unit: extracted or imported from the archive, and why.
    pub units: Vec<UnitReport>,
    /// The files written to the cache on first run.
    pub extracted_files: Vec<ExtractedFile>,
    pub extracted_size: u64,
    /// Shared libraries the runtime links (its `DT_NEEDED`), and its RUNPATH.
    pub runtime_libraries: Vec<String>,
    pub runtime_runpath: Option<String>,
    /// Where a system package may pre-extract it (`--system-cache`).
    pub system_cache: Option<String>,
    /// The oldest glibc it runs on, and the file that needs it (absent
    /// from executables packed before pyferry recorded it).
    pub glibc: Option<GlibcFloor>,
    /// Qt's platform plugins and what each needs from the user's desktop.
    pub qt_platforms: Vec<QtPlatforms>,
    /// When a first run extracts: at the first import of one of these
    /// (`Manifest::extract_on_import`), or, if `None`, before the app starts.
    pub extract_on_import: Option<ExtractOnImport>,
    /// The standard library's modules `--stdlib minimal` left out.
    pub stdlib_left_out: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct ExtractedFile {
    pub name: String,
    pub size: u64,
}

pub fn inspect(path: &Path) -> Result<Report> {
    let payload = payload::locate(path, None)?.ok_or_else(|| Error::NotPacked {
        path: path.to_owned(),
    })?;
    let corrupt = |e: zip::result::ZipError| Error::PayloadCorrupt {
        exe: path.to_owned(),
        reason: Damage::Unreadable(e.to_string()),
    };
    let mut zip = zip::ZipArchive::new(&payload.file).map_err(corrupt)?;
    let image = std::fs::read(path).map_err(crate::error::io("read", path))?;
    let dynamic = elf::Image::parse(&image)
        .map(|elf| elf.dynamic(&image))
        .unwrap_or_default();
    let manifest = &payload.manifest;
    let mut runtime_size = payload.len;
    let mut extracted_files = Vec::new();
    for index in 0..zip.len() {
        let entry = zip.by_index_raw(index).map_err(corrupt)?;
        runtime_size = runtime_size.min(entry.header_start());
    }
    // Absent from executables packed before pyferry wrote them.
    let units = json_entry(&mut zip, REPORT, path)?.unwrap_or_default();
    let stdlib_left_out = json_entry(&mut zip, LEFT_OUT, path)?.unwrap_or_default();
    let native =
        extract::open_native(&payload.file, None, manifest.native_archive).map_err(|reason| {
            Error::PayloadCorrupt {
                exe: path.to_owned(),
                reason: Damage::NativeArchive(reason.0),
            }
        })?;
    if let Some(archive) = native {
        let native = zip::ZipArchive::new(archive.listing()).map_err(corrupt)?;
        for index in 0..native.len() {
            let entry = native.by_index_data(index).map_err(corrupt)?;
            if !entry.is_dir() {
                extracted_files.push(ExtractedFile {
                    name: String::from_utf8_lossy(entry.name_raw()).into_owned(),
                    size: entry.size(),
                });
            }
        }
    }
    Ok(Report {
        name: manifest.name.clone(),
        entry_point: manifest.entry.to_string(),
        python: manifest.python.clone(),
        flavor: manifest.flavor,
        pyferry: manifest.pyferry.clone(),
        archive_hash: manifest.hash.clone(),
        file_size: payload.len,
        runtime_size,
        archive_size: payload.len - runtime_size,
        archive_entries: zip.len(),
        extracted_units: manifest.extracted.clone(),
        units,
        extracted_size: extracted_files.iter().map(|f| f.size).sum(),
        extracted_files,
        runtime_libraries: dynamic.needed,
        runtime_runpath: dynamic.runpath,
        system_cache: manifest.system_cache.clone(),
        glibc: manifest.glibc.clone(),
        qt_platforms: manifest.qt_platforms.clone(),
        extract_on_import: manifest.extract_on_import.clone(),
        stdlib_left_out,
    })
}

/// The JSON entry `name` of the archive, if it has one.
fn json_entry<T: serde::de::DeserializeOwned, R: Read + std::io::Seek>(
    zip: &mut zip::ZipArchive<R>,
    name: &str,
    exe: &Path,
) -> Result<Option<T>> {
    let unreadable = |why: String| Error::PayloadCorrupt {
        exe: exe.to_owned(),
        reason: Damage::Unreadable(format!("`{name}` is unreadable: {why}")),
    };
    let mut entry = match zip.by_name(name) {
        Ok(entry) => entry,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(unreadable(e.to_string())),
    };
    let mut json = Vec::new();
    entry
        .read_to_end(&mut json)
        .map_err(|e| unreadable(e.to_string()))?;
    serde_json::from_slice(&json)
        .map(Some)
        .map_err(|e| unreadable(e.to_string()))
}

impl Report {
    pub fn to_text(&self) -> String {
        let mut text = format!(
            "name:          {}\n\
             entry point:   {}\n\
             python:        {}\n\
             flavor:        {}\n\
             packed by:     pyferry {}\n\
             archive hash:  {}\n\
             file size:     {} bytes (runtime {} + archive {})\n\
             entries:       {}\n\
             links:         {}{}\n\
             system cache:  {}\n\
             glibc:         {}\n\
             extracted:     {} files, {} bytes, from {}\n",
            self.name,
            self.entry_point,
            self.python,
            self.flavor,
            self.pyferry,
            self.archive_hash,
            self.file_size,
            self.runtime_size,
            self.archive_size,
            self.archive_entries,
            self.runtime_libraries.join(", "),
            self.runtime_runpath
                .as_ref()
                .map(|path| format!(" (runpath {path})"))
                .unwrap_or_default(),
            self.system_cache.as_deref().unwrap_or("none"),
            self.glibc
                .as_ref()
                .map(|floor| format!(
                    "{} or newer (`{}` needs it)",
                    floor.version, floor.needed_by
                ))
                .unwrap_or_else(|| "not recorded".to_owned()),
            self.extracted_files.len(),
            self.extracted_size,
            if self.extracted_units.is_empty() {
                "nothing (pure Python)".to_owned()
            } else {
                self.extracted_units.join(", ")
            },
        );
        if !self.extracted_units.is_empty() {
            text.push_str(&match &self.extract_on_import {
                Some(lazy) => {
                    let shown: Vec<&str> =
                        lazy.modules.iter().take(8).map(String::as_str).collect();
                    let more = lazy.modules.len().saturating_sub(shown.len());
                    format!(
                        "first run:     extracts when the app first imports {}{}{}, or reads a \
                         standard library source\n",
                        shown.join(", "),
                        if more > 0 {
                            format!(" (and {more} more)")
                        } else {
                            String::new()
                        },
                        if lazy.metadata {
                            ", or looks for distributions"
                        } else {
                            ""
                        },
                    )
                }
                None => "first run:     extracts before the app starts\n".to_owned(),
            });
        }
        if !self.stdlib_left_out.is_empty() {
            text.push_str(&format!(
                "standard library: minimal, {} modules left out: {}\n",
                self.stdlib_left_out.len(),
                self.stdlib_left_out.join(", ")
            ));
        }
        for qt in &self.qt_platforms {
            let binding = qt.modules.first().map_or("", |module| {
                module
                    .split_once('.')
                    .map_or(module.as_str(), |(top, _)| top)
            });
            text.push_str(&format!(
                "{binding} platforms, with the libraries each takes from the desktop:\n"
            ));
            for (platform, libraries) in &qt.plugins {
                text.push_str(&format!("  {platform}: {}\n", libraries.join(" ")));
            }
        }
        if !self.units.is_empty() {
            text.push_str("units:\n");
            let width = self.units.iter().map(|u| u.name.len()).max().unwrap_or(0);
            for unit in &self.units {
                let (placement, why) = match &unit.placement {
                    Placement::Extracted(why) => ("extracted", why),
                    Placement::Archived(why) => ("archived ", why),
                };
                text.push_str(&format!("  {placement}  {:width$}  {why}\n", unit.name));
            }
            text.push_str("extracted files:\n");
        }
        for file in &self.extracted_files {
            text.push_str(&format!("  {:>10}  {}\n", file.size, file.name));
        }
        text
    }
}
