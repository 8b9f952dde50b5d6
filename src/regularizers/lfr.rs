//! LFR inner maximization, eq. (3): `x' = argmax_{x' in B_inf(x, eps)} ||d_x L(x')||_1`
//! by projected sign ascent. The ascent direction is the gradient of the
//! local flatness, `d/dx' ||g(x')||_1 = H(x') sign(g(x'))` (a Hessian-vector
//! product), computed either exactly by double backprop or by a forward finite
//! difference of two input gradients, `(g(x' + h v) - g(x')) / h` with
//! `v = sign(g(x'))`.
use crate::error::{invalid, Result};
use crate::grad::grad;
use crate::inputs::{check_ascent, check_ascent_in, check_batch, check_finite_in, check_layout, dtype_name};
use crate::model::{CheckedModel, Model};
use crate::norm::lp_per_sample;
use crate::project::project_linf;
use crate::regularizers::penalty::ce_input_grad;
use tch::{Kind, Tensor};

/// How the Hessian-vector product is computed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Hvp {
    /// Double backprop.
    Exact,
    /// Forward difference with step `h` along `sign(g)`.
    FiniteDifference(f64),
}

impl Hvp {
    pub const NAMES: [&'static str; 2] = ["exact", "fd"];

    pub fn parse(name: &str, fd_step: f64) -> Result<Self> {
        match name {
            "exact" => Ok(Hvp::Exact),
            "fd" => {
                if !fd_step.is_finite() || fd_step <= 0.0 {
                    return invalid(format!("fd_step must be a finite number > 0, got {fd_step}"));
                }
                Ok(Hvp::FiniteDifference(fd_step))
            }
            _ => invalid(format!("unknown hvp {name:?}; expected one of {:?}", Self::NAMES)),
        }
    }

    /// Checks the finite-difference step against the inputs' dtype: it must
    /// be finite there and at least its machine epsilon, or `x + h sign(g)`
    /// rounds back to `x` (and `1e-300` becomes 0, a division by zero).
    fn check_in(self, kind: Kind) -> Result<()> {
        let Hvp::FiniteDifference(h) = self else { return Ok(()) };
        check_finite_in(kind, &[("fd_step", h)])?;
        let resolution = if kind == Kind::Float { f64::from(f32::EPSILON) } else { f64::EPSILON };
        if h < resolution {
            return invalid(format!(
                "fd_step = {h:e} is below the resolution of {} ({resolution:e}): x + fd_step * sign(g) would round back to x",
                dtype_name(kind)
            ));
        }
        Ok(())
    }
}

/// Where the ascent starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Start {
    /// At `x` itself.
    Clean,
    /// Uniform in `B_inf(x, eps)`, then clipped to [0, 1] (Madry et al.).
    Uniform,
    /// `clamp(x + std * N(0, I), 0, 1)`, as the authors' `LFR_loss.py` (std 0.001, TRADES' start).
    Normal(f64),
}

