//! The native archive's compression: the inner zip (its entries stored) is
//! a zstd stream of concatenated frames, stored in the executable's zip,
//! with a table of its frames in front (`Table`, in a skippable frame that
//! any zstd decoder passes over).
//!
//! Zstd over the whole zip, because most of what the runtime extracts is
//! small files (the standard library's sources, its extension modules):
//! compressed one by one they gain little over deflate, and a decoder set
//! up per entry made first runs slower (session 5). Frames of at most
//! `FRAME_LEN` bytes, because the runtime decodes them as streams in
//! parallel, each thread from the frame where its files begin, and pack
//! compresses them in parallel; 8 MiB frames cost 1-2 % of size against
//! one frame. The zip's central directory gets frames of its own, so that
//! listing the archive decodes only them. The standard library's part of
//! the inner zip is the same bytes in every app: pack compresses its
//! frames once, hard, and caches them, while an app's own part (numpy's 70
//! MB) gets a fast level at every pack. Every frame records its content
//! size and a checksum: a damaged frame is an error, not bytes.

use std::io::{self, BufRead, Read, Seek, SeekFrom};

/// The standard library's frames: compressed once per machine and content.
pub const SHARED_LEVEL: i32 = 19;

/// An app's own units, at every pack: about deflate's speed, smaller.
pub const APP_LEVEL: i32 = 7;

/// The most a frame holds, decompressed.
pub const FRAME_LEN: usize = 8 << 20;

/// No inner zip is this large (1 TiB): frame headers claiming more are
/// damage, not a reason to allocate.
pub const MAX_CONTENT: u64 = 1 << 40;

/// The first of zstd's skippable frame magic numbers: the table's frame.
const TABLE_MAGIC: u32 = 0x184D_2A50;

/// The table's frame header: magic and payload length.
const TABLE_HEADER_LEN: u64 = 8;

/// Threads that compress or decompress frames.
pub fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

/// `data` as frames of `FRAME_LEN` bytes at `level`, compressed in
/// parallel; the same bytes whatever the number of threads.
pub fn compress(data: &[u8], level: i32) -> io::Result<Vec<u8>> {
    let chunks: Vec<&[u8]> = data.chunks(FRAME_LEN).collect();
    let frames = in_parallel(&chunks, |chunk| compress_frame(chunk, level))?;
    Ok(frames.concat())
}

fn compress_frame(data: &[u8], level: i32) -> io::Result<Vec<u8>> {
    use zstd::zstd_safe::CParameter;
    let mut compressor = zstd::bulk::Compressor::new(level)?;
    for parameter in [
        CParameter::ContentSizeFlag(true),
        CParameter::ChecksumFlag(true),
        CParameter::EnableLongDistanceMatching(true),
    ] {
        compressor.set_parameter(parameter)?;
    }
    compressor.compress(data)
}

/// Runs `work` over `items` on `workers()` threads (item `i` on thread
/// `i % n`); the results in the items' order.
pub fn in_parallel<T: Sync, R: Send, E: Send>(
    items: &[T],
    work: impl Fn(&T) -> Result<R, E> + Sync,
) -> Result<Vec<R>, E> {
    let threads = workers().min(items.len()).max(1);
    let work = &work;
    let mut shares: Vec<Vec<R>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|first| {
                scope.spawn(move || {
                    items
                        .iter()
                        .skip(first)
                        .step_by(threads)
                        .map(work)
                        .collect::<Result<Vec<R>, E>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("a frame thread panicked"))
            .collect::<Result<_, E>>()
    })?;
    let mut results = Vec::with_capacity(items.len());
    let mut shares: Vec<_> = shares.iter_mut().map(|share| share.drain(..)).collect();
    for index in 0..items.len() {
        results.extend(shares[index % threads].next());
    }
    Ok(results)
}

/// One frame of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// Where its bytes start in the stream, and how many.
    pub offset: u64,
    pub len: u64,
    /// Where what it decodes to starts in the whole, and how much.
    pub content_start: u64,
    pub content_len: u64,
}

/// The table in front of a stream: its frames, and where in the decoded
/// whole the zip's central directory starts (its frames are the last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub frames: Vec<Frame>,
    pub directory_start: u64,
}

impl Table {
    /// The index of the frame that holds the decoded byte at `offset`.
    pub fn frame_at(&self, offset: u64) -> usize {
        self.frames
            .partition_point(|frame| frame.content_start + frame.content_len <= offset)
    }

    /// The frames from the one holding the central directory's start.
    pub fn directory_frames(&self) -> &[Frame] {
        &self.frames[self.frame_at(self.directory_start).min(self.frames.len())..]
    }

