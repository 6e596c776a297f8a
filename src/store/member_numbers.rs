//! Member numbers held one member each (`member_numbers`): a number is claimed in the same
//! transaction as the event that gives it, so a committed enrolment or correction always holds
//! its number, and a refused one holds nothing.

use std::collections::HashMap;

use sqlx::PgConnection;
use uuid::Uuid;

/// Claims `member_no` for `member_id` inside the caller's transaction and releases any other
/// number the member held; answers the holder: `member_id` itself, or the member who holds the
/// number already (then nothing changed). A concurrent claim of the same number waits for the
/// first one's transaction to end.
pub async fn claim(
    tx: &mut PgConnection,
    member_no: &str,
    member_id: Uuid,
) -> Result<Uuid, sqlx::Error> {
    let holder: Uuid = sqlx::query_scalar(
        "INSERT INTO member_numbers (member_no, member_id) VALUES ($1, $2)
         ON CONFLICT (member_no) DO UPDATE SET member_id = member_numbers.member_id
         RETURNING member_id",
    )
    .bind(member_no)
    .bind(member_id)
    .fetch_one(&mut *tx)
    .await?;
    if holder == member_id {
        sqlx::query("DELETE FROM member_numbers WHERE member_id = $1 AND member_no <> $2")
            .bind(member_id)
            .bind(member_no)
            .execute(&mut *tx)
            .await?;
    }
    Ok(holder)
}

/// Who holds each of these numbers, locking the claims read until the caller's transaction
/// ends (a bulk import checks its enrolments' numbers before deciding them).
pub async fn holders(
    tx: &mut PgConnection,
    member_nos: &[String],
) -> Result<HashMap<String, Uuid>, sqlx::Error> {
    let rows: Vec<(String, Uuid)> = sqlx::query_as(
        "SELECT member_no, member_id FROM member_numbers WHERE member_no = ANY($1)
          ORDER BY member_no FOR SHARE",
    )
    .bind(member_nos)
    .fetch_all(&mut *tx)
    .await?;
    Ok(rows.into_iter().collect())
}

/// Claims each number for its member inside the caller's transaction (the enrolments of a bulk
/// import, checked free with [`holders`] first); `false` when another member took one of them
/// meanwhile — the caller's transaction must then not commit.
pub async fn claim_all(
    tx: &mut PgConnection,
    member_nos: &[String],
    member_ids: &[Uuid],
) -> Result<bool, sqlx::Error> {
    if member_nos.is_empty() {
        return Ok(true);
    }
    let holders: Vec<(String, Uuid)> = sqlx::query_as(
        "INSERT INTO member_numbers (member_no, member_id)
         SELECT * FROM UNNEST($1::text[], $2::uuid[]) AS c(member_no, member_id)
          -- In one order, so two imports claiming overlapping numbers never deadlock.
          ORDER BY c.member_no
         ON CONFLICT (member_no) DO UPDATE SET member_id = member_numbers.member_id
         RETURNING member_no, member_id",
    )
    .bind(member_nos)
    .bind(member_ids)
    .fetch_all(&mut *tx)
    .await?;
    Ok(holders.iter().all(|(no, holder)| {
        member_nos
            .iter()
            .zip(member_ids)
            .any(|(n, m)| n == no && m == holder)
    }))
}

/// Claims the numbers of every enrolled member who holds none yet, the first enrolled first:
/// after a bulk load that appended enrolments without claims (the demo data).
pub async fn claim_enrolled(connection: &mut PgConnection) -> Result<u64, sqlx::Error> {
    let claimed = sqlx::query(
        "INSERT INTO member_numbers (member_no, member_id)
         SELECT payload -> 'MemberEnrolled' ->> 'member_no', aggregate_id::uuid
           FROM events
          WHERE aggregate_type = 'member' AND event_type = 'MemberEnrolled'
            AND NOT EXISTS (SELECT 1 FROM member_numbers h
                             WHERE h.member_id = events.aggregate_id::uuid)
          ORDER BY position
             ON CONFLICT (member_no) DO NOTHING",
    )
    .execute(connection)
    .await?;
    Ok(claimed.rows_affected())
}
