//! Decoupled Direction and Norm (Rony et al., CVPR 2019, arXiv:1811.09600):
//! a minimal-L2 attack. Each step moves `delta` along the normalised loss
//! gradient with a cosine-annealed step `alpha_i = 0.01 + 0.99 (1 + cos(pi i/K)) / 2`,
//! then rescales it to the norm `eps_i`, which shrinks by `(1 - gamma)` while the
//! iterate is adversarial and grows by `(1 + gamma)` while it is not (capped at
//! the largest norm inside the box); the iterate is projected to [0, 1] and
//! quantized to `levels` grey levels. Returns, per sample, the smallest-L2
//! adversarial seen, or the input itself where none was found.
use crate::attacks::Objective;
use crate::error::{invalid, Result};
use crate::inputs::{check_batch, check_count, check_finite_in, check_non_negative, check_positive};
use crate::loss::Loss;
use crate::model::{CheckedModel, Model};
use crate::norm::{batch_view, l2_per_sample};
use tch::Tensor;

#[derive(Debug, Clone, Copy)]
pub struct DdnParams {
    pub steps: i64,
    pub gamma: f64,
    pub init_norm: f64,
    /// Grey levels to quantize to (`None`: no quantization).
    pub levels: Option<i64>,
    pub targeted: bool,
}

const ALPHA_MIN: f64 = 0.01;

impl DdnParams {
    fn check(&self) -> Result<()> {
        check_count("steps", self.steps)?;
        check_non_negative("gamma", self.gamma)?;
        if self.gamma >= 1.0 {
            return invalid(format!("gamma must be < 1, got {}", self.gamma));
        }
        check_positive("init_norm", self.init_norm)?;
        if let Some(levels) = self.levels {
            if levels < 2 {
                return invalid(format!("levels must be >= 2 (or None), got {levels}"));
            }
        }
        Ok(())
    }

    /// Step size of iteration `i` (cosine annealing from 1 to 0.01).
    fn alpha(&self, i: i64) -> f64 {
        let t = std::f64::consts::PI * i as f64 / self.steps as f64;
        ALPHA_MIN + (1.0 - ALPHA_MIN) * (1.0 + t.cos()) / 2.0
    }
}

