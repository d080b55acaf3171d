//! Adding the archive to the runtime's ELF image as a section.
//!
//! `strip` deletes data merely appended to an executable, but keeps every
//! section that is not debug information or a symbol table. So the zip goes
//! into a non-loaded `.pyferry` section placed after the runtime's bytes,
//! followed by a copy of the section-name table that names it and a new
//! section header table:
//!
//! ```text
//! [runtime ELF (header patched)][zip][.shstrtab + ".pyferry"][section headers]
//! ```
//!
//! The zip's end record is then a few KiB from the end of the file, well
//! inside the 64 KiB tail where zipimport, `zipfile` and `unzip` look for it;
//! after `strip` rewrites the file the zip may move, which all of them
//! tolerate (they locate the archive from its end record). Pure byte work:
//! ELF64 little-endian only.

pub const SECTION_NAME: &[u8] = b".pyferry";

/// What makes an image unusable, or a search path impossible to rewrite.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ElfError {
    #[error("it is not a 64-bit little-endian ELF file")]
    NotElf64,
    #[error("its section headers are unreadable")]
    SectionHeaders,
    #[error("its search path points outside its string table")]
    SearchPathOutside,
    #[error("its search path is not terminated")]
    SearchPathUnterminated,
    #[error("its search path is {old_len} bytes, too short to hold `{path}`")]
    SearchPathTooShort { old_len: usize, path: String },
}
const SECTION_HEADER_LEN: usize = 64;
const SHT_PROGBITS: u32 = 1;

/// Where things are in the runtime image, read from its ELF header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    section_headers: Vec<[u8; SECTION_HEADER_LEN]>,
    names_index: usize,
    names: Vec<u8>,
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        bytes.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        bytes.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        bytes.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

impl Image {
    /// Reads the section headers and section names of an ELF64 LE image.
    pub fn parse(image: &[u8]) -> Result<Image, ElfError> {
        if image.get(..6) != Some(b"\x7fELF\x02\x01") {
            return Err(ElfError::NotElf64);
        }
        let bad = || ElfError::SectionHeaders;
        let offset = usize::try_from(u64_at(image, 0x28).ok_or_else(bad)?).map_err(|_| bad())?;
        let entry_len = usize::from(u16_at(image, 0x3a).ok_or_else(bad)?);
        let count = usize::from(u16_at(image, 0x3c).ok_or_else(bad)?);
        let names_index = usize::from(u16_at(image, 0x3e).ok_or_else(bad)?);
        if entry_len != SECTION_HEADER_LEN || count == 0 || count >= 0xff00 || names_index >= count
        {
            return Err(bad());
        }
        let table_end = offset
            .checked_add(count * SECTION_HEADER_LEN)
            .ok_or_else(bad)?;
        let table = image.get(offset..table_end).ok_or_else(bad)?;
        let section_headers: Vec<[u8; SECTION_HEADER_LEN]> = table
            .chunks_exact(SECTION_HEADER_LEN)
            .map(|chunk| chunk.try_into().expect("exact chunks"))
            .collect();
        let names_header = &section_headers[names_index];
        let names_offset =
            usize::try_from(u64_at(names_header, 24).ok_or_else(bad)?).map_err(|_| bad())?;
        let names_len =
            usize::try_from(u64_at(names_header, 32).ok_or_else(bad)?).map_err(|_| bad())?;
        let names_end = names_offset.checked_add(names_len).ok_or_else(bad)?;
        let names = image.get(names_offset..names_end).ok_or_else(bad)?.to_vec();
        Ok(Image {
            section_headers,
            names_index,
            names,
        })
    }

