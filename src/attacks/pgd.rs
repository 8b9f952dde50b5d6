//! Projected Gradient Descent (Madry et al., 2018, arXiv:1706.06083) in L-inf
//! and L2, with torchattacks 3.5.1's step and projection order, plus restarts
//! and early-stopping evaluation (`keep_best`).
use crate::attacks::Objective;
use crate::error::Result;
use crate::inputs::{check_ascent, check_batch, check_count, check_finite_in};
use crate::loss::Loss;
use crate::model::{checked_logits, CheckedModel, Model};
use crate::norm::{batch_view, Norm};
use tch::{Kind, Tensor};

#[derive(Debug, Clone, Copy)]
pub struct PgdParams {
    pub eps: f64,
    pub alpha: f64,
    pub steps: i64,
    pub random_start: bool,
    pub norm: Norm,
    pub loss: Loss,
    pub targeted: bool,
    pub restarts: i64,
    pub keep_best: bool,
}

impl PgdParams {
    pub(crate) fn check(&self) -> Result<()> {
        check_ascent(self.eps, self.alpha, self.steps)?;
        check_count("restarts", self.restarts)
    }
}

/// Per sample, the best candidate so far: one that fools the model wins and
/// is final; otherwise the one with the highest objective value.
pub(crate) struct Candidate {
    pub adv: Tensor,
    pub value: Tensor,
    pub success: Tensor,
}

impl Candidate {
    /// Starts from `adv` with objective `-inf` and no success.
    pub fn start(adv: Tensor) -> Result<Self> {
        let m = adv.size().first().copied().unwrap_or(0);
        let value = Tensor::f_full([m].as_slice(), f64::NEG_INFINITY, (adv.kind(), adv.device()))?;
        let success = Tensor::f_zeros([m].as_slice(), (Kind::Bool, adv.device()))?;
        Ok(Candidate { adv, value, success })
    }

    /// Offers new candidates for the rows `idx` (none of which has succeeded).
    fn offer(&mut self, idx: &Tensor, adv: &Tensor, value: &Tensor, fooled: &Tensor) -> Result<()> {
        let value = value.f_to_kind(self.value.kind())?;
        let prev_value = self.value.f_index_select(0, idx)?;
        let better = fooled.f_logical_or(&value.f_gt_tensor(&prev_value)?)?;
        let prev = self.adv.f_index_select(0, idx)?;
        let merged = adv.f_where_self(&batch_view(&better, adv.dim())?, &prev)?;
        self.adv = self.adv.f_index_copy(0, idx, &merged)?;
        self.value = self.value.f_index_copy(0, idx, &value.f_where_self(&better, &prev_value)?)?;
        self.success = self.success.f_index_copy(0, idx, fooled)?;
        Ok(())
    }
}

/// `x_{t+1} = Π(x_t + alpha * dir(grad))` from `x` (or a random start), for
/// `steps` steps; returns the last iterate (torchattacks' semantics).
pub(crate) fn last_iterate(model: &impl Model, obj: &Objective, x: &Tensor, y: &Tensor, p: &PgdParams) -> Result<Tensor> {
    let mut adv = if p.random_start { p.norm.random_start(x, p.eps)? } else { x.f_detach_copy()? };
    for _ in 0..p.steps {
        let probe = obj.probe(model, &adv, y)?;
        adv = p.norm.step(&adv, &probe.grad, x, p.alpha, p.eps)?;
    }
    Ok(adv)
}

/// Evaluates the last iterate once more to score it.
fn scored_last_iterate(model: &impl Model, obj: &Objective, x: &Tensor, y: &Tensor, p: &PgdParams) -> Result<Candidate> {
    let adv = last_iterate(model, obj, x, y, p)?;
    let logits = tch::no_grad(|| checked_logits(model, &adv))?;
    let value = obj.loss.objective(&logits, y, obj.targeted)?;
    let success = obj.success(&logits, y)?;
    Ok(Candidate { adv, value, success })
}