pub fn ddn(model: &impl Model, x: &Tensor, y: &Tensor, p: DdnParams) -> Result<Tensor> {
    p.check()?;
    let labels = check_batch(x, y)?;
    check_finite_in(x.kind(), &[("init_norm", p.init_norm)])?;
    let x = x.f_detach()?;
    if x.numel() == 0 {
        return Ok(x.f_detach_copy()?);
    }
    let model = &CheckedModel::new(model, Some(&labels))?;
    model.finish(tch::with_grad(|| {
        let nd = x.dim();
        let obj = Objective::new(labels, Loss::CrossEntropy, p.targeted).summed();
        let n = x.size().first().copied().unwrap_or(0);
        let worst_norm = l2_per_sample(&x.f_maximum(&x.f_neg()?.f_add_scalar(1.0)?)?)?;
        let mut norm = Tensor::f_full([n].as_slice(), p.init_norm, (x.kind(), x.device()))?;
        let mut best_l2 = worst_norm.f_detach_copy()?;
        let mut best = x.f_detach_copy()?;
        let mut delta = x.f_zeros_like()?;
        for i in 0..p.steps {
            let l2 = l2_per_sample(&delta)?;
            let adv = x.f_add(&delta)?;
            let probe = obj.probe(model, &adv, &obj.labels)?;
            let is_adv = obj.success(&probe.logits, &obj.labels)?;
            let improved = is_adv.f_logical_and(&l2.f_lt_tensor(&best_l2)?)?;
            best_l2 = l2.f_where_self(&improved, &best_l2)?;
            best = adv.f_where_self(&batch_view(&improved, nd)?, &best)?;

            // Direction: the unit-L2 gradient; a zero gradient gets a random one.
            let grad = probe.grad;
            let grad_norm = l2_per_sample(&grad)?;
            let zero = batch_view(&grad_norm.f_lt(1e-12)?, nd)?;
            let unit = grad.f_div(&batch_view(&grad_norm, nd)?)?;
            let unit = if zero.f_any()?.f_int64_value(&[])? != 0 {
                grad.f_randn_like()?.f_where_self(&zero, &unit)?
            } else {
                unit
            };
            delta = delta.f_add(&unit.f_mul_scalar(p.alpha(i))?)?;

            // Norm: shrink while adversarial, grow while not.
            let shrunk = norm.f_mul_scalar(1.0 - p.gamma)?;
            norm = shrunk.f_where_self(&is_adv, &norm.f_mul_scalar(1.0 + p.gamma)?)?.f_minimum(&worst_norm)?;
            let scale = norm.f_div(&l2_per_sample(&delta)?)?;
            let mut next = delta.f_mul(&batch_view(&scale, nd)?)?.f_add(&x)?.f_clamp(0.0, 1.0)?;
            if let Some(levels) = p.levels {
                let q = (levels - 1) as f64;
                next = next.f_mul_scalar(q)?.f_round()?.f_div_scalar(q)?;
            }
            delta = next.f_sub(&x)?;
        }
        Ok(best)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures::{linear, two_classes};
    use crate::model::predict;
    use tch::{Device, Kind};

    fn params(levels: Option<i64>) -> DdnParams {
        DdnParams { steps: 100, gamma: 0.05, init_norm: 1.0, levels, targeted: false }
    }

    /// Correctly classified points at logit margins 0.2 to 1.05 from the
    /// boundary `(W_0 - W_1) . x = 0`, so the closest adversarial,
    /// `|z_0 - z_1| / ||W_0 - W_1||_2` away (0.04 to 0.22), lies inside the box.
    /// Returns the inputs, their labels and that distance.
    fn batch(w: &Tensor) -> (Tensor, Tensor, Tensor) {
        let x = Tensor::from_slice(&[0.55f64, 0.5, 0.5, 0.55, 0.5, 0.6, 0.5, 0.45, 0.6, 0.5, 0.5, 0.7]).reshape([3, 4]);
        let logits = linear(w)(&x).unwrap();
        let margin = (logits.select(1, 0) - logits.select(1, 1)).abs();
        (x, predict(&logits).unwrap(), margin / (w.get(0) - w.get(1)).norm())
    }

    /// Checks that every sample is fooled, at no more than `slack` times the
    /// distance to the boundary.
    fn assert_near_the_boundary(w: &Tensor, adv: &Tensor, x: &Tensor, y: &Tensor, closest: &Tensor, slack: f64) {
        assert!(predict(&linear(w)(adv).unwrap()).unwrap().ne_tensor(y).all().int64_value(&[]) == 1, "every sample fooled");
        let ratio = Vec::<f64>::try_from(l2_per_sample(&(adv - x)).unwrap() / closest).unwrap();
        assert!(ratio.iter().all(|r| (1.0 - 1e-9..slack).contains(r)), "L2 over the distance to the boundary: {ratio:?}");
    }

    #[test]
    fn reaches_the_boundary_of_a_linear_model() {
        let w = two_classes();
        let (x, y, closest) = batch(&w);
        let adv = ddn(&linear(&w), &x, &y, params(None)).unwrap();
        assert_near_the_boundary(&w, &adv, &x, &y, &closest, 1.01);
    }

    #[test]
    fn quantized_adversarials_lie_on_the_grey_level_grid() {
        let w = two_classes();
        let (x, y, closest) = batch(&w);
        let adv = ddn(&linear(&w), &x, &y, params(Some(256))).unwrap();
        assert_near_the_boundary(&w, &adv, &x, &y, &closest, 1.05);
        let scaled = &adv * 255.0;
        assert!(f64::try_from((&scaled - scaled.round()).abs().max()).unwrap() < 1e-9);
        assert!(f64::try_from(adv.min()).unwrap() >= 0.0 && f64::try_from(adv.max()).unwrap() <= 1.0);
    }

    #[test]
    fn returns_the_input_where_it_needs_or_finds_no_adversarial() {
        // z_0 - z_1 = 10 + 0.1 sum(x) > 0 on the whole box: class 0 everywhere.
        let model = |x: &Tensor| -> Result<Tensor> {
            let s = x.f_sum_dim_intlist([1i64].as_slice(), false, None)?.f_mul_scalar(0.1)?.f_add_scalar(10.0)?;
            let zero = s.f_zeros_like()?;
            Ok(Tensor::f_stack(&[s, zero], 1)?)
        };
        let x = Tensor::rand([2, 4], (Kind::Double, Device::Cpu));
        let y = Tensor::from_slice(&[1i64, 0]); // misclassified already; out of reach
        assert!(ddn(&model, &x, &y, params(Some(256))).unwrap().equal(&x));
        assert!(ddn(&model, &x, &y, DdnParams { gamma: 1.0, ..params(None) }).is_err());
        assert!(ddn(&model, &x, &y, DdnParams { levels: Some(1), ..params(None) }).is_err());
    }
}
