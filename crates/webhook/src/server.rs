//! The HTTPS server: `/validate`, `/mutate`, `/healthz`, `/readyz` over rustls (certificate reloaded in place),
//! and the plain-HTTP metrics listener (`/metrics`, `/healthz`, `/readyz`).
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State as AxumState};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnectionBuilder;
use hyper_util::service::TowerToHyperService;
use kibaship_admission::{
    Decision, MAX_REVIEW_BYTES, Review, ReviewVersion, parse_review, respond, respond_error,
};
use kibaship_oci::RegistryClient;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::decide::{Endpoint, unix_now};
use crate::metrics::DecisionLabels;
use crate::reload::{LoadError, Seen, load_tls, reload_changed};
use crate::state::{ServerConfig, State};
use crate::tls::{ReloadingCertificate, server_config};

/// Longest a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The serving certificate did not load (the server cannot serve without one).
    #[error(transparent)]
    Certificate(#[from] LoadError),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// The registry client could not be built.
    #[error("registry client: {0}")]
    Registry(#[from] kibaship_oci::Error),
    /// The Kubernetes API client could not be built.
    #[error("Kubernetes API client: {0}")]
    KubeApi(#[from] crate::kube_api::KubeApiError),
    /// A listener could not be bound.
    #[error("listening on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// A running webhook.
#[derive(Debug)]
pub struct Running {
    /// Where HTTPS is served.
    pub addr: SocketAddr,
    /// Where metrics are served.
    pub metrics_addr: Option<SocketAddr>,
    /// Its state (for tests and the binary).
    pub state: Arc<State>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops accepting connections and reloading (connections in progress are dropped with the runtime).
    pub fn stop(&self) {
        for task in &self.tasks {
            task.abort();
        }
    }

    /// Waits until the server stops (it runs until stopped or its runtime ends).
    pub async fn wait(mut self) {
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Binds the listeners, loads the certificate (required), the policy and the trusted root (the server is not
/// ready until both load), and starts serving and watching the files.
pub async fn start(config: ServerConfig) -> Result<Running, StartError> {
    let (key, tls_hash) = load_tls(&config.tls_cert, &config.tls_key)?;
    let certificate = Arc::new(ReloadingCertificate::new(key));
    let tls = Arc::new(server_config(Arc::clone(&certificate))?);
    let client = RegistryClient::new(config.registry.clone())?;
    let kube = match &config.kube_api {
        Some(kube) => Some(crate::kube_api::KubeApi::new(kube.clone())?),
        None => None,
    };
    let state = Arc::new(State::new(&config, certificate, client, kube));
    let mut seen = Seen::with_tls(tls_hash);
    reload_changed(&state, &config, &mut seen);

    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: config.listen,
        source,
    })?;
    let mut tasks = Vec::new();
    tasks.push(tokio::spawn(serve_tls(
        listener,
        TlsAcceptor::from(tls),
        admission_router(Arc::clone(&state)),
    )));
    let metrics_addr = match config.metrics_listen {
        Some(metrics_listen) => {
            let listener =
                TcpListener::bind(metrics_listen)
                    .await
                    .map_err(|source| StartError::Bind {
                        addr: metrics_listen,
                        source,
                    })?;
            let bound = listener.local_addr().map_err(|source| StartError::Bind {
                addr: metrics_listen,
                source,
            })?;
            let router = metrics_router(Arc::clone(&state));
            tasks.push(tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, router).await {
                    tracing::error!(error = %e, "the metrics listener stopped");
                }
            }));
            Some(bound)
        }
        None => None,
    };
    let watch_state = Arc::clone(&state);
    tasks.push(tokio::spawn(async move {
        let mut tick = tokio::time::interval(config.reload_interval.max(Duration::from_millis(50)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            reload_changed(&watch_state, &config, &mut seen);
        }
    }));
    Ok(Running {
        addr,
        metrics_addr,
        state,
        tasks,
    })
}

/// Accepts and serves connections until dropped; the connections live in a set owned by this future, so
/// stopping the server (aborting its task) closes every open connection too, keep-alive ones included.
async fn serve_tls(listener: TcpListener, acceptor: TlsAcceptor, router: Router) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let router = router.clone();
        connections.spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let service = TowerToHyperService::new(router);
            if let Err(e) = ConnectionBuilder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), service)
                .await
            {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
}

type Shared = Arc<State>;

