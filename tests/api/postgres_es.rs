//! The event store keeps postgres-es's tables, so postgres-es itself can read them: every
//! member of a generated ledger, loaded through postgres-es's own `PostgresEventRepository`
//! and `PersistedEventStore` (from the events alone, and from snapshot and tail), is the same
//! aggregate, at the same sequence, as our `LedgerStore` loads.

use cqrs_es::persist::PersistedEventStore;
use cqrs_es::EventStore;
use postgres_es::PostgresEventRepository;
use studyledger::jobs::demo::{self, DemoPlan};
use studyledger_aggregates::member::Member;

use crate::helpers::TestApp;

#[tokio::test]
async fn postgres_es_loads_every_member_as_our_store_does() {
    let app = TestApp::spawn().await;
    let ledger = app.ledger();
    // Demo members average ~150 events: most have a snapshot (every 100 events) and a tail.
    let plan = DemoPlan {
        members: 24,
        ..DemoPlan::default()
    };
    demo::load(&ledger, &plan).await.expect("demo data");
    let member_ids: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT aggregate_id FROM events WHERE aggregate_type = 'member' ORDER BY 1",
    )
    .fetch_all(&app.pool)
    .await
    .expect("members");
    assert_eq!(member_ids.len(), 24);
    let snapshots: i64 =
        sqlx::query_scalar("SELECT count(*) FROM snapshots WHERE aggregate_type = 'member'")
            .fetch_one(&app.pool)
            .await
            .expect("snapshots");
    assert!(snapshots > 0, "some streams are long enough for a snapshot");
    let events_only: PersistedEventStore<PostgresEventRepository, Member> =
        PersistedEventStore::new_event_store(PostgresEventRepository::new(app.pool.clone()));
    let with_snapshots: PersistedEventStore<PostgresEventRepository, Member> =
        PersistedEventStore::new_snapshot_store(
            PostgresEventRepository::new(app.pool.clone()),
            100,
        );
    for id in &member_ids {
        let (ours, sequence) = ledger.read::<Member>(id).await.expect("our load");
        assert!(ours.enrolment().is_some() && sequence > 1);
        for theirs in [&events_only, &with_snapshots] {
            let loaded = theirs.load_aggregate(id).await.expect("postgres-es's load");
            assert_eq!(loaded.aggregate, ours, "member {id}");
            assert_eq!(loaded.current_sequence, sequence, "member {id}");
        }
    }
}
