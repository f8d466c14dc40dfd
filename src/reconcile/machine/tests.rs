//! The loop's rules, one table test each, and a property test over random input
//! sequences (no sshd, no tokio: `cargo test --lib reconcile`).

use std::time::Duration;

use proptest::prelude::*;

use super::*;

type C = Core<&'static str>;
type Fx = Vec<Effect<&'static str>>;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

const POLL: u64 = 5000;

fn changed(stale: bool) -> Input<&'static str> {
    Input::Loaded(Loaded::Changed {
        stale,
        poll_every: ms(POLL),
    })
}

fn read(bytes: &[u8], whole: bool) -> Input<&'static str> {
    Input::FileRead {
        bytes: Some(bytes.to_vec()),
        whole,
    }
}

fn starts(fx: &Fx) -> Vec<u64> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Start { id, .. } => Some(*id),
            _ => None,
        })
        .collect()
}

fn observes(fx: &Fx) -> Vec<u64> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Observe { seq } => Some(*seq),
            _ => None,
        })
        .collect()
}

fn cancels(fx: &Fx) -> Vec<CancelWhy> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Cancel { why, .. } => Some(*why),
            _ => None,
        })
        .collect()
}

fn loads(fx: &Fx) -> usize {
    fx.iter().filter(|e| matches!(e, Effect::Load(_))).count()
}

/// Booted on a valid file `v1`, observation 1 arrived; the next `Planned` decides.
fn booted() -> C {
    let mut c = C::new(ms(300), ms(POLL));
    let fx = c.step(read(b"v1", false), ms(0));
    assert_eq!(loads(&fx), 1, "the first read loads at once: {fx:?}");
    let fx = c.step(changed(false), ms(0));
    assert_eq!(observes(&fx), vec![1]);
    c.step(Input::Observed { seq: 1 }, ms(100));
    c
}

/// [`booted`] with operation 1 running the plan.
fn running() -> C {
    let mut c = booted();
    let fx = c.step(Input::Planned { steps: true }, ms(100));
    assert_eq!(starts(&fx), vec![1]);
    c
}

#[test]
fn the_first_plan_starts_once_an_observation_arrived_and_was_planned_from() {
    let mut c = C::new(ms(300), ms(POLL));
    c.step(read(b"v1", false), ms(0));
    c.step(changed(false), ms(0));
    // A plan from no observation never starts.
    assert!(starts(&c.step(Input::Planned { steps: true }, ms(1))).is_empty());
    c.step(Input::Observed { seq: 1 }, ms(100));
    // The plan made before observation 1 arrived is stale.
    assert!(starts(&c.step(Input::Tick, ms(101))).is_empty());
    let fx = c.step(Input::Planned { steps: true }, ms(102));
    assert_eq!(
        fx,
        vec![Effect::Start {
            id: 1,
            work: Work::Plan,
            failures: 0
        }]
    );
}

#[test]
fn a_partial_file_waits_for_the_settle_window() {
    let mut c = booted();
    assert_eq!(loads(&c.step(read(b"half", false), ms(1000))), 0);
    assert_eq!(c.settle_deadline(), Some(ms(1300)));
    // Still changing: the window starts again.
    assert_eq!(loads(&c.step(read(b"whole", false), ms(1200))), 0);
    assert_eq!(c.settle_deadline(), Some(ms(1500)));
    assert_eq!(loads(&c.step(read(b"whole", false), ms(1499))), 0);
    let fx = c.step(read(b"whole", false), ms(1500));
    assert_eq!(fx, vec![Effect::Load(Some(b"whole".to_vec()))]);
    assert_eq!(c.settle_deadline(), None);
}

#[test]
fn our_own_whole_write_loads_at_once() {
    let mut c = booted();
    assert_eq!(loads(&c.step(read(b"ui edit", true), ms(1000))), 1);
}

#[test]
fn a_zero_settle_window_loads_at_once() {
    let mut c = C::new(Duration::ZERO, ms(POLL));
    c.step(read(b"v1", false), ms(0));
    c.step(changed(false), ms(0));
    assert_eq!(loads(&c.step(read(b"v2", false), ms(10))), 1);
}

