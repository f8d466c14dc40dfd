//! The loop's rules as a pure state machine: `(state, input, now) -> (state, effects)`.
//!
//! No tokio, no clock, no IO: time comes in as an argument (`now`, time since the loop
//! started), the file's bytes come in as an input, and everything the loop must *do*
//! comes out as an [`Effect`] that the driver (`mod.rs`) carries out. Validating the file
//! and planning are pure functions the driver calls; their results come back as inputs
//! ([`Input::Loaded`], [`Input::Planned`]), so every decision about *when* to observe,
//! start, cancel, back off and wait is made here, in one place, and tested without sshd
//! (`machine::tests`: a table test per rule and a property test over random input sequences).
//!
//! The rules, each a named transition below:
//! - **a file acts only when it is whole** ([`Core::file_read`]): changed bytes are loaded
//!   once they stayed the same for the settle window; bytes known to be whole (our own
//!   store's write, or a file renamed over the desired file: an atomic save), the first
//!   read, and a zero window load at once;
//! - **an invalid file is never acted on** ([`Core::loaded`]): the last valid one stays in
//!   force, nothing is cancelled, the backoff is kept;
//! - **a stale operation is cancelled at a safe point** ([`Core::loaded`]): a new desired
//!   state whose plan differs from the running operation's remaining steps cancels it once;
//! - **a request gets an observation that started after it** ([`Core::observe`]): one
//!   observation at a time; a request that needs a fresh one abandons the one in flight
//!   and starts another, a poll while one is in flight needs nothing;
//! - **nothing new after an operation until an observation requested after it arrived**
//!   ([`Core::step_done`], [`Core::op_done`]), and **the plan that runs is the plan shown**:
//!   an operation starts only from a plan made from the latest observation and desired
//!   state ([`Core::decide`]);
//! - **one operation at a time** ([`Core::decide`]);
//! - **failures back off 10 s → 5 min and give up after [`MAX_FAILURES`]** until a change,
//!   a retry or a reconcile ([`Core::op_done`], [`backoff_delay`]);
//! - **a person's cancel holds the plan** until a change, a retry or a reconcile;
//! - **shutdown cancels the running operation and starts nothing** ([`Input::Shutdown`]).

use std::collections::VecDeque;
use std::time::Duration;

/// Failures after which the loop stops retrying on its own.
pub const MAX_FAILURES: u32 = 5;

/// How long the loop waits after `failures` consecutive failures: 10 s, doubling, at most
/// 5 min.
pub fn backoff_delay(failures: u32) -> Duration {
    let secs = 10u64.saturating_mul(1 << failures.saturating_sub(1).min(5));
    Duration::from_secs(secs.min(300))
}

/// Time since the loop started (the driver's monotonic clock).
pub type Now = Duration;

/// What the driver learned, or was asked.
#[derive(Debug, Clone, PartialEq)]
pub enum Input<Q> {
    /// The driver read the desired file (after a watch event, at a poll, or when the
    /// settle window ends): its bytes (`None`: unreadable/absent) and whether they are
    /// known to be whole.
    FileRead {
        /// The file's bytes.
        bytes: Option<Vec<u8>>,
        /// Known to be whole (skips the settle window): written by our own store, or
        /// renamed over the file with no other write since (an atomic save).
        whole: bool,
    },
    /// The driver validated the bytes of an [`Effect::Load`].
    Loaded(Loaded),
    /// The driver planned from the current desired state and observation.
    Planned {
        /// The plan has steps.
        steps: bool,
    },
    /// Time passed (the driver's tick).
    Tick,
    /// Observation `seq` arrived.
    Observed {
        /// Its number (from [`Effect::Observe`]).
        seq: u64,
    },
    /// A step of operation `id` completed.
    StepDone {
        /// The operation.
        id: u64,
    },
    /// Operation `id` ended.
    OpDone {
        /// The operation.
        id: u64,
        /// How.
        end: End,
    },
    /// Observe now and run the plan if there is one (clears backoff and hold).
    Reconcile,
    /// Forget the failure backoff and the hold; try again now.
    Retry,
    /// Run this one-shot work when no plan step is pending.
    Enqueue(Q),
    /// A person asks to cancel operation `id` (answered by [`Effect::CancelAnswer`]).
    CancelRequest {
        /// The operation.
        id: u64,
    },
    /// The program is stopping.
    Shutdown,
}