    /// The bytes to write after the zip (which starts at `zip_offset` and is
    /// `zip_len` long, written from `tables_offset` on), and the patched ELF
    /// header fields: `(tail, e_shoff, e_shnum)`.
    pub fn tables_after(
        &self,
        zip_offset: u64,
        zip_len: u64,
        tables_offset: u64,
    ) -> (Vec<u8>, u64, u16) {
        let mut names = self.names.clone();
        let name_at = names.len() as u32;
        names.extend(SECTION_NAME);
        names.push(0);
        let mut tail = names;
        while !(tables_offset + tail.len() as u64).is_multiple_of(8) {
            tail.push(0);
        }
        let headers_offset = tables_offset + tail.len() as u64;
        for (index, header) in self.section_headers.iter().enumerate() {
            let mut header = *header;
            if index == self.names_index {
                header[24..32].copy_from_slice(&tables_offset.to_le_bytes());
                header[32..40].copy_from_slice(
                    &(self.names.len() as u64 + SECTION_NAME.len() as u64 + 1).to_le_bytes(),
                );
            }
            tail.extend(header);
        }
        let mut section = [0u8; SECTION_HEADER_LEN];
        section[0..4].copy_from_slice(&name_at.to_le_bytes());
        section[4..8].copy_from_slice(&SHT_PROGBITS.to_le_bytes());
        section[24..32].copy_from_slice(&zip_offset.to_le_bytes());
        section[32..40].copy_from_slice(&zip_len.to_le_bytes());
        section[48..56].copy_from_slice(&1u64.to_le_bytes());
        tail.extend(section);
        let count =
            u16::try_from(self.section_headers.len() + 1).expect("fewer than 0xff00 sections");
        (tail, headers_offset, count)
    }

    /// The header of the section called `name`, if there is one.
    fn section_named(&self, name: &[u8]) -> Option<&[u8; SECTION_HEADER_LEN]> {
        self.section_headers.iter().find(|header| {
            let Some(at) = u32_at(*header, 0) else {
                return false;
            };
            let found = self.names.get(at as usize..).unwrap_or_default();
            found.split(|b| *b == 0).next() == Some(name)
        })
    }

    /// Whether the image already has a `.pyferry` section (a packed runtime).
    pub fn has_payload_section(&self) -> bool {
        self.section_named(SECTION_NAME).is_some()
    }

    /// The linker's build id (`.note.gnu.build-id`): a digest of the linked
    /// image, so it changes whenever the binary does.
    pub fn build_id<'i>(&self, image: &'i [u8]) -> Option<&'i [u8]> {
        let header = self.section_named(b".note.gnu.build-id")?;
        let offset = usize::try_from(u64_at(header, 24)?).ok()?;
        let len = usize::try_from(u64_at(header, 32)?).ok()?;
        let note = image.get(offset..offset.checked_add(len)?)?;
        // namesz, descsz, type, then the name ("GNU\0") padded to 4 bytes.
        let name_len = usize::try_from(u32_at(note, 0)?).ok()?;
        let id_len = usize::try_from(u32_at(note, 4)?).ok()?;
        let id_at = 12usize.checked_add(name_len.checked_next_multiple_of(4)?)?;
        note.get(id_at..id_at.checked_add(id_len)?)
            .filter(|id| !id.is_empty())
    }
}

/// What the dynamic section says: shared libraries needed, and RPATH or
/// RUNPATH.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Dynamic {
    pub needed: Vec<String>,
    pub runpath: Option<String>,
}

const DT_NEEDED: u64 = 1;
const DT_RPATH: u64 = 15;
const DT_RUNPATH: u64 = 29;

/// File offsets of the dynamic section and of its string table.
struct DynamicSection {
    entries: std::ops::Range<usize>,
    strings: std::ops::Range<usize>,
}

impl Image {
    fn dynamic_section(&self, image_len: usize) -> Option<DynamicSection> {
        const SHT_DYNAMIC: u32 = 6;
        let section = self
            .section_headers
            .iter()
            .find(|header| u32_at(*header, 4) == Some(SHT_DYNAMIC))?;
        let range = |header: &[u8]| -> Option<std::ops::Range<usize>> {
            let offset = usize::try_from(u64_at(header, 24)?).ok()?;
            let len = usize::try_from(u64_at(header, 32)?).ok()?;
            let end = offset.checked_add(len).filter(|end| *end <= image_len)?;
            Some(offset..end)
        };
        let strings = self.section_headers.get(u32_at(section, 40)? as usize)?;
        Some(DynamicSection {
            entries: range(section)?,
            strings: range(strings)?,
        })
    }

