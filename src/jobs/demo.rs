//! `studyledger demo-data`: the data set of DESIGN §6, loaded through the real command path.
//!
//! One city, one company with branches and party cells, 500 members over the twelve quarters
//! before the current one, about 60,000 class hours in all (≈ 10 per member and quarter, as in
//! the origin's report). Most members meet 8 + 3 every quarter; some fall short; some join
//! mid-way and are exempt for their first quarter. The generator is seeded, so every load is
//! the same data set.
//!
//! The same generator makes the ledgers of the read benchmark ([`DemoPlan::national`]): a
//! national tree six levels deep, a year of history and two courses a quarter (one of them
//! credited on completion alone), so that a member has about a dozen events and a million
//! members fit in a few gigabytes; each member is still studied, judged and placed the same
//! way.
//!
//! Demo commands go through `Ledger::execute` like any other, on a pool of their own with
//! `synchronous_commit = off`: each command is still its own committed transaction, but a
//! crash in the last fraction of a second of a demo load may lose its tail — acceptable for
//! demo data, and it keeps the load well under the 30-second target.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Instant;

use chrono::{Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use futures::stream::{self, StreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::postgres::PgConnectOptions;
use studyledger_aggregates::course::{Course, CourseCommand, CourseRecord};
use studyledger_aggregates::facts::{CourseTerms, Enrolment};
use studyledger_aggregates::member::command::{Depart, RecordCompletion, RecordStudySession};
use studyledger_aggregates::member::{Clock, Member, MemberCommand};
use studyledger_aggregates::organisation::{Organisation, OrganisationCommand, OrganisationRecord};
use studyledger_aggregates::values::text::Text;
use studyledger_aggregates::values::{Category, Hours, OrgId, Quarter, Slug};

use crate::jobs::progress::Progress;
use crate::ledger::{Ledger, LedgerSettings, Stored};
use crate::store::database;
use crate::store::member_numbers;
use crate::store::record::Metadata;
use crate::JobError;

#[derive(Debug, Clone)]
pub struct DemoPlan {
    pub members: usize,
    pub concurrency: usize,
    pub seed: u64,
    /// Quarters of history before the current one.
    pub quarters: usize,
    /// The organisation tree; members are spread over its leaves in turn.
    pub tree: DemoTree,
    /// The courses each quarter offers.
    pub catalogue: Catalogue,
    /// Send the members' commands round by round (every member's first, then every member's
    /// second, …) rather than member by member: a member's events then lie far apart in the
    /// event table, as a year of real traffic leaves them, instead of side by side.
    pub interleaved: bool,
    /// Members who stop studying one quarter (one in twenty-five), and whether they leave.
    pub leavers: Leavers,
}

/// Members who stop studying, and what the ledger records of them (rule 12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leavers {
    /// Nobody stops (the read benchmark's ledger).
    None,
    /// They stop, and nothing says they left: non-compliant every quarter from then on, as
    /// before rule 12.
    Stay,
    /// They stop, and a departure is recorded early in the next quarter.
    Leave,
}

impl Default for DemoPlan {
    fn default() -> Self {
        DemoPlan {
            members: 500,
            concurrency: 16,
            seed: 2018,
            quarters: 12,
            tree: DemoTree::City,
            catalogue: Catalogue::DEMO,
            interleaved: false,
            leavers: Leavers::Leave,
        }
    }
}

impl DemoPlan {
    /// The read benchmark's ledger: `members` members in a national tree six levels deep, the
    /// four quarters before the current one, each with [`Catalogue::NATIONAL`]'s two courses
    /// — most members meet 8 + 3 with a study session and two completions a quarter, about a
    /// dozen events in all — sent round by round, so that each member's events lie apart.
    pub fn national(members: usize) -> DemoPlan {
        DemoPlan {
            members,
            quarters: 4,
            tree: DemoTree::Nation,
            catalogue: Catalogue::NATIONAL,
            interleaved: true,
            leavers: Leavers::None,
            ..DemoPlan::default()
        }
    }
}

/// The organisation tree of a demo ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoTree {
    /// One city, one company, four branches, eight party cells (DESIGN §6).
    City,
    /// A nation: its 31 provinces, each with cities, companies, branches and party cells, two
    /// of each under each — six levels, 496 cells, 962 organisations.
    Nation,
}

