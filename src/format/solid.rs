//! The native archive's compression: the inner zip (its entries stored) is
//! one zstd stream of concatenated frames, stored in the executable's zip.
//!
//! Solid, because most of what the runtime extracts is small files (the
//! standard library's sources, its extension modules): compressed one by
//! one they gain little over deflate, and a decoder set up per entry made
//! first runs slower (session 5). Frames, because the standard library's
//! part of the inner zip is the same bytes in every app: pack compresses it
//! once, hard, and caches the frame, while an app's own part (numpy's 70
//! MB) gets a fast level at every pack. Every frame records its content
//! size and a checksum: the runtime decodes each in one call into its place
//! in one buffer, and a damaged frame is an error, not bytes.

use std::io;

/// The standard library's frame: compressed once per machine and content.
pub const SHARED_LEVEL: i32 = 19;

/// An app's own units, at every pack: fast, and still smaller than deflate.
pub const APP_LEVEL: i32 = 7;

/// The largest window a frame may use (128 MiB, the decoders' default
/// limit); long-distance matching finds repeats across the whole part.
const WINDOW_LOG: u32 = 27;

/// No inner zip is this large (1 TiB): frame headers claiming more are
/// damage, not a reason to allocate.
pub const MAX_CONTENT: u64 = 1 << 40;

/// One frame holding `data`, at `level`.
pub fn compress_frame(data: &[u8], level: i32) -> io::Result<Vec<u8>> {
    use zstd::zstd_safe::CParameter;
    let mut compressor = zstd::bulk::Compressor::new(level)?;
    for parameter in [
        CParameter::ContentSizeFlag(true),
        CParameter::ChecksumFlag(true),
        CParameter::EnableLongDistanceMatching(true),
        CParameter::WindowLog(WINDOW_LOG),
    ] {
        compressor.set_parameter(parameter)?;
    }
    compressor.compress(data)
}

/// Decodes the concatenated frames of `stream` into one buffer, if their
/// headers claim at most `limit` bytes (`MAX_CONTENT`).
pub fn decompress(stream: &[u8], limit: u64) -> Result<Vec<u8>, String> {
    let damaged = |what: &str| format!("its zstd stream is damaged ({what})");
    let mut frames = Vec::new();
    let mut total = 0u64;
    let mut rest = stream;
    while !rest.is_empty() {
        let len = zstd::zstd_safe::find_frame_compressed_size(rest)
            .map_err(|_| damaged("a frame's end cannot be found"))?;
        let (frame, after) = rest.split_at(len.min(rest.len()));
        let size = zstd::zstd_safe::get_frame_content_size(frame)
            .ok()
            .flatten()
            .ok_or_else(|| damaged("a frame does not record its size"))?;
        total = total
            .checked_add(size)
            .filter(|total| *total <= limit)
            .ok_or_else(|| damaged(&format!("its frames claim more than {limit} bytes")))?;
        frames.push((frame, size as usize));
        rest = after;
    }
    // Fallible: a damaged header's claim is an error, not an abort.
    let mut out = Vec::new();
    out.try_reserve_exact(total as usize)
        .map_err(|_| format!("{total} bytes cannot be allocated to decompress it"))?;
    out.resize(total as usize, 0);
    let mut decompressor =
        zstd::bulk::Decompressor::new().map_err(|e| format!("zstd cannot start: {e}"))?;
    let mut at = 0;
    for (frame, size) in frames {
        let written = decompressor
            .decompress_to_buffer(frame, &mut out[at..at + size])
            .map_err(|e| damaged(&e.to_string()))?;
        if written != size {
            return Err(damaged("a frame holds less than its header says"));
        }
        at += size;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concatenated_frames_decode_as_one() {
        let first: Vec<u8> = (0..100_000u32)
            .flat_map(|n| (n % 251).to_le_bytes())
            .collect();
        let second = b"the app's own part".repeat(1000);
        let mut stream = compress_frame(&first, 3).expect("compress");
        stream.extend(compress_frame(&second, 1).expect("compress"));
        let decoded = decompress(&stream, MAX_CONTENT).expect("decode");
        assert_eq!(decoded, [first, second].concat());
        assert_eq!(
            decompress(&[], MAX_CONTENT).expect("empty"),
            Vec::<u8>::new()
        );
    }

    #[test]
    fn damage_is_an_error() {
        let data = b"0123456789".repeat(10_000);
        let stream = compress_frame(&data, 3).expect("compress");
        let mut flipped = stream.clone();
        let middle = flipped.len() / 2;
        flipped[middle] ^= 0x40;
        assert!(decompress(&flipped, MAX_CONTENT).is_err());
        assert!(decompress(&stream[..stream.len() - 3], MAX_CONTENT).is_err());
        assert!(decompress(&stream, 1000).is_err());
        assert!(decompress(b"not zstd at all", MAX_CONTENT).is_err());
    }
}