    /// Reads `DT_NEEDED` and `DT_RPATH`/`DT_RUNPATH` from the image.
    pub fn dynamic(&self, image: &[u8]) -> Dynamic {
        let mut dynamic = Dynamic::default();
        let Some(section) = self.dynamic_section(image.len()) else {
            return dynamic;
        };
        let strings = &image[section.strings];
        let string = |at: u64| -> Option<String> {
            let bytes = strings.get(usize::try_from(at).ok()?..)?;
            let end = bytes.iter().position(|b| *b == 0)?;
            Some(String::from_utf8_lossy(&bytes[..end]).into_owned())
        };
        for entry in image[section.entries].chunks_exact(16) {
            let (Some(tag), Some(value)) = (u64_at(entry, 0), u64_at(entry, 8)) else {
                break;
            };
            match tag {
                0 => break,
                DT_NEEDED => dynamic.needed.extend(string(value)),
                DT_RPATH | DT_RUNPATH => dynamic.runpath = string(value),
                _ => {}
            }
        }
        dynamic
    }

    /// Rewrites, in place, every `DT_RUNPATH`/`DT_RPATH` of a shared object
    /// to `path`, as a `DT_RPATH`: unlike RUNPATH, the dynamic linker also
    /// searches an object's RPATH for the dependencies of its dependencies
    /// (libssl's libcrypto), and before `LD_LIBRARY_PATH` and the system's
    /// directories. The string table cannot grow, so `path` must fit in the
    /// old string. Returns false when the object has no search path to reuse.
    pub fn rewrite_search_path(&self, image: &mut [u8], path: &str) -> Result<bool, ElfError> {
        let Some(section) = self.dynamic_section(image.len()) else {
            return Ok(false);
        };
        let mut found = false;
        for at in section.entries.clone().step_by(16) {
            let (Some(tag), Some(value)) = (u64_at(image, at), u64_at(image, at + 8)) else {
                break;
            };
            match tag {
                0 => break,
                DT_RPATH | DT_RUNPATH => {}
                _ => continue,
            }
            let start = usize::try_from(value)
                .ok()
                .and_then(|value| section.strings.start.checked_add(value))
                .filter(|start| *start < section.strings.end)
                .ok_or(ElfError::SearchPathOutside)?;
            let old_len = image[start..section.strings.end]
                .iter()
                .position(|b| *b == 0)
                .ok_or(ElfError::SearchPathUnterminated)?;
            if path.len() > old_len {
                return Err(ElfError::SearchPathTooShort {
                    old_len,
                    path: path.to_owned(),
                });
            }
            image[start..start + old_len].fill(0);
            image[start..start + path.len()].copy_from_slice(path.as_bytes());
            image[at..at + 8].copy_from_slice(&DT_RPATH.to_le_bytes());
            found = true;
        }
        Ok(found)
    }
}

/// The symbol versions an object needs of each library (`.gnu.version_r`:
/// `libstdc++.so.6` -> `GLIBCXX_3.4.29`, ...) and those it defines itself
/// (`.gnu.version_d`), as the dynamic linker checks them when it loads it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SymbolVersions {
    pub needed: std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
    pub defined: std::collections::BTreeSet<String>,
}

impl Image {
    /// Reads the version needs and definitions; an object without them
    /// (or with unreadable ones) has none.
    pub fn symbol_versions(&self, image: &[u8]) -> SymbolVersions {
        const SHT_GNU_VERDEF: u32 = 0x6fff_fffd;
        const SHT_GNU_VERNEED: u32 = 0x6fff_fffe;
        let mut versions = SymbolVersions::default();
        for header in &self.section_headers {
            let kind = u32_at(header, 4);
            if kind != Some(SHT_GNU_VERNEED) && kind != Some(SHT_GNU_VERDEF) {
                continue;
            }
            let Some((entries, strings, count)) = self.version_section(header, image) else {
                continue;
            };
            if kind == Some(SHT_GNU_VERNEED) {
                read_version_needs(entries, strings, count, &mut versions.needed);
            } else {
                read_version_definitions(entries, strings, count, &mut versions.defined);
            }
        }
        versions
    }