/// The courses each quarter offers: `required` courses of `required_hours` each and
/// `elective` courses of `elective_hours` each, each asking `study_minutes_per_hour` minutes of
/// study in the app per class hour (0: credited on completion alone, e.g. an offline lecture
/// the app records). Most members take all of them; some take one of each category fewer (at
/// least one required course), a few one of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Catalogue {
    pub required: usize,
    pub required_hours: i64,
    pub elective: usize,
    pub elective_hours: i64,
    /// Minutes of study asked per class hour: (required, elective).
    pub study_minutes_per_hour: (u32, u32),
}

impl Catalogue {
    /// The demo's: four required courses of 2 hours, three electives of 1 hour, 30 minutes of
    /// study asked per hour.
    pub const DEMO: Catalogue = Catalogue {
        required: 4,
        required_hours: 2,
        elective: 3,
        elective_hours: 1,
        study_minutes_per_hour: (30, 30),
    };
    /// The read benchmark's: one required course of 8 hours (4 hours of study asked) and one
    /// elective of 3 hours credited on completion — a study session and two completions make a
    /// compliant quarter.
    pub const NATIONAL: Catalogue = Catalogue {
        required: 1,
        required_hours: 8,
        elective: 1,
        elective_hours: 3,
        study_minutes_per_hour: (30, 0),
    };
}

/// Loads the demo data into the ledger's database, on a pool of its own (see the module doc).
pub async fn load(ledger: &Ledger, plan: &DemoPlan) -> Result<(), JobError> {
    let options: PgConnectOptions = (*ledger.pool().connect_options()).clone();
    let pool = database::pool_options(u32::try_from(plan.concurrency).unwrap_or(16))
        .connect_with(options.options([("synchronous_commit", "off")]))
        .await?;
    let demo_ledger = Ledger::new(
        pool,
        ledger.tz(),
        &LedgerSettings {
            member_cache: plan.members.max(1),
            write_connections: plan.concurrency.max(1),
            ..LedgerSettings::default()
        },
    );
    let started = Instant::now();
    let data = DemoData::generate(plan, ledger.tz(), Utc::now().date_naive());
    let commands = data.command_count() as u64;
    let progress = Progress::new("demo data", commands);
    let meta = Metadata::system("demo-data");

    for org in &data.organisations {
        execute::<Organisation>(
            &demo_ledger,
            org.org_id.as_str(),
            OrganisationCommand::Register(org.clone()),
            &meta,
        )
        .await?;
        progress.advance(1);
    }
    for course in &data.courses {
        execute::<Course>(
            &demo_ledger,
            course.course_id.as_str(),
            CourseCommand::Register(course.clone()),
            &meta,
        )
        .await?;
        progress.advance(1);
    }
    let longest = data
        .members
        .iter()
        .map(|m| m.commands.len())
        .max()
        .unwrap_or(0);
    let rounds: Vec<std::ops::Range<usize>> = if plan.interleaved {
        (0..longest).map(|round| round..round + 1).collect()
    } else {
        std::iter::once(0..longest).collect()
    };
    for commands in rounds {
        let results: Vec<Result<(), JobError>> = stream::iter(&data.members)
            .map(|member| send(&demo_ledger, member, commands.clone(), &progress, &meta))
            .buffer_unordered(plan.concurrency.max(1))
            .collect()
            .await;
        results.into_iter().collect::<Result<Vec<()>, _>>()?;
    }
    progress.finish();
    // The demo's numbers are distinct by construction; each member now holds theirs.
    let mut connection = demo_ledger.pool().acquire().await?;
    member_numbers::claim_enrolled(&mut connection).await?;
    let seconds = started.elapsed().as_secs_f64();
    tracing::info!(
        commands,
        seconds = format!("{seconds:.1}"),
        rate = format!("{:.0}/s", commands as f64 / seconds),
        hours = %data.planned_hours,
        "demo data loaded"
    );
    eprintln!(
        "demo data: {commands} commands for {} members in {seconds:.1} s ({:.0} commands/s), {} class hours completed",
        data.members.len(),
        commands as f64 / seconds,
        data.planned_hours
    );
    Ok(())
}