#[test]
fn the_same_bytes_again_forget_a_pending_change() {
    let mut c = booted();
    c.step(read(b"half", false), ms(1000));
    assert!(c.settle_deadline().is_some());
    // The editor put the old text back: nothing to do, nothing pending.
    assert_eq!(loads(&c.step(read(b"v1", false), ms(1100))), 0);
    assert_eq!(c.settle_deadline(), None);
    // Reading the loaded bytes again never reloads them.
    assert_eq!(loads(&c.step(read(b"v1", false), ms(9000))), 0);
}

#[test]
fn an_invalid_file_is_never_acted_on() {
    let mut c = running();
    c.step(
        Input::OpDone {
            id: 1,
            end: End::Failed,
        },
        ms(200),
    );
    let backoff = c.backoff();
    assert!(backoff.is_some());
    let fx = c.step(Input::Loaded(Loaded::Invalid), ms(300));
    assert!(fx.is_empty(), "{fx:?}");
    assert_eq!(
        c.backoff(),
        backoff,
        "an invalid file does not reset the backoff"
    );
    // While an operation runs, an invalid file does not cancel it.
    let mut c = running();
    assert!(cancels(&c.step(Input::Loaded(Loaded::Invalid), ms(300))).is_empty());
    assert_eq!(c.running(), Some(1));
}

#[test]
fn a_stale_operation_is_cancelled_once() {
    let mut c = running();
    assert_eq!(
        c.step(changed(true), ms(200)),
        vec![Effect::Cancel {
            id: 1,
            why: CancelWhy::Superseded
        }]
    );
    assert!(cancels(&c.step(changed(true), ms(300))).is_empty());
    assert_eq!(c.cancelled(), Some(CancelWhy::Superseded));
}

#[test]
fn a_change_that_keeps_the_remaining_steps_keeps_the_operation() {
    let mut c = running();
    assert!(cancels(&c.step(changed(false), ms(200))).is_empty());
    assert_eq!(c.cancelled(), None);
}

#[test]
fn one_operation_at_a_time() {
    let mut c = running();
    assert!(starts(&c.step(Input::Planned { steps: true }, ms(200))).is_empty());
    assert!(starts(&c.step(Input::Enqueue("restart"), ms(200))).is_empty());
    c.step(Input::Observed { seq: 1 }, ms(300));
    assert!(starts(&c.step(Input::Planned { steps: false }, ms(300))).is_empty());
}

#[test]
fn after_a_success_nothing_starts_until_the_observation_requested_at_its_last_step() {
    let mut c = running();
    let fx = c.step(Input::StepDone { id: 1 }, ms(200));
    assert_eq!(observes(&fx), vec![2]);
    c.step(
        Input::OpDone {
            id: 1,
            end: End::Succeeded,
        },
        ms(210),
    );
    // A plan from observation 1 (made before the step ended) never starts.
    assert!(starts(&c.step(Input::Planned { steps: true }, ms(220))).is_empty());
    c.step(Input::Observed { seq: 2 }, ms(300));
    assert_eq!(
        starts(&c.step(Input::Planned { steps: true }, ms(300))),
        vec![2]
    );
}

#[test]
fn an_observation_in_flight_at_a_step_end_is_abandoned_for_a_fresh_one() {
    let mut c = running();
    // Observation 2 started before the step ended (a poll).
    let fx = c.step(Input::Tick, ms(POLL));
    assert_eq!(observes(&fx), vec![2]);
    // The step ends while it is in flight: it is abandoned, 3 starts at once.
    let fx = c.step(Input::StepDone { id: 1 }, ms(POLL + 10));
    assert_eq!(
        fx,
        vec![Effect::Abandon { seq: 2 }, Effect::Observe { seq: 3 }]
    );
    // A success needs nothing newer than the one requested at its last step.
    let fx = c.step(
        Input::OpDone {
            id: 1,
            end: End::Succeeded,
        },
        ms(POLL + 20),
    );
    assert!(fx.is_empty(), "{fx:?}");
    // The abandoned observation's late result is ignored.
    c.step(Input::Observed { seq: 2 }, ms(POLL + 30));
    assert!(starts(&c.step(Input::Planned { steps: true }, ms(POLL + 30))).is_empty());
    assert_eq!(c.observing(), Some(3));
    c.step(Input::Observed { seq: 3 }, ms(POLL + 40));
    assert_eq!(
        starts(&c.step(Input::Planned { steps: true }, ms(POLL + 40))),
        vec![2]
    );
}