    /// A version section's bytes, its string table's and its entry count
    /// (`sh_info`).
    fn version_section<'i>(
        &self,
        header: &[u8; SECTION_HEADER_LEN],
        image: &'i [u8],
    ) -> Option<(&'i [u8], &'i [u8], u32)> {
        let bytes = |header: &[u8]| -> Option<&'i [u8]> {
            let offset = usize::try_from(u64_at(header, 24)?).ok()?;
            let len = usize::try_from(u64_at(header, 32)?).ok()?;
            image.get(offset..offset.checked_add(len)?)
        };
        let strings = self.section_headers.get(u32_at(header, 40)? as usize)?;
        Some((bytes(header)?, bytes(strings)?, u32_at(header, 44)?))
    }
}

fn string_at(strings: &[u8], at: u32) -> Option<String> {
    let bytes = strings.get(at as usize..)?;
    let end = bytes.iter().position(|b| *b == 0)?;
    Some(String::from_utf8_lossy(&bytes[..end]).into_owned())
}

/// `Elf64_Verneed` entries (file name, then `Elf64_Vernaux` version names),
/// each linked to the next by a relative offset.
fn read_version_needs(
    entries: &[u8],
    strings: &[u8],
    count: u32,
    into: &mut std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
) {
    let mut at = 0usize;
    for _ in 0..count {
        let (Some(aux_count), Some(file), Some(aux), Some(next)) = (
            u16_at(entries, at + 2),
            u32_at(entries, at + 4),
            u32_at(entries, at + 8),
            u32_at(entries, at + 12),
        ) else {
            return;
        };
        let Some(file) = string_at(strings, file) else {
            return;
        };
        let names = into.entry(file).or_default();
        let mut aux_at = at.checked_add(aux as usize);
        for _ in 0..aux_count {
            let Some(here) = aux_at else { break };
            let (Some(name), Some(aux_next)) =
                (u32_at(entries, here + 8), u32_at(entries, here + 12))
            else {
                break;
            };
            names.extend(string_at(strings, name));
            aux_at = here
                .checked_add(aux_next as usize)
                .filter(|_| aux_next != 0);
        }
        match at.checked_add(next as usize) {
            Some(following) if next != 0 => at = following,
            _ => return,
        }
    }
}

/// `Elf64_Verdef` entries, each with its name as its first `Elf64_Verdaux`.
fn read_version_definitions(
    entries: &[u8],
    strings: &[u8],
    count: u32,
    into: &mut std::collections::BTreeSet<String>,
) {
    const VER_FLG_BASE: u16 = 1;
    let mut at = 0usize;
    for _ in 0..count {
        let (Some(flags), Some(aux), Some(next)) = (
            u16_at(entries, at + 2),
            u32_at(entries, at + 12),
            u32_at(entries, at + 16),
        ) else {
            return;
        };
        // The base entry names the file itself (its soname), not a version.
        if flags & VER_FLG_BASE == 0
            && let Some(name) = at
                .checked_add(aux as usize)
                .and_then(|aux_at| u32_at(entries, aux_at))
                .and_then(|name| string_at(strings, name))
        {
            into.insert(name);
        }
        match at.checked_add(next as usize) {
            Some(following) if next != 0 => at = following,
            _ => return,
        }
    }
}

