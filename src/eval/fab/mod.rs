//! The L-inf Fast Adaptive Boundary attack (Croce & Hein, 2020,
//! arXiv:1907.02044), untargeted and FAB-T, with torchattacks
//! 3.5.1's (AutoAttack's `fab_pt.py`) arithmetic. Each step, from the iterate
//! `x_k` and the original point `x_0`:
//!
//! * linearize the model at `x_k` and pick the closest boundary `s`
//!   (`argmin_k |f_k - f_y| / ||grad f_k - grad f_y||_1`, the L-inf distance
//!   to the linearized boundary of class `k`; FAB-T: the
//!   target's boundary);
//! * project both `x_k` and `x_0` onto that hyperplane within [0, 1]
//!   (`projection::projection_linf`), steps `d_k`, `d_0`;
//! * `x_{k+1} = clip((1 - a)(x_k + eta d_k) + a (x_0 + eta d_0))` with
//!   `a = min(|d_k| / (|d_k| + |d_0|), alpha_max)` (L-inf norms);
//! * where `x_{k+1}` is misclassified, step back: `x_0 + beta (x_{k+1} - x_0)`.
//!
//! FAB minimises the distance; AutoAttack and this kernel only ask whether a
//! misclassified point lies within `eps`. So a sample is final, and costs no
//! more passes, as soon as an iterate within `eps` fools the model, and that
//! iterate is returned (torchattacks returns the nearest iterate of the run;
//! both fool the same samples). Points the model already misclassifies are
//! returned unchanged. The first run starts at the input, the later ones
//! (`restarts`) at a random point of the half eps-ball.
mod projection;
mod run;

use crate::error::{invalid, Result};
use crate::eval::fab::run::single_run;
use crate::eval::survivors::{checked, on_survivors, Schedule};
use crate::inputs::{check_count, check_non_negative, check_positive};
use crate::model::Model;
use tch::Tensor;

#[derive(Debug, Clone, Copy)]
pub struct FabParams {
    pub eps: f64,
    pub steps: i64,
    pub restarts: i64,
    /// Largest weight of the step from the original point.
    pub alpha_max: f64,
    /// Overshoot of the projections.
    pub eta: f64,
    /// Backward step towards the original point after a success.
    pub beta: f64,
    /// FAB-T: one run per target among the `n_target_classes` classes the
    /// model ranks highest after the true one; `labels` stay the true labels
    /// and success is any misclassification, as in AutoAttack.
    pub targeted: bool,
    pub n_target_classes: i64,
}

impl FabParams {
    fn check(&self) -> Result<()> {
        check_non_negative("eps", self.eps)?;
        check_count("steps", self.steps)?;
        check_count("restarts", self.restarts)?;
        check_count("n_target_classes", self.n_target_classes)?;
        check_positive("eta", self.eta)?;
        if !(0.0..=1.0).contains(&self.alpha_max) {
            return invalid(format!("alpha_max must lie in [0, 1], got {}", self.alpha_max));
        }
        if !(self.beta > 0.0 && self.beta <= 1.0) {
            return invalid(format!("beta must lie in (0, 1], got {}", self.beta));
        }
        Ok(())
    }
}

/// FAB; with `targeted`, FAB-T. Returns per sample the first iterate within
/// `eps` that fools the model over all runs (restarts, targets), run only on
/// the points still robust, or the input where none did.
pub fn fab(model: &impl Model, x: &Tensor, y: &Tensor, p: FabParams) -> Result<Tensor> {
    p.check()?;
    let schedule = Schedule { targeted: p.targeted, n_target_classes: p.n_target_classes, restarts: p.restarts };
    checked(model, x, y, |model, x, labels| {
        on_survivors(model, x, labels, schedule, |xs, ys, ts, restart| {
            tch::no_grad(|| single_run(model, xs, ys, ts, &p, restart > 0))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    fn params(targeted: bool) -> FabParams {
        FabParams { eps: 0.2, steps: 10, restarts: 1, alpha_max: 0.1, eta: 1.05, beta: 0.9, targeted, n_target_classes: 1 }
    }

    #[test]
    fn linear_model_is_fooled_inside_the_ball() {
        let (model, x, y) = crate::eval::fixtures::linear_model_and_points();
        for targeted in [false, true] {
            let adv = fab(&model, &x, &y, params(targeted)).unwrap();
            let d = Vec::<f64>::try_from((&adv - &x).abs().amax([1i64].as_slice(), false)).unwrap();
            // the close point needs 0.05 (the boundary), with overshoot eta: 0.0525
            assert!(d[0] > 0.05 && d[0] <= 0.2, "{d:?}");
            assert_eq!(d[1], 0.0, "the far point (0.4 away) is returned as it is");
            let pred = Vec::<i64>::try_from(model(&adv).unwrap().argmax(1, false).to_kind(Kind::Int64)).unwrap();
            assert_eq!(pred, vec![2, 0], "targeted: {targeted}");
        }
        assert!(fab(&model, &x, &y, FabParams { beta: 0.0, ..params(false) }).is_err());
        assert!(fab(&model, &x, &y, FabParams { n_target_classes: 3, ..params(true) }).is_err());
    }
}
