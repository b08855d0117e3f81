//! AWS Signature Version 4, verified: the canonical request is rebuilt from
//! what arrived and signed again with the secret of the access key named in
//! the `Authorization` header; the signatures must match and `X-Amz-Date`
//! must be within 15 minutes of now. The refusals are the errors AWS's JSON
//! services answer.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::AwsError;

type HmacSha256 = Hmac<Sha256>;

/// How far `X-Amz-Date` may be from the clock (AWS: 15 minutes).
pub const MAX_SKEW_SECS: i64 = 15 * 60;

pub fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length.
    let mut m = HmacSha256::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// The parts of `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub access_key_id: String,
    pub date: String,
    pub region: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

fn incomplete(why: &str) -> AwsError {
    AwsError::new(
        "IncompleteSignatureException",
        format!("Authorization header requires {why}"),
    )
}

pub fn parse_authorization(value: &str) -> Result<Authorization, AwsError> {
    let rest = value.strip_prefix("AWS4-HMAC-SHA256").ok_or_else(|| {
        AwsError::new(
            "IncompleteSignatureException",
            "Authorization header must use the AWS4-HMAC-SHA256 algorithm",
        )
    })?;
    let (mut cred, mut signed, mut sig) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            cred = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            sig = Some(v);
        }
    }
    let cred = cred.ok_or_else(|| incomplete("a 'Credential' parameter"))?;
    let signed = signed.ok_or_else(|| incomplete("a 'SignedHeaders' parameter"))?;
    let sig = sig.ok_or_else(|| incomplete("a 'Signature' parameter"))?;
    let parts: Vec<&str> = cred.split('/').collect();
    let [key, date, region, service, term] = parts.as_slice() else {
        return Err(incomplete(
            "a Credential of the form <key>/<date>/<region>/<service>/aws4_request",
        ));
    };
    if *term != "aws4_request" {
        return Err(incomplete("a Credential scope ending in aws4_request"));
    }
    Ok(Authorization {
        access_key_id: (*key).to_owned(),
        date: (*date).to_owned(),
        region: (*region).to_owned(),
        service: (*service).to_owned(),
        signed_headers: signed.split(';').map(str::to_owned).collect(),
        signature: sig.to_owned(),
    })
}

/// `20261201T091500Z` → epoch seconds.
pub fn parse_amz_date(s: &str) -> Option<i64> {
    if s.len() != 16 || !s.ends_with('Z') || s.as_bytes().get(8) != Some(&b'T') {
        return None;
    }
    let rfc = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &s[0..4],
        &s[4..6],
        &s[6..8],
        &s[9..11],
        &s[11..13],
        &s[13..15]
    );
    let t = humantime::parse_rfc3339(&rfc).ok()?;
    t.duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs() as i64)
}

/// Epoch seconds → `20261201T091500Z`.
pub fn format_amz_date(secs: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0) as u64);
    let r = humantime::format_rfc3339_seconds(t).to_string();
    // 2026-12-01T09:15:00Z
    r.replace(['-', ':'], "")
}