#[test]
fn after_a_failure_nothing_starts_until_an_observation_requested_after_it() {
    let mut c = running();
    c.step(Input::StepDone { id: 1 }, ms(200)); // observation 2
    c.step(Input::Observed { seq: 2 }, ms(250));
    // The second step failed after running commands: observation 2 is too old.
    let fx = c.step(
        Input::OpDone {
            id: 1,
            end: End::Failed,
        },
        ms(300),
    );
    assert_eq!(observes(&fx), vec![3]);
    let later = ms(300) + backoff_delay(1);
    assert!(starts(&c.step(Input::Planned { steps: true }, later)).is_empty());
    c.step(Input::Observed { seq: 3 }, later);
    assert_eq!(
        starts(&c.step(Input::Planned { steps: true }, later)),
        vec![2]
    );
}

#[test]
fn backoff_doubles_from_10_s_to_5_min() {
    let table = [
        (1, 10),
        (2, 20),
        (3, 40),
        (4, 80),
        (5, 160),
        (6, 300),
        (9, 300),
    ];
    for (failures, secs) in table {
        assert_eq!(
            backoff_delay(failures),
            Duration::from_secs(secs),
            "{failures}"
        );
    }
}

/// Fails operation `id`, then lets an observation arrive and plans again at `now`.
fn fail_and_replan(c: &mut C, id: u64, now: Duration) -> Fx {
    let fx = c.step(
        Input::OpDone {
            id,
            end: End::Failed,
        },
        now,
    );
    assert!(observes(&fx).len() <= 1);
    if let Some(seq) = c.observing() {
        c.step(Input::Observed { seq }, now);
    }
    c.step(Input::Planned { steps: true }, now)
}

#[test]
fn failures_back_off_then_give_up_until_a_retry() {
    let mut c = running();
    let mut now = ms(1000);
    for id in 1..MAX_FAILURES as u64 {
        assert!(
            starts(&fail_and_replan(&mut c, id, now)).is_empty(),
            "backing off"
        );
        let b = c.backoff().expect("backoff");
        assert_eq!(b.failures, id as u32);
        assert_eq!(b.next, Some(now + backoff_delay(id as u32)));
        // Not a millisecond early.
        assert!(starts(&c.step(Input::Tick, now + backoff_delay(id as u32) - ms(1))).is_empty());
        now += backoff_delay(id as u32);
        let fx = c.step(Input::Tick, now);
        let fx: Vec<_> = fx
            .into_iter()
            .filter(|e| matches!(e, Effect::Start { .. }))
            .collect();
        assert_eq!(
            fx,
            vec![Effect::Start {
                id: id + 1,
                work: Work::Plan,
                failures: id as u32
            }]
        );
    }
    // The fifth failure: no retry on its own, however long we wait.
    fail_and_replan(&mut c, MAX_FAILURES as u64, now);
    assert_eq!(c.backoff().and_then(|b| b.next), None);
    assert!(starts(&c.step(Input::Tick, now + Duration::from_secs(86400))).is_empty());
    // A retry runs the plan (made from the latest observation) at once, and observes.
    let fx = c.step(Input::Retry, now + Duration::from_secs(86400));
    assert_eq!(starts(&fx).len(), 1, "{fx:?}");
    assert!(c.observing().is_some());
}

