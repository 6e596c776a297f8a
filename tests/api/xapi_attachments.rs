//! Statements with attachments' data over HTTP (xAPI 2.0 part 3, §1.5.2): multipart/mixed
//! requests stored with their data, the data served back with `attachments=true`, every
//! disagreement between parts and attachments refused with nothing stored, and signed
//! statements checked (algorithm, payload, and the x5c certificate's key).

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use reqwest::Method;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use studyledger::store::tokens::Role;
use uuid::Uuid;

use crate::helpers::TestApp;

const BOUNDARY: &str = "studyledger-test-boundary";
const CERTIFICATE_TEXT: &[u8] = "结业证书：党史学习 8 学时 / certificate: 8 class hours".as_bytes();

fn sha2(content: &[u8]) -> String {
    hex::encode(Sha256::digest(content))
}

fn with_attachment(content: &[u8], file_url: Option<&str>) -> Value {
    let mut attachment = json!({
        "usageType": "https://studyledger.invalid/usage/certificate",
        "display": {"zh-CN": "结业证书", "en-US": "Certificate"},
        "contentType": "text/plain; charset=utf-8",
        "length": content.len(),
        "sha2": sha2(content),
    });
    if let Some(url) = file_url {
        attachment["fileUrl"] = json!(url);
    }
    json!({
        "id": Uuid::new_v4(),
        "actor": {"account": {"homePage": "https://apps.example/", "name": "学员-1"}},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/attended", "display": {"zh-CN": "参加"}},
        "object": {"id": "https://courses.example/党课"},
        "attachments": [attachment],
    })
}

/// A part after the first: its headers as written, and its content.
struct Raw<'a> {
    headers: String,
    content: &'a [u8],
}

fn data_part(content: &[u8]) -> Raw<'_> {
    Raw {
        headers: format!(
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: binary\r\nX-Experience-API-Hash: {}\r\n",
            sha2(content)
        ),
        content,
    }
}

