//! Timing reads on a served ledger: `studyledger serve` as a process of its own on each
//! ledger (as in production, projector included), 16 readers (by default) asking one route at
//! a time as fast as they are answered, while a background task records study sessions at a
//! steady rate and the projector's lag is sampled from `/metrics`. Latencies are taken by the
//! client, request sent to answer read in full. Each reader picks members uniformly at random,
//! and starts each status page at a random place in the root's list (a random member id as
//! the keyset cursor), so that no read is served from a few hot pages at either size.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use sqlx::ConnectOptions;
use studyledger_aggregates::values::{local_date, Quarter};
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::bench::reads::ledgers::Built;
use crate::bench::{free_port, percentile, sample_lag, start_service, wait_until_ready};
use crate::jobs::demo::{NATIONAL_LEAF, NATIONAL_ROOT};
use crate::store::{database, streams};
use crate::JobError;

/// The bootstrap administrator of the services the benchmark starts (on its own databases).
const ADMIN: &str = "bench-reads-administrator-token-0123456789";
/// The course the background's study sessions name, registered on each ledger.
const COURSE: &str = "bench-reads-course";
/// How often the projector's lag is sampled.
const LAG_EVERY: Duration = Duration::from_millis(50);
/// The time zone of the benchmark's ledgers (`serve`'s default).
const TZ: chrono_tz::Tz = chrono_tz::Asia::Shanghai;

/// A measured read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    MemberCompliance,
    MemberLedger,
    RollUpRoot,
    RollUpLeaf,
    StatusPage,
}

impl Route {
    pub const ALL: [Route; 5] = [
        Route::MemberCompliance,
        Route::MemberLedger,
        Route::RollUpRoot,
        Route::RollUpLeaf,
        Route::StatusPage,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Route::MemberCompliance => "member compliance",
            Route::MemberLedger => "member ledger",
            Route::RollUpRoot => "roll-up at the root",
            Route::RollUpLeaf => "roll-up at a leaf",
            Route::StatusPage => "status page of the root",
        }
    }

    /// The p99 this read should stay under, in milliseconds, when there is an aim.
    pub fn aim_ms(self) -> Option<f64> {
        match self {
            Route::MemberCompliance => Some(5.0),
            Route::MemberLedger => None,
            Route::RollUpRoot | Route::RollUpLeaf => Some(10.0),
            Route::StatusPage => Some(20.0),
        }
    }

    /// The request, for a member chosen at random (the member reads), a random place in the
    /// root's list of members to start the page at (the status page), and the quarter.
    pub fn path(self, member: &str, cursor: Option<Uuid>, quarter: Quarter) -> String {
        let cursor = cursor.map_or(String::new(), |cursor| format!("&cursor={cursor}"));
        match self {
            Route::MemberCompliance => format!("/v1/members/{member}/compliance"),
            Route::MemberLedger => format!("/v1/members/{member}/ledger"),
            Route::RollUpRoot => format!("/v1/orgs/{NATIONAL_ROOT}/compliance?quarter={quarter}"),
            Route::RollUpLeaf => format!("/v1/orgs/{NATIONAL_LEAF}/compliance?quarter={quarter}"),
            Route::StatusPage => format!(
                "/v1/orgs/{NATIONAL_ROOT}/members?quarter={quarter}&status=non_compliant&limit=50{cursor}"
            ),
        }
    }
}

/// The last quarter that has ended: the one the roll-ups and the status page ask about.
pub fn last_ended_quarter() -> Quarter {
    Quarter::of_date(local_date(Utc::now(), TZ)).previous()
}

/// A ledger served by a `studyledger serve` of its own, and the members reads choose from.
pub struct Service {
    child: tokio::process::Child,
    base: String,
    http: reqwest::Client,
    members: Arc<Vec<String>>,
}