#[test]
fn a_configuration_error_is_not_retried_until_a_change_or_a_retry() {
    let mut c = running();
    c.step(
        Input::OpDone {
            id: 1,
            end: End::Refused,
        },
        ms(1000),
    );
    let b = c.backoff().expect("counted as a failure");
    assert_eq!((b.failures, b.next), (1, None));
    if let Some(seq) = c.observing() {
        c.step(Input::Observed { seq }, ms(1000));
    }
    assert!(starts(&c.step(Input::Planned { steps: true }, ms(1000))).is_empty());
    // However long we wait: the same settings would fail the same way.
    assert!(starts(&c.step(Input::Tick, ms(1000) + Duration::from_secs(86400))).is_empty());
    // A changed desired state plans and starts again.
    c.step(changed(false), ms(2000));
    assert_eq!(c.backoff(), None);
    assert_eq!(
        starts(&c.step(Input::Planned { steps: true }, ms(2000))),
        vec![2]
    );
}

#[test]
fn a_new_desired_state_clears_the_backoff() {
    let mut c = running();
    fail_and_replan(&mut c, 1, ms(1000));
    assert!(c.backoff().is_some());
    c.step(changed(false), ms(1100));
    assert_eq!(c.backoff(), None);
    assert_eq!(
        starts(&c.step(Input::Planned { steps: true }, ms(1100))),
        vec![2]
    );
}

#[test]
fn a_persons_cancel_holds_the_plan_until_a_change_or_a_retry() {
    for release in [Input::Retry, Input::Reconcile, changed(false)] {
        let mut c = running();
        let fx = c.step(Input::CancelRequest { id: 1 }, ms(200));
        assert_eq!(
            fx,
            vec![
                Effect::Cancel {
                    id: 1,
                    why: CancelWhy::Person
                },
                Effect::CancelAnswer(CancelAnswer::Cancelling)
            ]
        );
        let fx = c.step(
            Input::OpDone {
                id: 1,
                end: End::Cancelled,
            },
            ms(300),
        );
        assert_eq!(c.held(), Some(Held { op: 1 }));
        let seq = observes(&fx)[0];
        c.step(Input::Observed { seq }, ms(400));
        assert!(starts(&c.step(Input::Planned { steps: true }, ms(400))).is_empty());
        assert!(starts(&c.step(Input::Tick, ms(400) + ms(POLL * 100))).is_empty());
        // Queued one-shots still run while the plan is held.
        assert!(starts(&c.step(Input::Planned { steps: false }, ms(500))).is_empty());
        let fx = c.step(release.clone(), ms(600));
        assert_eq!(c.held(), None, "{release:?}");
        if let Some(seq) = observes(&fx).first() {
            c.step(Input::Observed { seq: *seq }, ms(700));
        }
        assert_eq!(
            starts(&c.step(Input::Planned { steps: true }, ms(700))),
            vec![2],
            "{release:?}"
        );
    }
}

#[test]
fn a_supersede_does_not_hold_the_plan() {
    let mut c = running();
    c.step(changed(true), ms(200));
    c.step(
        Input::OpDone {
            id: 1,
            end: End::Cancelled,
        },
        ms(300),
    );
    assert_eq!(c.held(), None);
}

#[test]
fn a_cancel_request_is_answered() {
    let mut c = running();
    let answer = |c: &mut C, id| {
        c.step(Input::CancelRequest { id }, ms(200))
            .into_iter()
            .find_map(|e| match e {
                Effect::CancelAnswer(a) => Some(a),
                _ => None,
            })
    };
    assert_eq!(answer(&mut c, 0), Some(CancelAnswer::Unknown));
    assert_eq!(answer(&mut c, 2), Some(CancelAnswer::Unknown));
    assert_eq!(answer(&mut c, 1), Some(CancelAnswer::Cancelling));
    // Asked twice: still cancelling, cancelled once.
    let fx = c.step(Input::CancelRequest { id: 1 }, ms(210));
    assert!(cancels(&fx).is_empty());
    c.step(
        Input::OpDone {
            id: 1,
            end: End::Cancelled,
        },
        ms(300),
    );
    assert_eq!(answer(&mut c, 1), Some(CancelAnswer::Ended));
}

