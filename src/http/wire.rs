//! Wire types of `GET /api/state`: the typed counterpart of [`Status`] at the HTTP
//! boundary, and the JSON schema the OpenAPI document takes from them.
//!
//! [`StateView`] borrows a snapshot and adds what only the HTTP side says: `auth`, the
//! effective catalog with `active`, `busy`, `ready`, and each diagnostic's rendered
//! `text`. Its field names and order are the response's (the UI, the tests and scripts
//! read them), so a field renamed here is a breaking change. The schema is generated with
//! schemars' serialize contract (a field always written is `required`), in the OpenAPI 3.0
//! flavour (`nullable`, references into `#/components/schemas`).
//!
//! Must not: compute anything the status does not already say; hold the `watch` borrow.

use std::path::Path;

use chrono::{DateTime, Utc};
use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::model::catalog::{catalog, CatalogEntry};
use crate::model::desired::Desired;
use crate::model::{Diagnostic, Observed};
use crate::plan::Plan;
use crate::status::{Backoff, Operation, Resource, Status};

/// The body of `GET /api/state`: the status snapshot, auth, the effective catalog and
/// readiness.
#[derive(Debug, Serialize, JsonSchema)]
pub struct StateView<'a> {
    /// The desired file being watched.
    pub desired_file: &'a Path,
    /// The desired state in force (the last valid file), if any.
    pub desired: Option<&'a Desired>,
    /// Problems of the file as it is on disk now (errors mean the last good one is in force).
    pub desired_diagnostics: Vec<DiagnosticView<'a>>,
    /// Latest observation.
    pub observed: &'a Observed,
    /// The plan the loop would run now.
    pub plan: &'a Plan,
    /// Its text rendering.
    pub plan_text: &'a str,
    /// Per-resource sync and health.
    pub resources: &'a [Resource],
    /// The operation running now, or the last one.
    pub operation: Option<&'a Operation>,
    /// The last operation that ended (while another runs, the one before it).
    pub ended_operation: Option<&'a Operation>,
    /// The last few operations that ended, oldest first (the last is `ended_operation`):
    /// a reader of merged snapshots (the state stream) learns every end from them.
    pub recent_operations: &'a [Operation],
    /// Failure backoff, when the last operation failed.
    pub backoff: Option<&'a Backoff>,
    /// Why plan steps wait although nothing failed (a person cancelled an operation).
    pub held: Option<&'a str>,
    /// The last error anywhere in the loop.
    pub last_error: Option<&'a str>,
    /// When the loop started.
    pub started_at: DateTime<Utc>,
    /// When this snapshot was made.
    pub updated_at: DateTime<Utc>,
    /// What this server asks of callers.
    pub auth: AuthView,
    /// The effective catalog (bundled and custom entries, merged settings), by name; empty
    /// without a valid desired file.
    pub catalog: Vec<CatalogEntryView>,
    /// Whether an operation runs now.
    pub busy: bool,
    /// What `GET /readyz` answers: a valid desired file and a first observation.
    pub ready: bool,
}

/// One event of `GET /api/state/stream`: the server's epoch and the state.
#[derive(Debug, Serialize, JsonSchema)]
pub struct StateEvent<'a> {
    /// Chosen at the server's start-up: a different value means the server restarted
    /// (operation ids and log sequence numbers began again), so a reader resyncs.
    pub epoch: &'a str,
    /// What `GET /api/state` answers now.
    pub state: StateView<'a>,
}

/// What a caller needs to know about authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
pub struct AuthView {
    /// Whether mutating routes (and reads) need the admin token.
    pub admin_token: bool,
}

/// One entry of the effective catalog, and whether it is the active model.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CatalogEntryView {
    /// The entry.
    #[serde(flatten)]
    pub entry: CatalogEntry,
    /// Whether it is the desired state's `active_model`.
    pub active: bool,
}

/// A diagnostic as the API sends it: its fields plus the line people read.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "Diagnostic")]
pub struct DiagnosticView<'a> {
    /// The diagnostic.
    #[serde(flatten)]
    pub diagnostic: &'a Diagnostic,
    /// `FILE:LINE:COL: [warning: ]path: message`.
    pub text: String,
}