fn multipart(first_type: &str, json: &Value, parts: &[Raw<'_>]) -> Vec<u8> {
    let mut body =
        format!("--{BOUNDARY}\r\nContent-Type: {first_type}\r\n\r\n{json}\r\n").into_bytes();
    for part in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n{}\r\n", part.headers).as_bytes());
        body.extend_from_slice(part.content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// A request to the LRS with a raw body of `content_type`; the answer's status, content type
/// and body.
async fn send(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, String, Vec<u8>) {
    let response = reqwest::Client::new()
        .request(method, format!("{}{path}", app.address))
        .basic_auth("app", Some(token))
        .header("X-Experience-API-Version", "2.0.0")
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (
        status,
        content_type,
        response.bytes().await.expect("body").to_vec(),
    )
}

async fn get(app: &TestApp, token: &str, query: &str) -> (u16, String, Vec<u8>) {
    send(
        app,
        token,
        Method::GET,
        &format!("/xapi/statements?{query}"),
        "application/json",
        Vec::new(),
    )
    .await
}

/// POSTs `statement` with `content` as its attachment's data; the answer's status and body.
async fn post_with_data(
    app: &TestApp,
    token: &str,
    statement: &Value,
    content: &[u8],
) -> (u16, Vec<u8>) {
    let body = multipart("application/json", statement, &[data_part(content)]);
    post_mixed(app, token, body).await
}

/// POSTs a `multipart/mixed` body to the statements; the answer's status and body.
async fn post_mixed(app: &TestApp, token: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
    let (status, _, answer) =
        send(app, token, Method::POST, "/xapi/statements", &mixed(), body).await;
    (status, answer)
}

fn mixed() -> String {
    format!("multipart/mixed; boundary={BOUNDARY}")
}

async fn stored(app: &TestApp) -> (i64, i64) {
    let count = |table: &str| format!("SELECT count(*) FROM {table}");
    let statements: i64 = sqlx::query_scalar(&count("xapi_statements"))
        .fetch_one(&app.pool)
        .await
        .expect("count");
    let data: i64 = sqlx::query_scalar(&count("xapi_attachments"))
        .fetch_one(&app.pool)
        .await
        .expect("count");
    (statements, data)
}

/// The parts of a multipart answer: each part's header block and content.
fn parts_of(content_type: &str, body: &[u8]) -> Vec<(String, Vec<u8>)> {
    let boundary = content_type
        .split("boundary=")
        .nth(1)
        .expect("a boundary")
        .trim_matches('"');
    let delimiter = format!("\r\n--{boundary}");
    let text = [b"\r\n".as_slice(), body].concat();
    let mut parts = Vec::new();
    let mut rest = text.as_slice();
    while let Some(at) = find(rest, delimiter.as_bytes()) {
        rest = &rest[at + delimiter.len()..];
        if rest.starts_with(b"--") {
            break;
        }
        let head_end = find(rest, b"\r\n\r\n").expect("headers end");
        let next = find(&rest[head_end..], delimiter.as_bytes()).expect("next boundary") + head_end;
        let head = String::from_utf8_lossy(&rest[2..head_end]).to_string();
        parts.push((head, rest[head_end + 4..next].to_vec()));
        rest = &rest[next..];
    }
    parts
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[tokio::test]
async fn a_statement_with_its_attachment_is_stored_with_the_data_and_served_back_with_it() {
    let app = TestApp::spawn().await;
    let ingest = app.token(Role::Ingest, None, None).await;
    let statement = with_attachment(CERTIFICATE_TEXT, None);
    let id = statement["id"].as_str().expect("id").to_owned();
    let (status, answer) = post_with_data(&app, &ingest, &statement, CERTIFICATE_TEXT).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    assert_eq!(stored(&app).await, (1, 1));

    // Sent again (same statement, same data): nothing new. Another statement with the same
    // file, by PUT: its data is kept once.
    let (status, _) = post_with_data(&app, &ingest, &statement, CERTIFICATE_TEXT).await;
    assert_eq!(status, 200);
    let again = with_attachment(CERTIFICATE_TEXT, None);
    let put = format!(
        "/xapi/statements?statementId={}",
        again["id"].as_str().expect("id")
    );
    let (status, _, _) = send(
        &app,
        &ingest,
        Method::PUT,
        &put,
        &mixed(),
        multipart("application/json", &again, &[data_part(CERTIFICATE_TEXT)]),
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(stored(&app).await, (2, 1));

    let (status, content_type, plain) = get(&app, &ingest, &format!("statementId={id}")).await;
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let read: Value = serde_json::from_slice(&plain).expect("json");
    assert_eq!(read["attachments"], statement["attachments"]);

    let (status, content_type, body) =
        get(&app, &ingest, &format!("statementId={id}&attachments=true")).await;
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("multipart/mixed"),
        "{content_type}"
    );
    let parts = parts_of(&content_type, &body);
    assert_eq!(parts.len(), 2, "the statement, then its attachment's data");
    assert!(parts[0].0.to_ascii_lowercase().contains("application/json"));
    let first: Value = serde_json::from_slice(&parts[0].1).expect("json part");
    assert_eq!(first["id"], json!(id));
    assert_eq!(parts[1].1, CERTIFICATE_TEXT);
    assert!(parts[1].0.contains(&format!(
        "X-Experience-API-Hash: {}",
        sha2(CERTIFICATE_TEXT)
    )));
    assert!(parts[1].0.contains("Content-Transfer-Encoding: binary"));
}

#[tokio::test]
async fn a_page_serves_each_file_once_and_only_the_data_its_statements_came_with() {
    let app = TestApp::spawn().await;
    let ingest = app.token(Role::Ingest, None, None).await;
    for _ in 0..3 {
        let statement = with_attachment(CERTIFICATE_TEXT, None);
        let (status, _) = post_with_data(&app, &ingest, &statement, CERTIFICATE_TEXT).await;
        assert_eq!(status, 200);
    }
    // Two statements, one file: sent once; the `more` link keeps asking for the data.
    let (status, content_type, body) = get(&app, &ingest, "attachments=true&limit=2").await;
    assert_eq!(status, 200);
    let parts = parts_of(&content_type, &body);
    assert_eq!(parts.len(), 2, "the page, then the one file");
    let page: Value = serde_json::from_slice(&parts[0].1).expect("json part");
    assert_eq!(page["statements"].as_array().map(Vec::len), Some(2));
    assert!(
        page["more"]
            .as_str()
            .expect("more")
            .contains("attachments=true"),
        "{page}"
    );
    // With the data, a page holds 10 statements at most, whatever the limit asked.
    let (_, content_type, body) = get(&app, &ingest, "attachments=true&limit=500").await;
    let page: Value = serde_json::from_slice(&parts_of(&content_type, &body)[0].1).expect("json");
    assert_eq!(page["statements"].as_array().map(Vec::len), Some(3));

    // Another app names the same file by its hash (with a fileUrl, so it sends no data): it
    // is not served that data through its own statement.
    let other = app.token(Role::Ingest, None, None).await;
    let naming = with_attachment(CERTIFICATE_TEXT, Some("https://files.example/c.txt"));
    let (status, _, _) = send(
        &app,
        &other,
        Method::POST,
        "/xapi/statements",
        "application/json",
        naming.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, 200);
    let query = format!(
        "statementId={}&attachments=true",
        naming["id"].as_str().expect("id")
    );
    let (status, content_type, body) = get(&app, &other, &query).await;
    assert_eq!(status, 200);
    assert_eq!(
        parts_of(&content_type, &body).len(),
        1,
        "the statement alone, no data"
    );

    // The table holds data only under the hash of that data.
    let forged = sqlx::query("INSERT INTO xapi_attachments (sha2, content_type, content) VALUES ($1, 'text/plain', 'other')")
        .bind(sha2(b"something else"))
        .execute(&app.pool)
        .await;
    assert!(
        forged.is_err(),
        "data kept under a hash that is not its own"
    );
}

/// Requests whose parts and attachments disagree (or whose form is wrong), each with the
/// reason it is refused: the content type and body of each.
fn disagreeing(statement: &Value) -> Vec<(&'static str, String, Vec<u8>)> {
    let other: &[u8] = "另一份文件 / another file".as_bytes();
    let no_hash = Raw {
        headers: "Content-Type: text/plain\r\nContent-Transfer-Encoding: binary\r\n".to_owned(),
        content: CERTIFICATE_TEXT,
    };
    let base64 = Raw {
        headers: format!("Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\nX-Experience-API-Hash: {}\r\n", sha2(CERTIFICATE_TEXT)),
        content: CERTIFICATE_TEXT,
    };
    let lying = Raw {
        headers: format!("Content-Type: text/plain\r\nContent-Transfer-Encoding: binary\r\nX-Experience-API-Hash: {}\r\n", sha2(CERTIFICATE_TEXT)),
        content: other,
    };
    let odd_type = Raw {
        headers: format!("Content-Type: not a type\r\nContent-Transfer-Encoding: binary\r\nX-Experience-API-Hash: {}\r\n", sha2(CERTIFICATE_TEXT)),
        content: CERTIFICATE_TEXT,
    };
    let cases: Vec<(&str, String, Vec<u8>)> = vec![
        (
            "no part for an attachment without fileUrl",
            "application/json".to_owned(),
            statement.to_string().into_bytes(),
        ),
        (
            "no part, multipart",
            mixed(),
            multipart("application/json", statement, &[]),
        ),
        (
            "a part no attachment names",
            mixed(),
            multipart(
                "application/json",
                statement,
                &[data_part(CERTIFICATE_TEXT), data_part(other)],
            ),
        ),
        (
            "no X-Experience-API-Hash",
            mixed(),
            multipart("application/json", statement, &[no_hash]),
        ),
        (
            "not binary",
            mixed(),
            multipart("application/json", statement, &[base64]),
        ),
        (
            "a hash that is not the data's",
            mixed(),
            multipart("application/json", statement, &[lying]),
        ),
        (
            "first part not JSON",
            mixed(),
            multipart("text/plain", statement, &[data_part(CERTIFICATE_TEXT)]),
        ),
        (
            "a part's Content-Type that is no media type",
            mixed(),
            multipart("application/json", statement, &[odd_type]),
        ),
        (
            "form-data",
            format!("multipart/form-data; boundary={BOUNDARY}"),
            multipart(
                "application/json",
                statement,
                &[data_part(CERTIFICATE_TEXT)],
            ),
        ),
    ];
    cases
}

#[tokio::test]
async fn parts_that_disagree_with_the_attachments_refuse_the_request_and_store_nothing() {
    let app = TestApp::spawn().await;
    let ingest = app.token(Role::Ingest, None, None).await;
    let statement = with_attachment(CERTIFICATE_TEXT, None);
    let cases = disagreeing(&statement);
    for (case, content_type, body) in cases {
        let (status, answer_type, answer) = send(
            &app,
            &ingest,
            Method::POST,
            "/xapi/statements",
            &content_type,
            body,
        )
        .await;
        assert_eq!(status, 400, "{case}: {}", String::from_utf8_lossy(&answer));
        assert!(
            answer_type.starts_with("application/problem+json"),
            "{case}: {answer_type}"
        );
    }
    assert_eq!(stored(&app).await, (0, 0));

    // An attachment elsewhere (fileUrl) needs no data, as JSON or multipart.
    let linked = with_attachment(
        "另一份文件 / another file".as_bytes(),
        Some("https://files.example/证书.txt"),
    );
    let (status, _, _) = send(
        &app,
        &ingest,
        Method::POST,
        "/xapi/statements",
        "application/json",
        linked.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(stored(&app).await, (1, 0));
}

fn pem_der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body).expect("fixture is PEM")
}

/// `statement` signed (RS256) with the fixture key, its certificate named in `x5c`, as a
/// multipart body with the JWS as the signature attachment's data.
fn signed_body(statement: &Value, payload: &Value, certificate: &str) -> Vec<u8> {
    let key = rsa::RsaPrivateKey::from_pkcs8_der(&pem_der(include_str!(
        "../../xapi/tests/fixtures/signer-key.pem"
    )))
    .expect("key");
    let header = json!({"alg": "RS256", "x5c": [STANDARD.encode(pem_der(certificate))]});
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    );
    let signature = SigningKey::<Sha256>::new(key)
        .sign(signed.as_bytes())
        .to_vec();
    let jws = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature)).into_bytes();
    let mut statement = statement.clone();
    statement["attachments"] = json!([{
        "usageType": "http://adlnet.gov/expapi/attachments/signature",
        "display": {"zh-CN": "签名", "en-US": "Signature"},
        "contentType": "application/octet-stream",
        "length": jws.len(), "sha2": sha2(&jws),
    }]);
    let part = Raw {
        headers: format!("Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\nX-Experience-API-Hash: {}\r\n", sha2(&jws)),
        content: &jws,
    };
    multipart("application/json", &statement, &[part])
}