impl Start {
    pub const NAMES: [&'static str; 2] = ["uniform", "normal"];

    /// `random_start=false` starts at `x`; otherwise `name` picks the distribution.
    pub fn parse(random_start: bool, name: &str, std: f64) -> Result<Self> {
        let start = match name {
            "uniform" => Start::Uniform,
            "normal" => {
                if !std.is_finite() || std <= 0.0 {
                    return invalid(format!("start_std must be a finite number > 0, got {std}"));
                }
                Start::Normal(std)
            }
            _ => return invalid(format!("unknown start {name:?}; expected one of {:?}", Self::NAMES)),
        };
        Ok(if random_start { start } else { Start::Clean })
    }

    fn initial(self, x: &Tensor, eps: f64) -> Result<Tensor> {
        match self {
            Start::Clean => Ok(x.f_detach_copy()?),
            Start::Uniform => crate::norm::Norm::Linf.random_start(x, eps),
            Start::Normal(std) => Ok(x.f_add(&x.f_randn_like()?.f_mul_scalar(std)?)?.f_clamp(0.0, 1.0)?),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct LfrParams {
    pub eps: f64,
    pub alpha: f64,
    pub steps: i64,
    pub start: Start,
    pub hvp: Hvp,
}

/// `H(x) sign(g(x))`, the gradient of `||g(x)||_1` with respect to `x`, per
/// sample (`g` the per-sample input gradient of the cross-entropy).
fn flatness_direction<M: Model>(model: &CheckedModel<'_, M>, x: &Tensor, labels: &Tensor, hvp: Hvp) -> Result<Tensor> {
    let xr = x.f_detach()?.f_set_requires_grad(true)?;
    match hvp {
        Hvp::Exact => {
            let (_, g) = ce_input_grad(model, &xr, labels, true)?;
            let flatness = g.f_abs()?.f_sum(None)?;
            grad(&flatness, &xr, false)
        }
        Hvp::FiniteDifference(h) => {
            let (_, g) = ce_input_grad(model, &xr, labels, false)?;
            let shifted = x.f_add(&g.f_sign()?.f_mul_scalar(h)?)?.f_set_requires_grad(true)?;
            let (_, g_h) = ce_input_grad(model, &shifted, labels, false)?;
            Ok(g_h.f_sub(&g)?.f_div_scalar(h)?)
        }
    }
}

/// The gradient of the local flatness `||d_x L(x)||_1` with respect to `x`.
pub fn flatness_grad(model: &impl Model, x: &Tensor, y: &Tensor, hvp: Hvp) -> Result<Tensor> {
    let labels = check_batch(x, y)?;
    hvp.check_in(x.kind())?;
    if x.numel() == 0 {
        return Ok(x.f_detach_copy()?);
    }
    let model = &CheckedModel::new(model, Some(&labels))?;
    model.finish(tch::with_grad(|| flatness_direction(model, x, &labels, hvp)))
}

impl LfrParams {
    fn check_in(&self, kind: Kind) -> Result<()> {
        check_ascent_in(kind, self.eps, self.alpha, self.steps)?;
        self.hvp.check_in(kind)
    }
}

/// The ascent itself, on a batch already checked; reads nothing back from
/// the device (so that a CUDA graph can capture it).
fn ascend<M: Model>(model: &CheckedModel<'_, M>, x: &Tensor, labels: &Tensor, p: &LfrParams, with_gamma: bool) -> Result<(Tensor, Option<Tensor>)> {
    let mut adv = p.start.initial(x, p.eps)?;
    for _ in 0..p.steps {
        let dir = flatness_direction(model, &adv, labels, p.hvp)?;
        adv = project_linf(&adv.f_add(&dir.f_sign()?.f_mul_scalar(p.alpha)?)?, x, p.eps)?;
    }
    let gamma = if with_gamma {
        let xr = adv.f_detach()?.f_set_requires_grad(true)?;
        Some(lp_per_sample(&ce_input_grad(model, &xr, labels, false)?.1, 1.0)?)
    } else {
        None
    };
    Ok((adv, gamma))
}

/// Runs the inner maximization. Returns `x'` and, when `with_gamma`, the
/// achieved `gamma_C(x, eps) ~ ||d_x L(x')||_1` per sample (Definition 1),
/// which costs one more forward/backward.
pub fn lfr_perturb(model: &impl Model, x: &Tensor, y: &Tensor, p: LfrParams, with_gamma: bool) -> Result<(Tensor, Option<Tensor>)> {
    check_ascent(p.eps, p.alpha, p.steps)?;
    let labels = check_batch(x, y)?;
    p.check_in(x.kind())?;
    let x = x.f_detach()?;
    if x.numel() == 0 {
        let gamma = Tensor::f_zeros([0i64].as_slice(), (x.kind(), x.device()))?;
        return Ok((x.f_detach_copy()?, with_gamma.then_some(gamma)));
    }
    let model = &CheckedModel::new(model, Some(&labels))?;
    model.finish(tch::with_grad(|| ascend(model, &x, &labels, &p, with_gamma)))
}

/// [`lfr_perturb`]'s capture-safe form: the same ascent on a batch whose
/// values the caller checked (`check_batch_for`), with no host
/// synchronization; returns `x'` and a 0-d bool tensor, true when every
/// logit the model returned was finite.
pub fn lfr_perturb_fixed(model: &impl Model, x: &Tensor, y: &Tensor, p: LfrParams) -> Result<(Tensor, Tensor)> {
    check_layout(x, y)?;
    p.check_in(x.kind())?;
    let x = x.f_detach()?;
    let model = CheckedModel::new(model, None)?;
    let (adv, _) = tch::with_grad(|| ascend(&model, &x, y, &p, false))?;
    Ok((adv, model.finite_flag(x.device())?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn start_modes() {
        assert_eq!(Start::parse(true, "uniform", 0.001).unwrap(), Start::Uniform);
        assert_eq!(Start::parse(true, "normal", 0.001).unwrap(), Start::Normal(0.001));
        assert_eq!(Start::parse(false, "normal", 0.001).unwrap(), Start::Clean);
        assert!(Start::parse(true, "gauss", 0.001).is_err());
        assert!(Start::parse(true, "normal", 0.0).is_err());
        assert!(Start::parse(true, "normal", f64::NAN).is_err());

        let x = Tensor::rand([64, 3], (Kind::Double, Device::Cpu));
        let x = x.where_self(&x.gt(0.5), &x.zeros_like()); // half the pixels at the box edge 0
        let a = Start::Normal(0.001).initial(&x, 0.3).unwrap();
        assert!(a.min().double_value(&[]) >= 0.0 && a.max().double_value(&[]) <= 1.0);
        let d = (&a - &x).abs().max().double_value(&[]);
        assert!(d > 0.0 && d < 0.01, "normal start moved by {d}");
        assert!(Start::Clean.initial(&x, 0.3).unwrap().equal(&x));
    }

    #[test]
    fn the_capture_safe_form_is_the_eager_ascent() {
        use crate::model::fixtures::{interior, three_classes};
        let w = three_classes();
        let model = |x: &Tensor| -> Result<Tensor> { Ok(x.f_matmul(&w.f_tr()?)?.f_tanh()?.f_mul_scalar(4.0)?) };
        let x = interior(5);
        let y = Tensor::from_slice(&[0i64, 1, 2, 0, 1]);
        for hvp in [Hvp::Exact, Hvp::FiniteDifference(0.01)] {
            let p = LfrParams { eps: 0.1, alpha: 0.02, steps: 6, start: Start::Clean, hvp };
            let (eager, _) = lfr_perturb(&model, &x, &y, p, false).unwrap();
            let (fixed, finite) = lfr_perturb_fixed(&model, &x, &y, p).unwrap();
            assert!(fixed.equal(&eager), "{hvp:?}");
            assert!(!fixed.equal(&x) && bool::try_from(finite).unwrap());
        }
        let nan = |x: &Tensor| -> Result<Tensor> { Ok(x.f_narrow(1, 0, 3)?.f_div_scalar(0.0)?) };
        let p = LfrParams { eps: 0.1, alpha: 0.02, steps: 2, start: Start::Clean, hvp: Hvp::Exact };
        let (_, finite) = lfr_perturb_fixed(&nan, &x, &y, p).unwrap();
        assert!(!bool::try_from(finite).unwrap());
    }
}