/// PGD that keeps, per sample, the first iterate that fools the model (else
/// the highest-objective one) and stops stepping samples once they are fooled.
fn tracked(model: &impl Model, obj: &Objective, x: &Tensor, y: &Tensor, p: &PgdParams) -> Result<Candidate> {
    let m = x.size().first().copied().unwrap_or(0);
    let mut adv = if p.random_start { p.norm.random_start(x, p.eps)? } else { x.f_detach_copy()? };
    let mut best = Candidate::start(adv.f_detach_copy()?)?;
    let mut active = Tensor::f_arange(m, (Kind::Int64, x.device()))?;
    for step in 0..=p.steps {
        let xa = adv.f_index_select(0, &active)?;
        let ya = y.f_index_select(0, &active)?;
        let last = step == p.steps;
        let (logits, value, grad) = if last {
            let logits = tch::no_grad(|| checked_logits(model, &xa))?;
            let value = obj.loss.objective(&logits, &ya, obj.targeted)?;
            (logits, value, None)
        } else {
            let probe = obj.probe(model, &xa, &ya)?;
            (probe.logits, probe.value, Some(probe.grad))
        };
        let fooled = obj.success(&logits, &ya)?;
        best.offer(&active, &xa, &value, &fooled)?;
        let Some(grad) = grad else { break };
        let keep = fooled.f_logical_not()?.f_nonzero()?.f_squeeze_dim(1)?;
        if keep.numel() == 0 {
            break;
        }
        let x0 = x.f_index_select(0, &active)?.f_index_select(0, &keep)?;
        let next = p.norm.step(
            &xa.f_index_select(0, &keep)?,
            &grad.f_index_select(0, &keep)?,
            &x0,
            p.alpha,
            p.eps,
        )?;
        active = active.f_index_select(0, &keep)?;
        adv = adv.f_index_copy(0, &active, &next)?;
    }
    Ok(best)
}

