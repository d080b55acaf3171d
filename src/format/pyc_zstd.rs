//! How the archive's compiled modules are compressed: each pyc on its own
//! (zipimport reads them one by one, on every start), as a zstd frame made
//! with a dictionary trained on the standard library's pycs, in zip entries
//! of method 93 (zstd). The runtime decodes them (`runtime::zipimport`,
//! its `_get_data`); CPython's own zipimport never does.
//!
//! Why: a pyc is small, and most of its bytes (opcodes, the names every
//! module uses, marshal's framing) are the same as in every other pyc.
//! Deflated one by one, the standard library's 10.4 MB of pycs are 4.1 MB;
//! with a 112 KiB dictionary, 3.3 MB plus the dictionary; and decoding a
//! frame takes fewer instructions than inflating (an app importing 13
//! standard modules starts in 8 % fewer). The dictionary is an entry of
//! the archive (`DICTIONARY_ENTRY`, stored); a frame names it by its id, so
//! that a zstd decoder given the wrong dictionary fails instead of decoding
//! garbage, and carries its content size (the zip's CRC-32 checks the
//! bytes, so frames carry no checksum of their own). An archive without a
//! standard library (the system flavor's) has no dictionary: its frames
//! are made without one, and an empty dictionary is none.

use std::io::{self, Read, Seek};

/// The archive entry that holds the dictionary, stored.
pub const DICTIONARY_ENTRY: &str = ".pyferry/pyc-dictionary";

/// Zip's compression method number for zstd.
pub const METHOD: u16 = 93;

/// The standard library's pycs: compressed once per machine and content.
pub const SHARED_LEVEL: i32 = 19;

/// An app's pycs, at every pack: black's 1.6 MB in 0.1 s more than the
/// pack took with them stored (level 19: 0.25 s, 25 KB smaller).
pub const APP_LEVEL: i32 = 9;

/// The most a dictionary holds. Larger ones compress the standard library
/// a little better (256 KiB: -0.07 MB) but every start that reads a
/// compressed pyc loads the dictionary first.
pub const DICTIONARY_LEN: usize = 112 << 10;

/// The dictionary `zip` holds (an executable's archive, or the standard
/// library's archived part); empty if it holds none: its frames were made
/// without one. A failure to read the entry's bytes is `ZipError::Io`.
pub fn dictionary_of<R: Read + Seek>(
    zip: &mut zip::ZipArchive<R>,
) -> zip::result::ZipResult<Vec<u8>> {
    let mut dictionary = Vec::new();
    match zip.by_name(DICTIONARY_ENTRY) {
        Ok(mut entry) => entry.read_to_end(&mut dictionary)?,
        Err(zip::result::ZipError::FileNotFound) => 0,
        Err(e) => return Err(e),
    };
    Ok(dictionary)
}

/// A dictionary for `samples` (the standard library's pycs); the same bytes
/// for the same samples.
pub fn train<S: AsRef<[u8]>>(samples: &[S]) -> io::Result<Vec<u8>> {
    zstd::dict::from_samples(samples, DICTIONARY_LEN)
}

/// Compresses pycs with one dictionary.
pub struct Compressor(zstd::bulk::Compressor<'static>);

impl Compressor {
    pub fn new(dictionary: &[u8], level: i32) -> io::Result<Compressor> {
        use zstd::zstd_safe::CParameter;
        let mut compressor = zstd::bulk::Compressor::with_dictionary(level, dictionary)?;
        for parameter in [
            CParameter::ContentSizeFlag(true),
            CParameter::ChecksumFlag(false),
            CParameter::DictIdFlag(true),
        ] {
            compressor.set_parameter(parameter)?;
        }
        Ok(Compressor(compressor))
    }

    /// One frame of `pyc`.
    pub fn compress(&mut self, pyc: &[u8]) -> io::Result<Vec<u8>> {
        self.0.compress(pyc)
    }
}

/// Decompresses the frames of one dictionary.
pub struct Decompressor(zstd::bulk::Decompressor<'static>);

impl Decompressor {
    pub fn new(dictionary: &[u8]) -> io::Result<Decompressor> {
        zstd::bulk::Decompressor::with_dictionary(dictionary).map(Decompressor)
    }

    /// The bytes of `frame`, which must decode to exactly `len` bytes: a
    /// frame that decodes to more, or to fewer, is damage.
    pub fn decompress(&mut self, frame: &[u8], len: u64) -> io::Result<Vec<u8>> {
        let capacity = usize::try_from(len).map_err(io::Error::other)?;
        let bytes = self.0.decompress(frame, capacity)?;
        match bytes.len() == capacity {
            true => Ok(bytes),
            false => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the frame holds {} bytes, the zip says {capacity}",
                    bytes.len()
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Vec<u8>> {
        (0..400)
            .map(|n| {
                format!("import os\ndef f{n}(x):\n    return os.path.join(x, '{n}')\n")
                    .repeat(1 + n % 7)
                    .into_bytes()
            })
            .collect()
    }

    #[test]
    fn frames_round_trip_with_their_dictionary_only() {
        let samples = samples();
        let dictionary = train(&samples).expect("enough samples");
        assert_eq!(train(&samples).expect("again"), dictionary, "deterministic");
        let mut compressor = Compressor::new(&dictionary, 3).expect("a dictionary");
        let mut decompressor = Decompressor::new(&dictionary).expect("a dictionary");
        for sample in &samples {
            let frame = compressor.compress(sample).expect("compresses");
            let len = sample.len() as u64;
            assert_eq!(&decompressor.decompress(&frame, len).expect("ok"), sample);
            assert!(decompressor.decompress(&frame, len - 1).is_err());
            assert!(decompressor.decompress(&frame, len + 1).is_err());
            assert!(
                decompressor
                    .decompress(&frame[..frame.len() / 2], len)
                    .is_err()
            );
        }
        let other = train(&samples[..200]).expect("enough samples");
        let frame = compressor.compress(&samples[3]).expect("compresses");
        let mut wrong = Decompressor::new(&other).expect("a dictionary");
        assert!(wrong.decompress(&frame, samples[3].len() as u64).is_err());
    }
}
