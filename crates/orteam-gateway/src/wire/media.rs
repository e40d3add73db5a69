//! Media parts in a request body: images, audio, video and documents. Upstream bills their
//! tokens (and some models a price per image), but a part given by URL has no bytes in the body
//! to bound them, so the prompt bound adds an allowance per part
//! (`limits.media_part_tokens`, `limits.document_part_tokens`).
//!
//! Parts are found by their `"type"` tag, the same in every format: OpenAI chat (`image_url`,
//! `input_audio`, `file`, `video_url`), Responses (`input_image`, `input_file`,
//! `input_audio`), Anthropic Messages (`image`, `document`). The scan is linear over the raw
//! bytes (memchr), without building a JSON tree; a `"type"` inside a string is escaped (`\"`),
//! so it is not counted.

use memchr::memmem;

/// How many media parts a body carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediaParts {
    /// Images and audio.
    pub media: u64,
    /// Documents and video (their token counts are open-ended).
    pub documents: u64,
}

impl MediaParts {
    pub fn total(self) -> u64 {
        self.media + self.documents
    }
}

const MEDIA: [&[u8]; 5] = [
    b"image_url",
    b"input_image",
    b"image",
    b"input_audio",
    b"audio",
];
const DOCUMENTS: [&[u8]; 5] = [
    b"file",
    b"input_file",
    b"document",
    b"video_url",
    b"input_video",
];

/// Counts the media parts of `body`.
pub fn count(body: &[u8]) -> MediaParts {
    let mut parts = MediaParts::default();
    for at in memmem::find_iter(body, b"\"type\"") {
        if at > 0 && body[at - 1] == b'\\' {
            continue;
        }
        let Some(value) = string_value_after(&body[at + 6..]) else {
            continue;
        };
        if MEDIA.contains(&value) {
            parts.media += 1;
        } else if DOCUMENTS.contains(&value) {
            parts.documents += 1;
        }
    }
    parts
}

/// The string after `: ` at the start of `rest`, if the member's value is a plain string.
fn string_value_after(rest: &[u8]) -> Option<&[u8]> {
    let rest = rest.trim_ascii_start().strip_prefix(b":")?;
    let rest = rest.trim_ascii_start().strip_prefix(b"\"")?;
    let end = memchr::memchr(b'"', rest)?;
    Some(&rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_of_every_format_are_counted() {
        let chat = br#"{"messages":[{"role":"user","content":[{"type":"text","text":"what is \"type\": \"image\"?"},{"type":"image_url","image_url":{"url":"https://x/a.png"}},{"type" : "input_audio","input_audio":{}},{"type":"file","file":{}}]}]}"#;
        assert_eq!(
            count(chat),
            MediaParts {
                media: 2,
                documents: 1
            }
        );
        let responses = br#"{"input":[{"role":"user","content":[{"type":"input_image","image_url":"https://x"},{"type":"input_file","file_url":"https://y"}]}]}"#;
        assert_eq!(count(responses).total(), 2);
        let messages = br#"{"messages":[{"role":"user","content":[{"type":"image","source":{"type":"url","url":"https://x"}},{"type":"document","source":{"type":"url"}}]}]}"#;
        assert_eq!(
            count(messages),
            MediaParts {
                media: 1,
                documents: 1
            }
        );
        assert_eq!(
            count(br#"{"messages":[{"role":"user","content":"hi"}]}"#).total(),
            0
        );
    }
}