fn uri_encode(s: &str, encode_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char);
            }
            b'/' if !encode_slash => out.push('/'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn uri_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn canonical_query(q: &str) -> String {
    let mut pairs: Vec<(String, String)> = q
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&uri_decode(k), true),
                uri_encode(&uri_decode(v), true),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// What the signature covers, from the request as it arrived.
pub struct Signed<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    /// Every header, names in any case.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// The canonical request of SigV4 for `signed_headers`.
pub fn canonical_request(req: &Signed<'_>, signed_headers: &[String]) -> String {
    let mut out = String::new();
    out.push_str(req.method);
    out.push('\n');
    let path = if req.path.is_empty() { "/" } else { req.path };
    out.push_str(&uri_encode(&uri_decode(path), false));
    out.push('\n');
    out.push_str(&canonical_query(req.query));
    out.push('\n');
    for h in signed_headers {
        let values: Vec<String> = header(req.headers, h)
            .iter()
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        out.push_str(h);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed_headers.join(";"));
    out.push('\n');
    let payload = header(req.headers, "x-amz-content-sha256")
        .first()
        .map(|s| (*s).to_owned())
        .unwrap_or_else(|| sha256_hex(req.body));
    out.push_str(&payload);
    out
}

/// The signature of a canonical request.
pub fn signature(secret: &str, amz_date: &str, auth: &Authorization, canonical: &str) -> String {
    let scope = format!(
        "{}/{}/{}/aws4_request",
        auth.date, auth.region, auth.service
    );
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical.as_bytes())
    );
    let k = hmac(format!("AWS4{secret}").as_bytes(), auth.date.as_bytes());
    let k = hmac(&k, auth.region.as_bytes());
    let k = hmac(&k, auth.service.as_bytes());
    let k = hmac(&k, b"aws4_request");
    hex(&hmac(&k, to_sign.as_bytes()))
}

fn constant_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Verifies `req` against the one key pair; `now` is epoch seconds.
/// Returns the access key id of the caller.
pub fn verify(
    req: &Signed<'_>,
    access_key_id: &str,
    secret: &str,
    now: i64,
) -> Result<String, AwsError> {
    let auth_values = header(req.headers, "authorization");
    let Some(auth_value) = auth_values.first() else {
        if req.query.contains("X-Amz-Signature=") {
            return Err(AwsError::new(
                "IncompleteSignatureException",
                "presigned (query string) requests are not accepted; sign the Authorization header",
            ));
        }
        return Err(AwsError::new(
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        ));
    };
    let auth = parse_authorization(auth_value)?;
    if !constant_eq(&auth.access_key_id, access_key_id) {
        return Err(AwsError::new(
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ));
    }
    let dates = header(req.headers, "x-amz-date");
    let amz_date = dates.first().copied().unwrap_or("");
    let Some(at) = parse_amz_date(amz_date) else {
        return Err(AwsError::new(
            "IncompleteSignatureException",
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        ));
    };
    if !auth.signed_headers.iter().any(|h| h == "host") {
        return Err(AwsError::new(
            "InvalidSignatureException",
            "'Host' must be a 'SignedHeader' in the AWS Authorization.",
        ));
    }
    if !amz_date.starts_with(&auth.date) {
        return Err(AwsError::new(
            "InvalidSignatureException",
            format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}'",
                auth.date,
                amz_date.get(..8).unwrap_or(amz_date)
            ),
        ));
    }
    if (at - now).abs() > MAX_SKEW_SECS {
        let (earlier, bound) = if at < now {
            ("earlier", now - MAX_SKEW_SECS)
        } else {
            ("later", now + MAX_SKEW_SECS)
        };
        let sign = if at < now { '-' } else { '+' };
        return Err(AwsError::new(
            "InvalidSignatureException",
            format!(
                "Signature expired: {amz_date} is now {earlier} than {} ({} {sign} 15 min.)",
                format_amz_date(bound),
                format_amz_date(now)
            ),
        ));
    }
    let canonical = canonical_request(req, &auth.signed_headers);
    let expected = signature(secret, amz_date, &auth, &canonical);
    if !constant_eq(&expected, &auth.signature) {
        return Err(AwsError::new(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
        ));
    }
    Ok(auth.access_key_id)
}