#[tokio::test]
async fn signed_statements_are_stored_when_the_signature_holds_and_refused_when_it_does_not() {
    let app = TestApp::spawn().await;
    let ingest = app.token(Role::Ingest, None, None).await;
    let own = include_str!("../../xapi/tests/fixtures/signer-cert.pem");
    let other = include_str!("../../xapi/tests/fixtures/other-cert.pem");
    let mut statement = with_attachment(CERTIFICATE_TEXT, Some("https://files.example/c.txt"));
    statement
        .as_object_mut()
        .expect("object")
        .remove("attachments");

    let (status, answer) =
        post_mixed(&app, &ingest, signed_body(&statement, &statement, own)).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    let id = statement["id"].as_str().expect("id");
    let (_, content_type, body) =
        get(&app, &ingest, &format!("statementId={id}&attachments=true")).await;
    let parts = parts_of(&content_type, &body);
    assert_eq!(parts.len(), 2, "the statement and its JWS");
    assert_eq!(String::from_utf8_lossy(&parts[1].1).split('.').count(), 3);

    let fresh = || {
        let mut s = statement.clone();
        s["id"] = json!(Uuid::new_v4());
        s
    };
    let forged = fresh();
    let (status, _) = post_mixed(&app, &ingest, signed_body(&forged, &forged, other)).await;
    assert_eq!(
        status, 400,
        "signed with a key that is not the certificate's"
    );
    let changed = fresh();
    let mut payload = changed.clone();
    payload["verb"]["id"] = json!("http://adlnet.gov/expapi/verbs/passed");
    let (status, _) = post_mixed(&app, &ingest, signed_body(&changed, &payload, own)).await;
    assert_eq!(status, 400, "the payload is another statement");
    assert_eq!(stored(&app).await, (1, 1));
}
