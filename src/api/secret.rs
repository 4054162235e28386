//! A Secret's `stringData` as the apiserver reads it: a write-only
//! convenience merged into `data` on conversion from v1 (a key in both takes
//! `stringData`'s value), never stored itself.

use serde_json::{Map, Value as Json};

/// Moves `stringData` into `data`, base64-encoded, as
/// `Convert_v1_Secret_To_core_Secret` does.
pub fn merge_string_data(body: &mut Map<String, Json>) {
    let Some(Json::Object(strings)) = body.remove("stringData") else {
        return;
    };
    let data = body
        .entry("data")
        .or_insert_with(|| Json::Object(Map::new()));
    if !data.is_object() {
        *data = Json::Object(Map::new());
    }
    let data = data.as_object_mut().expect("made an object above");
    for (k, v) in strings {
        let text = v.as_str().unwrap_or_default();
        data.insert(k, Json::String(base64(text.as_bytes())));
    }
}

/// Standard base64 with padding (RFC 4648), as `[]byte` fields serialise.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        // RFC 4648 section 10.
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), coded);
        }
    }

    #[test]
    fn string_data_is_merged_into_data_and_wins() {
        let mut body =
            json!({"data": {"a": "YQ==", "b": "Yg=="}, "stringData": {"b": "bee", "c": "see"}})
                .as_object()
                .cloned()
                .unwrap();
        merge_string_data(&mut body);
        assert!(!body.contains_key("stringData"));
        // a kept; b overwritten by stringData ("bee" → YmVl); c added ("see" → c2Vl).
        assert_eq!(body["data"], json!({"a": "YQ==", "b": "YmVl", "c": "c2Vl"}));
    }
}