/// What validating the bytes of an [`Effect::Load`] showed.
#[derive(Debug, Clone, PartialEq)]
pub enum Loaded {
    /// Invalid: the last valid desired state stays in force.
    Invalid,
    /// Valid, and equal to the desired state in force.
    Unchanged,
    /// Valid and different: now in force.
    Changed {
        /// The running operation's remaining steps are not the new plan.
        stale: bool,
        /// The new desired state's poll interval.
        poll_every: Duration,
    },
}

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Every step completed.
    Succeeded,
    /// A step failed.
    Failed,
    /// A step failed in a way a retry repeats (the configuration is wrong): counted as a
    /// failure, but no retry is scheduled until the desired state changes or a person
    /// asks for a retry or a reconcile.
    Refused,
    /// It stopped at a safe point after [`Effect::Cancel`].
    Cancelled,
}

/// Why an operation is cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelWhy {
    /// The desired state changed and no longer wants its remaining steps.
    Superseded,
    /// A person asked.
    Person,
    /// The program is stopping.
    Shutdown,
}

/// The answer to [`Input::CancelRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelAnswer {
    /// It runs; it is being cancelled.
    Cancelling,
    /// It ran and has ended.
    Ended,
    /// No operation with that id ever ran.
    Unknown,
}

/// What an operation runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Work<Q> {
    /// The current plan's steps (the plan published with it).
    Plan,
    /// One-shot work that was queued.
    Queued(Q),
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect<Q> {
    /// Validate these bytes (or, `None`, the file as it is now) and answer
    /// [`Input::Loaded`] in the same turn.
    Load(Option<Vec<u8>>),
    /// Observation `seq` (in flight) is not wanted any more: stop it, drop its result.
    Abandon {
        /// Its number.
        seq: u64,
    },
    /// Start observation `seq`.
    Observe {
        /// Its number.
        seq: u64,
    },
    /// Start operation `id`.
    Start {
        /// Its id.
        id: u64,
        /// What it runs.
        work: Work<Q>,
        /// Consecutive failures before it (a retry after a backoff when > 0).
        failures: u32,
    },
    /// Cancel operation `id` at its next safe point.
    Cancel {
        /// The operation.
        id: u64,
        /// Why.
        why: CancelWhy,
    },
    /// The poll interval passed: re-read the file (watches can miss events) and run the
    /// periodic checks.
    PollDue,
    /// The answer to [`Input::CancelRequest`].
    CancelAnswer(CancelAnswer),
}

/// The failure backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Consecutive failed operations.
    pub failures: u32,
    /// When the plan may run again (`None`: not on its own, after [`MAX_FAILURES`]).
    pub next: Option<Now>,
}

/// Why plan steps are held after a person's cancel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// The cancelled operation.
    pub op: u64,
}

#[derive(Debug, Clone, PartialEq)]
struct Running {
    id: u64,
    /// Cancelled (any reason); a second cancel is not sent.
    cancelled: Option<CancelWhy>,
    /// The first observation started after its latest completed step.
    after_step_seq: Option<u64>,
}