#[test]
fn queued_work_runs_when_no_plan_step_is_pending() {
    let mut c = booted();
    c.step(Input::Enqueue("fetch"), ms(100));
    // A plan with steps goes first.
    let fx = c.step(Input::Planned { steps: true }, ms(100));
    assert_eq!(
        fx,
        vec![Effect::Start {
            id: 1,
            work: Work::Plan,
            failures: 0
        }]
    );
    c.step(Input::StepDone { id: 1 }, ms(200));
    c.step(
        Input::OpDone {
            id: 1,
            end: End::Succeeded,
        },
        ms(200),
    );
    c.step(Input::Observed { seq: 2 }, ms(300));
    let fx = c.step(Input::Planned { steps: false }, ms(300));
    assert_eq!(
        fx,
        vec![Effect::Start {
            id: 2,
            work: Work::Queued("fetch"),
            failures: 0
        }]
    );
}

#[test]
fn observations_run_one_at_a_time_and_a_request_gets_a_later_one() {
    let mut c = booted();
    assert_eq!(observes(&c.step(Input::Reconcile, ms(200))), vec![2]);
    // A poll while 2 is in flight needs nothing more.
    assert!(c
        .step(Input::Tick, ms(POLL))
        .iter()
        .all(|e| *e == Effect::PollDue));
    // A request does: 2 started before it; 3 replaces it at once.
    assert_eq!(
        c.step(Input::Reconcile, ms(POLL + 10)),
        vec![Effect::Abandon { seq: 2 }, Effect::Observe { seq: 3 }]
    );
    assert_eq!(c.observing(), Some(3));
    c.step(Input::Observed { seq: 2 }, ms(POLL + 20));
    assert_eq!(
        c.observing(),
        Some(3),
        "a late abandoned result changes nothing"
    );
    assert!(c.step(Input::Observed { seq: 3 }, ms(POLL + 30)).is_empty());
    assert!(c.is_idle());
}

#[test]
fn the_poll_interval_observes_and_rereads() {
    let mut c = booted();
    assert!(c.step(Input::Tick, ms(POLL - 1)).is_empty());
    let fx = c.step(Input::Tick, ms(POLL));
    assert_eq!(fx, vec![Effect::PollDue, Effect::Observe { seq: 2 }]);
    assert!(c.step(Input::Tick, ms(POLL + 250)).is_empty());
}

#[test]
fn no_desired_state_no_observation() {
    let mut c = C::new(ms(300), ms(POLL));
    c.step(
        Input::FileRead {
            bytes: None,
            whole: false,
        },
        ms(0),
    );
    c.step(Input::Loaded(Loaded::Invalid), ms(0));
    assert!(observes(&c.step(Input::Tick, ms(POLL))).is_empty());
    assert!(observes(&c.step(Input::Reconcile, ms(POLL))).is_empty());
}

#[test]
fn shutdown_cancels_and_starts_nothing() {
    let mut c = running();
    c.step(Input::Enqueue("fetch"), ms(150));
    assert_eq!(
        c.step(Input::Shutdown, ms(200)),
        vec![Effect::Cancel {
            id: 1,
            why: CancelWhy::Shutdown
        }]
    );
    let fx = c.step(
        Input::OpDone {
            id: 1,
            end: End::Cancelled,
        },
        ms(300),
    );
    assert!(
        fx.is_empty(),
        "no observation, no start while stopping: {fx:?}"
    );
    assert!(starts(&c.step(Input::Planned { steps: true }, ms(300))).is_empty());
    assert!(c.step(Input::Tick, ms(POLL * 3)).is_empty());
    assert!(c.is_idle());
}

// ---- property test ----------------------------------------------------------------

#[derive(Debug, Clone)]
enum Act {
    File(u8, bool),
    Tick(u64),
    Observe,
    Late,
    Plan(bool),
    Step,
    Done(u8),
    Reconcile,
    Retry,
    Enqueue,
    Cancel(u8),
    Shutdown,
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        3 => (0u8..4, any::<bool>()).prop_map(|(f, own)| Act::File(f, own)),
        3 => (0u64..20_000).prop_map(Act::Tick),
        4 => Just(Act::Observe),
        1 => Just(Act::Late),
        4 => any::<bool>().prop_map(Act::Plan),
        3 => Just(Act::Step),
        2 => (0u8..4).prop_map(Act::Done),
        1 => Just(Act::Reconcile),
        1 => Just(Act::Retry),
        1 => Just(Act::Enqueue),
        1 => (0u8..6).prop_map(Act::Cancel),
        1 => Just(Act::Shutdown).prop_filter("rare", |_| true),
    ]
}

