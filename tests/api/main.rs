//! The integration tests: one binary, a module per part of the service, every test over HTTP
//! (or the real binary) against a real PostgreSQL, each on a database of its own
//! (`helpers::TestApp`).

mod access;
mod appeals;
mod architecture;
mod audit;
mod backup;
mod browser;
mod commands;
mod counters;
mod course_terms;
mod crash;
mod dashboard;
mod evaluations;
mod helpers;
mod history;
mod hostile;
mod import;
mod org_changes;
mod orgs;
mod outage;
mod plans;
mod poison;
mod postgres_es;
mod projector;
mod replay;
mod rules;
mod shutdown;
mod store;
mod tenure;
mod transport;
mod what_ifs;
mod xapi;
mod xapi_attachments;
mod xapi_ledger;
mod xapi_state;
