//! The `model` field of an audio upload (`multipart/form-data`), wherever it is in the
//! body. Routing must be decided before any byte goes upstream, so the proxy reads the
//! body until the field is seen: at once when clients send their form fields first, and
//! the whole upload when the field follows the file (the `openai` SDK may do either). That
//! read is bounded by the proxy's audio body limit (`max_audio_body`, a 413 above it, as
//! for any oversized upload), and [`FieldScan`] scans each byte once, so a long upload
//! costs time linear in its size. Then [`Prefixed`] sends the bytes read, followed by the
//! rest of the body, verbatim.
//!
//! Pure parsing ([`FieldScan`], [`boundary`]) plus one body type; no IO.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

/// Most bytes of one part's headers: a part whose headers run longer is not a form the
/// scan understands, and the field is taken as absent.
pub const MAX_PART_HEADERS: usize = 16 * 1024;

/// What the body so far says about a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peek {
    /// The field's value.
    Found(String),
    /// Not in the body (its closing delimiter was seen, or the form is malformed).
    Absent,
    /// The bytes so far end before the field or the body's end: read more.
    NeedMore,
}

/// The boundary of a `multipart/form-data` content type (quoted or not).
pub fn boundary(content_type: &str) -> Option<String> {
    let (mime, params) = content_type.split_once(';')?;
    if !mime.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let v = v.trim().trim_matches('"');
        (!v.is_empty()).then(|| v.to_string())
    })
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// An incremental search for one form field over a growing body: each call gets the
/// whole body read so far (the previous bytes plus more), and resumes where the last one
/// stopped, so no byte of a large file part is searched twice.
pub struct FieldScan {
    delimiter: Vec<u8>,
    /// `\r\n` + delimiter: where a part's value ends.
    end_marker: Vec<u8>,
    name: String,
    /// Start of the first delimiter once found: the part being read begins there.
    at: Option<usize>,
    /// Bytes before this offset (of the current search) hold no match: resume here.
    searched: usize,
}

impl FieldScan {
    /// Looks for the field `name` in a body with boundary `boundary`.
    pub fn new(boundary: &str, name: &str) -> Self {
        let delimiter = format!("--{boundary}").into_bytes();
        let mut end_marker = b"\r\n".to_vec();
        end_marker.extend_from_slice(&delimiter);
        FieldScan {
            delimiter,
            end_marker,
            name: name.to_string(),
            at: None,
            searched: 0,
        }
    }

    /// `needle` in `data` from `from`, skipping what an earlier call searched in vain.
    fn find_resuming(&mut self, data: &[u8], needle: &[u8], from: usize) -> Option<usize> {
        let start = from.max(self.searched);
        match find(data, needle, start) {
            Some(i) => {
                self.searched = 0;
                Some(i)
            }
            None => {
                // A match may still start in the last `needle.len() - 1` bytes.
                self.searched = data.len().saturating_sub(needle.len() - 1).max(from);
                None
            }
        }
    }

    /// The field in `data`, the body read so far (always the same start, growing).
    pub fn scan(&mut self, data: &[u8]) -> Peek {
        let at = match self.at {
            Some(at) => at,
            None => {
                let delimiter = self.delimiter.clone();
                match self.find_resuming(data, &delimiter, 0) {
                    Some(at) => {
                        self.at = Some(at);
                        at
                    }
                    None => return Peek::NeedMore,
                }
            }
        };
        let mut at = at;
        loop {
            let after = at + self.delimiter.len();
            match data.get(after..after + 2) {
                None => return Peek::NeedMore,
                Some(b"--") => return Peek::Absent,
                Some(_) => {}
            }
            // Headers are re-read from their start each call: they are short (bounded).
            let Some(headers_end) = find(data, b"\r\n\r\n", after) else {
                if data.len() - after > MAX_PART_HEADERS {
                    return Peek::Absent;
                }
                return Peek::NeedMore;
            };
            if headers_end - after > MAX_PART_HEADERS {
                return Peek::Absent;
            }
            let headers = String::from_utf8_lossy(&data[after..headers_end]);
            let (field, is_file) = disposition(&headers);
            let value_start = headers_end + 4;
            let marker = self.end_marker.clone();
            let Some(value_end) = self.find_resuming(data, &marker, value_start) else {
                return Peek::NeedMore;
            };
            if !is_file && field.as_deref() == Some(self.name.as_str()) {
                return match std::str::from_utf8(&data[value_start..value_end]) {
                    Ok(v) => Peek::Found(v.trim().to_string()),
                    Err(_) => Peek::Absent,
                };
            }
            at = value_end + 2;
            self.at = Some(at);
        }
    }
}

/// The value of the form field `name` in the whole of `data` (one [`FieldScan`] call).
#[cfg(test)]
pub fn peek_field(data: &[u8], boundary: &str, name: &str) -> Peek {
    FieldScan::new(boundary, name).scan(data)
}

