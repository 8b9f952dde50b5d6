//! APGD's options: the loss it ascends and the run parameters with their
//! checkpoint schedule, shared by the driver (`mod.rs`) and the per-run state
//! (`run.rs`).
use crate::error::{invalid, Result};
use crate::eval::dlr::{dlr, dlr_targeted};
use crate::inputs::{check_count, check_non_negative};
use crate::loss::Loss;
use crate::norm::Norm;
use tch::Tensor;

/// What APGD ascends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApgdLoss {
    /// Cross-entropy (targeted: minus the cross-entropy of the target).
    Ce,
    /// Difference of Logits Ratio (targeted: eq. 6 of the paper).
    Dlr,
}

impl ApgdLoss {
    pub const NAMES: [&'static str; 2] = ["ce", "dlr"];

    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "ce" => Ok(ApgdLoss::Ce),
            "dlr" => Ok(ApgdLoss::Dlr),
            _ => invalid(format!("unknown loss {name:?}; expected one of {:?}", Self::NAMES)),
        }
    }

    /// Per-sample value to maximise; `targets` is set for APGD-T.
    pub(crate) fn value(self, logits: &Tensor, labels: &Tensor, targets: Option<&Tensor>) -> Result<Tensor> {
        match (self, targets) {
            (ApgdLoss::Ce, None) => Loss::CrossEntropy.objective(logits, labels, false),
            (ApgdLoss::Ce, Some(t)) => Loss::CrossEntropy.objective(logits, t, true),
            (ApgdLoss::Dlr, None) => dlr(logits, labels),
            (ApgdLoss::Dlr, Some(t)) => dlr_targeted(logits, labels, t),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct ApgdParams {
    pub eps: f64,
    pub steps: i64,
    pub norm: Norm,
    pub loss: ApgdLoss,
    /// APGD-T: one run per target among the `n_target_classes` classes the
    /// model ranks highest after the true one; `labels` stay the true labels.
    pub targeted: bool,
    pub n_target_classes: i64,
    pub restarts: i64,
    pub rho: f64,
}

impl ApgdParams {
    pub(crate) fn check(&self) -> Result<()> {
        check_non_negative("eps", self.eps)?;
        check_count("steps", self.steps)?;
        check_count("restarts", self.restarts)?;
        check_count("n_target_classes", self.n_target_classes)?;
        if !(self.rho > 0.0 && self.rho <= 1.0) {
            return invalid(format!("rho must lie in (0, 1], got {}", self.rho));
        }
        Ok(())
    }

    /// `(p_1, minimum period, decrement)` of the checkpoint schedule, in steps.
    pub(crate) fn schedule(&self) -> (i64, i64, i64) {
        let n = self.steps as f64;
        let at_least_one = |f: f64| ((f * n) as i64).max(1);
        (at_least_one(0.22), at_least_one(0.06), at_least_one(0.03))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_matches_autoattack() {
        let p = ApgdParams {
            eps: 0.3,
            steps: 100,
            norm: Norm::Linf,
            loss: ApgdLoss::Ce,
            targeted: false,
            n_target_classes: 9,
            restarts: 1,
            rho: 0.75,
        };
        assert_eq!(p.schedule(), (22, 6, 3));
        assert_eq!(ApgdParams { steps: 3, ..p }.schedule(), (1, 1, 1));
        assert!(ApgdLoss::parse("margin").unwrap_err().to_string().contains("dlr"));
        assert!(ApgdParams { rho: 0.0, ..p }.check().is_err());
    }
}
