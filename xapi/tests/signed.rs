//! Attachments' data and signed statements, checked without any I/O: a part must be the data
//! of an attachment and hash to its name; an attachment without `fileUrl` needs its part; a
//! signature is a compact JWS (RS256/384/512) of the statement, verified with its `x5c`
//! certificate when it carries one. The signer's key in `fixtures/` is a test key, not a secret.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::RsaPrivateKey;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256, Sha384, Sha512};
use studyledger_xapi::attachments::{check, Part, SIGNATURE};

fn pem_der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body).expect("fixture is PEM")
}

fn signer() -> RsaPrivateKey {
    RsaPrivateKey::from_pkcs8_der(&pem_der(include_str!("fixtures/signer-key.pem")))
        .expect("fixture key")
}

fn certificate(which: &str) -> String {
    STANDARD.encode(pem_der(which))
}

fn statement() -> Map<String, Value> {
    json!({
        "id": "0f0e7b1c-6d1a-4c1e-9a3b-5b2f3f0e2a11",
        "actor": {"objectType": "Agent", "account": {"homePage": "https://studyledger.invalid/", "name": "m-1"}},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/completed"},
        "object": {"id": "https://courses.example/one"},
        "timestamp": "2026-03-01T08:00:00Z"
    })
    .as_object()
    .cloned()
    .expect("object")
}

/// A JWS of `payload` with `header`, signed with the fixture key for RS256/384/512.
fn jws(header: Value, payload: &[u8]) -> Vec<u8> {
    let alg = header["alg"].as_str().unwrap_or("RS256").to_owned();
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let key = signer();
    let signature = match alg.as_str() {
        "RS384" => SigningKey::<Sha384>::new(key)
            .sign(signed.as_bytes())
            .to_vec(),
        "RS512" => SigningKey::<Sha512>::new(key)
            .sign(signed.as_bytes())
            .to_vec(),
        _ => SigningKey::<Sha256>::new(key)
            .sign(signed.as_bytes())
            .to_vec(),
    };
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature)).into_bytes()
}

/// `statement` with a signature attachment for `jws`, and the part that carries it.
fn signed(
    mut statement: Map<String, Value>,
    jws: Vec<u8>,
    content_type: &str,
) -> (Map<String, Value>, Part) {
    let sha2 = hex::encode(Sha256::digest(&jws));
    statement.insert(
        "attachments".to_owned(),
        json!([{"usageType": SIGNATURE, "display": {"zh-CN": "签名", "en-US": "Signature"},
                "contentType": content_type, "length": jws.len(), "sha2": sha2}]),
    );
    (statement, Part::new(&sha2, "application/octet-stream", jws))
}

fn payload() -> Vec<u8> {
    Value::Object(statement()).to_string().into_bytes()
}

#[test]
fn a_statement_signed_with_each_rsa_algorithm_is_accepted_and_verified() {
    let own = certificate(include_str!("fixtures/signer-cert.pem"));
    let other = certificate(include_str!("fixtures/other-cert.pem"));
    let octets = "application/octet-stream";
    for alg in ["RS256", "RS384", "RS512"] {
        let (statement_plain, part) =
            signed(statement(), jws(json!({"alg": alg}), &payload()), octets);
        let kept = check(&[&statement_plain], vec![part]).expect(alg);
        assert_eq!(
            kept.len(),
            1,
            "{alg}: the JWS is kept as the attachment's data"
        );

        let header = json!({"alg": alg, "x5c": [own]});
        let (statement_own, part) = signed(statement(), jws(header, &payload()), octets);
        assert!(
            check(&[&statement_own], vec![part]).is_ok(),
            "{alg}: verified with its certificate"
        );

        let header = json!({"alg": alg, "x5c": [other]});
        let (forged, part) = signed(statement(), jws(header, &payload()), octets);
        let refused = check(&[&forged], vec![part]).expect_err("another key's certificate");
        assert!(
            refused.problem.contains("does not verify"),
            "{alg}: {refused}"
        );
    }
}

/// A JWS of the fixture payload whose signature segment is `signature`.
fn with_signature(signature: &str) -> Vec<u8> {
    let whole = String::from_utf8(jws(json!({"alg": "RS256"}), &payload())).expect("text");
    let (signed_part, _) = whole.rsplit_once('.').expect("three segments");
    format!("{signed_part}.{signature}").into_bytes()
}