    pub fn content_len(&self) -> u64 {
        self.frames
            .last()
            .map_or(0, |frame| frame.content_start + frame.content_len)
    }
}

/// The frames of `frames` (concatenated, no table), their sizes read from
/// their headers, and nothing else in between.
fn scan(frames: &[u8], limit: u64) -> Result<Vec<(&[u8], u64)>, String> {
    let mut found = Vec::new();
    let mut total = 0u64;
    let mut rest = frames;
    while !rest.is_empty() {
        let len = zstd::zstd_safe::find_frame_compressed_size(rest)
            .map_err(|_| damaged("a frame's end cannot be found"))?;
        let (frame, after) = rest.split_at(len.min(rest.len()));
        rest = after;
        if frame.len() >= 4
            && u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]) & !0xf == TABLE_MAGIC
        {
            continue;
        }
        let size = zstd::zstd_safe::get_frame_content_size(frame)
            .ok()
            .flatten()
            .filter(|size| *size <= FRAME_LEN as u64)
            .ok_or_else(|| damaged("a frame does not record a size it may have"))?;
        total = total
            .checked_add(size)
            .filter(|total| *total <= limit)
            .ok_or_else(|| damaged(&format!("its frames claim more than {limit} bytes")))?;
        found.push((frame, size));
    }
    Ok(found)
}

fn damaged(what: &str) -> String {
    format!("its zstd stream is damaged ({what})")
}

/// `frames` (concatenated) with their table in front; the zip's central
/// directory starts at `directory_start` of the decoded whole.
pub fn with_table(frames: &[u8], directory_start: u64) -> Result<Vec<u8>, String> {
    let scanned = scan(frames, MAX_CONTENT)?;
    let mut payload = Vec::with_capacity(12 + 8 * scanned.len());
    payload.extend(directory_start.to_le_bytes());
    payload.extend((scanned.len() as u32).to_le_bytes());
    for (frame, content_len) in &scanned {
        payload.extend((frame.len() as u32).to_le_bytes());
        payload.extend((*content_len as u32).to_le_bytes());
    }
    let mut stream = Vec::with_capacity(8 + payload.len() + frames.len());
    stream.extend(TABLE_MAGIC.to_le_bytes());
    stream.extend((payload.len() as u32).to_le_bytes());
    stream.extend(payload);
    stream.extend(frames);
    Ok(stream)
}

/// Reads the table at the start of a stream of `stream_len` bytes, and
/// checks that it accounts for every byte.
pub fn read_table(reader: &mut impl Read, stream_len: u64) -> Result<Table, String> {
    let mut header = [0; TABLE_HEADER_LEN as usize];
    reader
        .read_exact(&mut header)
        .map_err(|_| damaged("it has no table of frames"))?;
    let [magic, payload_len] = [&header[..4], &header[4..]]
        .map(|bytes| u32::from_le_bytes(bytes.try_into().expect("4 bytes")));
    let payload_len = u64::from(payload_len);
    if magic != TABLE_MAGIC || TABLE_HEADER_LEN + payload_len > stream_len || payload_len < 12 {
        return Err(damaged("its table of frames is unreadable"));
    }
    let mut payload = vec![0; payload_len as usize];
    reader
        .read_exact(&mut payload)
        .map_err(|_| damaged("its table of frames is cut short"))?;
    let u32_at = |at: usize| {
        u64::from(u32::from_le_bytes(
            payload[at..at + 4].try_into().expect("4"),
        ))
    };
    let directory_start = u64::from_le_bytes(payload[..8].try_into().expect("8 bytes"));
    let count = u32_at(8);
    if 12 + 8 * count != payload_len {
        return Err(damaged("its table of frames has the wrong length"));
    }
    let mut frames = Vec::with_capacity(count as usize);
    let (mut offset, mut content_start) = (TABLE_HEADER_LEN + payload_len, 0u64);
    for index in 0..count as usize {
        let (len, content_len) = (u32_at(12 + 8 * index), u32_at(16 + 8 * index));
        if content_len > FRAME_LEN as u64 {
            return Err(damaged("a frame claims more than a frame may hold"));
        }
        frames.push(Frame {
            offset,
            len,
            content_start,
            content_len,
        });
        offset += len;
        content_start += content_len;
    }
    if offset != stream_len || directory_start > content_start || content_start > MAX_CONTENT {
        return Err(damaged("its table of frames does not match the stream"));
    }
    Ok(Table {
        frames,
        directory_start,
    })
}

/// A streaming decoder of the frames `reader` yields, one after the
/// other: it decodes into a window of its own, reused from frame to frame,
/// and checks each frame's checksum. The window is at most a frame's size
/// (`FRAME_LEN`): a frame header that asks for more is damage, not a
/// reason to allocate.
pub fn stream_decoder<R: BufRead>(reader: R) -> io::Result<impl Read> {
    let mut decoder = zstd::stream::read::Decoder::with_buffer(reader)?;
    decoder.window_log_max(FRAME_LEN.trailing_zeros())?;
    Ok(decoder)
}

