//! Roll-ups from counters (rule 7, at national scale): each member's part in the figures of
//! every (organisation, quarter), kept by the projector as sums per organisation so that a
//! roll-up at any depth reads a handful of rows instead of the subtree's members.
//!
//! A member's part has two kinds of figures, both keyed by the organisation the member belongs
//! to and by the rules version the member was folded under (rowless members are judged under
//! the rules known then, like any other read of the member):
//! - **membership**: +1 in the quarter a placement starts, −1 in the quarter it ends. The sum
//!   over the quarters up to Q counts the members who belong there on Q's last day — enrolled
//!   by then, transfers included (rule 7) — without a row per member and quarter, so a quarter
//!   that begins needs no work;
//! - **figures** of each quarter for which the member has any (credit, study, or it is their
//!   enrolment quarter, which decides whether they are exempt): counted once, in the
//!   organisation they belong to on the quarter's last day, with their status bucket under the
//!   rules known when folded (`not_met` is `in_progress` until the quarter ends, then
//!   `non_compliant`: a quarter that ends changes no counter) and their credited hours.
//!
//! Members without figures for a quarter hold nothing, so they are judged when read: zero
//! totals under their rules version. The counters sum members' parts; the projector adds the
//! difference between a member's part before and after each batch, and a replay the parts of
//! everybody.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::{AddAssign, Neg};

use chrono::{Days, NaiveDate};
use serde::Serialize;
use studyledger_aggregates::rules::credit::QuarterTotals;
use studyledger_aggregates::rules::eligibility::judge_quarter;
use studyledger_aggregates::rules::rulesets::Ruleset;
use studyledger_aggregates::rules::status::QuarterStatus;
use studyledger_aggregates::rules::tenure::Tenure;
use studyledger_aggregates::values::{Hours, Quarter};

use crate::fold::{quarter_compliance, quarter_shortfall};
use crate::rollup::RollUp;

/// What the counters need of a member: as the views hold it, or as a fold is about to write
/// it (both from the same rows, so that the difference of the two is exact).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    /// The enrolment and the periods away (rule 12).
    pub tenure: Tenure,
    /// Where the member belongs from a day on, as (day, sequence, organisation), sorted: the
    /// enrolment, then each transfer and rejoining (rule 7: on one day, the later sequence
    /// wins). The periods away cut them (see [`stays`]).
    pub placements: Vec<(NaiveDate, i64, String)>,
    pub rules_version: u32,
    /// The quarters with any credit or study, with their totals.
    pub quarters: BTreeMap<Quarter, QuarterTotals>,
}

/// The sums kept per (organisation, quarter, rules version).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Members who start (+) or stop (−) belonging here during the quarter.
    pub member_delta: i64,
    /// Members with figures for the quarter, counted here on its last day.
    pub counted: i64,
    pub compliant: i64,
    /// Neither compliant nor exempt: in progress, or non-compliant once the quarter ended.
    pub not_met: i64,
    pub exempt: i64,
    /// Their credited hours, required and elective, in hundredths.
    pub hundredths: i64,
}

impl AddAssign for Counts {
    fn add_assign(&mut self, other: Counts) {
        self.member_delta += other.member_delta;
        self.counted += other.counted;
        self.compliant += other.compliant;
        self.not_met += other.not_met;
        self.exempt += other.exempt;
        self.hundredths += other.hundredths;
    }
}

impl Neg for Counts {
    type Output = Counts;
    fn neg(self) -> Counts {
        Counts {
            member_delta: -self.member_delta,
            counted: -self.counted,
            compliant: -self.compliant,
            not_met: -self.not_met,
            exempt: -self.exempt,
            hundredths: -self.hundredths,
        }
    }
}

impl Counts {
    pub fn is_zero(&self) -> bool {
        *self == Counts::default()
    }
}

/// Where a part is counted: (organisation, quarter, rules version).
pub type Key = (String, Quarter, u32);