/// Sends a member's commands in `range` (those it has), one after another.
async fn send(
    ledger: &Arc<Ledger>,
    member: &DemoMember,
    range: std::ops::Range<usize>,
    progress: &Progress,
    meta: &Metadata,
) -> Result<(), JobError> {
    let id = member.enrolment.member_id.to_string();
    let last = range.end.min(member.commands.len());
    let commands = member
        .commands
        .get(range.start.min(last)..last)
        .unwrap_or_default();
    for command in commands {
        execute::<Member>(ledger, &id, command.clone(), meta).await?;
        progress.advance(1);
    }
    Ok(())
}

async fn execute<A>(
    ledger: &Arc<Ledger>,
    id: &str,
    command: A::Command,
    meta: &Metadata,
) -> Result<(), JobError>
where
    A: Stored + 'static,
    A::Command: Clone + Send + 'static,
    A::Error: Send + Sync + 'static,
{
    ledger
        .execute::<A, ()>(id, command, meta, |_| ())
        .await
        .map_err(|e| format!("demo command on {} {id}: {e}", A::TYPE))?;
    Ok(())
}

struct DemoMember {
    enrolment: Enrolment,
    commands: Vec<MemberCommand>,
}

struct DemoData {
    organisations: Vec<OrganisationRecord>,
    courses: Vec<CourseRecord>,
    members: Vec<DemoMember>,
    planned_hours: Hours,
}

const SURNAMES: [&str; 16] = [
    "林", "陈", "黄", "张", "吴", "王", "李", "郑", "刘", "杨", "许", "蔡", "洪", "谢", "郭", "何",
];
const GIVEN: [&str; 16] = [
    "晓", "静", "伟", "芳", "建", "华", "敏", "强", "丽", "军", "燕", "斌", "婷", "峰", "红", "明",
];

fn slug(raw: &str) -> Slug {
    Slug::from_str(raw).unwrap_or_else(|_| unreachable!("demo ids are valid slugs: {raw}"))
}

fn text<const MAX: usize, const LINES: bool>(raw: String) -> Text<MAX, LINES> {
    Text::parse(raw).unwrap_or_else(|e| unreachable!("demo text is valid: {e}"))
}

impl DemoData {
    fn generate(plan: &DemoPlan, tz: Tz, today: NaiveDate) -> DemoData {
        let current = Quarter::of_date(today);
        let mut first = current;
        for _ in 0..plan.quarters.max(1) {
            first = first.previous();
        }
        let last = current.previous();
        let quarters: Vec<Quarter> = first.through(last).collect();

        let organisations = match plan.tree {
            DemoTree::City => demo_organisations(),
            DemoTree::Nation => national_organisations(),
        };
        let cells: Vec<OrgId> = organisations
            .iter()
            .filter(|o| o.org_id.as_str().contains("-cell-"))
            .map(|o| o.org_id.clone())
            .collect();

        let courses = demo_courses(&quarters, plan.catalogue);

        let mut planned_hours = Hours::ZERO;
        let members = (0..plan.members)
            .map(|index| {
                let mut rng =
                    StdRng::seed_from_u64(plan.seed.wrapping_mul(1_000_003) + index as u64);
                let member = demo_member(
                    index,
                    &mut rng,
                    (&quarters, &courses, &cells),
                    plan.leavers,
                    tz,
                );
                planned_hours = planned_hours.plus(member.1);
                member.0
            })
            .collect();
        DemoData {
            organisations,
            courses,
            members,
            planned_hours,
        }
    }

    fn command_count(&self) -> usize {
        self.organisations.len()
            + self.courses.len()
            + self.members.iter().map(|m| m.commands.len()).sum::<usize>()
    }
}