impl<'a> DiagnosticView<'a> {
    /// The wire form of `diagnostic`.
    pub fn of(diagnostic: &'a Diagnostic) -> Self {
        DiagnosticView {
            diagnostic,
            text: diagnostic.to_string(),
        }
    }
}

impl<'a> StateView<'a> {
    /// The view of `status` for a server whose auth is `auth`; `ready` as `/readyz` says.
    pub fn of(status: &'a Status, auth: AuthView, ready: bool) -> Self {
        // Every field named: a field added to `Status` fails to compile here until it is
        // put on the wire (or left off on purpose).
        let Status {
            desired_file,
            desired,
            desired_diagnostics,
            observed,
            plan,
            plan_text,
            resources,
            operation,
            ended_operation,
            recent_operations,
            backoff,
            held,
            last_error,
            started_at,
            updated_at,
        } = status;
        StateView {
            desired_file,
            desired: desired.as_deref(),
            desired_diagnostics: desired_diagnostics.iter().map(DiagnosticView::of).collect(),
            observed,
            plan,
            plan_text,
            resources,
            operation: operation.as_ref(),
            ended_operation: ended_operation.as_ref(),
            recent_operations,
            backoff: backoff.as_ref(),
            held: held.as_deref(),
            last_error: last_error.as_deref(),
            started_at: *started_at,
            updated_at: *updated_at,
            auth,
            catalog: desired.as_deref().map(catalog_view).unwrap_or_default(),
            busy: status.busy(),
            ready,
        }
    }
}

fn catalog_view(d: &Desired) -> Vec<CatalogEntryView> {
    catalog(d)
        .into_values()
        .map(|entry| CatalogEntryView {
            active: d.primary_model().map(String::as_str) == Some(entry.name.as_str()),
            entry,
        })
        .collect()
}

/// The name of [`StateView`]'s schema under `components/schemas`.
pub const STATE_SCHEMA: &str = "StateView";

/// [`StateView`]'s schema for an OpenAPI 3.0 document: the named schemas it needs,
/// itself under [`STATE_SCHEMA`], every reference pointing into `#/components/schemas`.
pub fn openapi_schemas() -> Map<String, Value> {
    let mut generator = SchemaSettings::openapi3()
        .for_serialize()
        .with(|s| s.meta_schema = None)
        .into_generator();
    // The root schema comes with the transforms applied (`nullable`, no `const`), but the
    // definitions it carries under `components` do not: take them from the generator,
    // transformed, instead.
    let root = generator.root_schema_for::<StateView<'static>>();
    // `StateEvent` (the state stream's events) is named in the definitions; its `state`
    // refers to `StateView`, which the root below then fills.
    generator.subschema_for::<StateEvent<'static>>();
    let mut out = generator.take_definitions(true);
    let mut root = match root.to_value() {
        Value::Object(m) => m,
        // schemars writes an object for a struct; keep whatever it wrote all the same.
        other => Map::from_iter([("allOf".to_string(), Value::Array(vec![other]))]),
    };
    root.remove("components");
    out.insert(STATE_SCHEMA.into(), Value::Object(root));
    out
}

