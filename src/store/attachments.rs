//! Attachments' raw data (`xapi_attachments`, see migrations/0016_xapi_attachments.sql), kept
//! under its SHA-2 hash in the transaction that stores the statements naming it, and read back
//! for the statements a `GET /xapi/statements?attachments=true` answers.

use sqlx::{PgConnection, PgPool};
use studyledger_xapi::attachments::Part;

/// Keeps each part's data, once per hash: data kept already under a hash is the same data
/// (the table's check holds every row to its hash), so a second copy changes nothing.
pub async fn keep_on(tx: &mut PgConnection, parts: &[Part]) -> Result<(), sqlx::Error> {
    if parts.is_empty() {
        return Ok(());
    }
    let hashes: Vec<&str> = parts.iter().map(|p| p.sha2.as_str()).collect();
    let types: Vec<&str> = parts.iter().map(|p| p.content_type.as_str()).collect();
    let contents: Vec<&[u8]> = parts.iter().map(|p| p.content.as_slice()).collect();
    sqlx::query(
        "INSERT INTO xapi_attachments (sha2, content_type, content)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::bytea[])
         ON CONFLICT (sha2) DO NOTHING",
    )
    .bind(&hashes)
    .bind(&types)
    .bind(&contents)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The data kept under each of these hashes (those kept; a statement whose attachment has a
/// `fileUrl` may have sent none), in the order asked.
pub async fn by_hashes(pool: &PgPool, hashes: &[String]) -> Result<Vec<Part>, sqlx::Error> {
    if hashes.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<(String, String, Vec<u8>)> = sqlx::query_as(
        "SELECT a.sha2, a.content_type, a.content
           FROM UNNEST($1::text[]) WITH ORDINALITY AS asked (sha2, n)
           JOIN xapi_attachments a ON a.sha2 = asked.sha2
          ORDER BY asked.n",
    )
    .bind(hashes)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(sha2, content_type, content)| Part {
            sha2,
            content_type,
            content,
        })
        .collect())
}
