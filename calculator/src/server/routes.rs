//! One dispatcher for every request: request ids, metrics and the access log
//! wrap every response, including 404, 405, 413 and 415, and every error is
//! JSON `{"error": ..., "code": ...}`. No input leads to a 5xx.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::log::{RequestLog, rfc3339};
use super::state::{AppState, HistoryEntry, REVISION, Readiness, SERVICE, VERSION};
use crate::json_number as number;
use crate::ops::{self, Operation};
use crate::settings::MAX_BODY_BYTES;

const REQUEST_ID: &str = "x-request-id";

pub fn router(state: Arc<AppState>) -> Router {
    Router::new().fallback(dispatch).with_state(state)
}

/// The fixed set of routes: (path, allowed methods, metrics label).
const ROUTES: &[(&str, &[Method], &str)] = &[
    ("/", &[Method::GET, Method::HEAD], "/"),
    ("/health", &[Method::GET, Method::HEAD], "/health"),
    ("/ready", &[Method::GET, Method::HEAD], "/ready"),
    ("/metrics", &[Method::GET, Method::HEAD], "/metrics"),
    ("/calculate", &[Method::POST], "/calculate"),
    ("/history", &[Method::GET, Method::HEAD], "/history"),
    ("/stats", &[Method::GET, Method::HEAD], "/stats"),
    ("/memory", &[Method::GET, Method::HEAD], "/memory"),
    ("/memory/store", &[Method::POST], "/memory/store"),
    ("/memory/add", &[Method::POST], "/memory/add"),
    ("/memory/clear", &[Method::POST], "/memory/clear"),
];

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

async fn dispatch(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let start = Instant::now();
    state.metrics.in_flight.inc();
    let request_id = client_request_id(request.headers()).unwrap_or_else(|| state.new_request_id());
    let method = method_label(request.method());
    let path: String = request.uri().path().chars().take(256).collect();

    let (route, mut response) = match ROUTES.iter().find(|(p, _, _)| *p == request.uri().path()) {
        None => (
            "unmatched",
            error(
                StatusCode::NOT_FOUND,
                format!("no route for {}", path.escape_debug()),
            ),
        ),
        Some((_, methods, label)) if !methods.contains(request.method()) => {
            let allow: Vec<&str> = methods.iter().map(Method::as_str).collect();
            let mut response = error(
                StatusCode::METHOD_NOT_ALLOWED,
                format!(
                    "{} is not allowed on {}; allowed: {}",
                    method,
                    label,
                    allow.join(", ")
                ),
            );
            if let Ok(value) = HeaderValue::from_str(&allow.join(", ")) {
                response.headers_mut().insert(header::ALLOW, value);
            }
            (*label, response)
        }
        Some((_, _, label)) => (*label, handle(&state, label, request).await),
    };

    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    // Draining (after SIGTERM, for the shutdown delay): every answer closes
    // its connection, so a keepalive client reconnects - to a replica that
    // stays - instead of sending its next request down a connection this
    // process is about to close.
    if state.readiness() == Readiness::Draining {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    let status = response.status().as_u16();
    let elapsed = start.elapsed();
    state
        .metrics
        .observe_request(method, route, status, elapsed.as_secs_f64());
    state.metrics.in_flight.dec();
    state.logger.request(&RequestLog {
        request_id: &request_id,
        method,
        route,
        path: &path,
        status,
        latency_ms: elapsed.as_secs_f64() * 1000.0,
    });
    response
}

/// The client's `X-Request-Id` when it is sane (visible ASCII, at most 128), else none.
fn client_request_id(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(REQUEST_ID)?.to_str().ok()?;
    let ok = !value.is_empty() && value.len() <= 128 && value.bytes().all(|b| b.is_ascii_graphic());
    ok.then(|| value.to_string())
}

async fn handle(state: &AppState, route: &str, request: Request) -> Response {
    match route {
        "/" => Json(json!({
            "service": SERVICE,
            "version": VERSION,
            "revision": REVISION,
            "environment": state.settings.environment,
        }))
        .into_response(),
        "/health" => Json(json!({
            "status": "healthy",
            "service": SERVICE,
            "version": VERSION,
            "uptime_seconds": state.started.elapsed().as_secs(),
        }))
        .into_response(),
        "/ready" => ready(state),
        "/metrics" => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            state.metrics.encode(),
        )
            .into_response(),
        "/calculate" => match json_body::<CalcRequest>(request).await {
            Ok(body) => calculate(state, body),
            Err(response) => response,
        },
        "/history" => history(state, request.uri().query()),
        "/stats" => stats(state),
        "/memory" => Json(json!({ "value": number(state.memory()) })).into_response(),
        "/memory/store" => match json_body::<MemoryRequest>(request).await {
            Ok(MemoryRequest { value }) if value.is_finite() => {
                state.set_memory(value);
                Json(json!({ "value": number(value), "stored": true })).into_response()
            }
            Ok(_) => error(
                StatusCode::BAD_REQUEST,
                "value must be a finite number".into(),
            ),
            Err(response) => response,
        },
        "/memory/add" => match json_body::<MemoryRequest>(request).await {
            Ok(MemoryRequest { value }) if value.is_finite() => match state.add_memory(value) {
                Some(sum) => Json(json!({ "value": number(sum), "stored": true })).into_response(),
                None => error(
                    StatusCode::BAD_REQUEST,
                    "the sum is not a finite number (overflow)".into(),
                ),
            },
            Ok(_) => error(
                StatusCode::BAD_REQUEST,
                "value must be a finite number".into(),
            ),
            Err(response) => response,
        },
        "/memory/clear" => {
            state.set_memory(0.0);
            Json(json!({ "value": 0, "cleared": true })).into_response()
        }
        _ => error(StatusCode::NOT_FOUND, "no such route".into()),
    }
}

