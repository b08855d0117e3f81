//! The router's header rules: hop-by-hop fields stay on their hop
//! (RFC 9110 §7.6.1, and those a `Connection` header names), and
//! `X-Forwarded-For`, `-Proto` and `-Port` are set as an ALB sets them.

use std::net::SocketAddr;

use crate::env::http::{self, Head};

/// Fields a `Connection` header may not remove: the message's framing and
/// its host (else a client could make the replica read the body as
/// another request).
const NEVER_HOP: [&str; 3] = ["content-length", "transfer-encoding", "host"];

/// Hop-by-hop fields (RFC 9110 §7.6.1) that never cross the router.
const HOP_BY_HOP: [&str; 6] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "upgrade",
    "expect",
];

/// Whether a field stays on its hop: hop-by-hop ones, those the message's
/// `Connection` names, and a Content-Length beside Transfer-Encoding (RFC
/// 9112 §6.3: a replica that believed it would read the body differently).
fn dropped(name: &str, named: &[String], chunked: bool) -> bool {
    HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
        || named.iter().any(|h| name.eq_ignore_ascii_case(h))
        || (chunked && name.eq_ignore_ascii_case("content-length"))
}

/// The request head as the replica gets it: hop-by-hop fields dropped,
/// `X-Forwarded-For` (appended to), `-Proto` and `-Port` set, as bytes.
pub(super) fn forwarded_head(
    head: &Head,
    peer: SocketAddr,
    port: u16,
    http10: bool,
    upgrade: bool,
) -> Vec<u8> {
    let named = hop_named(head);
    let chunked = head.get("transfer-encoding").is_some();
    let mut out = Vec::with_capacity(512);
    http::latin1(&mut out, &head.start);
    out.extend_from_slice(b"\r\n");
    let mut xff: Vec<&str> = Vec::new();
    for (n, v) in &head.headers {
        if upgrade && n.eq_ignore_ascii_case("upgrade") {
            http::put_field(&mut out, n, v);
        } else if dropped(n, &named, chunked) {
        } else if n.eq_ignore_ascii_case("x-forwarded-for") {
            xff.push(v);
        } else if !(n.eq_ignore_ascii_case("x-forwarded-proto")
            || n.eq_ignore_ascii_case("x-forwarded-port"))
        {
            http::put_field(&mut out, n, v);
        }
    }
    let ip = peer.ip().to_string();
    xff.push(&ip);
    http::put_field(&mut out, "X-Forwarded-For", &xff.join(", "));
    http::put_field(&mut out, "X-Forwarded-Proto", "http");
    http::put_field(&mut out, "X-Forwarded-Port", &port.to_string());
    if upgrade {
        http::put_field(&mut out, "Connection", "Upgrade");
    } else if http10 {
        http::put_field(&mut out, "Connection", "close");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Writes the response head as the client gets it: an HTTP/1.1 status
/// line (the router speaks 1.1 whatever the replica does), hop-by-hop
/// fields dropped, `Connection: close` when the router will close (and
/// `keep-alive` when it keeps an HTTP/1.0 client's connection).
pub(super) fn write_answer_head(out: &mut Vec<u8>, response: &Head, keep: bool, http10: bool) {
    let named = hop_named(response);
    let chunked = response.get("transfer-encoding").is_some();
    let rest = response.start.split_once(' ').map_or("", |(_, r)| r);
    out.extend_from_slice(b"HTTP/1.1 ");
    http::latin1(out, rest);
    out.extend_from_slice(b"\r\n");
    for (n, v) in &response.headers {
        if !dropped(n, &named, chunked) {
            http::put_field(out, n, v);
        }
    }
    if !keep {
        http::put_field(out, "Connection", "close");
    } else if http10 {
        http::put_field(out, "Connection", "keep-alive");
    }
    out.extend_from_slice(b"\r\n");
}

/// The fields a message's `Connection` header names as hop-by-hop, less
/// those it may not remove.
fn hop_named(head: &Head) -> Vec<String> {
    let mut named = head.tokens("connection");
    named.retain(|n| !NEVER_HOP.contains(&n.as_str()));
    named
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(start: &str, headers: &[(&str, &str)]) -> Head {
        Head {
            start: start.into(),
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn hop_by_hop_fields_stay_and_content_length_never_travels_with_transfer_encoding() {
        let req = head(
            "POST /x HTTP/1.1",
            &[
                ("Host", "app"),
                ("Transfer-Encoding", "chunked"),
                ("Content-Length", "5"),
                ("Connection", "keep-alive, X-Hop"),
                ("X-Hop", "1"),
                ("X-Forwarded-For", "10.0.0.1"),
                ("X-Forwarded-Proto", "https"),
            ],
        );
        let parse = |b: Vec<u8>| http::parse_head(&b[..b.len() - 2]).unwrap();
        let f = parse(forwarded_head(
            &req,
            "127.0.0.1:5555".parse().unwrap(),
            8080,
            false,
            false,
        ));
        assert_eq!(f.start, "POST /x HTTP/1.1");
        assert_eq!(f.get("host"), Some("app"));
        assert_eq!(f.get("transfer-encoding"), Some("chunked"));
        for gone in ["content-length", "connection", "x-hop"] {
            assert_eq!(f.get(gone), None, "{gone}");
        }
        assert_eq!(f.get("x-forwarded-for"), Some("10.0.0.1, 127.0.0.1"));
        assert_eq!(f.get("x-forwarded-proto"), Some("http"));
        assert_eq!(f.get("x-forwarded-port"), Some("8080"));
        let http10 = parse(forwarded_head(
            &req,
            "127.0.0.1:1".parse().unwrap(),
            80,
            true,
            false,
        ));
        assert_eq!(http10.get("connection"), Some("close"));

        let resp = head(
            "HTTP/1.0 200 OK",
            &[
                ("Transfer-Encoding", "chunked"),
                ("Content-Length", "9"),
                ("Keep-Alive", "timeout=5"),
            ],
        );
        let answer = |keep, http10| {
            let mut out = Vec::new();
            write_answer_head(&mut out, &resp, keep, http10);
            parse(out)
        };
        let a = answer(false, false);
        assert_eq!(a.start, "HTTP/1.1 200 OK");
        assert_eq!(a.get("content-length"), None);
        assert_eq!(a.get("keep-alive"), None);
        assert_eq!(a.get("connection"), Some("close"));
        assert_eq!(answer(true, true).get("connection"), Some("keep-alive"));
        assert_eq!(answer(true, false).get("connection"), None);
    }
}