#[test]
fn malformed_signatures_are_refused_with_the_reason() {
    let octets = "application/octet-stream";
    let rs256 = || json!({"alg": "RS256"});
    let other_verb = {
        let mut other = statement();
        other.insert(
            "verb".to_owned(),
            json!({"id": "http://adlnet.gov/expapi/verbs/passed"}),
        );
        Value::Object(other).to_string()
    };
    // A payload that is no valid statement (a duration in other letters) is refused as such.
    let odd_duration = {
        let mut odd = statement();
        odd.insert("result".to_owned(), json!({"duration": "PT五S"}));
        Value::Object(odd).to_string()
    };
    let broken_json = String::from_utf8(payload())
        .expect("utf-8")
        .replacen('"', "'", 1);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "contentType is application/octet-stream",
            jws(rs256(), &payload()),
            "text/plain; charset=ascii",
        ),
        (
            "RS256, RS384 or RS512",
            jws(json!({"alg": "HS256"}), &payload()),
            octets,
        ),
        (
            "not a statement serialized as JSON",
            jws(rs256(), broken_json.as_bytes()),
            octets,
        ),
        (
            "not the statement that carries it",
            jws(rs256(), other_verb.as_bytes()),
            octets,
        ),
        (
            "not a valid statement",
            jws(rs256(), odd_duration.as_bytes()),
            octets,
        ),
        ("compact serialization", b"not.a-jws".to_vec(), octets),
        ("signature is not base64url", with_signature("!!"), octets),
    ];
    for (reason, jws, content_type) in cases {
        let (statement, part) = signed(statement(), jws, content_type);
        let refused = check(&[&statement], vec![part]).expect_err(reason);
        assert!(refused.problem.contains(reason), "{reason}: {refused}");
    }
}

#[test]
fn the_payload_may_leave_out_what_the_lrs_sets() {
    let mut bare = statement();
    bare.remove("id");
    bare.remove("timestamp");
    let (statement, part) = signed(
        statement(),
        jws(
            json!({"alg": "RS512"}),
            Value::Object(bare).to_string().as_bytes(),
        ),
        "application/octet-stream",
    );
    assert!(check(&[&statement], vec![part]).is_ok());
}

fn text_attachment(content: &[u8], file_url: Option<&str>) -> (Value, String) {
    let sha2 = hex::encode(Sha256::digest(content));
    let mut attachment = json!({"usageType": "https://studyledger.invalid/usage/certificate",
        "display": {"zh-CN": "结业证书"}, "contentType": "text/plain", "length": content.len(), "sha2": sha2});
    if let Some(url) = file_url {
        attachment["fileUrl"] = json!(url);
    }
    (attachment, sha2)
}

#[test]
fn parts_and_attachments_must_agree_both_ways() {
    let (attachment, sha2) = text_attachment(b"here is a simple attachment", None);
    let mut with_data = statement();
    with_data.insert("attachments".to_owned(), json!([attachment]));
    let part = || {
        Part::new(
            &sha2.to_uppercase(),
            "text/plain",
            b"here is a simple attachment".to_vec(),
        )
    };

    let kept = check(&[&with_data], vec![part(), part()]).expect("its data came with it");
    assert_eq!(
        kept,
        vec![part()],
        "one part kept per hash, named in lower case"
    );

    assert!(
        check(&[&with_data], vec![]).is_err(),
        "no fileUrl and no part"
    );
    let excess = Part::new(
        &hex::encode(Sha256::digest(b"x")),
        "text/plain",
        b"x".to_vec(),
    );
    assert!(
        check(&[&with_data], vec![part(), excess]).is_err(),
        "a part no attachment names"
    );
    let lying = Part::new(&sha2, "text/plain", b"other bytes".to_vec());
    assert!(
        check(&[&with_data], vec![lying]).is_err(),
        "a hash that is not the content's"
    );

    let (by_url, _) = text_attachment(b"elsewhere", Some("https://files.example/cert.txt"));
    let mut linked = statement();
    linked.insert("attachments".to_owned(), json!([by_url]));
    assert_eq!(
        check(&[&linked], vec![]).expect("a fileUrl needs no part"),
        vec![]
    );
}
