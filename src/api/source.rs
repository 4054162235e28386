//! Reading a file a user names (a scenario, an included manifest, a
//! scheduler configuration, a latency CSV, a snapshot) without trusting it.
//!
//! A simulator people feed their own files into must be safe to feed
//! anything: `/dev/zero` never ends, a FIFO blocks, a directory is not text,
//! and a 10 GB log pasted by mistake would exhaust memory. So only regular
//! files are read, at most [`MAX_SOURCE_BYTES`], and what is read must be
//! UTF-8 (what Kubernetes' YAML reader and kubectl expect of a manifest); a
//! Latin-1 byte or a UTF-16 file is reported at its byte offset and line.

use std::fmt;
use std::io::Read;
use std::path::Path;

use super::yaml::Pos;

/// The largest input file kubesim reads: 64 MiB. The largest manifests
/// Kubernetes itself accepts are bounded by etcd's 1.5 MiB request limit, and
/// the 5,000-node scale scenario is under 1 MiB; 64 MiB leaves room for
/// generated files while keeping a mistaken `include:` from exhausting memory.
pub const MAX_SOURCE_BYTES: u64 = 64 << 20;

/// Why a file could not be read as text, and where in it when that is known.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceError {
    pub pos: Option<Pos>,
    pub message: String,
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Reads `path` as UTF-8 text: a regular file (symlinks followed) of at most
/// [`MAX_SOURCE_BYTES`]. A UTF-8 byte-order mark is dropped.
pub fn read_source(path: &Path) -> Result<String, SourceError> {
    let plain = |message: String| SourceError { pos: None, message };
    let meta = std::fs::metadata(path).map_err(|e| plain(format!("cannot read it: {e}")))?;
    if !meta.is_file() {
        return Err(plain(format!(
            "not a regular file ({}): kubesim reads only regular files",
            file_type_name(&meta)
        )));
    }
    if meta.len() > MAX_SOURCE_BYTES {
        return Err(plain(too_large(meta.len())));
    }
    let file = std::fs::File::open(path).map_err(|e| plain(format!("cannot read it: {e}")))?;
    // `take` so that a file growing while it is read cannot pass the cap.
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_SOURCE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| plain(format!("cannot read it: {e}")))?;
    if bytes.len() as u64 > MAX_SOURCE_BYTES {
        return Err(plain(too_large(bytes.len() as u64)));
    }
    decode_utf8(bytes)
}

fn too_large(len: u64) -> String {
    format!(
        "the file is {len} bytes; kubesim reads files of at most {} MiB",
        MAX_SOURCE_BYTES >> 20
    )
}

#[cfg(unix)]
fn file_type_name(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

#[cfg(not(unix))]
fn file_type_name(meta: &std::fs::Metadata) -> &'static str {
    if meta.is_dir() {
        "a directory"
    } else {
        "not a file"
    }
}

/// The text of `bytes`, or where it stops being UTF-8.
pub fn decode_utf8(mut bytes: Vec<u8>) -> Result<String, SourceError> {
    if let Some(encoding) = wide_encoding(&bytes) {
        return Err(SourceError {
            pos: Some(Pos { line: 1, col: 1 }),
            message: format!(
                "the file is {encoding}, not UTF-8 (byte offset 0): save it as UTF-8, e.g. `iconv -f {} -t UTF-8`",
                encoding.split(' ').next().unwrap_or(encoding)
            ),
        });
    }
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        bytes.drain(..3);
    }
    String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let offset = e.utf8_error().valid_up_to();
        let before = &bytes[..offset];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        // `before` is valid UTF-8, so counting chars gives the column.
        let col = String::from_utf8_lossy(&before[line_start..]).chars().count() + 1;
        SourceError {
            pos: Some(Pos {
                line: line as u32,
                col: col as u32,
            }),
            message: format!(
                "byte 0x{:02X} at byte offset {offset} (line {line}) is not UTF-8: save the file as UTF-8 (a Latin-1 file converts with `iconv -f LATIN1 -t UTF-8`)",
                bytes[offset]
            ),
        }
    })
}

/// UTF-16 or UTF-32, by byte-order mark or by the zero bytes an ASCII first
/// character leaves (the detection YAML 1.2 §5.2 describes).
fn wide_encoding(b: &[u8]) -> Option<&'static str> {
    match b {
        [0, 0, 0xFE, 0xFF, ..] => Some("UTF-32BE"),
        [0xFF, 0xFE, 0, 0, ..] => Some("UTF-32LE"),
        [0, 0, 0, x, ..] if *x != 0 => Some("UTF-32BE"),
        [x, 0, 0, 0, ..] if *x != 0 => Some("UTF-32LE"),
        [0xFE, 0xFF, ..] => Some("UTF-16BE"),
        [0xFF, 0xFE, ..] => Some("UTF-16LE"),
        [0, x, ..] if *x != 0 => Some("UTF-16BE"),
        [x, 0, ..] if *x != 0 => Some("UTF-16LE"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_latin1_byte_is_located_by_offset_line_and_column() {
        // "name: x\ndescription: caf" is 8 + 16 = 24 bytes, so é (0xE9) is
        // at offset 24, line 2, column 17 (16 characters before it).
        let e = decode_utf8(b"name: x\ndescription: caf\xe9\n".to_vec()).unwrap_err();
        assert_eq!(e.pos, Some(Pos { line: 2, col: 17 }));
        assert!(
            e.message.contains("0xE9 at byte offset 24 (line 2)"),
            "{}",
            e.message
        );
    }

    #[test]
    fn utf16_is_named_with_or_without_a_bom() {
        let le: Vec<u8> = "\u{feff}name: x\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert!(decode_utf8(le).unwrap_err().message.contains("UTF-16LE"));
        let be: Vec<u8> = "name: x\n"
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .collect();
        assert!(decode_utf8(be).unwrap_err().message.contains("UTF-16BE"));
    }

    #[test]
    fn utf8_with_a_bom_reads_and_drops_the_mark() {
        let t = decode_utf8(b"\xEF\xBB\xBFname: caf\xC3\xA9\n".to_vec()).unwrap();
        assert_eq!(t, "name: café\n");
    }

    #[cfg(unix)]
    #[test]
    fn devices_and_directories_are_not_read() {
        let e = read_source(Path::new("/dev/zero")).unwrap_err();
        assert!(e.message.contains("a character device"), "{}", e.message);
        let e = read_source(Path::new("/")).unwrap_err();
        assert!(e.message.contains("a directory"), "{}", e.message);
    }
}
