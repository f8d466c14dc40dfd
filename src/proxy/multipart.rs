//! The `model` field of an audio upload (`multipart/form-data`), read from the start of
//! the body without buffering the audio: the fields before the first file part are read
//! (clients such as the `openai` SDK send their form fields first), and a body whose
//! first [`PEEK_LIMIT`] bytes do not hold the field goes on as if it had none. Then
//! [`Prefixed`] sends the bytes read, followed by the rest of the body, verbatim.
//!
//! Pure parsing ([`peek_field`], [`boundary`]) plus one body type; no IO.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

/// Most bytes read from an upload to find its `model` field.
pub const PEEK_LIMIT: usize = 64 * 1024;

/// What the start of a multipart body says about a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peek {
    /// The field's value.
    Found(String),
    /// Not among the fields before the first file part or the end: it is not looked for
    /// further.
    Absent,
    /// The bytes so far end inside the fields: read more.
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

/// The value of the form field `name` in the body start `data` (boundary `boundary`).
pub fn peek_field(data: &[u8], boundary: &str, name: &str) -> Peek {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let Some(mut at) = find(data, delimiter, 0) else {
        return need_more(data);
    };
    loop {
        let after = at + delimiter.len();
        match data.get(after..after + 2) {
            None => return need_more(data),
            Some(b"--") => return Peek::Absent,
            Some(_) => {}
        }
        let Some(headers_end) = find(data, b"\r\n\r\n", after) else {
            return need_more(data);
        };
        let headers = String::from_utf8_lossy(&data[after..headers_end]);
        let (field, is_file) = disposition(&headers);
        if is_file {
            return Peek::Absent;
        }
        let value_start = headers_end + 4;
        let mut end_marker = b"\r\n".to_vec();
        end_marker.extend_from_slice(delimiter);
        let Some(value_end) = find(data, &end_marker, value_start) else {
            return need_more(data);
        };
        if field.as_deref() == Some(name) {
            return match std::str::from_utf8(&data[value_start..value_end]) {
                Ok(v) => Peek::Found(v.trim().to_string()),
                Err(_) => Peek::Absent,
            };
        }
        at = value_end + 2;
    }
}

/// `NeedMore` until [`PEEK_LIMIT`] bytes were read, then `Absent`.
fn need_more(data: &[u8]) -> Peek {
    if data.len() >= PEEK_LIMIT {
        Peek::Absent
    } else {
        Peek::NeedMore
    }
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
    fn after_a_file_part_or_the_end_it_is_absent() {
        let late = form(&[("file", Some("a.wav"), "RIFF"), ("model", None, "whisper")]);
        assert_eq!(peek_field(&late, B, "model"), Peek::Absent);
        let none = form(&[("language", None, "en")]);
        assert_eq!(peek_field(&none, B, "model"), Peek::Absent);
        let big = vec![b'x'; PEEK_LIMIT];
        assert_eq!(peek_field(&big, B, "model"), Peek::Absent);
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