/// Each quarter's courses, as the catalogue says.
fn demo_courses(quarters: &[Quarter], catalogue: Catalogue) -> Vec<CourseRecord> {
    let minutes =
        |hours: i64, per_hour: u32| u32::try_from(hours * i64::from(per_hour)).unwrap_or(u32::MAX);
    let (required_study, elective_study) = catalogue.study_minutes_per_hour;
    let mut courses = Vec::new();
    for quarter in quarters {
        let tag = format!("{}q{}", quarter.year(), quarter.number());
        for n in 1..=catalogue.required {
            courses.push(CourseRecord {
                course_id: slug(&format!("req-{tag}-{n}")),
                title: text(format!("{quarter} 必修课 {n}")),
                category: Category::Required,
                credit_hours: Hours::whole(catalogue.required_hours),
                min_study_minutes: minutes(catalogue.required_hours, required_study),
            });
        }
        for n in 1..=catalogue.elective {
            courses.push(CourseRecord {
                course_id: slug(&format!("elec-{tag}-{n}")),
                title: text(format!("{quarter} 选修课 {n}")),
                category: Category::Elective,
                credit_hours: Hours::whole(catalogue.elective_hours),
                min_study_minutes: minutes(catalogue.elective_hours, elective_study),
            });
        }
    }
    courses
}

/// The root of the national tree.
pub const NATIONAL_ROOT: &str = "cn";
/// A leaf of the national tree: the first party cell, six levels down.
pub const NATIONAL_LEAF: &str = "cn-p01-c1-co1-b1-cell-1";

/// The provinces of the national tree (provincial-level divisions), in the usual order.
const PROVINCES: [&str; 31] = [
    "北京市",
    "天津市",
    "河北省",
    "山西省",
    "内蒙古自治区",
    "辽宁省",
    "吉林省",
    "黑龙江省",
    "上海市",
    "江苏省",
    "浙江省",
    "安徽省",
    "福建省",
    "江西省",
    "山东省",
    "河南省",
    "湖北省",
    "湖南省",
    "广东省",
    "广西壮族自治区",
    "海南省",
    "重庆市",
    "四川省",
    "贵州省",
    "云南省",
    "西藏自治区",
    "陕西省",
    "甘肃省",
    "青海省",
    "宁夏回族自治区",
    "新疆维吾尔自治区",
];
/// How many children every node below a province has.
const FAN_OUT: usize = 2;

/// The national tree, parents first: `cn` (全国) → `cn-p01` (北京市) → `cn-p01-c1` (北京市第1市)
/// → `cn-p01-c1-co1` (…第1公司) → `cn-p01-c1-co1-b1` (…第1分公司) → `cn-p01-c1-co1-b1-cell-1`
/// (…第1党支部).
fn national_organisations() -> Vec<OrganisationRecord> {
    let node = |org_id: &str, name: &str, parent_id: &str| OrganisationRecord {
        org_id: slug(org_id),
        name: text(name.to_owned()),
        parent_id: Some(slug(parent_id)),
    };
    let mut orgs = vec![OrganisationRecord {
        org_id: slug(NATIONAL_ROOT),
        name: text("全国".to_owned()),
        parent_id: None,
    }];
    let mut level: Vec<(String, String)> = Vec::new();
    for (n, province) in PROVINCES.iter().enumerate() {
        let org_id = format!("{NATIONAL_ROOT}-p{:02}", n + 1);
        orgs.push(node(&org_id, province, NATIONAL_ROOT));
        level.push((org_id, (*province).to_owned()));
    }
    for (suffix, kind) in [
        ("-c", "市"),
        ("-co", "公司"),
        ("-b", "分公司"),
        ("-cell-", "党支部"),
    ] {
        let mut next = Vec::new();
        for (parent, parent_name) in &level {
            for n in 1..=FAN_OUT {
                let org_id = format!("{parent}{suffix}{n}");
                let name = format!("{parent_name}第{n}{kind}");
                orgs.push(node(&org_id, &name, parent));
                next.push((org_id, name));
            }
        }
        level = next;
    }
    orgs
}

fn demo_organisations() -> Vec<OrganisationRecord> {
    let mut orgs = vec![
        OrganisationRecord {
            org_id: slug("fuzhou"),
            name: text("福州市".to_owned()),
            parent_id: None,
        },
        OrganisationRecord {
            org_id: slug("fz-company"),
            name: text("福州某集团公司".to_owned()),
            parent_id: Some(slug("fuzhou")),
        },
    ];
    for branch in 1..=4 {
        let branch_id = format!("fz-branch-{branch}");
        orgs.push(OrganisationRecord {
            org_id: slug(&branch_id),
            name: text(format!("第{branch}分公司党委")),
            parent_id: Some(slug("fz-company")),
        });
        for cell in 1..=2 {
            orgs.push(OrganisationRecord {
                org_id: slug(&format!("{branch_id}-cell-{cell}")),
                name: text(format!("第{branch}分公司第{cell}党支部")),
                parent_id: Some(slug(&branch_id)),
            });
        }
    }
    orgs
}