/// The loop's state. See the module doc for its rules.
#[derive(Debug, Clone)]
pub struct Core<Q> {
    settle: Duration,
    /// Bytes loaded last (valid or not): a read of the same bytes changes nothing.
    loaded: Option<Option<Vec<u8>>>,
    /// Changed bytes waiting to settle, and since when they are the same.
    settling: Option<(Option<Vec<u8>>, Now)>,
    has_desired: bool,
    poll_every: Duration,
    last_poll: Now,
    obs_seq: u64,
    obs_in_flight: bool,
    /// Seq of the newest observation that arrived (0: none yet).
    obs_arrived: u64,
    /// Nothing starts until observation `need_seq` (or a newer one) arrived; 0: no wait.
    need_seq: u64,
    /// The plan was made from the latest observation and desired state.
    plan_fresh: bool,
    plan_steps: bool,
    running: Option<Running>,
    next_op: u64,
    backoff: Option<Backoff>,
    held: Option<Held>,
    queued: VecDeque<Q>,
    shutting_down: bool,
}

impl<Q: Clone> Core<Q> {
    /// A loop that has read nothing yet, with this settle window and poll interval (the
    /// driver's override, or 5 s until a desired state says otherwise).
    pub fn new(settle: Duration, poll_every: Duration) -> Core<Q> {
        Core {
            settle,
            loaded: None,
            settling: None,
            has_desired: false,
            poll_every,
            last_poll: Duration::ZERO,
            obs_seq: 0,
            obs_in_flight: false,
            obs_arrived: 0,
            need_seq: 1,
            plan_fresh: false,
            plan_steps: false,
            running: None,
            next_op: 1,
            backoff: None,
            held: None,
            queued: VecDeque::new(),
            shutting_down: false,
        }
    }

    /// Feeds one input; returns what to do, in order.
    pub fn step(&mut self, input: Input<Q>, now: Now) -> Vec<Effect<Q>> {
        let mut fx = Vec::new();
        match input {
            Input::FileRead { bytes, whole } => self.file_read(bytes, whole, now, &mut fx),
            Input::Loaded(l) => self.loaded(l, &mut fx),
            Input::Planned { steps } => {
                self.plan_fresh = true;
                self.plan_steps = steps;
            }
            Input::Tick => self.tick(now, &mut fx),
            Input::Observed { seq } => self.observed(seq),
            Input::StepDone { id } => self.step_done(id, &mut fx),
            Input::OpDone { id, end } => self.op_done(id, end, now, &mut fx),
            Input::Reconcile | Input::Retry => {
                self.backoff = None;
                self.held = None;
                self.observe(true, &mut fx);
            }
            Input::Enqueue(q) => self.queued.push_back(q),
            Input::CancelRequest { id } => self.cancel_request(id, &mut fx),
            Input::Shutdown => {
                self.shutting_down = true;
                self.cancel(CancelWhy::Shutdown, &mut fx);
            }
        }
        self.decide(now, &mut fx);
        fx
    }

    /// **A file acts only when it is whole.** The same bytes as loaded: nothing (and a
    /// pending change is forgotten). Bytes known to be whole, the first read or a zero
    /// window: load now. Otherwise the bytes must stay the same for the settle window.
    fn file_read(
        &mut self,
        bytes: Option<Vec<u8>>,
        whole: bool,
        now: Now,
        fx: &mut Vec<Effect<Q>>,
    ) {
        if bytes.is_some() && self.loaded.as_ref() == Some(&bytes) {
            self.settling = None;
            return;
        }
        let first = self.loaded.is_none();
        let settled = matches!(&self.settling, Some((b, since)) if *b == bytes && now >= *since + self.settle);
        if first || whole || self.settle.is_zero() || settled {
            self.settling = None;
            if bytes.is_none() && self.loaded == Some(None) {
                return;
            }
            self.loaded = Some(bytes.clone());
            fx.push(Effect::Load(bytes));
            return;
        }
        match &self.settling {
            Some((b, _)) if *b == bytes => {}
            _ => self.settling = Some((bytes, now)),
        }
    }

