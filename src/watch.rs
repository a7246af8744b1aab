//! The decisions of watch mode, as a pure function of (state, event): when
//! to re-check, when to start, restart or leave alone the training run. The
//! loop in `commands/watch.rs` only performs the actions, so this logic is
//! tested without files, timers or processes.

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Some watched file changed (a burst of saves arrives as one event,
    /// after the debouncer).
    FilesChanged,
    /// A check finished: whether it had errors, and the recipe's meaning
    /// fingerprint (see `Analysis::fingerprint`).
    Checked { errors: bool, fingerprint: u64 },
    /// The run that was started exited by itself.
    RunExited { success: bool },
    /// The user pressed Ctrl-C.
    Interrupt,
}

/// What to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Check,
    Redraw,
    /// Stop the running job cleanly (it checkpoints), then wait for it.
    StopRun,
    /// Start the run for this fingerprint.
    StartRun(u64),
    Exit,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    /// `--run`: train whenever the recipe checks clean.
    pub run: bool,
    /// The fingerprint of the run in progress, if any.
    pub running: Option<u64>,
    /// The fingerprint of the last run started (finished or not): an
    /// unchanged recipe is not retrained after its run ended.
    pub last_started: Option<u64>,
}

pub fn step(state: &mut State, event: Event) -> Vec<Action> {
    match event {
        Event::FilesChanged => vec![Action::Check],
        Event::Checked {
            errors,
            fingerprint,
        } => {
            let mut actions = vec![Action::Redraw];
            if !state.run || errors {
                // A broken recipe never stops a good run: the user is mid-edit.
                return actions;
            }
            if state.last_started == Some(fingerprint) {
                // Same meaning (a comment or layout edit): leave the run alone.
                return actions;
            }
            if state.running.is_some() {
                actions.push(Action::StopRun);
            }
            actions.push(Action::StartRun(fingerprint));
            state.running = Some(fingerprint);
            state.last_started = Some(fingerprint);
            actions
        }
        Event::RunExited { .. } => {
            state.running = None;
            vec![Action::Redraw]
        }
        Event::Interrupt => {
            let mut actions = Vec::new();
            if state.running.take().is_some() {
                actions.push(Action::StopRun);
            }
            actions.push(Action::Exit);
            actions
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(errors: bool, fingerprint: u64) -> Event {
        Event::Checked {
            errors,
            fingerprint,
        }
    }

    #[test]
    fn without_run_only_checks_and_redraws() {
        let mut s = State::default();
        assert_eq!(step(&mut s, Event::FilesChanged), vec![Action::Check]);
        assert_eq!(step(&mut s, checked(false, 1)), vec![Action::Redraw]);
        assert_eq!(s.running, None);
    }

    #[test]
    fn clean_check_starts_a_run_once() {
        let mut s = State {
            run: true,
            ..Default::default()
        };
        assert_eq!(
            step(&mut s, checked(false, 1)),
            vec![Action::Redraw, Action::StartRun(1)]
        );
        assert_eq!(s.running, Some(1));
        // A comment-only edit: same fingerprint, the run goes on.
        assert_eq!(step(&mut s, checked(false, 1)), vec![Action::Redraw]);
    }

    #[test]
    fn changed_meaning_restarts_the_run() {
        let mut s = State {
            run: true,
            ..Default::default()
        };
        step(&mut s, checked(false, 1));
        assert_eq!(
            step(&mut s, checked(false, 2)),
            vec![Action::Redraw, Action::StopRun, Action::StartRun(2)]
        );
        assert_eq!(s.running, Some(2));
    }

    #[test]
    fn errors_never_stop_a_good_run() {
        let mut s = State {
            run: true,
            ..Default::default()
        };
        step(&mut s, checked(false, 1));
        assert_eq!(step(&mut s, checked(true, 9)), vec![Action::Redraw]);
        assert_eq!(s.running, Some(1));
        // Fixing the error back to the running recipe does not restart it.
        assert_eq!(step(&mut s, checked(false, 1)), vec![Action::Redraw]);
    }

    #[test]
    fn a_finished_run_is_not_repeated_for_the_same_recipe() {
        let mut s = State {
            run: true,
            ..Default::default()
        };
        step(&mut s, checked(false, 1));
        step(&mut s, Event::RunExited { success: true });
        assert_eq!(s.running, None);
        assert_eq!(step(&mut s, checked(false, 1)), vec![Action::Redraw]);
        assert_eq!(
            step(&mut s, checked(false, 3)),
            vec![Action::Redraw, Action::StartRun(3)]
        );
    }

    #[test]
    fn interrupt_stops_the_run_and_exits() {
        let mut s = State {
            run: true,
            ..Default::default()
        };
        step(&mut s, checked(false, 1));
        assert_eq!(
            step(&mut s, Event::Interrupt),
            vec![Action::StopRun, Action::Exit]
        );
        let mut idle = State::default();
        assert_eq!(step(&mut idle, Event::Interrupt), vec![Action::Exit]);
    }

    #[test]
    fn a_burst_of_edits_ends_in_one_run_of_the_last_content() {
        let mut s = State {
            run: true,
            ..Default::default()
        };
        let mut starts = Vec::new();
        // Many saves: most with errors mid-edit, some clean, last one clean.
        for i in 0..100u64 {
            for a in step(&mut s, checked(i % 3 == 0, 100 + i / 10)) {
                if let Action::StartRun(f) = a {
                    starts.push(f);
                }
            }
        }
        assert_eq!(s.running, Some(109));
        assert_eq!(*starts.last().unwrap(), 109);
        // Each distinct clean meaning started at most once.
        let mut dedup = starts.clone();
        dedup.dedup();
        assert_eq!(dedup, starts);
    }
}
