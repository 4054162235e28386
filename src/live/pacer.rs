//! The wall clock of a live run: virtual time is real time since the run
//! began. The engine sleeps here until its next event is due or a real
//! container runtime answers, whichever comes first; an answer is queued
//! at the instant it arrived (`Engine::run_paced`). This is the one place
//! in kubesim where the wall clock decides anything.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::model::kubelet::runtime::{ReplyTo, RuntimeAnswer};
use crate::model::msg::{Message, Payload, Timer};
use crate::sim::{External, Pacer, SimTime};

/// What a live runtime sends back to a kubelet.
#[derive(Debug)]
pub enum Answer {
    /// The pod step the call was to end with ([`Timer::PodStep`]).
    Step(Timer),
    /// Anything else: exits, probe verdicts, failures.
    Runtime(RuntimeAnswer),
}

/// Where the runtime's answers go: cloned into every node's worker.
#[derive(Clone)]
pub struct Answers(Sender<(ReplyTo, Answer)>);

impl Answers {
    pub fn send(&self, to: ReplyTo, a: Answer) {
        // The run is over when the receiver is gone; nothing is waiting.
        let _ = self.0.send((to, a));
    }
}

/// The pacer: the run's start instant and the answers' receiving end.
pub struct WallClock {
    start: Instant,
    answers: Receiver<(ReplyTo, Answer)>,
    interrupted: Arc<AtomicBool>,
}

/// How often a wait wakes to look at the interrupt flag (Ctrl-C).
const INTERRUPT_POLL: Duration = Duration::from_millis(100);

impl WallClock {
    /// A clock starting now, with the sender its runtime answers through;
    /// the run ends early once `interrupted` is set.
    pub fn start(interrupted: Arc<AtomicBool>) -> (WallClock, Answers) {
        let (tx, rx) = std::sync::mpsc::channel();
        let clock = WallClock {
            start: Instant::now(),
            answers: rx,
            interrupted,
        };
        (clock, Answers(tx))
    }

    /// Starts the clock again: virtual time zero is now.
    pub fn reset(&mut self) {
        self.start = Instant::now();
    }

    fn external(to: ReplyTo, a: Answer) -> External<Payload> {
        let payload = match a {
            Answer::Step(t) => Payload::Timer(t),
            Answer::Runtime(r) => Payload::Msg {
                from: to.to,
                msg: Message::Runtime(Box::new(r)),
            },
        };
        External {
            to: to.to,
            epoch: to.epoch,
            payload,
        }
    }
}

impl Pacer<Payload> for WallClock {
    fn now(&mut self) -> SimTime {
        SimTime(self.start.elapsed().as_nanos() as u64)
    }

    fn wait(&mut self, deadline: SimTime) -> Vec<External<Payload>> {
        let now = self.now();
        let left = Duration::from_nanos(deadline.0.saturating_sub(now.0));
        let first = match self.answers.recv_timeout(left.min(INTERRUPT_POLL)) {
            Ok(a) => a,
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return Vec::new(),
        };
        let mut out = vec![Self::external(first.0, first.1)];
        // Whatever else has arrived by now arrives at this instant too.
        while let Ok((to, a)) = self.answers.try_recv() {
            out.push(Self::external(to, a));
        }
        out
    }

    fn interrupted(&mut self) -> bool {
        self.interrupted.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_arrives_as_the_event_it_stands_for() {
        let (mut clock, answers) = WallClock::start(Arc::new(AtomicBool::new(false)));
        let to = ReplyTo { to: 7, epoch: 2 };
        answers.send(to, Answer::Step(Timer::PodStep { slot: 3, gen: 4 }));
        let got = clock.wait(SimTime(u64::MAX));
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].to, got[0].epoch), (7, 2));
        assert!(matches!(
            got[0].payload,
            Payload::Timer(Timer::PodStep { slot: 3, gen: 4 })
        ));
        // Nothing more: a wait with a deadline in the past returns at once.
        assert!(clock.wait(SimTime::ZERO).is_empty());
        assert!(!clock.interrupted());
    }
}