/// One member's commands, in the order an app would send them, and the hours completed.
fn demo_member(
    index: usize,
    rng: &mut StdRng,
    (quarters, courses, cells): (&[Quarter], &[CourseRecord], &[OrgId]),
    leavers: Leavers,
    tz: Tz,
) -> (DemoMember, Hours) {
    let enrolment = demo_enrolment(index, rng, quarters, cells);
    let mut commands = vec![MemberCommand::Enrol(enrolment.clone())];
    let mut hours = Hours::ZERO;
    let clock = Clock {
        now: Utc::now(),
        tz,
    };
    // One in twenty-five stops studying from some quarter on (after the fourth), and may
    // leave early in it (after its first day, so after the last session has ended): the same
    // draws whether the departure is recorded or not.
    let stop = (leavers != Leavers::None && rng.random_bool(0.04))
        .then(|| rng.random_range(4..quarters.len().max(5)))
        .and_then(|at| quarters.get(at).map(|q| (*q, rng.random_range(1..30))))
        .filter(|(quarter, _)| quarter.first_day() > enrolment.enrolled_on);
    for quarter in quarters {
        if quarter.last_day() < enrolment.enrolled_on {
            continue;
        }
        if let Some((stopped, after)) = stop.filter(|(q, _)| q == quarter) {
            if leavers == Leavers::Leave {
                commands.push(MemberCommand::Depart(Depart {
                    departure_id: uuid::Builder::from_random_bytes(rng.random()).into_uuid(),
                    left_on: stopped.first_day() + Duration::days(after),
                    reason: text("调离".to_owned()),
                    clock,
                }));
            }
            break;
        }
        let chosen = courses_studied(rng, *quarter, courses);
        // Distinct days inside the quarter, on or after enrolment: one course a day.
        let start_day = quarter.first_day().max(enrolment.enrolled_on);
        let days = study_days(rng, start_day, quarter.last_day(), chosen.len());
        for (course, day) in chosen.iter().zip(days) {
            if let Some(studied) = study_and_complete(rng, course, day, clock) {
                commands.extend(studied);
                hours = hours.plus(course.credit_hours);
            }
        }
    }
    let member = DemoMember {
        enrolment,
        commands,
    };
    (member, hours)
}

/// Who the member is: one in ten joins during the twelve quarters; the others joined shortly
/// before the first one (their enrolment quarter is exempt, so no quarter is empty for lack of
/// data).
fn demo_enrolment(
    index: usize,
    rng: &mut StdRng,
    quarters: &[Quarter],
    cells: &[OrgId],
) -> Enrolment {
    let first_day = quarters[0].first_day();
    let enrolled_on = if rng.random_bool(0.1) {
        first_day + Duration::days(rng.random_range(1..(quarters.len() as i64 * 91 - 30)))
    } else {
        first_day - Duration::days(rng.random_range(0..60))
    };
    let name = format!(
        "{}{}{}",
        SURNAMES[rng.random_range(0..SURNAMES.len())],
        GIVEN[rng.random_range(0..GIVEN.len())],
        GIVEN[rng.random_range(0..GIVEN.len())]
    );
    Enrolment {
        member_id: uuid::Builder::from_random_bytes(rng.random()).into_uuid(),
        member_no: text(format!("FZ-{:05}", index + 1)),
        name: text(name),
        org_id: cells[index % cells.len()].clone(),
        enrolled_on,
    }
}