fn admission_router(state: Shared) -> Router {
    Router::new()
        .route("/validate", post(validate))
        .route("/mutate", post(mutate))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        // One byte over the limit is enough to tell; the parser checks the limit again.
        .layer(DefaultBodyLimit::max(MAX_REVIEW_BYTES + 1))
        .with_state(state)
}

fn metrics_router(state: Shared) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(AxumState(state): AxumState<Shared>) -> Response {
    if state.is_ready() {
        (StatusCode::OK, "ok").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the policy or the trusted root has not loaded (see the log)",
        )
            .into_response()
    }
}

async fn metrics(AxumState(state): AxumState<Shared>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

async fn validate(AxumState(state): AxumState<Shared>, body: Bytes) -> Response {
    answer(state, Endpoint::Validate, body).await
}

async fn mutate(AxumState(state): AxumState<Shared>, body: Bytes) -> Response {
    answer(state, Endpoint::Mutate, body).await
}

fn json(bytes: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

fn count(state: &State, endpoint: Endpoint, result: &'static str, code: &str) {
    state
        .metrics
        .decisions
        .get_or_create(&DecisionLabels {
            endpoint: endpoint.as_str(),
            result,
            code: code.to_string(),
        })
        .inc();
}

/// A denial (validate) or a plain allow without patch (mutate: validation denies) for a request no verdict
/// could be reached for.
fn refusal(endpoint: Endpoint, code: &str, message: String) -> Decision {
    match endpoint {
        Endpoint::Validate => Decision::deny(code, format!("kibaship: denied: {code}: {message}")),
        Endpoint::Mutate => Decision::allow(),
    }
}

async fn answer(state: Shared, endpoint: Endpoint, body: Bytes) -> Response {
    let started = Instant::now();
    let review = match parse_review(&body) {
        Ok(review) => review,
        Err(e) => {
            count(&state, endpoint, "denied", e.code());
            tracing::warn!(endpoint = endpoint.as_str(), code = e.code(), error = %e, "unreadable AdmissionReview");
            return match e.uid() {
                Some(uid) => json(respond_error(
                    uid,
                    e.api_version().unwrap_or(ReviewVersion::V1),
                    &e,
                )),
                None => (
                    StatusCode::BAD_REQUEST,
                    format!("kibaship: {}: {e}", e.code()),
                )
                    .into_response(),
            };
        }
    };
    let Some(judge) = state.judge() else {
        let decision = refusal(
            endpoint,
            "not-ready",
            "the webhook has not loaded its policy and trusted root yet".into(),
        );
        count(
            &state,
            endpoint,
            if decision.allowed {
                "allowed"
            } else {
                "denied"
            },
            "not-ready",
        );
        return json(respond(&review, &decision));
    };
    let now = unix_now();
    // The decision runs as a task of its own: a panic in it ends that task, and the request is denied.
    let review = Arc::new(review);
    let task_review = Arc::clone(&review);
    let decided =
        tokio::spawn(async move { judge.decide(&task_review, endpoint, now).await }).await;
    let (decision, result, code) = match decided {
        Ok(judgement) => (judgement.decision, judgement.result, judgement.code),
        Err(e) => {
            tracing::error!(error = %e, uid = %review.uid, "the decision task failed");
            let decision = refusal(
                endpoint,
                "internal-error",
                "the webhook failed to decide".into(),
            );
            let result = if decision.allowed {
                "allowed"
            } else {
                "denied"
            };
            (decision, result, "internal-error".to_string())
        }
    };
    count(&state, endpoint, result, &code);
    let elapsed = started.elapsed();
    state
        .metrics
        .decision_seconds
        .observe(elapsed.as_secs_f64());
    log_decision(&review, endpoint, result, &code, &decision, elapsed);
    json(respond(&review, &decision))
}

fn log_decision(
    review: &Review,
    endpoint: Endpoint,
    result: &'static str,
    code: &str,
    decision: &Decision,
    elapsed: Duration,
) {
    tracing::info!(
        uid = %review.uid,
        endpoint = endpoint.as_str(),
        namespace = %review.namespace,
        kind = ?review.kind,
        name = %review.name,
        operation = ?review.operation,
        images = review.images.len(),
        result,
        code,
        status_message = %decision.message,
        warnings = decision.warnings.len(),
        patched = decision.patch.len(),
        micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
        "admission decision"
    );
}