/// [`StateView`]'s schema as JSON Schema 2020-12 (definitions under `$defs`): what a
/// validator such as the `jsonschema` crate reads.
pub fn json_schema() -> Value {
    SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator()
        .into_root_schema_for::<StateView<'static>>()
        .to_value()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;
    use std::sync::Arc;

    use chrono::TimeZone;
    use serde_json::{json, Value};

    use super::*;
    use crate::model::observed::{
        ContainerObserved, Fact, GpuObserved, HostObserved, LaunchRecord, LauncherObserved,
        VllmObserved,
    };
    use crate::model::Severity;
    use crate::status::{Outcome, Status};

    const DESIRED: &str = include_str!("../../examples/desired.yaml");

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_767_000_000 + secs, 0)
            .single()
            .expect("a valid timestamp")
    }

    /// A status with every part filled: a desired state with overrides and a custom model,
    /// hosts seen and unseen, a plan with steps, a failed operation, backoff, diagnostics.
    pub(crate) fn realistic_status() -> Status {
        let v = crate::model::validate::validate_text("desired.yaml", DESIRED);
        let d = v.desired.expect("examples/desired.yaml is valid");
        let mut containers = BTreeMap::new();
        containers.insert(
            "vllm_node".to_string(),
            ContainerObserved {
                running: true,
                image: "vllm-node:latest".into(),
            },
        );
        let head = HostObserved {
            reachable: Fact::known(true, at(1)),
            rtt_ms: Some(3.25),
            containers: Fact::known(containers, at(1)),
            launch: Fact::known(
                Some(LaunchRecord {
                    model: "old-model".into(),
                    repo: "org/old-model".into(),
                    fingerprint: "abc123".into(),
                    settings: Default::default(),
                    launched_at: Some(at(-100)),
                    nodes: vec!["192.168.100.11".into()],
                    generation: Some(crate::launcher::Generation::B),
                    ready_at: None,
                    deployment: None,
                }),
                at(1),
            ),
            hf_cache: Fact::known(["org/old-model".to_string()].into(), at(1)),
            launcher: Fact::known(
                LauncherObserved {
                    head: "0123456789abcdef".into(),
                    behind: Some(2),
                    subjects: vec!["fix a thing".into(), "add a flag".into()],
                    generation: Some(crate::launcher::Generation::B),
                    generation_error: None,
                    usage: Some("not on the wire".into()),
                    branch: Some("main".into()),
                    pinned_from: None,
                },
                at(1),
            ),
            gpus: Fact::known(
                vec![GpuObserved {
                    index: 0,
                    name: "NVIDIA GB10".into(),
                    util_pct: 12.5,
                    mem_used_mib: 0,
                    mem_total_mib: 0,
                    temp_c: 41.0,
                    power_w: 17.25,
                }],
                at(1),
            ),
            launcher_process: Fact::known(
                crate::launcher::LauncherState::Running { pid: 4242 },
                at(1),
            ),
            vllm_process: Fact::known(true, at(1)),
        };
        let worker = HostObserved {
            reachable: Fact::known(false, at(1)),
            containers: Fact::unknown("host unreachable: connection refused"),
            ..Default::default()
        };
        let mut services = BTreeMap::new();
        services.insert("parakeet".to_string(), Fact::known_now(true));
        services.insert("magpie".to_string(), Fact::unknown("not polled yet"));
        let observed = crate::model::Observed {
            deployments: BTreeMap::new(),
            generation: 7,
            hosts: [("spark1".to_string(), head), ("spark2".to_string(), worker)].into(),
            vllm: Fact::known(
                VllmObserved {
                    models: vec!["org/old-model".into()],
                    health_failures: 1,
                },
                at(1),
            ),
            services,
        };
        let plan = crate::plan::plan(&d, &observed);
        let operation = Operation {
            id: 3,
            plan_text: "1. stop\n2. launch\n".into(),
            step: 1,
            steps: 2,
            phase: "launch qwen36 on spark1".into(),
            progress: Some(0.5),
            started_at: at(-50),
            finished_at: Some(at(-10)),
            outcome: Outcome::Failed("launch timed out".into()),
            failure_kind: Some(crate::execute::ExecErrorKind::Timeout),
            timeline: plan
                .steps
                .iter()
                .cloned()
                .map(crate::status::OpStep::pending)
                .collect(),
            download: Some(crate::status::OpDownload {
                repo: "org/old-model".into(),
                bytes: 1024,
                total: Some(4096),
                rate_bps: Some(512.0),
                eta_secs: Some(6),
            }),
        };
        let resources = crate::status::resources(&d, &observed, &plan, Some(&operation));
        Status {
            desired_file: PathBuf::from("/etc/spark-control/desired.yaml"),
            desired_diagnostics: vec![
                Diagnostic {
                    severity: Severity::Warning,
                    file: "desired.yaml".into(),
                    line: 4,
                    col: 3,
                    path: "hosts.spark1".into(),
                    message: "odd but valid".into(),
                },
                Diagnostic {
                    severity: Severity::Error,
                    file: "desired.yaml".into(),
                    line: 0,
                    col: 0,
                    path: String::new(),
                    message: "whole file".into(),
                },
            ],
            observed: Arc::new(observed),
            plan_text: crate::plan::render(&plan),
            plan: Arc::new(plan),
            resources,
            ended_operation: Some(operation.clone()),
            recent_operations: vec![operation.clone()],
            operation: Some(operation),
            backoff: Some(Backoff {
                failures: 2,
                next_attempt: Some(at(60)),
                error: "launch timed out".into(),
            }),
            held: Some("cancelled by a person".into()),
            last_error: Some("launch timed out".into()),
            started_at: at(-1000),
            updated_at: at(2),
            desired: Some(Arc::new(d)),
        }
    }

    #[test]
    fn a_full_view_validates_against_its_json_schema() {
        let s = realistic_status();
        let body = serde_json::to_value(StateView::of(&s, AuthView { admin_token: true }, true))
            .expect("the view serialises");
        let schema = json_schema();
        let validator = jsonschema::draft202012::new(&schema).expect("the schema compiles");
        let errors: Vec<String> = validator
            .iter_errors(&body)
            .map(|e| format!("{e} at {}", e.instance_path))
            .collect();
        assert!(errors.is_empty(), "{}", errors.join("\n"));
        assert!(body["plan"]["steps"]
            .as_array()
            .is_some_and(|s| !s.is_empty()));
        assert_eq!(
            body["observed"]["hosts"]["spark1"]["launcher"]["known"]["value"].get("usage"),
            None
        );
    }

    fn keys(v: &Value) -> Vec<&str> {
        v.as_object()
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// The names and their order as the body had them when it was a patched `Value`
    /// (checked byte for byte against that code before it was removed).
    #[test]
    fn the_body_keeps_its_names_and_order() {
        let s = realistic_status();
        let body = serde_json::to_value(StateView::of(&s, AuthView { admin_token: true }, false))
            .expect("the view serialises");
        assert_eq!(
            keys(&body),
            [
                "desired_file",
                "desired",
                "desired_diagnostics",
                "observed",
                "plan",
                "plan_text",
                "resources",
                "operation",
                "ended_operation",
                "recent_operations",
                "backoff",
                "held",
                "last_error",
                "started_at",
                "updated_at",
                "auth",
                "catalog",
                "busy",
                "ready",
            ]
        );
        assert_eq!(body["auth"], json!({ "admin_token": true }));
        assert_eq!(
            (&body["busy"], &body["ready"]),
            (&json!(false), &json!(false))
        );
        assert_eq!(
            keys(&body["desired_diagnostics"][0]),
            ["severity", "file", "line", "col", "path", "message", "text"]
        );
        assert_eq!(
            body["desired_diagnostics"][0]["text"],
            "desired.yaml:4:3: warning: hosts.spark1: odd but valid"
        );
        let catalog = body["catalog"].as_array().expect("catalog");
        let active: Vec<&Value> = catalog.iter().filter(|e| e["active"] == true).collect();
        assert_eq!(active.len(), 1);
        assert_eq!(active[0]["name"], "qwen36");
        assert_eq!(
            keys(active[0]),
            [
                "name",
                "repo",
                "mode",
                "description",
                "bundled",
                "settings",
                "active"
            ]
        );
        assert_eq!(
            body["operation"]["outcome"],
            json!({ "state": "failed", "detail": "launch timed out" })
        );
        assert_eq!(body["started_at"], "2025-12-29T09:03:20Z");

        let initial = Status::initial(PathBuf::from("desired.yaml"));
        let body = serde_json::to_value(StateView::of(
            &initial,
            AuthView { admin_token: false },
            false,
        ))
        .expect("the view serialises");
        assert_eq!(
            (&body["desired"], &body["catalog"]),
            (&Value::Null, &json!([]))
        );
    }

    /// The diagnostics of `/api/state` are those of error bodies and `warnings`.
    #[test]
    fn diagnostics_are_written_as_error_bodies_write_them() {
        let s = realistic_status();
        let view: Vec<DiagnosticView> = s
            .desired_diagnostics
            .iter()
            .map(DiagnosticView::of)
            .collect();
        assert_eq!(
            serde_json::to_value(view).expect("serialises"),
            crate::http::error::diagnostics_json(&s.desired_diagnostics)
        );
    }
}