impl Service {
    /// Starts the service on a ledger, registers the background's course, and reads the
    /// ledger's member ids.
    pub async fn start(built: &Built, readers: usize) -> Result<Service, JobError> {
        let port = free_port()?;
        let child = start_service(built.options.to_url_lossy().as_str(), port, ADMIN)?;
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {ADMIN}").parse()?,
        );
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(readers * 2 + 16)
            .default_headers(headers)
            .build()?;
        let base = format!("http://127.0.0.1:{port}");
        wait_until_ready(&http, &base).await?;
        let course = http
            .post(format!("{base}/v1/courses"))
            .json(
                &json!({"course_id": COURSE, "title": "Bench", "category": "elective",
                          "credit_hours": 1, "min_study_minutes": 0}),
            )
            .send()
            .await?;
        if !course.status().is_success() {
            return Err(format!("registering the course: {}", course.status()).into());
        }
        let pool = database::pool_options(1)
            .connect_with(built.options.clone())
            .await?;
        let members = streams::member_ids(&pool).await?;
        pool.close().await;
        if members.is_empty() {
            return Err("the ledger has no members".into());
        }
        Ok(Service {
            child,
            base,
            http,
            members: Arc::new(members),
        })
    }

    /// How many members the status page lists (it should be full: 50).
    pub async fn status_page_length(&self, quarter: Quarter) -> Result<usize, JobError> {
        let url = format!("{}{}", self.base, Route::StatusPage.path("", None, quarter));
        let page: serde_json::Value = self.http.get(url).send().await?.json().await?;
        Ok(page["members"].as_array().map_or(0, Vec::len))
    }

    pub async fn stop(mut self) -> Result<(), JobError> {
        self.child.kill().await?;
        Ok(())
    }
}

/// What one route gave at one size: client-side latencies in seconds, sorted.
pub struct Figures {
    pub latencies: Vec<f64>,
    pub seconds: f64,
    /// Answers that said `x-views-behind: true`.
    pub behind: usize,
    /// The projector's lag sampled meanwhile, in seconds, sorted.
    pub lag: Vec<f64>,
}

impl Figures {
    pub fn p50_ms(&self) -> f64 {
        percentile(&self.latencies, 0.5) * 1000.0
    }

    pub fn p99_ms(&self) -> f64 {
        percentile(&self.latencies, 0.99) * 1000.0
    }

    pub fn lag_p99_ms(&self) -> f64 {
        percentile(&self.lag, 0.99) * 1000.0
    }

    pub fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.seconds
    }
}

/// What the background writer did: sessions sent, answered 201, their latencies (sorted),
/// and the first refusals.
#[derive(Default)]
pub struct Writes {
    pub latencies: Vec<f64>,
    pub refused: Vec<String>,
}

/// How long the readers read, and how hard the background writes.
pub struct Plan {
    pub readers: usize,
    pub warm_up: f64,
    pub seconds: f64,
    pub write_rate: u32,
    pub quarter: Quarter,
}

/// One route at one size: the background writer starts, the readers warm up (not counted),
/// then read for the plan's seconds while the lag is sampled; answers the figures (the lag
/// samples with them) and what the writer did.
pub async fn measure(
    service: &Service,
    route: Route,
    plan: &Plan,
    slots: &Arc<SessionSlots>,
) -> Result<(Figures, Writes), JobError> {
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn(write_sessions(
        service.http.clone(),
        service.base.clone(),
        Arc::clone(&service.members),
        plan.write_rate,
        Arc::clone(slots),
        Arc::clone(&stop),
    ));
    read(service, route, plan, plan.warm_up, 1).await?;
    let sampler = tokio::spawn(sample_lag(
        service.http.clone(),
        service.base.clone(),
        plan.seconds,
        LAG_EVERY,
    ));
    let mut figures = read(service, route, plan, plan.seconds, 2).await?;
    figures.lag = sampler.await?;
    figures.lag.sort_by(f64::total_cmp);
    stop.store(true, Ordering::Relaxed);
    let writes = writer.await?;
    Ok((figures, writes))
}

/// `plan.readers` readers asking `route` for `seconds`, each as soon as its last answer came.
async fn read(
    service: &Service,
    route: Route,
    plan: &Plan,
    seconds: f64,
    seed: u64,
) -> Result<Figures, JobError> {
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let mut readers = JoinSet::new();
    for reader in 0..plan.readers {
        let (http, base, members) = (
            service.http.clone(),
            service.base.clone(),
            Arc::clone(&service.members),
        );
        let quarter = plan.quarter;
        let mut rng = StdRng::seed_from_u64(seed * 1_000 + reader as u64);
        readers.spawn(async move {
            let (mut latencies, mut behind) = (Vec::new(), 0);
            while Instant::now() < deadline {
                let member = &members[rng.random_range(0..members.len().max(1))];
                let cursor = uuid::Builder::from_random_bytes(rng.random()).into_uuid();
                let url = format!("{base}{}", route.path(member, Some(cursor), quarter));
                let started = Instant::now();
                let response = http.get(&url).send().await.map_err(|e| e.to_string())?;
                let status = response.status();
                behind += usize::from(response.headers().contains_key("x-views-behind"));
                response.bytes().await.map_err(|e| e.to_string())?;
                if status != reqwest::StatusCode::OK {
                    return Err(format!("GET {url} answered {status}"));
                }
                latencies.push(started.elapsed().as_secs_f64());
            }
            Ok::<_, String>((latencies, behind))
        });
    }
    let mut figures = Figures {
        latencies: Vec::new(),
        seconds,
        behind: 0,
        lag: Vec::new(),
    };
    while let Some(done) = readers.join_next().await {
        let (latencies, behind) = done??;
        figures.latencies.extend(latencies);
        figures.behind += behind;
    }
    figures.latencies.sort_by(f64::total_cmp);
    Ok(figures)
}