/// The files the world can hold: two valid, one invalid, none.
const FILES: [Option<&[u8]>; 4] = [Some(b"valid a"), Some(b"valid b"), Some(b"broken"), None];

/// A world that answers the core's effects as the driver would, checking each rule
/// against what *it* saw (not the core's own state).
struct World {
    c: C,
    now: Duration,
    file: Option<&'static [u8]>,
    in_force: Option<&'static [u8]>,
    obs_pending: Option<u64>,
    issued: u64,
    arrived: u64,
    /// The highest observation issued before the last step (or failed operation) ended.
    barrier: u64,
    plan_fresh: bool,
    plan_steps: bool,
    running: Option<(u64, u8)>,
    shutdown: bool,
    /// Observations abandoned: their results may still arrive, late.
    abandoned: Vec<u64>,
}

impl World {
    fn new() -> World {
        World {
            c: C::new(ms(300), ms(POLL)),
            now: Duration::ZERO,
            file: FILES[0],
            in_force: None,
            obs_pending: None,
            issued: 0,
            arrived: 0,
            barrier: 0,
            plan_fresh: false,
            plan_steps: false,
            running: None,
            shutdown: false,
            abandoned: Vec::new(),
        }
    }

    fn feed(&mut self, input: Input<&'static str>) -> Result<(), TestCaseError> {
        let mut inbox = vec![input];
        while let Some(i) = inbox.pop() {
            let invalid = i == Input::Loaded(Loaded::Invalid);
            let asked = i.clone();
            if let Input::Loaded(Loaded::Changed { .. }) = i {
                self.plan_fresh = false;
            }
            let fx = self.c.step(i, self.now);
            for e in fx {
                match e {
                    Effect::Load(bytes) => {
                        let bytes = bytes.as_deref();
                        let l = match FILES.iter().find(|f| f.as_deref() == bytes).copied() {
                            Some(Some(b)) if b.starts_with(b"valid") => {
                                if self.in_force == Some(b) {
                                    Loaded::Unchanged
                                } else {
                                    self.in_force = Some(b);
                                    Loaded::Changed {
                                        stale: self.running.is_some(),
                                        poll_every: ms(POLL),
                                    }
                                }
                            }
                            _ => Loaded::Invalid,
                        };
                        inbox.push(Input::Loaded(l));
                    }
                    Effect::Abandon { seq } => {
                        prop_assert_eq!(
                            self.obs_pending,
                            Some(seq),
                            "abandoned what is not in flight"
                        );
                        self.obs_pending = None;
                        self.abandoned.push(seq);
                    }
                    Effect::Observe { seq } => {
                        prop_assert!(self.obs_pending.is_none(), "two observations at once");
                        prop_assert!(!self.shutdown, "an observation while stopping");
                        prop_assert_eq!(seq, self.issued + 1);
                        self.issued = seq;
                        self.obs_pending = Some(seq);
                    }
                    Effect::Start { id, work, .. } => {
                        prop_assert!(self.running.is_none(), "two operations at once");
                        prop_assert!(!self.shutdown, "an operation started while stopping");
                        prop_assert!(self.in_force.is_some(), "started with no valid file");
                        prop_assert!(self.plan_fresh, "started from a stale plan");
                        prop_assert!(
                            self.arrived > self.barrier,
                            "started from observation {} made before the last step ended (needs > {})",
                            self.arrived,
                            self.barrier
                        );
                        prop_assert_eq!(work == Work::Plan, self.plan_steps);
                        self.running = Some((id, 1 + (id % 3) as u8));
                    }
                    Effect::Cancel { id, .. } => {
                        prop_assert!(!invalid, "an invalid file cancelled an operation");
                        prop_assert_eq!(Some(id), self.running.map(|r| r.0));
                    }
                    Effect::PollDue => inbox.push(Input::FileRead {
                        bytes: self.file.map(<[u8]>::to_vec),
                        whole: false,
                    }),
                    Effect::CancelAnswer(a) => {
                        let Input::CancelRequest { id } = asked else {
                            return Err(TestCaseError::fail("an answer nobody asked for"));
                        };
                        prop_assert_eq!(
                            a == CancelAnswer::Cancelling,
                            self.running.is_some_and(|r| r.0 == id)
                        );
                    }
                }
            }
        }
        Ok(())
    }

