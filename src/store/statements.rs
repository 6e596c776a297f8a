//! The Learning Record Store's statements (`xapi_statements`, append-only): a batch stored in
//! one transaction, a statement read by id, and pages of them in the order they were stored.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};
use studyledger_xapi::index::{passed_on, stored_keys, target};
use studyledger_xapi::same_statement;
use uuid::Uuid;

/// A statement ready to store: as sent, and as it will be kept and served.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub id: Uuid,
    pub sent: Map<String, Value>,
    pub kept: Map<String, Value>,
    pub verb_id: String,
    pub voids: Option<Uuid>,
    pub stored: DateTime<Utc>,
    /// What the filters match it by (see `xapi_statement_keys`), besides its token and what
    /// it inherits from the statements it targets (`pass_keys_on`).
    pub keys: Vec<String>,
}

/// Why a batch was not stored (nothing of it was).
#[derive(Debug, thiserror::Error)]
pub enum StatementsError {
    #[error("statement {0} is already stored with other content")]
    Conflict(Uuid),
    #[error("statement {0} voids a voiding statement, which cannot be voided")]
    VoidsVoiding(Uuid),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Stores a batch in the caller's transaction: a statement whose id is new is inserted; one
/// already stored with the same content changes nothing; one stored with other content refuses
/// the whole batch, as does voiding a voiding statement. Answers the statements inserted, with
/// their place in the order of storing (`seq`). A statement that targets another (a
/// StatementRef, voiding or not) is found by the filters its target meets too.
pub async fn store_on(
    tx: &mut PgConnection,
    token_id: &str,
    batch: &[Prepared],
) -> Result<Vec<(Uuid, i64)>, StatementsError> {
    let ids: Vec<Uuid> = batch.iter().map(|s| s.id).collect();
    let held = kept(&mut *tx, &ids).await?;
    same_as_held(batch, &held)?;
    let fresh: Vec<&Prepared> = batch
        .iter()
        .filter(|s| !held.iter().any(|(id, _)| *id == s.id))
        .collect();
    refuse_voiding_a_voiding(&mut *tx, &fresh).await?;
    let inserted = insert(&mut *tx, token_id, &fresh).await?;
    pass_keys_on(&mut *tx, &fresh, &inserted).await?;
    // A writer of the same id that committed meanwhile: its row wins the primary key (the
    // insert waited for its commit), and is compared like any statement stored before.
    let raced: Vec<Uuid> = fresh
        .iter()
        .map(|s| s.id)
        .filter(|id| !inserted.iter().any(|(i, _)| i == id))
        .collect();
    if !raced.is_empty() {
        same_as_held(batch, &kept(&mut *tx, &raced).await?)?;
    }
    Ok(inserted)
}

/// Refuses a batch holding a statement stored already with other content.
fn same_as_held(
    batch: &[Prepared],
    held: &[(Uuid, Map<String, Value>)],
) -> Result<(), StatementsError> {
    let changed = batch.iter().find(|s| {
        held.iter()
            .any(|(id, kept)| *id == s.id && !same_statement(&s.sent, kept))
    });
    match changed {
        Some(s) => Err(StatementsError::Conflict(s.id)),
        None => Ok(()),
    }
}

async fn kept(
    tx: &mut PgConnection,
    ids: &[Uuid],
) -> Result<Vec<(Uuid, Map<String, Value>)>, sqlx::Error> {
    let rows: Vec<(Uuid, sqlx::types::Json<Map<String, Value>>)> = sqlx::query_as(
        "SELECT statement_id, statement FROM xapi_statements WHERE statement_id = ANY($1)",
    )
    .bind(ids)
    .fetch_all(&mut *tx)
    .await?;
    Ok(rows.into_iter().map(|(id, json)| (id, json.0)).collect())
}

async fn refuse_voiding_a_voiding(
    tx: &mut PgConnection,
    fresh: &[&Prepared],
) -> Result<(), StatementsError> {
    let targets: Vec<Uuid> = fresh.iter().filter_map(|s| s.voids).collect();
    if targets.is_empty() {
        return Ok(());
    }
    let stored_voidings: Vec<Uuid> = sqlx::query_scalar(
        "SELECT statement_id FROM xapi_statements
          WHERE statement_id = ANY($1) AND voids IS NOT NULL",
    )
    .bind(&targets)
    .fetch_all(&mut *tx)
    .await?;
    let voiding = |id: Uuid| {
        stored_voidings.contains(&id) || fresh.iter().any(|s| s.id == id && s.voids.is_some())
    };
    match fresh.iter().find(|s| s.voids.is_some_and(voiding)) {
        Some(s) => Err(StatementsError::VoidsVoiding(s.id)),
        None => Ok(()),
    }
}

/// Inserts the statements; answers the ids inserted with their `seq` (one another writer
/// stored meanwhile is left to it).
async fn insert(
    tx: &mut PgConnection,
    token_id: &str,
    fresh: &[&Prepared],
) -> Result<Vec<(Uuid, i64)>, sqlx::Error> {
    if fresh.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = fresh.iter().map(|s| s.id).collect();
    let stored: Vec<DateTime<Utc>> = fresh.iter().map(|s| s.stored).collect();
    let verbs: Vec<&str> = fresh.iter().map(|s| s.verb_id.as_str()).collect();
    let voids: Vec<Option<Uuid>> = fresh.iter().map(|s| s.voids).collect();
    let statements: Vec<sqlx::types::Json<&Map<String, Value>>> =
        fresh.iter().map(|s| sqlx::types::Json(&s.kept)).collect();
    let inserted: Vec<(Uuid, i64)> = sqlx::query_as(
        "INSERT INTO xapi_statements (statement_id, stored, token_id, verb_id, voids, statement)
         SELECT d.id, d.stored, $3, d.verb, d.voids, d.statement
           FROM UNNEST($1::uuid[], $2::timestamptz[], $4::text[], $5::uuid[], $6::jsonb[])
                WITH ORDINALITY AS d(id, stored, verb, voids, statement, n)
          ORDER BY d.n
         ON CONFLICT (statement_id) DO NOTHING
         RETURNING statement_id, seq",
    )
    .bind(&ids)
    .bind(&stored)
    .bind(token_id)
    .bind(&verbs)
    .bind(&voids)
    .bind(&statements)
    .fetch_all(&mut *tx)
    .await?;
    let (mut keys, mut seqs) = (Vec::new(), Vec::new());
    for (id, seq) in &inserted {
        let Some(statement) = fresh.iter().find(|s| s.id == *id) else {
            continue;
        };
        for key in
            std::iter::once(format!("token:{token_id}")).chain(statement.keys.iter().cloned())
        {
            keys.push(key);
            seqs.push(*seq);
        }
    }
    insert_keys(&mut *tx, &keys, &seqs).await?;
    Ok(inserted)
}

/// Adds keys (`keys[i]` to the statement `seqs[i]`); those it has already are left.
async fn insert_keys(
    tx: &mut PgConnection,
    keys: &[String],
    seqs: &[i64],
) -> Result<(), sqlx::Error> {
    if keys.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO xapi_statement_keys (key, seq)
         SELECT * FROM UNNEST($1::text[], $2::bigint[]) ON CONFLICT DO NOTHING",
    )
    .bind(keys)
    .bind(seqs)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// How many StatementRefs deep a statement's targets are followed when it is stored: a
/// chain is rarely longer than a comment on a voiding, and a cycle ends the walk anyway.
const TARGET_HOPS: usize = 16;

/// Passes filter keys along StatementRefs (`index::passed_on`, xAPI 2.0 part 3, §2.1.4):
/// each statement inserted gets the keys of the statements it targets, transitively; the
/// statements stored before that target one inserted, transitively, get its keys. Filters
/// then stay one range of `xapi_statement_keys`, and the walks are reads by primary key.
async fn pass_keys_on(
    tx: &mut PgConnection,
    fresh: &[&Prepared],
    inserted: &[(Uuid, i64)],
) -> Result<(), sqlx::Error> {
    let mut keys_of: Vec<(Uuid, i64, Vec<String>)> = inserted
        .iter()
        .filter_map(|(id, seq)| {
            let statement = fresh.iter().find(|s| s.id == *id)?;
            let own = statement.keys.iter().filter(|k| passed_on(k)).cloned();
            Some((*id, *seq, own.collect()))
        })
        .collect();
    let (mut keys, mut seqs): (Vec<String>, Vec<i64>) = (Vec::new(), Vec::new());
    for (seq, key) in inherited_keys(&mut *tx, fresh, inserted).await? {
        if let Some((_, _, own)) = keys_of.iter_mut().find(|(_, s, _)| *s == seq) {
            own.push(key.clone());
        }
        keys.push(key);
        seqs.push(seq);
    }
    let ids: Vec<Uuid> = inserted.iter().map(|(id, _)| *id).collect();
    for (source, seq) in targeting(&mut *tx, &ids).await? {
        let passed = keys_of.iter().filter(|(id, _, _)| *id == source);
        for key in passed.flat_map(|(_, _, keys)| keys) {
            keys.push(key.clone());
            seqs.push(seq);
        }
    }
    insert_keys(&mut *tx, &keys, &seqs).await
}

/// The keys each statement inserted inherits from the statements it targets, near and far
/// (those stored, in this batch or before): `(its seq, key)`. A target not stored yet passes
/// its keys on when it is (`targeting`).
async fn inherited_keys(
    tx: &mut PgConnection,
    fresh: &[&Prepared],
    inserted: &[(Uuid, i64)],
) -> Result<Vec<(i64, String)>, sqlx::Error> {
    // Each walk: the statement inheriting, the target it reaches next, the ids passed.
    let mut walks: Vec<(i64, Uuid, Vec<Uuid>)> = inserted
        .iter()
        .filter_map(|(id, seq)| {
            let statement = fresh.iter().find(|s| s.id == *id)?;
            Some((*seq, target(&statement.kept)?, vec![*id]))
        })
        .collect();
    let mut inherited = Vec::new();
    for _ in 0..TARGET_HOPS {
        if walks.is_empty() {
            break;
        }
        let ids: Vec<Uuid> = walks.iter().map(|(_, next, _)| *next).collect();
        let targets = kept(&mut *tx, &ids).await?;
        let mut further = Vec::new();
        for (seq, next, mut passed) in walks {
            let Some((_, statement)) = targets.iter().find(|(id, _)| *id == next) else {
                continue;
            };
            let keys = stored_keys(statement).into_iter().filter(|k| passed_on(k));
            inherited.extend(keys.map(|key| (seq, key)));
            passed.push(next);
            if let Some(after) = target(statement).filter(|t| !passed.contains(t)) {
                further.push((seq, after, passed));
            }
        }
        walks = further;
    }
    Ok(inherited)
}

/// The statements that target these, near and far (by their `targets:` keys): `(the id
/// targeted, the seq of one targeting it)`.
async fn targeting(tx: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<(Uuid, i64)>, sqlx::Error> {
    sqlx::query_as(
        // Each step carries the seq it found, so the answer needs no join of its own (which
        // the planner may make a scan of every statement).
        "WITH RECURSIVE reach (source, id, seq) AS (
             SELECT n.id, n.id, NULL::bigint FROM UNNEST($1::uuid[]) AS n(id)
           UNION
             SELECT r.source, s.statement_id, s.seq
               FROM reach r
               JOIN xapi_statement_keys k ON k.key = 'targets:' || r.id::text
               JOIN xapi_statements s ON s.seq = k.seq
         )
         SELECT source, seq FROM reach WHERE id <> source",
    )
    .bind(ids)
    .fetch_all(&mut *tx)
    .await
}

/// Which statements a reader sees: all, or only those stored with one token.
#[derive(Debug, Clone, Copy)]
pub enum Readable<'a> {
    All,
    StoredBy(&'a str),
}

impl Readable<'_> {
    fn token(&self) -> Option<&str> {
        match self {
            Readable::All => None,
            Readable::StoredBy(token) => Some(token),
        }
    }
}