/// Decodes the concatenated frames of `frames` (a table in front is
/// passed over), in parallel, if their headers claim at most `limit` bytes
/// in all (`MAX_CONTENT`); what they decode to starts at `base` of the
/// whole (`Decoded` reads nothing before it).
pub fn decompress(frames: &[u8], base: u64, limit: u64) -> Result<Decoded, String> {
    let scanned = scan(frames, limit)?;
    let parts = in_parallel(&scanned, |(frame, size)| {
        let size = *size as usize;
        // Fallible: memory is the one thing a first run may lack.
        let mut part = Vec::new();
        part.try_reserve_exact(size)
            .map_err(|_| format!("{size} bytes cannot be allocated to decompress it"))?;
        zstd::bulk::Decompressor::new()
            .and_then(|mut decompressor| decompressor.decompress_to_buffer(frame, &mut part))
            .map_err(|e| damaged(&e.to_string()))?;
        match part.len() == size {
            true => Ok(part),
            false => Err(damaged("a frame holds less than its header says")),
        }
    })?;
    Ok(Decoded::new(base, parts))
}

/// Decoded frames: their contents, in order, from `base` of the whole to
/// its end (`len`); what comes before `base` reads as zeros.
pub struct Decoded {
    parts: Vec<Vec<u8>>,
    /// Where each part starts in the whole.
    starts: Vec<u64>,
    base: u64,
    len: u64,
}

impl Decoded {
    fn new(base: u64, parts: Vec<Vec<u8>>) -> Decoded {
        let mut starts = Vec::with_capacity(parts.len());
        let mut len = base;
        for part in &parts {
            starts.push(len);
            len += part.len() as u64;
        }
        Decoded {
            parts,
            starts,
            base,
            len,
        }
    }

    /// The length of the whole (`base` included).
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The last `n` bytes (fewer if fewer were decoded), copied.
    pub fn tail(&self, n: usize) -> Vec<u8> {
        let n = n.min((self.len - self.base) as usize);
        let mut tail = vec![0; n];
        let mut reader = self.reader();
        let read = reader
            .seek(SeekFrom::End(-(n as i64)))
            .and_then(|_| reader.read_exact(&mut tail));
        read.expect("within the decoded bytes");
        tail
    }

    /// A reader over the whole; clones read from several threads at once.
    pub fn reader(&self) -> DecodedReader<'_> {
        DecodedReader {
            decoded: self,
            position: 0,
        }
    }
}

/// `Read + Seek` over a `Decoded`, across its parts.
#[derive(Clone)]
pub struct DecodedReader<'a> {
    decoded: &'a Decoded,
    position: u64,
}

impl Read for DecodedReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let decoded = self.decoded;
        if self.position >= decoded.len || buf.is_empty() {
            return Ok(0);
        }
        // Before the decoded part: zeros. Only a zip's listing reads a
        // partly decoded whole, and the zip reader's search for the end
        // record reads blocks back from the end, past the directory's
        // start; an entry's data read this way fails its CRC.
        if self.position < decoded.base {
            let read = buf.len().min((decoded.base - self.position) as usize);
            buf[..read].fill(0);
            self.position += read as u64;
            return Ok(read);
        }
        let index = decoded
            .starts
            .partition_point(|start| *start <= self.position)
            - 1;
        let part = &decoded.parts[index];
        let offset = (self.position - decoded.starts[index]) as usize;
        let read = buf.len().min(part.len() - offset);
        buf[..read].copy_from_slice(&part[offset..offset + read]);
        self.position += read as u64;
        Ok(read)
    }
}

