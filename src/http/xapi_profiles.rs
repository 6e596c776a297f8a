//! `/xapi/activities/profile` and `/xapi/agents/profile`: the profile documents of the
//! Learning Record Store (xAPI 2.0 part 3, §2.5–2.6), kept per activity or per agent and
//! `profileId`, like state documents but with one more rule: a `PUT` to a profile that exists
//! must say which version it replaces (`If-Match`) or that it expects none
//! (`If-None-Match: *`) — 409 without.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use studyledger_xapi::validate;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::error::ApiError;
use crate::http::extract::{ApiQuery, Rfc3339};
use crate::http::state::AppState;
use crate::http::xapi::{agent_param, versioned};
use crate::http::xapi_state::{
    document_error, precondition, read_document, write_document, DocumentDeleted, DocumentRead,
    DocumentWritten,
};
use crate::store::documents::{self, Place, Write};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(
            get_activity_profile,
            put_activity_profile,
            post_activity_profile,
            delete_activity_profile
        ))
        .routes(routes!(
            get_agent_profile,
            put_agent_profile,
            post_agent_profile,
            delete_agent_profile
        ))
        .layer(axum::middleware::from_fn(versioned))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ActivityParams {
    /// The activity's IRI.
    #[serde(rename = "activityId")]
    #[param(rename = "activityId")]
    activity_id: String,
    /// The document's id; without it, GET lists the ids.
    #[serde(rename = "profileId")]
    #[param(rename = "profileId")]
    profile_id: Option<String>,
    /// GET without `profileId`: only documents changed after it.
    #[param(value_type = Option<String>)]
    since: Option<Rfc3339>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AgentParams {
    /// The agent, as JSON.
    agent: String,
    /// The document's id; without it, GET lists the ids.
    #[serde(rename = "profileId")]
    #[param(rename = "profileId")]
    profile_id: Option<String>,
    /// GET without `profileId`: only documents changed after it.
    #[param(value_type = Option<String>)]
    since: Option<Rfc3339>,
}

/// A profile resource's request, whichever resource: its kind, scope, id and `since`.
struct Profile<'a> {
    kind: &'static str,
    scope: String,
    id: Option<&'a str>,
    since: Option<&'a Rfc3339>,
}

impl ActivityParams {
    fn profile(&self) -> Result<Profile<'_>, ApiError> {
        if !validate::is_iri(&self.activity_id) {
            return Err(ApiError::Malformed("activityId must be an IRI".to_owned()));
        }
        Ok(Profile {
            kind: "activity_profile",
            scope: self.activity_id.clone(),
            id: self.profile_id.as_deref(),
            since: self.since.as_ref(),
        })
    }
}

impl AgentParams {
    fn profile(&self) -> Result<Profile<'_>, ApiError> {
        let (_, scope) = agent_param(&self.agent)?;
        Ok(Profile {
            kind: "agent_profile",
            scope,
            id: self.profile_id.as_deref(),
            since: self.since.as_ref(),
        })
    }
}

impl Profile<'_> {
    fn place(&self) -> Result<Place<'_>, ApiError> {
        let id = self
            .id
            .ok_or_else(|| ApiError::Malformed("profileId is required".to_owned()))?;
        Ok(Place {
            kind: self.kind,
            scope: &self.scope,
            id,
        })
    }

    async fn get(&self, state: &AppState) -> Result<Response, ApiError> {
        let pool = state.ledger().pool();
        if self.id.is_none() {
            let since = self.since.map(|s| s.0);
            let ids = documents::ids(pool, self.kind, &self.scope, since).await?;
            return Ok(Json(ids).into_response());
        }
        if self.since.is_some() {
            return Err(ApiError::Malformed(
                "since goes with a list, not a profileId".to_owned(),
            ));
        }
        read_document(pool, self.place()?).await
    }

    async fn write(
        &self,
        state: &AppState,
        headers: &HeaderMap,
        body: &[u8],
        how: Write,
    ) -> Result<Response, ApiError> {
        let pool = state.ledger().pool();
        let mut guard = precondition(headers);
        guard.required_if_present = how == Write::Replace;
        write_document(pool, self.place()?, &guard, headers, body, how).await
    }

    async fn delete(&self, state: &AppState, headers: &HeaderMap) -> Result<StatusCode, ApiError> {
        let place = self.place()?;
        let pool = state.ledger().pool();
        documents::delete(
            pool,
            place.kind,
            place.scope,
            Some(place.id),
            &precondition(headers),
        )
        .await
        .map_err(document_error)?;
        Ok(StatusCode::NO_CONTENT)
    }
}

