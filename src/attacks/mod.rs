//! Gradient attacks: one kernel per file, sharing the forward/backward below.
pub mod ddn;
pub mod fgsm;
pub mod mifgsm;
pub mod pgd;
pub mod pgd_fixed;

use crate::error::Result;
use crate::grad::grad;
use crate::loss::Loss;
use crate::model::{check_label_range, checked_logits, predict, Model};
use std::cell::Cell;
use tch::Tensor;

/// What the attacker ascends: a loss on the labels (targets when `targeted`).
pub(crate) struct Objective {
    pub labels: Tensor,
    pub loss: Loss,
    pub targeted: bool,
    /// Sum per-sample values instead of averaging them.
    sum: bool,
    range_checked: Cell<bool>,
}

/// One forward and one backward to the input.
pub(crate) struct Probe {
    /// Detached logits.
    pub logits: Tensor,
    /// Detached per-sample objective values.
    pub value: Tensor,
    /// Gradient of the batch objective with respect to the input.
    pub grad: Tensor,
}

impl Objective {
    pub fn new(labels: Tensor, loss: Loss, targeted: bool) -> Self {
        Objective { labels, loss, targeted, sum: false, range_checked: Cell::new(false) }
    }

    /// Uses the sum of per-sample values as the batch objective (each
    /// sample's gradient then does not depend on the batch size).
    pub fn summed(mut self) -> Self {
        self.sum = true;
        self
    }

    /// Skips the label-range check of the first probe: the caller checked the
    /// labels against the class count already (a capture-safe kernel body
    /// may not read a device value back).
    pub fn prechecked(self) -> Self {
        self.range_checked.set(true);
        self
    }

    /// Runs the model on `x` and returns the gradient of the batch objective.
    /// By default the batch objective is the *mean* of per-sample values, as torchattacks
    /// computes it (`nn.CrossEntropyLoss()`), so float32 results agree to the
    /// last bit; sign and L2-normalised steps are unaffected by the 1/N scale.
    /// `labels` must be the labels of the rows of `x`.
    pub fn probe(&self, model: &impl Model, x: &Tensor, labels: &Tensor) -> Result<Probe> {
        self.probe_rows(model, x, labels, None)
    }

    /// [`Objective::probe`] whose batch objective covers only the rows where
    /// `live` (a bool mask): their mean (or sum), so each live row's gradient
    /// is the one `probe` gives on the batch of live rows alone, and the
    /// other rows' gradients are zero. Reads nothing back from the device.
    pub fn probe_rows(&self, model: &impl Model, x: &Tensor, labels: &Tensor, live: Option<&Tensor>) -> Result<Probe> {
        let xr = x.f_detach()?.f_set_requires_grad(true)?;
        let logits = checked_logits(model, &xr)?;
        if !self.range_checked.get() {
            check_label_range(labels, &logits)?;
            self.range_checked.set(true);
        }
        let value = self.loss.objective(&logits, labels, self.targeted)?;
        let total = match live {
            None if self.sum => value.f_sum(None)?,
            None => value.f_mean(None)?,
            Some(live) => {
                let kept = value.f_mul(&live.f_to_kind(value.kind())?)?.f_sum(None)?;
                if self.sum {
                    kept
                } else {
                    kept.f_div(&live.f_sum(value.kind())?.f_clamp_min(1.0)?)?
                }
            }
        };
        let grad = grad(&total, &xr, false)?;
        Ok(Probe { logits: logits.f_detach()?, value: value.f_detach()?, grad })
    }

    /// Per-sample success: the prediction differs from the label
    /// (untargeted) or equals the target (targeted).
    pub fn success(&self, logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
        let pred = predict(logits)?;
        if self.targeted {
            Ok(pred.f_eq_tensor(labels)?)
        } else {
            Ok(pred.f_ne_tensor(labels)?)
        }
    }
}
