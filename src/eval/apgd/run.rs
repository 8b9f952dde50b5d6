//! The per-sample state of one APGD run and its update rules (Algorithm 1 of
//! Croce & Hein, 2020): the momentum step, the best-point bookkeeping and the
//! checkpoint test. Every tensor holds only the samples still active.
use crate::error::Result;
use crate::eval::apgd::params::ApgdParams;
use crate::norm::{batch_view, l2_per_sample, Norm};
use tch::{Kind, Tensor};

/// AutoAttack's L-inf clip: `clamp(min(max(v, x - eps), x + eps), 0, 1)`.
fn clip_linf(v: &Tensor, lo: &Tensor, hi: &Tensor) -> Result<Tensor> {
    Ok(v.f_maximum(lo)?.f_minimum(hi)?.f_clamp(0.0, 1.0)?)
}

/// AutoAttack's L2 clip: `clamp(x + d / (||d|| + 1e-12) * min(eps, ||d|| + slack), 0, 1)`.
fn clip_l2(v: &Tensor, x: &Tensor, eps: f64, slack: f64) -> Result<Tensor> {
    let d = v.f_sub(x)?;
    let n = l2_per_sample(&d)?;
    let unit = d.f_div(&batch_view(&n.f_add_scalar(1e-12)?, d.dim())?)?;
    let radius = n.f_add_scalar(slack)?.f_clamp_max(eps)?;
    Ok(x.f_add(&unit.f_mul(&batch_view(&radius, d.dim())?)?)?.f_clamp(0.0, 1.0)?)
}

/// The per-sample state of one run, restricted to the samples still active.
pub(crate) struct Run {
    /// Positions of the active samples in the run's batch.
    pub idx: Tensor,
    pub x: Tensor,
    pub y: Tensor,
    pub t: Option<Tensor>,
    pub lo: Tensor,
    pub hi: Tensor,
    pub adv: Tensor,
    pub adv_old: Tensor,
    pub grad: Tensor,
    pub step: Tensor,
    pub x_best: Tensor,
    pub grad_best: Tensor,
    pub loss_best: Tensor,
    pub loss_best_last: Tensor,
    pub reduced_last: Tensor,
    pub loss_prev: Tensor,
    /// Per step since the start, whether the loss rose.
    pub rose: Vec<Tensor>,
}

impl Run {
    /// Keeps only the rows `keep` of every per-sample tensor.
    pub fn retain(&mut self, keep: &Tensor) -> Result<()> {
        let sel = |t: &Tensor| t.f_index_select(0, keep);
        self.idx = sel(&self.idx)?;
        self.x = sel(&self.x)?;
        self.y = sel(&self.y)?;
        self.t = self.t.as_ref().map(sel).transpose()?;
        self.lo = sel(&self.lo)?;
        self.hi = sel(&self.hi)?;
        self.adv = sel(&self.adv)?;
        self.adv_old = sel(&self.adv_old)?;
        self.grad = sel(&self.grad)?;
        self.step = sel(&self.step)?;
        self.x_best = sel(&self.x_best)?;
        self.grad_best = sel(&self.grad_best)?;
        self.loss_best = sel(&self.loss_best)?;
        self.loss_best_last = sel(&self.loss_best_last)?;
        self.reduced_last = sel(&self.reduced_last)?;
        self.loss_prev = sel(&self.loss_prev)?;
        self.rose = self.rose.iter().map(sel).collect::<std::result::Result<_, _>>()?;
        Ok(())
    }

    /// Momentum step of Algorithm 1 from `adv` along `grad`.
    pub fn advance(&mut self, p: &ApgdParams, first: bool) -> Result<()> {
        let a = if first { 1.0 } else { 0.75 };
        let nd = self.adv.dim();
        let step = batch_view(&self.step, nd)?;
        let grad2 = self.adv.f_sub(&self.adv_old)?;
        self.adv_old = self.adv.shallow_clone();
        let next = match p.norm {
            Norm::Linf => {
                let z = clip_linf(&self.adv.f_add(&step.f_mul(&self.grad.f_sign()?)?)?, &self.lo, &self.hi)?;
                let mixed = self.adv.f_add(&z.f_sub(&self.adv)?.f_mul_scalar(a)?)?.f_add(&grad2.f_mul_scalar(1.0 - a)?)?;
                clip_linf(&mixed, &self.lo, &self.hi)?
            }
            Norm::L2 => {
                let gn = batch_view(&l2_per_sample(&self.grad)?.f_add_scalar(1e-12)?, nd)?;
                let z = self.adv.f_add(&step.f_mul(&self.grad)?.f_div(&gn)?)?;
                let z = clip_l2(&z, &self.x, p.eps, 0.0)?;
                let mixed = self.adv.f_add(&z.f_sub(&self.adv)?.f_mul_scalar(a)?)?.f_add(&grad2.f_mul_scalar(1.0 - a)?)?;
                clip_l2(&mixed, &self.x, p.eps, 1e-12)?
            }
        };
        self.adv = next;
        Ok(())
    }

