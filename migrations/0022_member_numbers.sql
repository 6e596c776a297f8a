-- Member numbers are unique among members' current numbers (issue 18): each number is held by
-- one member, claimed in the same transaction as the event that gives it (an enrolment or a
-- correction; src/store/member_numbers.rs) and released when a correction gives the member
-- another. Members enrolled before this table existed hold their numbers from now on; where two
-- were enrolled with one number, the first enrolled holds it, and the other keeps theirs until
-- a correction gives them a number of their own.
CREATE TABLE member_numbers
(
    member_no text PRIMARY KEY,
    member_id uuid NOT NULL
);

CREATE INDEX member_numbers_by_member ON member_numbers (member_id);

INSERT INTO member_numbers (member_no, member_id)
SELECT payload -> 'MemberEnrolled' ->> 'member_no', aggregate_id::uuid
  FROM events
 WHERE aggregate_type = 'member' AND event_type = 'MemberEnrolled'
 ORDER BY position
    ON CONFLICT (member_no) DO NOTHING;