/// The `name` of a part's `Content-Disposition`, and whether it is a file (`filename`).
fn disposition(headers: &str) -> (Option<String>, bool) {
    let Some(line) = headers.lines().find(|l| {
        l.split_once(':')
            .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("content-disposition"))
    }) else {
        return (None, false);
    };
    let mut name = None;
    let mut file = false;
    for p in line.split(';').skip(1) {
        let Some((k, v)) = p.split_once('=') else {
            continue;
        };
        match k.trim().to_ascii_lowercase().as_str() {
            "name" => name = Some(v.trim().trim_matches('"').to_string()),
            "filename" | "filename*" => file = true,
            _ => {}
        }
    }
    (name, file)
}

/// A body that sends `prefix` first, then `inner`'s frames (its size hint counts both).
pub struct Prefixed<B> {
    prefix: Option<Bytes>,
    inner: B,
}

impl<B> Prefixed<B> {
    /// `prefix` (the bytes already read), then the rest in `inner`.
    pub fn new(prefix: Bytes, inner: B) -> Self {
        Prefixed {
            prefix: (!prefix.is_empty()).then_some(prefix),
            inner,
        }
    }
}

impl<B> Body for Prefixed<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(p) = self.prefix.take() {
            return Poll::Ready(Some(Ok(Frame::data(p))));
        }
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let n = self.prefix.as_ref().map_or(0, |p| p.len() as u64);
        let inner = self.inner.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower() + n);
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + n);
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: &str = "XyZ";

    fn form(parts: &[(&str, Option<&str>, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, filename, value) in parts {
            out.extend_from_slice(format!("--{B}\r\n").as_bytes());
            let file = filename.map_or(String::new(), |f| format!("; filename=\"{f}\""));
            out.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"{file}\r\n\r\n{value}\r\n")
                    .as_bytes(),
            );
        }
        out.extend_from_slice(format!("--{B}--\r\n").as_bytes());
        out
    }

    #[test]
    fn the_model_field_before_the_file_is_found() {
        let body = form(&[
            ("language", None, "en"),
            ("model", None, "whisper"),
            ("file", Some("a.wav"), "RIFF...."),
        ]);
        assert_eq!(peek_field(&body, B, "model"), Peek::Found("whisper".into()));
        // Every cut before the value's end asks for more; none finds a wrong value.
        let end =
            find(&body, b"whisper\r\n--", 0).expect("value") + "whisper\r\n--".len() + B.len();
        for cut in 0..end {
            assert_eq!(
                peek_field(&body[..cut], B, "model"),
                Peek::NeedMore,
                "cut {cut}"
            );
        }
    }

    #[test]
    fn the_model_field_after_the_file_is_found() {
        // The file holds runs that look like a delimiter but are not one.
        let audio = format!("RIFF\r\n--XyZa\r\n-{}", "\0".repeat(5000));
        let late = form(&[("file", Some("a.wav"), &audio), ("model", None, "whisper")]);
        assert_eq!(peek_field(&late, B, "model"), Peek::Found("whisper".into()));
        // Fed in pieces of every size to one scan, the field is found at the end only.
        for step in [1, 7, 1000, 4096] {
            let mut scan = FieldScan::new(B, "model");
            let mut found = None;
            for end in (step..late.len() + step).step_by(step) {
                let end = end.min(late.len());
                match scan.scan(&late[..end]) {
                    Peek::NeedMore => {}
                    other => {
                        found = Some((other, end));
                        break;
                    }
                }
            }
            let (peek, end) = found.expect("an answer");
            assert_eq!(peek, Peek::Found("whisper".into()), "step {step}");
            assert!(end + 2 + B.len() + 4 >= late.len(), "step {step}: at {end}");
        }
        // A file part named `model` is not the field.
        let file_named = form(&[("model", Some("m.wav"), "RIFF")]);
        assert_eq!(peek_field(&file_named, B, "model"), Peek::Absent);
    }

    #[test]
    fn without_the_field_it_is_absent_at_the_end() {
        let none = form(&[("language", None, "en"), ("file", Some("a.wav"), "RIFF")]);
        assert_eq!(peek_field(&none, B, "model"), Peek::Absent);
        // Before the closing delimiter, it may still come.
        let open = &none[..none.len() - 4 - B.len()];
        assert_eq!(peek_field(open, B, "model"), Peek::NeedMore);
        // Headers longer than a form's are not read on.
        let mut long = format!("--{B}\r\nContent-Disposition: form-data; name=\"x\"").into_bytes();
        long.extend(std::iter::repeat_n(b'a', MAX_PART_HEADERS + 10));
        assert_eq!(peek_field(&long, B, "model"), Peek::Absent);
    }

    #[test]
    fn boundaries_from_content_types() {
        assert_eq!(
            boundary("multipart/form-data; boundary=abc").as_deref(),
            Some("abc")
        );
        assert_eq!(
            boundary("Multipart/Form-Data; charset=utf-8; boundary=\"a b\"").as_deref(),
            Some("a b")
        );
        assert_eq!(boundary("application/json"), None);
        assert_eq!(boundary("multipart/form-data"), None);
    }
}