/// The courses of the quarter a member studies: most members meet 8 + 3; some fall short, a
/// few barely study.
fn courses_studied<'a>(
    rng: &mut StdRng,
    quarter: Quarter,
    courses: &'a [CourseRecord],
) -> Vec<&'a CourseRecord> {
    let tag = format!("-{}q{}-", quarter.year(), quarter.number());
    let tag = tag.as_str();
    let of_quarter = |category| {
        courses
            .iter()
            .filter(move |c| c.course_id.as_str().contains(tag) && c.category == category)
    };
    let offered = |category| of_quarter(category).count();
    let (all_required, all_elective) = (offered(Category::Required), offered(Category::Elective));
    let (required, elective) = match rng.random_range(0..100) {
        0..80 => (all_required, all_elective),
        80..95 => (
            all_required.saturating_sub(1).max(1),
            all_elective.saturating_sub(1),
        ),
        _ => (1, 1),
    };
    of_quarter(Category::Required)
        .take(required)
        .chain(of_quarter(Category::Elective).take(elective))
        .collect()
}

/// `wanted` distinct days from `first` to `last` (fewer when the span is shorter), in order.
fn study_days(
    rng: &mut StdRng,
    first: NaiveDate,
    last: NaiveDate,
    wanted: usize,
) -> Vec<NaiveDate> {
    let span = (last - first).num_days().max(0) + 1;
    let mut days: Vec<i64> = Vec::new();
    while days.len() < wanted.min(span as usize) {
        let day = rng.random_range(0..span);
        if !days.contains(&day) {
            days.push(day);
        }
    }
    days.sort_unstable();
    days.into_iter()
        .map(|day| first + Duration::days(day))
        .collect()
}

/// A session on `day` a little longer than the course asks for, ending before 22:00 local
/// time, and the completion a minute after it; only the completion for a course that asks for
/// no study time. `None` for a local time that does not exist.
fn study_and_complete(
    rng: &mut StdRng,
    course: &CourseRecord,
    day: NaiveDate,
    clock: Clock,
) -> Option<Vec<MemberCommand>> {
    let longest = i64::from(course.min_study_minutes) + 39;
    let latest_hour = (22 - (longest + 59) / 60).clamp(9, 20) as u32;
    let local_start = day.and_time(
        NaiveTime::from_hms_opt(rng.random_range(8..latest_hour), rng.random_range(0..60), 0)
            .unwrap_or_default(),
    );
    let started_at = clock
        .tz
        .from_local_datetime(&local_start)
        .single()?
        .with_timezone(&Utc);
    let minutes = i64::from(course.min_study_minutes) + rng.random_range(0..40);
    let ended_at = started_at + Duration::minutes(minutes);
    let terms: CourseTerms = course.terms();
    let mut commands = Vec::with_capacity(2);
    if course.min_study_minutes > 0 {
        commands.push(MemberCommand::RecordStudySession(RecordStudySession {
            session_id: uuid::Builder::from_random_bytes(rng.random()).into_uuid(),
            course: terms.clone(),
            started_at,
            ended_at,
            source: None,
            clock,
        }));
    }
    commands.push(MemberCommand::RecordCompletion(RecordCompletion {
        completion_id: uuid::Builder::from_random_bytes(rng.random()).into_uuid(),
        course: terms,
        completed_at: ended_at + Duration::minutes(1),
        source: None,
        clock,
    }));
    Some(commands)
}

#[cfg(test)]
mod tests {
    use super::*;
    use studyledger_aggregates::values::local_date;

    #[test]
    fn the_demo_data_set_matches_the_origin_in_size() {
        let plan = DemoPlan::default();
        let today = NaiveDate::from_ymd_opt(2026, 11, 25).expect("date");
        let data = DemoData::generate(&plan, chrono_tz::Asia::Shanghai, today);
        assert_eq!(data.members.len(), 500);
        let hours = data.planned_hours.hundredths() / 100;
        assert!(
            (50_000..=65_000).contains(&hours),
            "about 60,000 class hours, got {hours}"
        );
        let again = DemoData::generate(&plan, chrono_tz::Asia::Shanghai, today);
        assert_eq!(
            again.planned_hours, data.planned_hours,
            "seeded: the same every time"
        );
    }