    fn act(&mut self, a: &Act) -> Result<(), TestCaseError> {
        match a {
            Act::File(f, own) => {
                self.file = FILES[*f as usize];
                self.feed(Input::FileRead {
                    bytes: self.file.map(<[u8]>::to_vec),
                    whole: *own,
                })
            }
            Act::Tick(d) => {
                self.now += ms(*d);
                // The driver reads the file when the settle window ends.
                if self.c.settle_deadline().is_some_and(|t| t <= self.now) {
                    self.feed(Input::FileRead {
                        bytes: self.file.map(<[u8]>::to_vec),
                        whole: false,
                    })?;
                }
                self.feed(Input::Tick)
            }
            Act::Observe => match self.obs_pending.take() {
                Some(seq) => {
                    self.arrived = seq;
                    self.plan_fresh = false;
                    self.feed(Input::Observed { seq })
                }
                None => Ok(()),
            },
            Act::Late => match self.abandoned.pop() {
                // The core must ignore it: the world's "latest arrived" stays as it was.
                Some(seq) => {
                    let before = self.c.observing();
                    self.feed(Input::Observed { seq })?;
                    prop_assert_eq!(before, self.c.observing());
                    Ok(())
                }
                None => Ok(()),
            },
            Act::Plan(steps) => {
                self.plan_fresh = true;
                self.plan_steps = *steps;
                self.feed(Input::Planned { steps: *steps })
            }
            Act::Step => match self.running {
                Some((id, left)) if left > 0 => {
                    self.running = Some((id, left - 1));
                    self.barrier = self.issued;
                    self.feed(Input::StepDone { id })
                }
                _ => Ok(()),
            },
            Act::Done(e) => match self.running {
                Some((id, left)) => {
                    let end = match e {
                        0 if left == 0 => End::Succeeded,
                        0 | 1 => End::Failed,
                        2 => End::Refused,
                        _ => End::Cancelled,
                    };
                    if end != End::Succeeded {
                        self.barrier = self.issued;
                    }
                    self.running = None;
                    self.feed(Input::OpDone { id, end })
                }
                None => Ok(()),
            },
            Act::Reconcile => self.feed(Input::Reconcile),
            Act::Retry => self.feed(Input::Retry),
            Act::Enqueue => self.feed(Input::Enqueue("queued")),
            Act::Cancel(id) => self.feed(Input::CancelRequest { id: *id as u64 }),
            Act::Shutdown => {
                self.shutdown = true;
                self.feed(Input::Shutdown)
            }
        }
    }

    /// Events stop: the world converges (every observation lands, every operation ends,
    /// plans are empty). The loop must come to rest.
    fn settle(&mut self) -> Result<(), TestCaseError> {
        for _ in 0..200 {
            if self.obs_pending.is_some() {
                self.act(&Act::Observe)?;
            } else if let Some((_, left)) = self.running {
                self.act(if left > 0 { &Act::Step } else { &Act::Done(0) })?;
            } else if self.c.settle_deadline().is_some() {
                self.act(&Act::Tick(300))?;
            } else if !self.plan_fresh || self.plan_steps {
                self.act(&Act::Plan(false))?;
            } else {
                break;
            }
        }
        prop_assert!(self.c.is_idle(), "not idle after events stopped");
        prop_assert!(self.running.is_none() && self.obs_pending.is_none());
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    /// Random event sequences never produce two concurrent operations or observations,
    /// never start an operation from an observation older than the last step or from a
    /// stale plan, never act on an invalid file, and always end idle when events stop.
    #[test]
    fn random_event_sequences_keep_the_rules(acts in proptest::collection::vec(act(), 1..120)) {
        let mut w = World::new();
        w.feed(Input::FileRead { bytes: w.file.map(<[u8]>::to_vec), whole: false })?;
        for a in &acts {
            w.act(a)?;
        }
        w.settle()?;
    }
}