/// The four handlers of a profile resource, named by the caller: `GET`, `PUT` (409
/// over a profile that exists unless `If-Match` or `If-None-Match` is given), `POST` (merges a
/// JSON object into the profile, or stores it) and `DELETE`.
macro_rules! profile_resource {
    ([$get_fn:ident, $put_fn:ident, $post_fn:ident, $delete_fn:ident], $path:literal, $params:ty,
     $get:literal, $put:literal, $post:literal, $delete:literal) => {
        #[utoipa::path(get, path = $path, operation_id = $get, tag = "xapi",
            params($params), responses(DocumentRead),
            security(("bearer" = ["ingest", "admin", "auditor"])))]
        async fn $get_fn(
            State(state): State<AppState>,
            ApiQuery(params): ApiQuery<$params>,
        ) -> Result<Response, ApiError> {
            params.profile()?.get(&state).await
        }

        #[utoipa::path(put, path = $path, operation_id = $put, tag = "xapi",
            params($params), request_body(content = Vec<u8>, content_type = "*/*"),
            responses(DocumentWritten), security(("bearer" = ["ingest", "admin"])))]
        async fn $put_fn(
            State(state): State<AppState>,
            ApiQuery(params): ApiQuery<$params>,
            headers: HeaderMap,
            body: Bytes,
        ) -> Result<Response, ApiError> {
            let profile = params.profile()?;
            profile.write(&state, &headers, &body, Write::Replace).await
        }

        #[utoipa::path(post, path = $path, operation_id = $post, tag = "xapi",
            params($params), request_body(content = Vec<u8>, content_type = "application/json"),
            responses(DocumentWritten), security(("bearer" = ["ingest", "admin"])))]
        async fn $post_fn(
            State(state): State<AppState>,
            ApiQuery(params): ApiQuery<$params>,
            headers: HeaderMap,
            body: Bytes,
        ) -> Result<Response, ApiError> {
            let profile = params.profile()?;
            profile.write(&state, &headers, &body, Write::Merge).await
        }

        #[utoipa::path(delete, path = $path, operation_id = $delete, tag = "xapi",
            params($params), responses(DocumentDeleted),
            security(("bearer" = ["ingest", "admin"])))]
        async fn $delete_fn(
            State(state): State<AppState>,
            ApiQuery(params): ApiQuery<$params>,
            headers: HeaderMap,
        ) -> Result<StatusCode, ApiError> {
            params.profile()?.delete(&state, &headers).await
        }
    };
}

profile_resource!(
    [
        get_activity_profile,
        put_activity_profile,
        post_activity_profile,
        delete_activity_profile
    ],
    "/xapi/activities/profile",
    ActivityParams,
    "xapi_get_activity_profile",
    "xapi_put_activity_profile",
    "xapi_post_activity_profile",
    "xapi_delete_activity_profile"
);
profile_resource!(
    [
        get_agent_profile,
        put_agent_profile,
        post_agent_profile,
        delete_agent_profile
    ],
    "/xapi/agents/profile",
    AgentParams,
    "xapi_get_agent_profile",
    "xapi_put_agent_profile",
    "xapi_post_agent_profile",
    "xapi_delete_agent_profile"
);