    #[test]
    fn one_in_twenty_five_members_stops_studying_and_leaves_unless_told_to_stay() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 25).expect("date");
        let tz = chrono_tz::Asia::Shanghai;
        let leave = DemoData::generate(&DemoPlan::default(), tz, today);
        let stay = DemoData::generate(
            &DemoPlan {
                leavers: Leavers::Stay,
                ..DemoPlan::default()
            },
            tz,
            today,
        );
        let departures = |data: &DemoData| {
            data.members
                .iter()
                .filter(|m| {
                    m.commands
                        .iter()
                        .any(|c| matches!(c, MemberCommand::Depart(_)))
                })
                .count()
        };
        let leaving = departures(&leave);
        assert!(
            (10..=35).contains(&leaving),
            "about 20 of 500, got {leaving}"
        );
        assert_eq!(departures(&stay), 0);
        assert_eq!(
            leave.planned_hours, stay.planned_hours,
            "the same study either way"
        );
        for member in &leave.members {
            let Some(MemberCommand::Depart(departure)) = member.commands.last() else {
                continue;
            };
            let dated = |c: &MemberCommand| match c {
                MemberCommand::RecordStudySession(s) => Some(local_date(s.ended_at, tz)),
                MemberCommand::RecordCompletion(c) => Some(local_date(c.completed_at, tz)),
                _ => None,
            };
            assert!(
                member
                    .commands
                    .iter()
                    .filter_map(dated)
                    .all(|day| day < departure.left_on),
                "nothing studied from the day they leave"
            );
        }
    }

    #[test]
    fn the_national_plan_is_six_levels_deep_with_a_year_of_history_and_a_dozen_events_a_member() {
        let plan = DemoPlan::national(2_000);
        let tz = chrono_tz::Asia::Shanghai;
        let today = NaiveDate::from_ymd_opt(2026, 11, 25).expect("date");
        let data = DemoData::generate(&plan, tz, today);
        let parent_of: std::collections::HashMap<&str, Option<&str>> = data
            .organisations
            .iter()
            .map(|o| (o.org_id.as_str(), o.parent_id.as_ref().map(Slug::as_str)))
            .collect();
        let depth = |org: &str| {
            let (mut org, mut depth) = (org.to_owned(), 1);
            while let Some(Some(parent)) = parent_of.get(org.as_str()) {
                depth += 1;
                org = (*parent).to_owned();
            }
            depth
        };
        let leaves: std::collections::HashSet<&str> = data
            .members
            .iter()
            .map(|m| m.enrolment.org_id.as_str())
            .collect();
        assert_eq!(data.organisations.len(), 962);
        assert_eq!(depth(NATIONAL_ROOT), 1);
        assert_eq!(depth(NATIONAL_LEAF), 6);
        assert_eq!(leaves.len(), 496, "members are spread over every cell");
        assert!(leaves.contains(NATIONAL_LEAF));
        assert!(
            leaves.iter().all(|leaf| depth(leaf) == 6),
            "members sit six levels down"
        );
        let events: usize = data.members.iter().map(|m| m.commands.len()).sum();
        let per_member = events as f64 / data.members.len() as f64;
        assert!(
            (10.0..=13.0).contains(&per_member),
            "about a dozen events a member, got {per_member:.1}"
        );
        // A year of history, all of it before the current quarter (whose sessions are the
        // benchmark's own).
        let current = Quarter::of_date(today);
        let quarters: std::collections::BTreeSet<Quarter> = data
            .members
            .iter()
            .flat_map(|m| &m.commands)
            .filter_map(|c| match c {
                MemberCommand::RecordStudySession(s) => Some(s.ended_at),
                MemberCommand::RecordCompletion(r) => Some(r.completed_at),
                _ => None,
            })
            .map(|instant| Quarter::of_instant(instant, tz))
            .collect();
        assert_eq!(quarters.len(), 4);
        assert!(quarters.iter().all(|q| *q < current));
        // In the last quarter most members meet 8 + 3, and some fall short.
        let last = Quarter::new(2026, 3).expect("quarter");
        let completions = |member: &DemoMember| {
            member
                .commands
                .iter()
                .filter(|c| {
                    matches!(c, MemberCommand::RecordCompletion(r)
                        if Quarter::of_instant(r.completed_at, tz) == last)
                })
                .count()
        };
        let meeting = data.members.iter().filter(|m| completions(m) == 2).count();
        let short = data.members.iter().filter(|m| completions(m) == 1).count();
        assert!(
            meeting > 4 * short && short > 0,
            "{meeting} members meet 8 + 3, {short} fall short"
        );
    }
}
