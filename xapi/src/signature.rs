//! Signed statements (xAPI 2.0 part 2, §2.6): a statement that carries an attachment of usage
//! type [`SIGNATURE`] carries, as that attachment's data, a JWS in compact serialization
//! (RFC 7515) whose payload is the statement as it was before the signature was attached.
//!
//! The LRS refuses a statement whose signature is malformed: an attachment of that usage
//! whose content type is not `application/octet-stream`, whose data did not come with it or
//! is not a compact JWS, whose algorithm is not RS256, RS384 or RS512, whose payload is not a
//! JSON object, or whose payload is not the statement itself (ignoring what the LRS may set:
//! `id` when the payload has none, `authority`, `stored`, `version`, `timestamp` when the
//! payload has none, and the signature's own attachment). When the JWS header carries an
//! X.509 certificate (`x5c`), the signature must verify with that certificate's RSA key.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use rsa::RsaPublicKey;
use serde_json::{Map, Value};
use sha2::{Sha256, Sha384, Sha512};
use x509_cert::der::{Decode, Encode};
use x509_cert::Certificate;

use crate::validate::{self, Invalid};
use crate::{attached, same_statement};

/// The `usageType` of a statement's signature.
pub const SIGNATURE: &str = "http://adlnet.gov/expapi/attachments/signature";
const OCTET_STREAM: &str = "application/octet-stream";

fn invalid(problem: impl Into<String>) -> Invalid {
    Invalid {
        path: "attachments (signature)".to_owned(),
        problem: problem.into(),
    }
}

/// Checks the signature `statement` carries, if any, whose data `data` finds by its hash. A
/// statement carries one signature at most.
pub fn check<'a>(
    statement: &Map<String, Value>,
    data: impl Fn(&str) -> Option<&'a [u8]>,
) -> Result<(), Invalid> {
    let signatures: Vec<(String, &Value)> = attached(statement)
        .filter(|(_, a)| a.get("usageType").and_then(Value::as_str) == Some(SIGNATURE))
        .collect();
    let [(sha2, attachment)] = signatures.as_slice() else {
        return match signatures.len() {
            0 => Ok(()),
            _ => Err(invalid("a statement carries one signature at most")),
        };
    };
    let content_type = attachment.get("contentType").and_then(Value::as_str);
    if content_type.map(str::trim) != Some(OCTET_STREAM) {
        return Err(invalid(format!(
            "a signature's contentType is {OCTET_STREAM}"
        )));
    }
    let jws =
        data(sha2).ok_or_else(|| invalid("the signature's JWS did not come with the statement"))?;
    let signed = verified_payload(jws)?;
    validate::statement(&Value::Object(signed.clone()))
        .map_err(|e| invalid(format!("the JWS payload is not a valid statement: {e}")))?;
    if !signs(&signed, statement) {
        return Err(invalid(
            "the JWS payload is not the statement that carries it",
        ));
    }
    Ok(())
}

/// The payload of a compact JWS, once its header and (with `x5c`) its signature are checked.
fn verified_payload(jws: &[u8]) -> Result<Map<String, Value>, Invalid> {
    let text = std::str::from_utf8(jws).map_err(|_| invalid("the JWS is not text"))?;
    let segments: Vec<&str> = text.trim().split('.').collect();
    let [header, payload, signature] = segments[..] else {
        return Err(invalid(
            "the JWS is not in compact serialization (header.payload.signature)",
        ));
    };
    let decode = |segment: &str, what: &str| {
        URL_SAFE_NO_PAD
            .decode(segment)
            .map_err(|_| invalid(format!("the JWS {what} is not base64url")))
    };
    let header_json: Map<String, Value> = serde_json::from_slice(&decode(header, "header")?)
        .map_err(|_| invalid("the JWS header is not a JSON object"))?;
    let payload_json: Map<String, Value> = serde_json::from_slice(&decode(payload, "payload")?)
        .map_err(|_| invalid("the JWS payload is not a statement serialized as JSON"))?;
    let algorithm = header_json.get("alg").and_then(Value::as_str).unwrap_or("");
    if !["RS256", "RS384", "RS512"].contains(&algorithm) {
        return Err(invalid(format!(
            "the JWS algorithm is {algorithm:?}: RS256, RS384 or RS512 are allowed"
        )));
    }
    let signature = decode(signature, "signature")?;
    if let Some(chain) = header_json.get("x5c") {
        let key = certificate_key(chain)?;
        let signed = format!("{header}.{payload}");
        rsa_verifies(algorithm, key, signed.as_bytes(), &signature)
            .then_some(())
            .ok_or_else(|| invalid("the JWS signature does not verify with its x5c certificate"))?;
    }
    Ok(payload_json)
}

/// The RSA key of the first certificate of an `x5c` chain (base64 DER, RFC 7515 §4.1.6).
fn certificate_key(chain: &Value) -> Result<RsaPublicKey, Invalid> {
    let first = chain
        .as_array()
        .and_then(|chain| chain.first())
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("x5c is not a list of certificates"))?;
    let der = STANDARD
        .decode(first)
        .map_err(|_| invalid("x5c's first certificate is not base64"))?;
    let certificate = Certificate::from_der(&der)
        .map_err(|_| invalid("x5c's first certificate is not an X.509 certificate"))?;
    let spki = certificate
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|_| invalid("x5c's first certificate holds no public key"))?;
    RsaPublicKey::from_public_key_der(&spki)
        .map_err(|_| invalid("x5c's first certificate holds no RSA key"))
}

fn rsa_verifies(algorithm: &str, key: RsaPublicKey, signed: &[u8], signature: &[u8]) -> bool {
    let Ok(signature) = Signature::try_from(signature) else {
        return false;
    };
    match algorithm {
        "RS256" => VerifyingKey::<Sha256>::new(key)
            .verify(signed, &signature)
            .is_ok(),
        "RS384" => VerifyingKey::<Sha384>::new(key)
            .verify(signed, &signature)
            .is_ok(),
        _ => VerifyingKey::<Sha512>::new(key)
            .verify(signed, &signature)
            .is_ok(),
    }
}

/// Whether a JWS payload is the statement that carries it (see the module's documentation).
fn signs(payload: &Map<String, Value>, statement: &Map<String, Value>) -> bool {
    let mut received = without_signatures(statement);
    let payload = without_signatures(payload);
    if !payload.contains_key("id") {
        received.remove("id");
    }
    same_statement(&payload, &received)
}

fn without_signatures(statement: &Map<String, Value>) -> Map<String, Value> {
    let mut statement = statement.clone();
    let remaining: Option<Vec<Value>> =
        statement
            .get("attachments")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter(|a| a.get("usageType").and_then(Value::as_str) != Some(SIGNATURE))
                    .cloned()
                    .collect()
            });
    match remaining {
        Some(list) if list.is_empty() => {
            statement.remove("attachments");
        }
        Some(list) => {
            statement.insert("attachments".to_owned(), Value::Array(list));
        }
        None => {}
    }
    statement
}