#[allow(clippy::too_many_arguments)]
/// Signs a request (for tests, benches and tools): adds `x-amz-date` and
/// `authorization` to `headers`, which must hold `host`.
pub fn sign(
    headers: &mut Vec<(String, String)>,
    method: &str,
    path: &str,
    body: &[u8],
    key: (&str, &str),
    region: &str,
    service: &str,
    now: i64,
) {
    let amz_date = format_amz_date(now);
    headers.retain(|(k, _)| {
        !k.eq_ignore_ascii_case("authorization") && !k.eq_ignore_ascii_case("x-amz-date")
    });
    headers.push(("x-amz-date".into(), amz_date.clone()));
    let mut names: Vec<String> = headers
        .iter()
        .map(|(k, _)| k.to_ascii_lowercase())
        .collect();
    names.sort();
    names.dedup();
    let auth = Authorization {
        access_key_id: key.0.to_owned(),
        date: amz_date[..8].to_owned(),
        region: region.to_owned(),
        service: service.to_owned(),
        signed_headers: names.clone(),
        signature: String::new(),
    };
    let req = Signed {
        method,
        path,
        query: "",
        headers,
        body,
    };
    let canonical = canonical_request(&req, &names);
    let sig = signature(key.1, &amz_date, &auth, &canonical);
    let value = format!(
        "AWS4-HMAC-SHA256 Credential={}/{}/{region}/{service}/aws4_request, SignedHeaders={}, Signature={sig}",
        key.0,
        auth.date,
        names.join(";")
    );
    headers.push(("authorization".into(), value));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's documented example (IAM ListUsers, "Create a signed AWS API request").
    #[test]
    fn aws_example_signature() {
        let headers = vec![
            (
                "content-type".to_owned(),
                "application/x-www-form-urlencoded; charset=utf-8".to_owned(),
            ),
            ("host".to_owned(), "iam.amazonaws.com".to_owned()),
            ("x-amz-date".to_owned(), "20150830T123600Z".to_owned()),
        ];
        let req = Signed {
            method: "GET",
            path: "/",
            query: "Action=ListUsers&Version=2010-05-08",
            headers: &headers,
            body: b"",
        };
        let signed: Vec<String> = ["content-type", "host", "x-amz-date"]
            .map(String::from)
            .to_vec();
        let c = canonical_request(&req, &signed);
        assert_eq!(
            sha256_hex(c.as_bytes()),
            "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
        );
        let auth = Authorization {
            access_key_id: "AKIDEXAMPLE".into(),
            date: "20150830".into(),
            region: "us-east-1".into(),
            service: "iam".into(),
            signed_headers: signed,
            signature: String::new(),
        };
        assert_eq!(
            signature(
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                "20150830T123600Z",
                &auth,
                &c
            ),
            "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
        );
    }

    #[test]
    fn sign_then_verify_and_refusals() {
        let now = parse_amz_date("20261201T091500Z").unwrap();
        let key = ("AKIAPDEXAMPLE", "secret");
        let mut h = vec![("host".to_owned(), "127.0.0.1:4590".to_owned())];
        sign(
            &mut h,
            "POST",
            "/",
            b"{}",
            key,
            "us-east-1",
            "codepipeline",
            now,
        );
        let req = Signed {
            method: "POST",
            path: "/",
            query: "",
            headers: &h,
            body: b"{}",
        };
        assert_eq!(verify(&req, key.0, key.1, now).unwrap(), key.0);
        let code = |r: Result<String, AwsError>| r.unwrap_err().code;
        assert_eq!(
            code(verify(&req, "OTHER", key.1, now)),
            "UnrecognizedClientException"
        );
        assert_eq!(
            code(verify(&req, key.0, "wrong", now)),
            "InvalidSignatureException"
        );
        let late = verify(&req, key.0, key.1, now + 16 * 60).unwrap_err();
        assert!(
            late.message.starts_with("Signature expired"),
            "{}",
            late.message
        );
        let tampered = Signed {
            body: b"{\"a\":1}",
            ..req
        };
        assert_eq!(
            code(verify(&tampered, key.0, key.1, now)),
            "InvalidSignatureException"
        );
        let none = Signed {
            headers: &[],
            ..tampered
        };
        assert_eq!(
            code(verify(&none, key.0, key.1, now)),
            "MissingAuthenticationTokenException"
        );
    }

    #[test]
    fn amz_dates() {
        let t = parse_amz_date("20261201T091500Z").unwrap();
        assert_eq!(format_amz_date(t), "20261201T091500Z");
        assert!(parse_amz_date("2026-12-01").is_none());
    }
}
