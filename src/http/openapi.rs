//! The service describes itself: an OpenAPI 3.1 document derived from the typed requests and
//! answers and the `#[utoipa::path]` annotation of every handler (which also names the roles
//! each route admits: see `auth`), at `/openapi.json`, and a page to browse it at `/docs`
//! (Swagger UI, its assets compiled into the binary: nothing is fetched from elsewhere).

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::path::{HttpMethod, OperationBuilder, PathItem};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToResponse};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::error::Problem;
use crate::http::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "studyledger",
        description = "An event-sourced study-credit ledger (学时台账): study sessions and course \
                       completions of members, quarterly compliance, merit-evaluation eligibility \
                       under versioned rules, appeals, replays and audits. Every route but the open \
                       ones needs `Authorization: Bearer <token>`; the roles each admits are its \
                       security requirement's scopes."
    ),
    modifiers(&Bearer, &DocsPage),
    components(responses(
        Malformed,
        Unauthorized,
        Forbidden,
        NotFound,
        Conflict,
        TooLarge,
        UnsupportedType,
        RuleViolation,
        Unavailable
    ))
)]
pub struct ApiDoc;

/// The `bearer` security scheme the routes name.
struct Bearer;

impl Modify for Bearer {
    fn modify(&self, document: &mut utoipa::openapi::OpenApi) {
        let components = document.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// `/docs` is served by the Swagger UI's own routes; the document lists it too.
struct DocsPage;

impl Modify for DocsPage {
    fn modify(&self, document: &mut utoipa::openapi::OpenApi) {
        let page = ResponseBuilder::new()
            .description("a page to browse this document")
            .content("text/html", ContentBuilder::new().build())
            .build();
        let operation = OperationBuilder::new()
            .operation_id(Some("docs"))
            .response("200", page)
            .security(SecurityRequirement::default())
            .build();
        document.paths.paths.insert(
            "/docs".to_owned(),
            PathItem::new(HttpMethod::Get, operation),
        );
    }
}

/// 400: malformed JSON, an id, a date, a quarter or a query that cannot be read.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct Malformed(#[to_schema] pub Problem);

/// 401: no token, or one that is unknown, revoked or expired.
#[derive(ToResponse)]
#[response(
    content_type = "application/problem+json",
    headers(("WWW-Authenticate" = String, description = "Bearer"))
)]
pub struct Unauthorized(#[to_schema] pub Problem);

/// 403: out of the token's role or scope (the same answer whether the thing exists or not), or
/// against the separation of duties (with its reason).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct Forbidden(#[to_schema] pub Problem);

/// 404: no such member, organisation, evaluation, determination, appeal or replay.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct NotFound(#[to_schema] pub Problem);

/// 409: in conflict with recorded facts (an id reused with other content, an overlapping
/// session, an appeal out of its lifecycle, a replay already running, …).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct Conflict(#[to_schema] pub Problem);

/// 413: a body over 64 KiB.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct TooLarge(#[to_schema] pub Problem);

/// 415: a body that is not `Content-Type: application/json`.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct UnsupportedType(#[to_schema] pub Problem);

/// 422: a rule of the ledger says no (times, unknown course or organisation in the body,
/// three decimals, text a field cannot hold, a field the body does not have, …); nothing was
/// recorded.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct RuleViolation(#[to_schema] pub Problem);

/// 503: the database is unavailable or a record is under extreme contention; the outcome of a
/// command is unknown — send it again (client ids make it safe).
#[derive(ToResponse)]
#[response(
    content_type = "application/problem+json",
    headers(("Retry-After" = String, description = "seconds"))
)]
pub struct Unavailable(#[to_schema] pub Problem);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(document))
        .routes(routes!(favicon))
}

/// `GET /openapi.json`: this document.
#[utoipa::path(
    get, path = "/openapi.json", tag = "service",
    responses((status = 200, description = "the OpenAPI 3.1 document", content_type = "application/json")),
    security(())
)]
async fn document(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.openapi_json().to_owned(),
    )
        .into_response()
}

/// A book with a tick (学时 counted).
const FAVICON: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect x="4" y="3" width="24" height="26" rx="3" fill="#b22222"/><rect x="8" y="7" width="16" height="18" rx="1" fill="#fff8e7"/><path d="M11 16l4 4 7-8" stroke="#b22222" stroke-width="3" fill="none"/></svg>"##;

/// `GET /favicon.ico`: the service's icon.
#[utoipa::path(
    get, path = "/favicon.ico", tag = "service",
    responses((status = 200, description = "an SVG icon", content_type = "image/svg+xml")),
    security(())
)]
async fn favicon() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        FAVICON,
    )
        .into_response()
}

/// `/docs`: Swagger UI over `/openapi.json`.
pub fn docs() -> axum::Router {
    swagger_ui_dist::generate_routes(swagger_ui_dist::ApiDefinition {
        uri_prefix: "/docs",
        api_definition: swagger_ui_dist::OpenApiSource::Uri("/openapi.json"),
        title: Some("studyledger API"),
    })
}

/// What a command on a member (or another thing named in the path) can be refused with.
#[derive(utoipa::IntoResponses)]
pub enum CommandRefusals {
    #[response(status = 400)]
    Malformed(#[ref_response] Malformed),
    #[response(status = 401)]
    Unauthorized(#[ref_response] Unauthorized),
    #[response(status = 403)]
    Forbidden(#[ref_response] Forbidden),
    #[response(status = 404)]
    NotFound(#[ref_response] NotFound),
    #[response(status = 409)]
    Conflict(#[ref_response] Conflict),
    #[response(status = 413)]
    TooLarge(#[ref_response] TooLarge),
    #[response(status = 415)]
    UnsupportedType(#[ref_response] UnsupportedType),
    #[response(status = 422)]
    RuleViolation(#[ref_response] RuleViolation),
    #[response(status = 503)]
    Unavailable(#[ref_response] Unavailable),
}

/// What a command that names nothing in its path can be refused with (no 404).
#[derive(utoipa::IntoResponses)]
pub enum CatalogRefusals {
    #[response(status = 400)]
    Malformed(#[ref_response] Malformed),
    #[response(status = 401)]
    Unauthorized(#[ref_response] Unauthorized),
    #[response(status = 403)]
    Forbidden(#[ref_response] Forbidden),
    #[response(status = 409)]
    Conflict(#[ref_response] Conflict),
    #[response(status = 413)]
    TooLarge(#[ref_response] TooLarge),
    #[response(status = 415)]
    UnsupportedType(#[ref_response] UnsupportedType),
    #[response(status = 422)]
    RuleViolation(#[ref_response] RuleViolation),
    #[response(status = 503)]
    Unavailable(#[ref_response] Unavailable),
}

/// What a read of something named in the path can be refused with.
#[derive(utoipa::IntoResponses)]
pub enum ReadRefusals {
    #[response(status = 400)]
    Malformed(#[ref_response] Malformed),
    #[response(status = 401)]
    Unauthorized(#[ref_response] Unauthorized),
    #[response(status = 403)]
    Forbidden(#[ref_response] Forbidden),
    #[response(status = 404)]
    NotFound(#[ref_response] NotFound),
    #[response(status = 503)]
    Unavailable(#[ref_response] Unavailable),
}