impl Seek for DecodedReader<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let position = match to {
            SeekFrom::Start(offset) => Some(offset),
            SeekFrom::End(delta) => self.decoded.len.checked_add_signed(delta),
            SeekFrom::Current(delta) => self.position.checked_add_signed(delta),
        };
        self.position = position.ok_or_else(|| io::Error::other("seek before the start"))?;
        Ok(self.position)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(decoded: &Decoded) -> Vec<u8> {
        let mut bytes = Vec::new();
        decoded.reader().read_to_end(&mut bytes).expect("read");
        bytes
    }

    /// Five frames' worth and a short one, then a short part of its own.
    fn sample() -> (Vec<u8>, Vec<u8>) {
        let first: Vec<u8> = (0..(5 * FRAME_LEN as u32 / 8))
            .flat_map(|n| (n % 251).to_le_bytes())
            .collect();
        (first, b"the app's own part".repeat(1000))
    }

    #[test]
    fn frames_decode_as_one_and_read_across_their_parts() {
        let (first, second) = sample();
        let mut frames = compress(&first, 1).expect("compress");
        frames.extend(compress(&second, 1).expect("compress"));
        let decoded = decompress(&frames, 0, MAX_CONTENT).expect("decode");
        let expected = [first, second].concat();
        assert_eq!(decoded.len(), expected.len() as u64);
        assert_eq!(whole(&decoded), expected);
        assert_eq!(decoded.tail(100), expected[expected.len() - 100..]);
        // A read that starts in one part and a seek into another.
        let mut reader = decoded.reader();
        reader
            .seek(SeekFrom::Start(FRAME_LEN as u64 - 3))
            .expect("seek");
        let mut across = [0; 6];
        reader.read_exact(&mut across).expect("read across");
        assert_eq!(across, expected[FRAME_LEN - 3..FRAME_LEN + 3]);
        assert!(decompress(&[], 0, MAX_CONTENT).expect("empty").is_empty());
    }

    #[test]
    fn the_table_finds_every_frame_and_the_directorys() {
        let (first, second) = sample();
        let mut frames = compress(&first, 1).expect("compress");
        frames.extend(compress(&second, 1).expect("compress"));
        let stream = with_table(&frames, first.len() as u64).expect("table");
        let table = read_table(&mut &stream[..], stream.len() as u64).expect("read");
        assert_eq!(table.frames.len(), 4);
        assert_eq!(table.content_len(), (first.len() + second.len()) as u64);
        assert_eq!(table.frame_at(FRAME_LEN as u64), 1);
        let directory = table.directory_frames();
        assert_eq!(directory.len(), 1);
        // The directory's frames alone, decoded where they belong.
        let tail = &stream[directory[0].offset as usize..];
        let decoded = decompress(tail, directory[0].content_start, MAX_CONTENT).expect("decode");
        assert_eq!(decoded.tail(second.len()), second);
        let mut before = [1; 4];
        decoded.reader().read_exact(&mut before).expect("read");
        assert_eq!(before, [0; 4], "before the decoded part");
        // Any zstd decoder passes over the table.
        let mut all = Vec::new();
        stream_decoder(&stream[..])
            .expect("decoder")
            .read_to_end(&mut all)
            .expect("decode");
        assert_eq!(all, [first, second].concat());
        // A table that does not account for the stream.
        let short = &stream[..stream.len() - 1];
        assert!(read_table(&mut &short[..], short.len() as u64).is_err());
        assert!(read_table(&mut &frames[..], frames.len() as u64).is_err());
    }

    #[test]
    fn frames_are_the_same_bytes_on_any_number_of_threads() {
        let data = b"0123456789abcdef".repeat(FRAME_LEN / 4);
        let parallel = compress(&data, 3).expect("compress");
        let serial: Vec<u8> = data
            .chunks(FRAME_LEN)
            .flat_map(|chunk| compress_frame(chunk, 3).expect("compress"))
            .collect();
        assert_eq!(parallel, serial);
    }

    /// A frame whose window is larger than a frame may hold (zstd's own
    /// limit is 128 MiB) is refused before its window is allocated.
    #[test]
    fn a_frame_larger_than_a_frame_may_be_is_not_streamed() {
        use zstd::zstd_safe::CParameter;
        let mut compressor = zstd::bulk::Compressor::new(1).expect("compressor");
        compressor
            .set_parameter(CParameter::WindowLog(24))
            .expect("window");
        let big = compressor
            .compress(&vec![0; 2 * FRAME_LEN])
            .expect("compress");
        let mut decoded = Vec::new();
        let streamed = stream_decoder(&big[..]).and_then(|mut d| d.read_to_end(&mut decoded));
        assert!(streamed.is_err(), "{} bytes decoded", decoded.len());
    }

    #[test]
    fn damage_is_an_error() {
        let data = b"0123456789".repeat(10_000);
        let stream = compress(&data, 3).expect("compress");
        let mut flipped = stream.clone();
        let middle = flipped.len() / 2;
        flipped[middle] ^= 0x40;
        assert!(decompress(&flipped, 0, MAX_CONTENT).is_err());
        assert!(decompress(&stream[..stream.len() - 3], 0, MAX_CONTENT).is_err());
        assert!(decompress(&stream, 0, 1000).is_err());
        assert!(decompress(b"not zstd at all", 0, MAX_CONTENT).is_err());
        let mut decoded = Vec::new();
        let streamed = stream_decoder(&flipped[..]).and_then(|mut d| d.read_to_end(&mut decoded));
        assert!(streamed.is_err());
    }
}