fn ready(state: &AppState) -> Response {
    match state.readiness() {
        Readiness::Ready => Json(json!({ "status": "ready" })).into_response(),
        Readiness::Starting => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "starting", "code": 503 })),
        )
            .into_response(),
        Readiness::Draining => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "draining", "code": 503 })),
        )
            .into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CalcRequest {
    operation: String,
    operands: Vec<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MemoryRequest {
    value: f64,
}

fn calculate(state: &AppState, body: CalcRequest) -> Response {
    let operation = Operation::parse(&body.operation);
    let label = operation.as_ref().map_or("unknown", |op| op.name());
    let result = operation.and_then(|op| ops::compute(op, &body.operands).map(|r| (op, r)));
    state.metrics.observe_operation(label, result.is_ok());
    match result {
        Ok((op, value)) => {
            state.stats.success(op);
            // The hot path: the response is written directly, no JSON tree.
            let mut out = String::with_capacity(64);
            out.push_str("{\"operation\":\"");
            out.push_str(op.name());
            out.push_str("\",\"operands\":[");
            for (i, x) in body.operands.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_number(&mut out, *x);
            }
            out.push_str("],\"result\":");
            write_number(&mut out, value);
            out.push('}');
            state.record(HistoryEntry {
                id: state.next_calculation_id(),
                operation: op,
                operands: body.operands,
                result: value,
                at: SystemTime::now(),
            });
            ([(header::CONTENT_TYPE, "application/json")], out).into_response()
        }
        Err(e) => {
            state.stats.error();
            error(StatusCode::BAD_REQUEST, e.to_string())
        }
    }
}

/// Writes a number as `json_number` would: whole numbers as integers.
fn write_number(out: &mut String, x: f64) {
    use std::fmt::Write as _;
    if x.fract() == 0.0 && x.abs() < 9_007_199_254_740_992.0 {
        let _ = write!(out, "{}", x as i64);
    } else {
        out.push_str(&serde_json::to_string(&x).unwrap_or_else(|_| "0".into()));
    }
}

fn history(state: &AppState, query: Option<&str>) -> Response {
    let mut limit = state.history_limit;
    for pair in query.unwrap_or("").split('&') {
        if let Some(value) = pair.strip_prefix("limit=") {
            match value.parse::<usize>() {
                Ok(n) if n >= 1 => limit = n.min(state.history_limit),
                _ => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        format!(
                            "limit must be a whole number from 1 to {}",
                            state.history_limit
                        ),
                    );
                }
            }
        }
    }
    let entries: Vec<HistoryEntry> = {
        let history = state
            .history
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        history.iter().take(limit).cloned().collect()
    };
    let items: Vec<Value> = entries
        .iter()
        .map(|e| {
            let since =
                e.at.duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
            json!({
                "id": e.id,
                "operation": e.operation.name(),
                "operands": e.operands.iter().map(|x| number(*x)).collect::<Vec<_>>(),
                "result": number(e.result),
                "timestamp": rfc3339(since.as_secs() as i64, since.subsec_millis()),
            })
        })
        .collect();
    Json(json!({ "count": items.len(), "limit": state.history_limit, "history": items }))
        .into_response()
}

fn stats(state: &AppState) -> Response {
    use std::sync::atomic::Ordering::Relaxed;
    let mut by_operation = serde_json::Map::new();
    for (op, count) in Operation::ALL.iter().zip(&state.stats.by_operation) {
        let n = count.load(Relaxed);
        if n > 0 {
            by_operation.insert(op.name().to_string(), Value::from(n));
        }
    }
    Json(json!({
        "calculations": state.stats.calculations.load(Relaxed),
        "errors": state.stats.errors.load(Relaxed),
        "by_operation": by_operation,
        "uptime_seconds": state.started.elapsed().as_secs(),
    }))
    .into_response()
}

/// Reads and parses a JSON body: 415 unless JSON, 413 above the limit, 400 when malformed.
async fn json_body<T: serde::de::DeserializeOwned>(request: Request) -> Result<T, Response> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the body as JSON with Content-Type: application/json".into(),
        ));
    }
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    let bytes: Bytes = axum::body::to_bytes(request.into_body(), MAX_BODY_BYTES)
        .await
        .map_err(|_| too_large())?;
    serde_json::from_slice(&bytes)
        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("invalid JSON body: {e}")))
}

fn too_large() -> Response {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the body is larger than {MAX_BODY_BYTES} bytes"),
    )
}

fn error(status: StatusCode, message: String) -> Response {
    (
        status,
        Json(json!({ "error": message, "code": status.as_u16() })),
    )
        .into_response()
}

/// A JSON response (axum's own needs its `json` feature; this is all we use of it).
struct Json(Value);

impl IntoResponse for Json {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.0).unwrap_or_else(|_| b"{}".to_vec());
        (
            [(header::CONTENT_TYPE, "application/json")],
            Body::from(body),
        )
            .into_response()
    }
}
