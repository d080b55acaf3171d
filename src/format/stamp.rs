//! The stamp: 128 bytes inside the runtime's read-only data that `pack`
//! overwrites with the archive hash.
//!
//! Loaded data survives `strip` and every other rewrite of the file, so a
//! runtime whose stamp says "packed" but whose payload cannot be found knows
//! that the file was damaged (truncated, or its `.pyferry` section removed)
//! and says so, instead of silently behaving like the builder CLI. It also
//! ties the runtime to its own archive: a payload with another hash is not
//! trusted.

use super::Damage;

pub const STAMP_LEN: usize = 128;
const PREFIX: &[u8] = b"\0PYFERRY-STAMP-v1\0";

/// Never read directly: always through `own_stamp_bytes()`, so that the
/// optimizer cannot fold the unpacked value into the code and the bytes
/// exist exactly once in the binary, where `pack` can find them.
#[used]
static STAMP: [u8; STAMP_LEN] = unpacked();

const fn unpacked() -> [u8; STAMP_LEN] {
    let mut stamp = [b' '; STAMP_LEN];
    let mut i = 0;
    while i < PREFIX.len() {
        stamp[i] = PREFIX[i];
        i += 1;
    }
    stamp
}

/// The stamp of the running executable, as it is in memory.
pub fn own_stamp_bytes() -> &'static [u8; STAMP_LEN] {
    std::hint::black_box(&STAMP)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stamp {
    /// A plain pyferry binary: no payload expected.
    Unpacked,
    /// Written by `pack`: the archive hash.
    Packed { hash: String },
}

impl Stamp {
    pub fn encode(&self) -> [u8; STAMP_LEN] {
        let mut bytes = [b' '; STAMP_LEN];
        bytes[..PREFIX.len()].copy_from_slice(&own_stamp_bytes()[..PREFIX.len()]);
        if let Stamp::Packed { hash } = self {
            let text = format!("packed {hash}");
            bytes[PREFIX.len()..PREFIX.len() + text.len()].copy_from_slice(text.as_bytes());
        }
        bytes
    }

    pub fn decode(bytes: &[u8]) -> Result<Stamp, Damage> {
        let prefix = &own_stamp_bytes()[..PREFIX.len()];
        if bytes.len() != STAMP_LEN || &bytes[..PREFIX.len()] != prefix {
            return Err(Damage::StampDamaged);
        }
        let body = std::str::from_utf8(&bytes[PREFIX.len()..])
            .map_err(|_| Damage::StampUnreadable)?
            .trim_end_matches(' ');
        if body.is_empty() {
            return Ok(Stamp::Unpacked);
        }
        match body.strip_prefix("packed ") {
            Some(hash) if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Ok(Stamp::Packed {
                    hash: hash.to_owned(),
                })
            }
            _ => Err(Damage::StampUnreadable),
        }
    }

    /// The stamp of the running executable.
    pub fn own() -> Result<Stamp, Damage> {
        Stamp::decode(own_stamp_bytes())
    }
}

/// Offset of the single unpacked stamp in a runtime image, for `pack` to
/// overwrite. `None` when it is missing or ambiguous.
pub fn find_unpacked(image: &[u8]) -> Option<usize> {
    let pattern = Stamp::Unpacked.encode();
    let mut found = image
        .windows(STAMP_LEN)
        .enumerate()
        .filter(|(_, window)| *window == pattern)
        .map(|(offset, _)| offset);
    let first = found.next()?;
    found.next().is_none().then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn own_stamp_is_unpacked() {
        assert_eq!(Stamp::own(), Ok(Stamp::Unpacked));
    }

    #[test]
    fn round_trip() {
        let stamp = Stamp::Packed {
            hash: HASH.to_owned(),
        };
        assert_eq!(Stamp::decode(&stamp.encode()), Ok(stamp));
        assert_eq!(
            Stamp::decode(&Stamp::Unpacked.encode()),
            Ok(Stamp::Unpacked)
        );
    }

    #[test]
    fn damaged_stamps_are_errors() {
        let good = Stamp::Packed {
            hash: HASH.to_owned(),
        }
        .encode();
        for i in 0..STAMP_LEN {
            let mut bad = good;
            bad[i] = b'\xff';
            assert!(Stamp::decode(&bad).is_err(), "byte {i}");
        }
        assert!(Stamp::decode(&good[..STAMP_LEN - 1]).is_err());
    }

    #[test]
    fn finds_exactly_one_stamp() {
        let mut image = vec![0u8; 1000];
        image[300..300 + STAMP_LEN].copy_from_slice(&Stamp::Unpacked.encode());
        assert_eq!(find_unpacked(&image), Some(300));
        image[600..600 + STAMP_LEN].copy_from_slice(&Stamp::Unpacked.encode());
        assert_eq!(find_unpacked(&image), None);
    }
}
