//! What every handler shares: the ledger (command path, pool, clock), the authenticator, the
//! read log, the determination jobs this instance runs, and the service's OpenAPI document.

use std::sync::Arc;

use crate::http::auth::Authenticator;
use crate::jobs::determinations::Jobs;
use crate::jobs::read_log::ReadLog;
use crate::ledger::Ledger;

#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    ledger: Arc<Ledger>,
    auth: Authenticator,
    read_log: Arc<ReadLog>,
    jobs: Jobs,
    openapi_json: String,
}

impl AppState {
    pub fn new(ledger: Arc<Ledger>, auth: Authenticator, openapi_json: String) -> AppState {
        let read_log = ReadLog::start(ledger.pool().clone());
        AppState {
            inner: Arc::new(Inner {
                ledger,
                auth,
                read_log,
                jobs: Jobs::default(),
                openapi_json,
            }),
        }
    }

    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.inner.ledger
    }

    pub fn auth(&self) -> &Authenticator {
        &self.inner.auth
    }

    pub fn read_log(&self) -> &ReadLog {
        &self.inner.read_log
    }

    pub fn jobs(&self) -> &Jobs {
        &self.inner.jobs
    }

    pub fn openapi_json(&self) -> &str {
        &self.inner.openapi_json
    }
}
