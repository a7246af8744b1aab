//! Learning-rate schedules, as transformers' `get_constant_schedule_with_warmup`,
//! `get_linear_schedule_with_warmup` and `get_cosine_schedule_with_warmup`
//! (with a floor `min_lr`).

use ft_plan::{Schedule, ScheduleKind, Warmup};

/// Warmup steps of a schedule over `total` steps.
pub fn warmup_steps(s: &Schedule, total: u64) -> u64 {
    match s.warmup {
        Warmup::Steps(n) => n.min(total),
        Warmup::Fraction(f) => ((total as f64) * f).ceil() as u64,
    }
}

/// The learning rate of step `step` (0-based) of `total`, peak `lr`.
pub fn lr_at(s: &Schedule, lr: f64, step: u64, total: u64) -> f64 {
    let warm = warmup_steps(s, total);
    if step < warm {
        return lr * step as f64 / warm.max(1) as f64;
    }
    let span = total.saturating_sub(warm).max(1) as f64;
    let progress = ((step - warm) as f64 / span).min(1.0);
    let factor = match s.kind {
        ScheduleKind::Constant => 1.0,
        ScheduleKind::Linear => 1.0 - progress,
        ScheduleKind::Cosine => 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()),
    };
    match s.kind {
        ScheduleKind::Constant => lr,
        _ => s.min_lr + (lr - s.min_lr) * factor,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched(kind: ScheduleKind, warmup: Warmup) -> Schedule {
        Schedule {
            kind,
            warmup,
            min_lr: 0.0,
        }
    }

    #[test]
    fn warmup_then_decay_like_transformers() {
        let s = sched(ScheduleKind::Linear, Warmup::Steps(10));
        assert_eq!(lr_at(&s, 1.0, 0, 110), 0.0);
        assert!((lr_at(&s, 1.0, 5, 110) - 0.5).abs() < 1e-12);
        assert!((lr_at(&s, 1.0, 10, 110) - 1.0).abs() < 1e-12);
        assert!((lr_at(&s, 1.0, 60, 110) - 0.5).abs() < 1e-12);
        let c = sched(ScheduleKind::Cosine, Warmup::Fraction(0.1));
        assert_eq!(warmup_steps(&c, 100), 10);
        assert!((lr_at(&c, 2.0, 55, 100) - 1.0).abs() < 1e-12);
        assert!(lr_at(&c, 2.0, 99, 100) < 0.01);
        let k = sched(ScheduleKind::Constant, Warmup::Steps(0));
        assert_eq!(lr_at(&k, 3e-4, 0, 10), 3e-4);
        assert_eq!(lr_at(&k, 3e-4, 9, 10), 3e-4);
    }

    #[test]
    fn constant_with_warmup_ramps_then_holds() {
        let k = sched(ScheduleKind::Constant, Warmup::Steps(4));
        let lrs: Vec<f64> = (0..8).map(|i| lr_at(&k, 2.0, i, 8)).collect();
        assert_eq!(lrs, [0.0, 0.5, 1.0, 1.5, 2.0, 2.0, 2.0, 2.0]);
    }

    #[test]
    fn cosine_decays_to_its_floor() {
        let c = Schedule {
            kind: ScheduleKind::Cosine,
            warmup: Warmup::Steps(0),
            min_lr: 0.25,
        };
        assert_eq!(lr_at(&c, 1.0, 0, 100), 1.0);
        // Halfway: halfway between the peak and the floor.
        assert!((lr_at(&c, 1.0, 50, 100) - 0.625).abs() < 1e-12);
        // The end is the floor, not zero.
        assert!((lr_at(&c, 1.0, 100, 100) - 0.25).abs() < 1e-12);
        assert!(lr_at(&c, 1.0, 99, 100) > 0.25);
    }
}