    /// **An invalid file is never acted on; a stale operation is cancelled.**
    fn loaded(&mut self, l: Loaded, fx: &mut Vec<Effect<Q>>) {
        let Loaded::Changed { stale, poll_every } = l else {
            return;
        };
        let first = !self.has_desired;
        self.has_desired = true;
        self.poll_every = poll_every;
        self.plan_fresh = false;
        self.backoff = None;
        self.held = None;
        if stale {
            self.cancel(CancelWhy::Superseded, fx);
        }
        if first {
            self.observe(false, fx);
        }
    }

    /// The poll interval passed: re-read, observe.
    fn tick(&mut self, now: Now, fx: &mut Vec<Effect<Q>>) {
        if self.shutting_down {
            return;
        }
        if now.saturating_sub(self.last_poll) >= self.poll_every {
            self.last_poll = now;
            fx.push(Effect::PollDue);
            self.observe(false, fx);
        }
    }

    /// **A request gets an observation that started after it.** One at a time. A poll
    /// while one is in flight needs nothing more (it is recent enough); a request that
    /// needs a *fresh* one (after a step, an operation, a person's reconcile) abandons
    /// the one in flight, which started too early, and starts another at once, rather
    /// than waiting for it to end (a loading vLLM makes an observation last its probe
    /// timeout). Nothing to observe without a desired state, nothing new while stopping.
    fn observe(&mut self, fresh: bool, fx: &mut Vec<Effect<Q>>) {
        if !self.has_desired || self.shutting_down {
            return;
        }
        if self.obs_in_flight {
            if !fresh {
                return;
            }
            fx.push(Effect::Abandon { seq: self.obs_seq });
        }
        self.obs_in_flight = true;
        self.obs_seq += 1;
        fx.push(Effect::Observe { seq: self.obs_seq });
    }

    fn observed(&mut self, seq: u64) {
        if !self.obs_in_flight || seq != self.obs_seq {
            return;
        }
        self.obs_in_flight = false;
        self.obs_arrived = self.obs_arrived.max(seq);
        self.plan_fresh = false;
        if seq >= self.need_seq {
            self.need_seq = 0;
        }
    }

    /// A step completed: observe, and remember which observation is the first after it.
    fn step_done(&mut self, id: u64, fx: &mut Vec<Effect<Q>>) {
        if self.running.as_ref().is_none_or(|r| r.id != id) {
            return;
        }
        self.observe(true, fx);
        let next = self.obs_seq;
        if let Some(r) = self.running.as_mut() {
            r.after_step_seq = Some(next);
        }
    }

    /// **Nothing new after an operation until an observation requested after it
    /// arrived** — after a success, the one requested at its last step (its commands
    /// ended there); otherwise one requested now. Failures back off; a person's cancel
    /// holds the plan.
    fn op_done(&mut self, id: u64, end: End, now: Now, fx: &mut Vec<Effect<Q>>) {
        let Some(r) = self.running.take_if(|r| r.id == id) else {
            return;
        };
        match end {
            End::Succeeded => self.backoff = None,
            End::Failed => {
                let failures = self.backoff.map_or(0, |b| b.failures) + 1;
                let next = (failures < MAX_FAILURES).then(|| now + backoff_delay(failures));
                self.backoff = Some(Backoff { failures, next });
            }
            End::Refused => {
                let failures = self.backoff.map_or(0, |b| b.failures) + 1;
                self.backoff = Some(Backoff {
                    failures,
                    next: None,
                });
            }
            End::Cancelled => {
                if r.cancelled == Some(CancelWhy::Person) {
                    self.held = Some(Held { op: id });
                }
            }
        }
        self.need_seq = match r.after_step_seq {
            // Its commands ended with its last step: the observation requested then (in
            // flight, or here) is fresh enough.
            Some(seq) if end == End::Succeeded => {
                self.observe(false, fx);
                seq
            }
            // A failure or a cancel ran commands after its last completed step.
            _ => {
                self.observe(true, fx);
                self.obs_seq
            }
        };
        if self.need_seq <= self.obs_arrived {
            self.need_seq = 0;
        }
    }