/// The rulesets a member folded under `rules_version` knew (rulesets come in version order).
pub fn known(rulesets: &[Ruleset], rules_version: u32) -> &[Ruleset] {
    &rulesets[..rulesets.partition_point(|r| r.version <= rules_version)]
}

/// Where the member belongs on `day` (rule 7); `None` before the enrolment and while away
/// (rule 12).
pub fn placement_on(standing: &Standing, day: NaiveDate) -> Option<&str> {
    if day < standing.tenure.enrolled_on || standing.tenure.away_on(day) {
        return None;
    }
    standing
        .placements
        .iter()
        .rev()
        .find(|(from, _, _)| *from <= day)
        .map(|(_, _, org)| org.as_str())
}

/// The figures of one quarter of a member, bucketed under the rules they knew.
pub fn quarter_counts(
    quarter: Quarter,
    totals: QuarterTotals,
    tenure: &Tenure,
    known: &[Ruleset],
) -> Counts {
    // Judged as if the quarter had ended: in progress and non-compliant share a bucket.
    let after = quarter.last_day() + Days::new(1);
    let status = judge_quarter(quarter, totals, tenure, known, after).status;
    if status == QuarterStatus::Left {
        // Not counted at all (rule 12); such a member is never placed on the last day.
        return Counts::default();
    }
    let mut counts = Counts {
        counted: 1,
        hundredths: totals.required.plus(totals.elective).hundredths(),
        ..Counts::default()
    };
    match status {
        QuarterStatus::Compliant => counts.compliant = 1,
        QuarterStatus::Exempt => counts.exempt = 1,
        QuarterStatus::NonCompliant | QuarterStatus::InProgress => counts.not_met = 1,
        QuarterStatus::Left => {}
    }
    counts
}

/// A member's part in the counters, by where it is counted.
pub fn contributions(standing: &Standing, rulesets: &[Ruleset]) -> BTreeMap<Key, Counts> {
    let v = standing.rules_version;
    let mut parts: BTreeMap<Key, Counts> = BTreeMap::new();
    let mut add = |org: &str, quarter: Quarter, counts: Counts| {
        *parts.entry((org.to_owned(), quarter, v)).or_default() += counts;
    };
    for stay in stays(standing) {
        let joined = Counts {
            member_delta: 1,
            ..Counts::default()
        };
        add(stay.org, Quarter::of_date(stay.from), joined);
        if let Some(until) = stay.until {
            add(stay.org, Quarter::of_date(until), -joined);
        }
    }
    for (org, quarter, counts) in figures(standing, rulesets) {
        add(org, quarter, counts);
    }
    parts.retain(|_, counts| !counts.is_zero());
    parts
}

/// A stretch of days a member belongs to one organisation: from `from` until the day before
/// `until` (for good while `None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stay<'a> {
    pub from: NaiveDate,
    pub sequence: i64,
    pub until: Option<NaiveDate>,
    pub org: &'a str,
}

/// The member's placements cut by their periods away (rule 12): each placement runs until
/// the next one, less the days away. The placements' view holds one row per stay, so the lists
/// of a subtree's members on a day leave out those away that day.
pub fn stays(standing: &Standing) -> Vec<Stay<'_>> {
    let mut stays = Vec::new();
    for (i, (from, sequence, org)) in standing.placements.iter().enumerate() {
        let end = standing.placements.get(i + 1).map(|next| next.0);
        let mut start = Some(*from);
        for away in &standing.tenure.away {
            let Some(begin) = start else { break };
            if end.is_some_and(|end| away.left_on >= end) {
                break;
            }
            if away.rejoined_on.is_some_and(|back| back <= begin) {
                continue;
            }
            if away.left_on > begin {
                stays.push(Stay {
                    from: begin,
                    sequence: *sequence,
                    until: Some(away.left_on),
                    org,
                });
            }
            start = away
                .rejoined_on
                .filter(|back| end.is_none_or(|end| *back < end));
        }
        if let Some(begin) = start {
            stays.push(Stay {
                from: begin,
                sequence: *sequence,
                until: end,
                org,
            });
        }
    }
    stays
}