/// Offsets of the ELF header fields `tables_after` returns values for.
pub const SHOFF_AT: u64 = 0x28;
pub const SHNUM_AT: u64 = 0x3c;

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64: header, a 16-byte name table, two section headers.
    fn tiny_elf() -> Vec<u8> {
        let mut image = vec![0u8; 64];
        image[..6].copy_from_slice(b"\x7fELF\x02\x01");
        let names = b"\0.shstrtab\0.text\0";
        let names_at = image.len() as u64;
        image.extend(names);
        let headers_at = image.len() as u64;
        image[0x28..0x30].copy_from_slice(&headers_at.to_le_bytes());
        image[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        image[0x3c..0x3e].copy_from_slice(&2u16.to_le_bytes());
        image[0x3e..0x40].copy_from_slice(&1u16.to_le_bytes());
        image.extend([0u8; 64]);
        let mut names_header = [0u8; 64];
        names_header[0..4].copy_from_slice(&1u32.to_le_bytes());
        names_header[4..8].copy_from_slice(&3u32.to_le_bytes());
        names_header[24..32].copy_from_slice(&names_at.to_le_bytes());
        names_header[32..40].copy_from_slice(&(names.len() as u64).to_le_bytes());
        image.extend(names_header);
        image
    }

    #[test]
    fn adds_a_named_section() {
        let mut image = tiny_elf();
        let parsed = Image::parse(&image).expect("parses");
        assert!(!parsed.has_payload_section());
        let zip_offset = image.len() as u64;
        image.extend(b"ZIPDATA");
        let (tail, shoff, shnum) = parsed.tables_after(zip_offset, 7, image.len() as u64);
        image.extend(tail);
        image[SHOFF_AT as usize..SHOFF_AT as usize + 8].copy_from_slice(&shoff.to_le_bytes());
        image[SHNUM_AT as usize..SHNUM_AT as usize + 2].copy_from_slice(&shnum.to_le_bytes());
        let packed = Image::parse(&image).expect("parses again");
        assert!(packed.has_payload_section());
        assert_eq!(packed.section_headers.len(), 3);
        let section = packed.section_headers[2];
        let offset = u64_at(&section, 24).expect("offset") as usize;
        assert_eq!(&image[offset..offset + 7], b"ZIPDATA");
    }

    #[test]
    fn reads_the_build_id_of_a_real_binary() {
        // build.rs links every binary of the crate with `--build-id=sha1`.
        let exe = std::env::current_exe().expect("own path");
        let image = std::fs::read(exe).expect("read");
        let parsed = Image::parse(&image).expect("an ELF");
        assert_eq!(parsed.build_id(&image).map(<[u8]>::len), Some(20));
        assert_eq!(
            Image::parse(&tiny_elf())
                .expect("parses")
                .build_id(&tiny_elf()),
            None
        );
    }

    #[test]
    fn reads_the_symbol_versions_of_real_libraries() {
        // Every program linked against glibc needs its versions, and
        // libc.so.6 defines them.
        let exe = std::env::current_exe().expect("own path");
        let image = std::fs::read(exe).expect("read");
        let versions = Image::parse(&image)
            .expect("an ELF")
            .symbol_versions(&image);
        let libc = &versions.needed["libc.so.6"];
        assert!(libc.contains("GLIBC_2.2.5"), "{versions:?}");
        let libc_path = ["/lib/x86_64-linux-gnu/libc.so.6", "/lib64/libc.so.6"]
            .into_iter()
            .find(|path| std::path::Path::new(path).exists())
            .expect("glibc");
        let image = std::fs::read(libc_path).expect("read");
        let defined = Image::parse(&image)
            .expect("an ELF")
            .symbol_versions(&image)
            .defined;
        assert!(libc.is_subset(&defined), "{libc:?} not in {defined:?}");
        assert!(!defined.contains("libc.so.6"), "{defined:?}");
        assert_eq!(
            Image::parse(&tiny_elf())
                .expect("parses")
                .symbol_versions(&tiny_elf()),
            SymbolVersions::default()
        );
    }

    #[test]
    fn truncated_or_foreign_images_are_errors() {
        let image = tiny_elf();
        for len in 0..image.len() {
            assert!(Image::parse(&image[..len]).is_err(), "length {len}");
        }
        let mut big_endian = image.clone();
        big_endian[5] = 2;
        assert!(Image::parse(&big_endian).is_err());
    }

    /// Found by `make fuzz` (elf): a section table offset near the end of
    /// the address space overflowed the bounds arithmetic.
    #[test]
    fn offsets_that_overflow_are_refused() {
        let mut image = tiny_elf();
        image[0x28..0x30].copy_from_slice(&(u64::MAX - 10).to_le_bytes());
        assert!(Image::parse(&image).is_err());
        let mut image = tiny_elf();
        let names_header_at = image.len() - 64;
        image[names_header_at + 24..names_header_at + 32]
            .copy_from_slice(&(u64::MAX - 3).to_le_bytes());
        assert!(Image::parse(&image).is_err());
    }
}
