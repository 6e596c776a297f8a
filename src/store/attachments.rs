//! Attachments' raw data (`xapi_attachments`, see migrations/0016_xapi_attachments.sql), kept
//! under its SHA-2 hash in the transaction that stores the statements naming it, with which
//! statement came with which data (`xapi_statement_attachments`, 0017); read back for the
//! statements a `GET /xapi/statements?attachments=true` answers.

use sqlx::{PgConnection, PgPool};
use studyledger_xapi::attachments::Part;
use uuid::Uuid;

/// Keeps each part's data, once per hash: data kept already under a hash is the same data
/// (the table's check holds every row to its hash), so a second copy changes nothing. The
/// parts come in hash order, so two batches with the same data never wait on each other
/// crosswise.
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

/// Records that each statement came with these parts (its own attachments' data).
pub async fn link_on(tx: &mut PgConnection, links: &[(Uuid, &Part)]) -> Result<(), sqlx::Error> {
    if links.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = links.iter().map(|(id, _)| *id).collect();
    let hashes: Vec<&str> = links.iter().map(|(_, p)| p.sha2.as_str()).collect();
    let types: Vec<&str> = links.iter().map(|(_, p)| p.content_type.as_str()).collect();
    sqlx::query(
        "INSERT INTO xapi_statement_attachments (statement_id, sha2, content_type)
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[])
         ON CONFLICT DO NOTHING",
    )
    .bind(&ids)
    .bind(&hashes)
    .bind(&types)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The data these statements came with, once per hash, in hash order; a file several of
/// them came with is served with the content type the first of them (in `ids`' order) sent.
pub async fn of_statements(pool: &PgPool, ids: &[Uuid]) -> Result<Vec<Part>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<(String, String, Vec<u8>)> = sqlx::query_as(
        "SELECT DISTINCT ON (l.sha2) l.sha2, l.content_type, a.content
           FROM UNNEST($1::uuid[]) WITH ORDINALITY AS asked (statement_id, n)
           JOIN xapi_statement_attachments l ON l.statement_id = asked.statement_id
           JOIN xapi_attachments a ON a.sha2 = l.sha2
          ORDER BY l.sha2, asked.n",
    )
    .bind(ids)
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