    /// Records the loss of the current iterate and keeps the best point.
    pub fn observe(&mut self, loss: &Tensor, grad: Tensor) -> Result<()> {
        self.rose.push(loss.f_gt_tensor(&self.loss_prev)?);
        self.loss_prev = loss.shallow_clone();
        let better = loss.f_gt_tensor(&self.loss_best)?;
        let rows = batch_view(&better, self.adv.dim())?;
        self.x_best = self.adv.f_where_self(&rows, &self.x_best)?;
        self.grad_best = grad.f_where_self(&rows, &self.grad_best)?;
        self.loss_best = loss.f_where_self(&better, &self.loss_best)?;
        self.grad = grad;
        Ok(())
    }

    /// Checkpoint after `k` steps: halve the step (and restart from the best
    /// point) where the loss rose too rarely or the best loss stalled.
    pub fn checkpoint(&mut self, k: i64, rho: f64) -> Result<()> {
        let start = self.rose.len().saturating_sub(k as usize);
        let mut count = self.loss_best.f_zeros_like()?.f_to_kind(Kind::Double)?;
        for r in self.rose.get(start..).unwrap_or(&[]) {
            count = count.f_add(&r.f_to_kind(Kind::Double)?)?;
        }
        let oscillating = count.f_le(k as f64 * rho)?;
        let stalled = self.reduced_last.f_logical_not()?.f_logical_and(&self.loss_best_last.f_ge_tensor(&self.loss_best)?)?;
        let reduce = oscillating.f_logical_or(&stalled)?;
        self.reduced_last = reduce.shallow_clone();
        self.loss_best_last = self.loss_best.f_detach_copy()?;
        let rows = batch_view(&reduce, self.adv.dim())?;
        self.step = self.step.f_div_scalar(2.0)?.f_where_self(&reduce, &self.step)?;
        self.adv = self.x_best.f_where_self(&rows, &self.adv)?;
        self.grad = self.grad_best.f_where_self(&rows, &self.grad)?;
        Ok(())
    }
}

/// When a run checks its progress: after `k` steps, `k` shrinking by `decr`
/// from one checkpoint to the next, to at least `min`.
pub(crate) struct Checkpoints {
    k: i64,
    min: i64,
    decr: i64,
    since: i64,
}

impl Checkpoints {
    pub fn new(p: &ApgdParams) -> Self {
        let (k, min, decr) = p.schedule();
        Checkpoints { k, min, decr, since: 0 }
    }

    /// Counts a step of `run`; at a checkpoint, runs [`Run::checkpoint`].
    pub fn after_step(&mut self, run: &mut Run, rho: f64) -> Result<()> {
        self.since += 1;
        if self.since == self.k {
            run.checkpoint(self.k, rho)?;
            self.since = 0;
            self.k = (self.k - self.decr).max(self.min);
        }
        Ok(())
    }
}

/// A random start on the sphere of radius `eps` (L2) or the surface of the
/// L-inf ball (`t / max|t|`, t uniform in [-1, 1]), clipped to [0, 1], drawn
/// from torch's default generator in torchattacks' order.
pub(crate) fn random_start(x: &Tensor, p: &ApgdParams) -> Result<Tensor> {
    let nd = x.dim();
    let t = match p.norm {
        Norm::Linf => {
            let t = x.f_rand_like()?.f_mul_scalar(2.0)?.f_sub_scalar(1.0)?;
            let m = t.f_abs()?.f_flatten(1, -1)?.f_amax([1i64].as_slice(), false)?;
            t.f_mul_scalar(p.eps)?.f_div(&batch_view(&m, nd)?)?
        }
        Norm::L2 => {
            let t = x.f_randn_like()?;
            let m = l2_per_sample(&t)?.f_add_scalar(1e-12)?;
            t.f_mul_scalar(p.eps)?.f_div(&batch_view(&m, nd)?)?
        }
    };
    Ok(x.f_add(&t)?.f_clamp(0.0, 1.0)?)
}