/// Where the background's study sessions lie: each takes a slot of its own, one after another
/// from the start of the current quarter, so none overlaps another (nor the history, which
/// lies in earlier quarters) and none ends after now.
pub struct SessionSlots {
    first: DateTime<Utc>,
    slot: chrono::Duration,
    next: AtomicI64,
    count: i64,
}

impl SessionSlots {
    /// Room for `sessions` sessions between the current quarter's start and now: slots of two
    /// minutes, shorter early in a quarter (two seconds at least).
    pub fn plan(sessions: u64) -> Result<Arc<SessionSlots>, JobError> {
        let now = Utc::now();
        let quarter = Quarter::of_date(local_date(now, TZ));
        let first = TZ
            .from_local_datetime(&quarter.first_day().and_time(chrono::NaiveTime::MIN))
            .earliest()
            .map_or(now, |t| t.with_timezone(&Utc));
        let count = i64::try_from(sessions.max(1)).unwrap_or(i64::MAX);
        let room = (now - first - chrono::Duration::minutes(1)).num_milliseconds();
        let slot = (room / count).min(120_000);
        if slot < 2_000 {
            return Err(format!(
                "the current quarter is too young for {sessions} background sessions: \
                 run later, or with a lower --write-rate"
            )
            .into());
        }
        Ok(Arc::new(SessionSlots {
            first,
            slot: chrono::Duration::milliseconds(slot),
            next: AtomicI64::new(0),
            count,
        }))
    }

    /// The next free slot's session: its first half.
    fn take(&self) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        (n < self.count).then(|| {
            let started_at = self.first + self.slot * i32::try_from(n).unwrap_or(i32::MAX);
            (started_at, started_at + self.slot / 2)
        })
    }
}

/// Records study sessions of random members at `rate` a second until `stop` is set, each in
/// a slot of its own; answers what was recorded and refused.
async fn write_sessions(
    http: reqwest::Client,
    base: String,
    members: Arc<Vec<String>>,
    rate: u32,
    slots: Arc<SessionSlots>,
    stop: Arc<AtomicBool>,
) -> Writes {
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate.max(1))));
    let mut rng = StdRng::seed_from_u64(u64::from(rate));
    let mut sent = JoinSet::new();
    while !stop.load(Ordering::Relaxed) {
        ticks.tick().await;
        let Some((started_at, ended_at)) = slots.take() else {
            break;
        };
        let member = &members[rng.random_range(0..members.len().max(1))];
        let request = http
            .post(format!("{base}/v1/members/{member}/study-sessions"))
            .json(&json!({"session_id": Uuid::new_v4(), "course_id": COURSE,
                          "started_at": started_at, "ended_at": ended_at}));
        sent.spawn(async move {
            let started = Instant::now();
            match request.send().await {
                Ok(r) if r.status() == reqwest::StatusCode::CREATED => {
                    Ok(started.elapsed().as_secs_f64())
                }
                Ok(r) => Err(format!(
                    "{} {}",
                    r.status(),
                    r.text().await.unwrap_or_default()
                )),
                Err(e) => Err(e.to_string()),
            }
        });
    }
    let mut writes = Writes::default();
    while let Some(done) = sent.join_next().await {
        match done {
            Ok(Ok(seconds)) => writes.latencies.push(seconds),
            Ok(Err(refusal)) => writes.refused.push(refusal),
            Err(e) => writes.refused.push(e.to_string()),
        }
    }
    writes.latencies.sort_by(f64::total_cmp);
    writes
}