/// Runs PGD. With `restarts == 1` and no `keep_best`, returns the last
/// iterate, exactly as torchattacks' `PGD`/`PGDL2`. Otherwise returns per
/// sample the first candidate that fools the model (restarts run only on the
/// samples not yet fooled), else the one with the highest objective.
pub fn pgd(model: &impl Model, x: &Tensor, y: &Tensor, p: PgdParams) -> Result<Tensor> {
    p.check()?;
    let labels = check_batch(x, y)?;
    check_finite_in(x.kind(), &[("eps", p.eps), ("alpha", p.alpha)])?;
    let x = x.f_detach()?;
    if x.numel() == 0 {
        return Ok(x.f_detach_copy()?);
    }
    let model = &CheckedModel::new(model, Some(&labels))?;
    model.finish(tch::with_grad(|| {
        let obj = Objective::new(labels, p.loss, p.targeted);
        if p.restarts == 1 && !p.keep_best {
            return last_iterate(model, &obj, &x, &obj.labels, &p);
        }
        let mut best = Candidate::start(x.f_detach_copy()?)?;
        for _ in 0..p.restarts {
            let todo = best.success.f_logical_not()?.f_nonzero()?.f_squeeze_dim(1)?;
            if todo.numel() == 0 {
                break;
            }
            let xs = x.f_index_select(0, &todo)?;
            let ys = obj.labels.f_index_select(0, &todo)?;
            let c = if p.keep_best {
                tracked(model, &obj, &xs, &ys, &p)?
            } else {
                scored_last_iterate(model, &obj, &xs, &ys, &p)?
            };
            best.offer(&todo, &c.adv, &c.value, &c.success)?;
        }
        Ok(best.adv)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures::{in_linf_threat_set, interior, linear, on_box_faces, three_classes, two_classes};
    use crate::norm::{l2_per_sample, lp_per_sample};

    /// Per sample, `W_other - W_y` of the 2-class model: the input gradient of
    /// the cross-entropy is `(1 - p_y) (W_other - W_y)`, of constant direction.
    fn ascent(w: &Tensor, y: &Tensor) -> Tensor {
        let side = (y.to_kind(Kind::Double) * -2.0 + 1.0).unsqueeze(1);
        side * (w.get(1) - w.get(0))
    }

    fn params(norm: Norm) -> PgdParams {
        PgdParams {
            eps: 0.1,
            alpha: 0.04,
            steps: 5,
            random_start: false,
            norm,
            loss: Loss::CrossEntropy,
            targeted: false,
            restarts: 1,
            keep_best: false,
        }
    }

    #[test]
    fn linf_moves_every_coordinate_by_eps_along_the_sign_of_the_weight_gap() {
        let (w, x, y) = (two_classes(), interior(3), Tensor::from_slice(&[0i64, 1, 0]));
        let adv = pgd(&linear(&w), &x, &y, params(Norm::Linf)).unwrap();
        let want = &x + ascent(&w, &y).sign() * 0.1;
        assert!(f64::try_from((&adv - want).abs().max()).unwrap() < 1e-12);
        // descending the loss of the other class takes the same steps
        let other = y.neg() + 1;
        let targeted = pgd(&linear(&w), &x, &other, PgdParams { targeted: true, ..params(Norm::Linf) }).unwrap();
        assert!(targeted.equal(&adv));
    }

    #[test]
    fn l2_ends_at_radius_eps_along_the_weight_gap() {
        let (w, x, y) = (two_classes(), interior(3), Tensor::from_slice(&[0i64, 1, 0]));
        let adv = pgd(&linear(&w), &x, &y, params(Norm::L2)).unwrap();
        let dir = ascent(&w, &y);
        let want = &x + &dir / dir.norm_scalaropt_dim(2.0, [1i64].as_slice(), true) * 0.1;
        assert!(f64::try_from((&adv - want).abs().max()).unwrap() < 1e-12);
    }

    #[test]
    fn keep_best_returns_the_first_fooling_iterate_else_the_highest_loss_one() {
        // Margins z_0 - z_1 of 0.5 and 2.0; each step of 0.02 lowers them by 0.02 ||W_0 - W_1||_1 = 0.19,
        // so sample 0 is fooled at iterate 3 and sample 1 not within eps = 0.1 (0.95 at most).
        let (w, y) = (two_classes(), Tensor::from_slice(&[0i64, 0]));
        let x = Tensor::from_slice(&[0.55f64, 0.5, 0.5, 0.55, 0.85, 0.5, 0.5, 0.85]).reshape([2, 4]);
        let p = PgdParams { alpha: 0.02, steps: 10, keep_best: true, ..params(Norm::Linf) };
        let adv = pgd(&linear(&w), &x, &y, p).unwrap();
        let moved = Vec::<f64>::try_from(lp_per_sample(&(&adv - &x), f64::INFINITY).unwrap()).unwrap();
        assert!((moved[0] - 0.06).abs() < 1e-12 && (moved[1] - 0.1).abs() < 1e-12, "{moved:?}");
        let pred = Vec::<i64>::try_from(linear(&w)(&adv).unwrap().argmax(1, false)).unwrap();
        assert_eq!(pred, vec![1, 0]);
    }

    #[test]
    fn random_starts_restarts_and_keep_best_stay_in_the_ball_and_the_box() {
        let (w, x) = (three_classes(), on_box_faces(12));
        let y = Tensor::from_slice(&[0i64, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2]);
        let before = x.copy();
        for norm in [Norm::Linf, Norm::L2] {
            for (restarts, keep_best, loss) in [(1, false, Loss::CrossEntropy), (3, false, Loss::Margin), (2, true, Loss::CrossEntropy)] {
                let p = PgdParams { eps: 0.3, alpha: 0.1, steps: 7, random_start: true, norm, loss, restarts, keep_best, ..params(norm) };
                let adv = pgd(&linear(&w), &x, &y, p).unwrap();
                assert_eq!((adv.size(), adv.kind()), (x.size(), x.kind()));
                match norm {
                    Norm::Linf => assert!(in_linf_threat_set(&adv, &x, 0.3), "{p:?}"),
                    Norm::L2 => {
                        let n = l2_per_sample(&(&adv - &x)).unwrap();
                        assert!(f64::try_from(n.max()).unwrap() <= 0.3 + 1e-12, "{p:?}");
                        assert!(f64::try_from(adv.min()).unwrap() >= 0.0 && f64::try_from(adv.max()).unwrap() <= 1.0);
                    }
                }
            }
        }
        assert!(x.equal(&before), "the inputs are left as they were");
    }
}