/// A statement by id, with whether it is voided; `None` when the reader cannot see it.
pub async fn by_id(
    pool: &PgPool,
    readable: Readable<'_>,
    id: Uuid,
) -> Result<Option<(Map<String, Value>, bool)>, sqlx::Error> {
    let row: Option<(sqlx::types::Json<Map<String, Value>>, bool)> = sqlx::query_as(
        "SELECT s.statement,
                EXISTS (SELECT 1 FROM xapi_statements v WHERE v.voids = s.statement_id)
           FROM xapi_statements s
          WHERE s.statement_id = $1 AND ($2::text IS NULL OR s.token_id = $2)",
    )
    .bind(id)
    .bind(readable.token())
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(json, voided)| (json.0, voided)))
}

/// What a page of statements is filtered by: keys of `xapi_statement_keys` that every
/// statement of the page has, and times of storing.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Most selective first: the first leads the page's range.
    pub keys: Vec<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub ascending: bool,
    /// The last statement of the page before (its `seq`).
    pub after: Option<i64>,
}

/// A page of statements that are not voided, at most `limit`, in the order they were stored
/// (newest first unless `ascending`); and the cursor of the next page when there is one. With
/// a key, the page is one range of `xapi_statement_keys`'s primary key; the other keys are
/// probed by primary key per statement.
pub async fn page(
    pool: &PgPool,
    readable: Readable<'_>,
    filter: &Filter,
    limit: i64,
) -> Result<(Vec<Map<String, Value>>, Option<i64>), sqlx::Error> {
    let mut keys: Vec<String> = filter.keys.clone();
    if let Some(token) = readable.token() {
        keys.push(format!("token:{token}"));
    }
    let mut query = QueryBuilder::<Postgres>::new("SELECT s.seq, s.statement FROM ");
    let order_by = match keys.first() {
        Some(lead) => {
            query.push(
                "xapi_statement_keys k JOIN xapi_statements s ON s.seq = k.seq WHERE k.key = ",
            );
            query.push_bind(lead.clone());
            "k.seq"
        }
        None => {
            query.push("xapi_statements s WHERE true");
            "s.seq"
        }
    };
    for key in keys.iter().skip(1) {
        query.push(
            " AND EXISTS (SELECT 1 FROM xapi_statement_keys o WHERE o.seq = s.seq AND o.key = ",
        );
        query.push_bind(key.clone());
        query.push(")");
    }
    if let Some(since) = filter.since {
        query.push(" AND s.stored > ").push_bind(since);
    }
    if let Some(until) = filter.until {
        query.push(" AND s.stored <= ").push_bind(until);
    }
    if let Some(after) = filter.after {
        let compare = if filter.ascending { " > " } else { " < " };
        query
            .push(format!(" AND {order_by}{compare}"))
            .push_bind(after);
    }
    query.push(" AND NOT EXISTS (SELECT 1 FROM xapi_statements v WHERE v.voids = s.statement_id)");
    let direction = if filter.ascending { "ASC" } else { "DESC" };
    query.push(format!(" ORDER BY {order_by} {direction} LIMIT "));
    query.push_bind(limit + 1);
    let rows: Vec<(i64, sqlx::types::Json<Map<String, Value>>)> =
        query.build_query_as().fetch_all(pool).await?;
    let more = usize::try_from(limit).is_ok_and(|l| rows.len() > l);
    let mut statements: Vec<(i64, Map<String, Value>)> =
        rows.into_iter().map(|(seq, json)| (seq, json.0)).collect();
    if more {
        statements.pop();
    }
    let next = more
        .then(|| statements.last().map(|(seq, _)| *seq))
        .flatten();
    Ok((statements.into_iter().map(|(_, s)| s).collect(), next))
}

/// The activity definitions (`object.definition`) the newest `limit` statements with this key
/// gave (for instance `activity:<IRI>`), voided or not, newest first: one range of
/// `xapi_statement_keys`'s primary key, however many statements name the activity. Only the
/// definitions travel, not the statements.
pub async fn definitions_with_key(
    pool: &PgPool,
    key: &str,
    limit: i64,
) -> Result<Vec<Map<String, Value>>, sqlx::Error> {
    let rows: Vec<sqlx::types::Json<Map<String, Value>>> = sqlx::query_scalar(
        "SELECT d.definition
           FROM (SELECT k.seq, s.statement #> '{object,definition}' AS definition
                   FROM xapi_statement_keys k JOIN xapi_statements s ON s.seq = k.seq
                  WHERE k.key = $1 ORDER BY k.seq DESC LIMIT $2) d
          WHERE jsonb_typeof(d.definition) = 'object'
          ORDER BY d.seq DESC",
    )
    .bind(key)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|json| json.0).collect())
}