    fn cancel_request(&mut self, id: u64, fx: &mut Vec<Effect<Q>>) {
        let answer = if self.running.as_ref().is_some_and(|r| r.id == id) {
            self.cancel(CancelWhy::Person, fx);
            CancelAnswer::Cancelling
        } else if id == 0 || id >= self.next_op {
            CancelAnswer::Unknown
        } else {
            CancelAnswer::Ended
        };
        fx.push(Effect::CancelAnswer(answer));
    }

    /// Cancels the running operation once per reason that matters: a person's cancel
    /// after a supersede is still recorded (it holds the plan afterwards).
    fn cancel(&mut self, why: CancelWhy, fx: &mut Vec<Effect<Q>>) {
        let Some(r) = self.running.as_mut() else {
            return;
        };
        match (r.cancelled, why) {
            (None, _) | (Some(CancelWhy::Superseded), CancelWhy::Person) => {
                r.cancelled = Some(why);
                fx.push(Effect::Cancel { id: r.id, why });
            }
            (Some(_), CancelWhy::Shutdown) if r.cancelled != Some(CancelWhy::Shutdown) => {
                fx.push(Effect::Cancel { id: r.id, why });
            }
            _ => {}
        }
    }

    /// **One operation at a time, from a fresh plan.** Starts the plan's steps when: no
    /// operation runs; not shutting down; an observation has arrived and none is awaited
    /// after the last operation; the plan was made from the latest observation and
    /// desired state; the plan is not held and the backoff allows it. With no plan step,
    /// queued one-shot work starts instead.
    fn decide(&mut self, now: Now, fx: &mut Vec<Effect<Q>>) {
        if self.running.is_some()
            || self.shutting_down
            || !self.has_desired
            || self.obs_arrived == 0
            || self.need_seq != 0
            || !self.plan_fresh
        {
            return;
        }
        let (work, failures) = if self.plan_steps {
            if self.held.is_some() {
                return;
            }
            match self.backoff {
                Some(Backoff { next: None, .. }) => return,
                Some(Backoff { next: Some(t), .. }) if now < t => return,
                b => (Work::Plan, b.map_or(0, |b| b.failures)),
            }
        } else if let Some(q) = self.queued.pop_front() {
            (Work::Queued(q), 0)
        } else {
            return;
        };
        let id = self.next_op;
        self.next_op += 1;
        self.running = Some(Running {
            id,
            cancelled: None,
            after_step_seq: None,
        });
        fx.push(Effect::Start { id, work, failures });
    }

    /// When the driver must read the file again: the end of the settle window.
    pub fn settle_deadline(&self) -> Option<Now> {
        self.settling
            .as_ref()
            .map(|(_, since)| *since + self.settle)
    }

    /// The failure backoff, if any.
    pub fn backoff(&self) -> Option<Backoff> {
        self.backoff
    }

    /// The hold after a person's cancel, if any.
    pub fn held(&self) -> Option<Held> {
        self.held
    }

    /// The running operation's id.
    pub fn running(&self) -> Option<u64> {
        self.running.as_ref().map(|r| r.id)
    }

    /// Why the running operation was cancelled, if it was.
    pub fn cancelled(&self) -> Option<CancelWhy> {
        self.running.as_ref().and_then(|r| r.cancelled)
    }

    /// Ids handed out so far are `1..next_op`.
    pub fn next_op(&self) -> u64 {
        self.next_op
    }

    /// Nothing runs, nothing is observed, nothing waits in the queue.
    pub fn is_idle(&self) -> bool {
        self.running.is_none()
            && !self.obs_in_flight
            && (self.queued.is_empty() || self.shutting_down)
    }

    /// The observation in flight, if one is.
    pub fn observing(&self) -> Option<u64> {
        self.obs_in_flight.then_some(self.obs_seq)
    }

    /// The poll interval in force.
    pub fn poll_every(&self) -> Duration {
        self.poll_every
    }
}

#[cfg(test)]
mod tests;
