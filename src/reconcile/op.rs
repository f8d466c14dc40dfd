//! Running one operation: its steps in order, each verified, reporting progress to the
//! loop. Stops at the first failure; stops between steps (or inside waits) when cancelled.

use tokio::sync::mpsc;

use super::Msg;
use crate::execute::{ExecError, ExecErrorKind, Executor};
use crate::plan::render::step_line;
use crate::plan::Step;
use crate::status::Outcome;

/// Progress of an operation, sent to the loop.
pub(super) enum OpEvent {
    /// Step `index` started.
    Step {
        id: u64,
        index: usize,
        phase: String,
    },
    /// A step finished (the loop re-observes).
    StepDone { id: u64 },
    /// The operation ended (`kind`: what kind of failure, when it failed).
    Done {
        id: u64,
        outcome: Outcome,
        kind: Option<ExecErrorKind>,
    },
}

pub(super) async fn run(exec: Executor, steps: Vec<Step>, tx: mpsc::Sender<Msg>) {
    let id = exec.op;
    let mut outcome = Outcome::Succeeded;
    let mut kind = None;
    for (index, step) in steps.iter().enumerate() {
        if exec.cancel.is_cancelled() {
            outcome = Outcome::Cancelled("superseded before this step".into());
            break;
        }
        let phase = step_line(step).trim().to_string();
        let _ = tx.send(Msg::Op(OpEvent::Step { id, index, phase })).await;
        match exec.run_step(step).await {
            Ok(()) => {
                let _ = tx.send(Msg::Op(OpEvent::StepDone { id })).await;
            }
            Err(ExecError::Cancelled { step, message }) => {
                outcome = Outcome::Cancelled(format!("{step}: {message}"));
                break;
            }
            Err(e) => {
                kind = Some(e.kind());
                outcome = Outcome::Failed(e.to_string());
                break;
            }
        }
    }
    exec.say(None, format!("operation {id}: {outcome}"));
    let _ = tx.send(Msg::Op(OpEvent::Done { id, outcome, kind })).await;
}