/// The member's figures of each quarter that has any (credit, study, or the enrolment
/// quarter), with the organisation they are counted in: where they belong on its last day.
fn figures<'a>(
    standing: &'a Standing,
    rulesets: &'a [Ruleset],
) -> impl Iterator<Item = (&'a str, Quarter, Counts)> + 'a {
    let known = known(rulesets, standing.rules_version);
    let enrolment_quarter = Quarter::of_date(standing.tenure.enrolled_on);
    let mut seen = BTreeSet::new();
    standing
        .quarters
        .keys()
        .copied()
        .chain(std::iter::once(enrolment_quarter))
        .filter(move |q| seen.insert(*q))
        .filter_map(move |quarter| {
            let org = placement_on(standing, quarter.last_day())?;
            let totals = standing.quarters.get(&quarter).copied().unwrap_or_default();
            let counts = quarter_counts(quarter, totals, &standing.tenure, known);
            Some((org, quarter, counts))
        })
}

/// The status bucket of a member's quarter, as the counters count it: `NotMet` is in progress
/// until the quarter ends, then non-compliant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Bucket {
    Compliant,
    NotMet,
    Exempt,
}

impl Bucket {
    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::Compliant => "compliant",
            Bucket::NotMet => "not_met",
            Bucket::Exempt => "exempt",
        }
    }

    /// The bucket of a status read on some day.
    pub fn of(status: QuarterStatus) -> Bucket {
        match status {
            QuarterStatus::Compliant => Bucket::Compliant,
            // Nobody away on the counting day is placed anywhere (rule 12): a read never
            // asks for their bucket; judged like exempt, as rule 8 judges them.
            QuarterStatus::Exempt | QuarterStatus::Left => Bucket::Exempt,
            QuarterStatus::NonCompliant | QuarterStatus::InProgress => Bucket::NotMet,
        }
    }

    fn of_counts(counts: &Counts) -> Bucket {
        if counts.compliant > 0 {
            Bucket::Compliant
        } else if counts.exempt > 0 {
            Bucket::Exempt
        } else {
            Bucket::NotMet
        }
    }

    /// The bucket of a member without figures for `quarter`, folded under `rules_version`.
    pub fn blank(quarter: Quarter, rulesets: &[Ruleset], rules_version: u32) -> Bucket {
        let known = known(rulesets, rules_version);
        let counts = quarter_counts(
            quarter,
            QuarterTotals::default(),
            &Tenure::since(quarter.first_day()),
            known,
        );
        Bucket::of_counts(&counts)
    }
}

/// A member's place in the lists by status: (organisation counted in, quarter, bucket, the
/// hours short of the targets) for each quarter with figures — the members the counters count
/// one by one. The shortfall orders the lists of members behind; it is zero outside `NotMet`.
pub type Place = (String, Quarter, Bucket, Hours);

pub fn places(standing: &Standing, rulesets: &[Ruleset]) -> BTreeSet<Place> {
    let known = known(rulesets, standing.rules_version);
    figures(standing, rulesets)
        .map(|(org, quarter, counts)| {
            let bucket = Bucket::of_counts(&counts);
            let shortfall = match bucket {
                Bucket::NotMet => {
                    let totals = standing.quarters.get(&quarter).copied().unwrap_or_default();
                    quarter_shortfall(quarter, totals, &standing.tenure, known)
                }
                Bucket::Compliant | Bucket::Exempt => Hours::ZERO,
            };
            (org.to_owned(), quarter, bucket, shortfall)
        })
        .collect()
}

