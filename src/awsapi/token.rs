//! Paging tokens: opaque to clients, stable across engine restarts (they
//! name a position in data the store keeps, not a cursor in memory), bound
//! to the parameters of the request that produced them and signed so a
//! client cannot make one up.

use serde_json::Value;

use super::sigv4::{hex, hmac};

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A token for `position` in the listing `params` describes.
pub fn encode(key: &[u8], params: &str, position: &Value) -> String {
    let body = position.to_string();
    let mac = hmac(key, format!("{params}\n{body}").as_bytes());
    format!("{}.{}", hex(body.as_bytes()), hex(&mac[..12]))
}

/// The position in a token made by [`encode`] for the same `params`.
pub fn decode(key: &[u8], params: &str, token: &str) -> Option<Value> {
    let (body, mac) = token.split_once('.')?;
    let body = String::from_utf8(unhex(body)?).ok()?;
    let want = hmac(key, format!("{params}\n{body}").as_bytes());
    if hex(&want[..12]) != mac {
        return None;
    }
    serde_json::from_str(&body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trip_bound_to_params() {
        let t = encode(
            b"k",
            "ListPipelineExecutions|demo",
            &json!({"after": "abc"}),
        );
        assert_eq!(
            decode(b"k", "ListPipelineExecutions|demo", &t),
            Some(json!({"after": "abc"}))
        );
        assert_eq!(decode(b"k", "ListPipelineExecutions|other", &t), None);
        assert_eq!(decode(b"other", "ListPipelineExecutions|demo", &t), None);
        assert_eq!(decode(b"k", "x", "garbage"), None);
    }
}
