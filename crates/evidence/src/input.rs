//! The single pass over the input: counts bytes, hashes them and enforces the byte limit while
//! the parser reads, so the recorded digest is the digest of exactly what was parsed.

use std::io::{self, BufRead, BufReader, Read};

use sha2::{Digest, Sha256};

/// Read buffer for parsers. serde_json's reader path pulls one byte at a time, so a large buffer
/// keeps the underlying reads (and hash updates) big.
const BUFFER_BYTES: usize = 256 * 1024;

/// Wraps the caller's reader: hashes and counts every byte, fails once more than `limit`
/// bytes arrive.
pub(crate) struct Metered<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
    limit: u64,
    exceeded: bool,
}

impl<R: Read> Metered<R> {
    pub(crate) fn new(inner: R, limit: u64) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
            limit,
            exceeded: false,
        }
    }

    pub(crate) fn limit_exceeded(&self) -> bool {
        self.exceeded
    }

    /// Size and lower-case hex sha256 of everything read.
    pub(crate) fn finish(self) -> (u64, String) {
        (self.bytes, hex(&self.hasher.finalize()))
    }
}

impl<R: Read> Read for Metered<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.exceeded {
            return Err(limit_error());
        }
        // Allow one byte past the limit so a file of exactly `limit` bytes passes and one more
        // byte is detected.
        let allowed = self.limit.saturating_sub(self.bytes).saturating_add(1);
        let window = buf
            .len()
            .min(usize::try_from(allowed).unwrap_or(usize::MAX));
        let read = self.inner.read(&mut buf[..window])?;
        self.bytes += read as u64;
        if self.bytes > self.limit {
            self.exceeded = true;
            return Err(limit_error());
        }
        self.hasher.update(&buf[..read]);
        Ok(read)
    }
}

fn limit_error() -> io::Error {
    io::Error::other("evidence size limit exceeded")
}

/// Runs `parse` over a buffered view of `metered` (with a leading UTF-8 byte order mark
/// removed), then reads whatever the parser left so the digest covers the whole input.
pub(crate) fn with_buffered<R: Read, T, E: From<io::Error>>(
    metered: &mut Metered<R>,
    parse: impl FnOnce(&mut BufReader<&mut Metered<R>>) -> Result<T, E>,
) -> Result<T, E> {
    let mut buffered = BufReader::with_capacity(BUFFER_BYTES, metered);
    skip_bom(&mut buffered)?;
    let value = parse(&mut buffered)?;
    io::copy(&mut buffered, &mut io::sink())?;
    Ok(value)
}

fn skip_bom<B: BufRead>(reader: &mut B) -> io::Result<()> {
    let head = reader.fill_buf()?;
    if head.starts_with(&[0xEF, 0xBB, 0xBF]) {
        reader.consume(3);
    }
    Ok(())
}

/// First byte that is not ASCII whitespace, without consuming it (None at end of input).
pub(crate) fn peek_first_significant<B: BufRead>(reader: &mut B) -> io::Result<Option<u8>> {
    loop {
        let head = reader.fill_buf()?;
        if head.is_empty() {
            return Ok(None);
        }
        match head.iter().position(|byte| !byte.is_ascii_whitespace()) {
            Some(index) => {
                return Ok(Some(head[index]));
            }
            None => {
                let len = head.len();
                reader.consume(len);
            }
        }
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}