/// The hours a member without figures for `quarter`, folded under `rules_version`, lacks.
pub fn blank_shortfall(quarter: Quarter, rulesets: &[Ruleset], rules_version: u32) -> Hours {
    let known = known(rulesets, rules_version);
    quarter_shortfall(
        quarter,
        QuarterTotals::default(),
        &Tenure::since(quarter.first_day()),
        known,
    )
}

/// The places the views keep (`member_status_view`): those of members not compliant — the
/// lists people page through to act on, and few next to the compliant ones (85 % of the places
/// in the benchmark's ledger, 4.6 of its 5.4 GB when they were kept too). Compliant members are
/// the members with figures who hold no such place.
pub fn kept_places(standing: &Standing, rulesets: &[Ruleset]) -> BTreeSet<Place> {
    let mut places = places(standing, rulesets);
    places.retain(|(_, _, bucket, _)| *bucket != Bucket::Compliant);
    places
}

/// What a batch changes in the counters: every member's part after it, less the part before.
#[derive(Debug, Default)]
pub struct Deltas(pub BTreeMap<Key, Counts>);

impl Deltas {
    pub fn add(&mut self, parts: BTreeMap<Key, Counts>) {
        for (key, counts) in parts {
            *self.0.entry(key).or_default() += counts;
        }
    }

    pub fn subtract(&mut self, parts: BTreeMap<Key, Counts>) {
        for (key, counts) in parts {
            *self.0.entry(key).or_default() += -counts;
        }
    }

    /// The changes that are not nothing.
    pub fn into_changes(self) -> impl Iterator<Item = (Key, Counts)> {
        self.0.into_iter().filter(|(_, counts)| !counts.is_zero())
    }
}

/// The counters of one organisation's subtree for a quarter, per rules version: `members`
/// sums the membership changes of every quarter up to it, the rest are the quarter's own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuarterSums {
    pub rules_version: u32,
    pub members: i64,
    pub figures: Counts,
}

/// The roll-up of rule 7 from a subtree's sums (after any correction for the current quarter,
/// see [`Correction`]), judged as the member reads judge: members without figures have nothing
/// credited and are judged under the rules of their version; a group is stale when another
/// ruleset governs the quarter now.
pub fn rollup(
    quarter: Quarter,
    sums: &[QuarterSums],
    rulesets: &[Ruleset],
    today: NaiveDate,
) -> RollUp {
    let ended = quarter.last_day() < today;
    let mut rollup = RollUp::default();
    for group in sums {
        let known = known(rulesets, group.rules_version);
        // Judged on zero totals, enrolled before the quarter: a member without figures. Its
        // staleness is that of every member of the group.
        let always = Tenure::since(quarter.first_day());
        let blank = quarter_compliance(
            quarter,
            QuarterTotals::default(),
            0,
            &always,
            rulesets,
            Some(group.rules_version),
            today,
        );
        let without = group.members - group.figures.counted;
        let mut blank_counts = quarter_counts(quarter, QuarterTotals::default(), &always, known);
        blank_counts = scale(blank_counts, without);
        let mut all = group.figures;
        all += blank_counts;
        let members = to_u64(group.members);
        rollup.members += members;
        rollup.compliant += to_u64(all.compliant);
        rollup.exempt += to_u64(all.exempt);
        if ended {
            rollup.non_compliant += to_u64(all.not_met);
        } else {
            rollup.in_progress += to_u64(all.not_met);
        }
        if blank.stale {
            rollup.stale += members;
        }
        rollup.credit_hours_total = rollup
            .credit_hours_total
            .plus(Hours::from_hundredths(all.hundredths));
    }
    rollup.finish();
    rollup
}

