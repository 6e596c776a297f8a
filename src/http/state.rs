//! What every handler shares: the ledger (command path, pool, clock), the administrator's
//! token, and the determination jobs this instance runs.

use std::sync::Arc;

use crate::jobs::determinations::Jobs;
use crate::ledger::Ledger;

#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    ledger: Arc<Ledger>,
    admin_token: Option<String>,
    jobs: Jobs,
}

impl AppState {
    pub fn new(ledger: Arc<Ledger>, admin_token: Option<String>) -> AppState {
        AppState {
            inner: Arc::new(Inner {
                ledger,
                admin_token,
                jobs: Jobs::default(),
            }),
        }
    }

    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.inner.ledger
    }

    pub fn jobs(&self) -> &Jobs {
        &self.inner.jobs
    }

    pub fn admin_token(&self) -> Option<&str> {
        self.inner.admin_token.as_deref()
    }
}