fn scale(counts: Counts, n: i64) -> Counts {
    Counts {
        member_delta: counts.member_delta * n,
        counted: counts.counted * n,
        compliant: counts.compliant * n,
        not_met: counts.not_met * n,
        exempt: counts.exempt * n,
        hundredths: counts.hundredths * n,
    }
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// For the current quarter, members are counted where they belong today, not on its last
/// day: a member whose placement changes between tomorrow and the quarter's end (a transfer
/// or an enrolment dated ahead) is counted by the sums where they will belong. The correction
/// moves each such member to where they belong today (or out, when not enrolled yet).
pub struct Correction<'a> {
    pub quarter: Quarter,
    pub today: NaiveDate,
    /// Whether an organisation lies in the subtree the roll-up is about.
    pub in_subtree: &'a dyn Fn(&str) -> bool,
    pub rulesets: &'a [Ruleset],
}

impl Correction<'_> {
    /// Applies the correction for one member with a change of placement in
    /// (today, last day] to the sums.
    pub fn apply(&self, standing: &Standing, sums: &mut Vec<QuarterSums>) {
        let quarter = self.quarter;
        let counted_there =
            placement_on(standing, quarter.last_day()).is_some_and(|o| (self.in_subtree)(o));
        let belongs_today =
            placement_on(standing, self.today).is_some_and(|o| (self.in_subtree)(o));
        if counted_there == belongs_today {
            return;
        }
        let figures = match standing.quarters.get(&quarter) {
            Some(totals) => Some(*totals),
            // The enrolment quarter has figures even without credit.
            None if Quarter::of_date(standing.tenure.enrolled_on) == quarter => {
                Some(QuarterTotals::default())
            }
            None => None,
        };
        let known = known(self.rulesets, standing.rules_version);
        let part = figures.map(|t| quarter_counts(quarter, t, &standing.tenure, known));
        let sign = if belongs_today { 1 } else { -1 };
        let group = match sums
            .iter_mut()
            .find(|g| g.rules_version == standing.rules_version)
        {
            Some(group) => group,
            None => {
                sums.push(QuarterSums {
                    rules_version: standing.rules_version,
                    ..QuarterSums::default()
                });
                let last = sums.len() - 1;
                &mut sums[last]
            }
        };
        group.members += sign;
        if let Some(part) = part {
            group.figures += scale(part, sign);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use studyledger_aggregates::rules::membership::counting_day;
    use studyledger_aggregates::rules::tenure::Away;

    const ORGS: [&str; 3] = ["a", "b", "c"];

    fn day(n: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2018, 1, 1).expect("date") + Days::new(u64::from(n))
    }

    fn rulesets() -> Vec<Ruleset> {
        let mut second = Ruleset::version_1();
        second.version = 2;
        second.effective_from = Quarter::parse("2018-Q3").expect("quarter");
        second.required_hours = Hours::whole(10);
        let mut third = Ruleset::version_1();
        third.version = 3;
        third.effective_from = Quarter::parse("2018-Q2").expect("quarter");
        third.required_hours = Hours::ZERO;
        third.elective_hours = Hours::ZERO;
        vec![Ruleset::version_1(), second, third]
    }

    /// A member: enrolled on a day of 2018, moving between three organisations, perhaps
    /// leaving after the last move and coming back (rule 12), with credit in some quarters,
    /// folded under some rules version.
    fn standing() -> impl Strategy<Value = Standing> {
        (
            (0u32..365, 0usize..3),
            prop::collection::vec((0u32..120, 0usize..3), 0..3),
            prop::option::of((1u32..120, prop::option::of((1u32..120, 0usize..3)))),
            prop::collection::btree_map(0u8..4, (0i64..1200, 0i64..500), 0..4),
            1u32..4,
        )
            .prop_map(|((enrolled, org), moves, absence, credit, rules_version)| {
                let enrolled_on = day(enrolled);
                let mut placements = vec![(enrolled_on, 1, ORGS[org].to_owned())];
                for (i, (after, to)) in moves.into_iter().enumerate() {
                    let sequence = i64::try_from(i).unwrap_or(0) + 2;
                    placements.push((
                        enrolled_on + Days::new(u64::from(after)),
                        sequence,
                        ORGS[to].to_owned(),
                    ));
                }
                placements.sort();
                let mut tenure = Tenure::since(enrolled_on);
                let last_move = placements.last().map_or(enrolled_on, |p| p.0);
                if let Some((gone, back)) = absence {
                    let left_on = last_move + Days::new(u64::from(gone));
                    let rejoined_on = back.map(|(after, to)| {
                        let on = left_on + Days::new(u64::from(after));
                        placements.push((on, 9, ORGS[to].to_owned()));
                        on
                    });
                    tenure.away.push(Away {
                        left_on,
                        rejoined_on,
                    });
                }
                let mut quarters: BTreeMap<Quarter, QuarterTotals> = credit
                    .into_iter()
                    .map(|(q, (required, elective))| {
                        let quarter = Quarter::new(2018, q + 1).expect("quarter");
                        let totals = QuarterTotals {
                            required: Hours::from_hundredths(required),
                            elective: Hours::from_hundredths(elective),
                        };
                        (quarter, totals)
                    })
                    .filter(|(q, _)| q.last_day() >= enrolled_on)
                    .collect();
                // As the fold keeps them: a row for each quarter of a rejoining.
                for quarter in tenure.rejoining_quarters() {
                    quarters.entry(quarter).or_default();
                }
                Standing {
                    tenure,
                    placements,
                    rules_version,
                    quarters,
                }
            })
    }

    /// The member as the ledger can know them on `today`: departures and rejoinings are never
    /// dated ahead, so those after `today` are not recorded yet.
    fn known_on(member: &Standing, today: NaiveDate) -> Standing {
        let mut known = member.clone();
        known.tenure.away.retain(|a| a.left_on <= today);
        for away in &mut known.tenure.away {
            if away.rejoined_on.is_some_and(|back| back > today) {
                away.rejoined_on = None;
                known.placements.retain(|p| p.1 != 9);
            }
        }
        if known.tenure.away.is_empty() {
            known.placements.retain(|p| p.1 != 9);
        }
        let rejoined: Vec<Quarter> = member
            .tenure
            .rejoining_quarters()
            .filter(|q| !known.tenure.rejoining_quarters().any(|k| k == *q))
            .collect();
        for quarter in rejoined {
            if known.quarters.get(&quarter) == Some(&QuarterTotals::default()) {
                known.quarters.remove(&quarter);
            }
        }
        known
    }

    /// The roll-up as a request used to compute it: every member counted where they belong on
    /// the counting day, their quarter judged one by one.
    fn recomputed(members: &[Standing], org: &str, quarter: Quarter, today: NaiveDate) -> RollUp {
        let day = counting_day(quarter, today);
        let rulesets = rulesets();
        let mut rollup = RollUp::default();
        for member in members {
            if placement_on(member, day) != Some(org) {
                continue;
            }
            let totals = member.quarters.get(&quarter).copied().unwrap_or_default();
            let row = quarter_compliance(
                quarter,
                totals,
                0,
                &member.tenure,
                &rulesets,
                Some(member.rules_version),
                today,
            );
            rollup.add(&row);
        }
        rollup
    }

    /// The roll-up from the sums of everybody's parts (and the correction of the current
    /// quarter).
    fn from_counters(
        members: &[Standing],
        org: &str,
        quarter: Quarter,
        today: NaiveDate,
    ) -> RollUp {
        let rulesets = rulesets();
        let mut deltas = Deltas::default();
        for member in members {
            deltas.add(contributions(member, &rulesets));
        }
        let mut sums: BTreeMap<u32, QuarterSums> = BTreeMap::new();
        for ((o, q, v), counts) in deltas.into_changes() {
            if o != org || q > quarter {
                continue;
            }
            let group = sums.entry(v).or_insert(QuarterSums {
                rules_version: v,
                ..QuarterSums::default()
            });
            group.members += counts.member_delta;
            if q == quarter {
                group.figures += counts;
            }
        }
        let mut sums: Vec<QuarterSums> = sums.into_values().collect();
        if today < quarter.last_day() {
            let in_subtree = |o: &str| o == org;
            let correction = Correction {
                quarter,
                today,
                in_subtree: &in_subtree,
                rulesets: &rulesets,
            };
            let moving = |m: &&Standing| {
                m.placements
                    .iter()
                    .any(|(from, _, _)| *from > today && *from <= quarter.last_day())
            };
            for member in members.iter().filter(moving) {
                correction.apply(member, &mut sums);
            }
        }
        rollup(quarter, &sums, &rulesets, today)
    }

    proptest! {
        #[test]
        fn roll_ups_from_counters_equal_roll_ups_recomputed_member_by_member(
            members in prop::collection::vec(standing(), 0..30),
            org in 0usize..3,
            q in 0u8..4,
            today in 0u32..500,
        ) {
            let quarter = Quarter::new(2018, q + 1).expect("quarter");
            let today = day(today);
            let members: Vec<Standing> = members.iter().map(|m| known_on(m, today)).collect();
            prop_assert_eq!(
                from_counters(&members, ORGS[org], quarter, today),
                recomputed(&members, ORGS[org], quarter, today)
            );
        }
    }

    proptest! {
        #[test]
        fn a_members_places_in_the_lists_are_the_figures_the_counters_count(
            member in standing(),
        ) {
            let rulesets = rulesets();
            let mut tallied: BTreeMap<(String, Quarter), [i64; 4]> = BTreeMap::new();
            for (org, quarter, bucket, shortfall) in places(&member, &rulesets) {
                // The shortfall kept with a place is the one a read of the row computes.
                let totals = member.quarters.get(&quarter).copied().unwrap_or_default();
                let read = quarter_compliance(
                    quarter,
                    totals,
                    0,
                    &member.tenure,
                    &rulesets,
                    Some(member.rules_version),
                    quarter.last_day() + Days::new(1),
                );
                match bucket {
                    Bucket::NotMet => {
                        prop_assert!(shortfall.is_positive());
                        prop_assert_eq!(shortfall, read.shortfall);
                    }
                    Bucket::Compliant | Bucket::Exempt => prop_assert_eq!(shortfall, Hours::ZERO),
                }
                let t = tallied.entry((org, quarter)).or_default();
                t[0] += 1;
                match bucket {
                    Bucket::Compliant => t[1] += 1,
                    Bucket::NotMet => t[2] += 1,
                    Bucket::Exempt => t[3] += 1,
                }
            }
            let counted: BTreeMap<(String, Quarter), [i64; 4]> =
                contributions(&member, &rulesets)
                    .into_iter()
                    .filter(|(_, c)| c.counted != 0)
                    .map(|((org, quarter, _), c)| {
                        ((org, quarter), [c.counted, c.compliant, c.not_met, c.exempt])
                    })
                    .collect();
            prop_assert_eq!(tallied, counted);
        }
    }

    #[test]
    fn a_transfer_moves_a_member_between_subtrees_from_its_quarter_on() {
        let member = Standing {
            tenure: Tenure::since(day(10)),
            placements: vec![(day(10), 1, "a".to_owned()), (day(100), 3, "b".to_owned())],
            rules_version: 1,
            quarters: BTreeMap::new(),
        };
        let parts = contributions(&member, &rulesets());
        let q1 = Quarter::parse("2018-Q1").expect("q");
        let q2 = Quarter::parse("2018-Q2").expect("q");
        let delta = |org: &str, q| parts.get(&(org.to_owned(), q, 1)).map(|c| c.member_delta);
        assert_eq!(delta("a", q1), Some(1));
        assert_eq!(delta("a", q2), Some(-1));
        assert_eq!(delta("b", q2), Some(1));
        let figures = parts
            .get(&("a".to_owned(), q1, 1))
            .expect("enrolment quarter");
        assert_eq!(
            (figures.counted, figures.exempt),
            (1, 1),
            "joined mid-quarter"
        );
    }
}
