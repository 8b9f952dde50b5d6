//! Decision and loss surfaces (Fig. 1 and Fig. 2 of Local Flatness
//! Regularization; the plotting method of Yu et al., "Interpreting and evaluating
//! neural network robustness", IJCAI 2019):
//! the model evaluated on the plane `x + a u + b v` spanned by two directions,
//! and the paper's pair of directions.
use crate::attacks::Objective;
use crate::error::{invalid, LfrError, Result};
use crate::inputs::{check_batch, check_count, check_positive};
use crate::loss::Loss;
use crate::model::{check_label_range, checked_logits, num_classes, CheckedModel, Model};
use crate::norm::{batch_view, lp_per_sample};
use tch::{Kind, Tensor};

/// What a surface shows at each grid point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SurfaceKind {
    /// `z_y - max_{i != y} z_i` on the logits: positive iff the prediction is `y`.
    Decision,
    /// Cross-entropy of the logits against `y`.
    Loss,
}

impl SurfaceKind {
    pub const NAMES: [&'static str; 2] = ["decision", "loss"];

    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "decision" => Ok(SurfaceKind::Decision),
            "loss" => Ok(SurfaceKind::Loss),
            _ => invalid(format!("unknown kind {name:?}; expected one of {:?}", Self::NAMES)),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct SurfaceParams {
    /// Half-width of the grid along each direction.
    pub span: f64,
    /// Grid points per axis (at least 2).
    pub steps: i64,
    pub kind: SurfaceKind,
    /// Grid points per forward pass.
    pub batch_size: i64,
}

/// `u` or `v`: floating, the inputs' shape, dtype and device, finite.
fn check_direction(name: &str, d: &Tensor, x: &Tensor) -> Result<()> {
    if d.size() != x.size() {
        return Err(LfrError::Shape(format!(
            "{name} must have the inputs' shape {:?} (one direction per input), got {:?}",
            x.size(),
            d.size()
        )));
    }
    if d.device() != x.device() {
        return Err(LfrError::Device(format!("inputs are on {:?} but {name} is on {:?}", x.device(), d.device())));
    }
    if d.kind() != x.kind() {
        return Err(LfrError::InvalidType(format!(
            "{name} must have the inputs' dtype {:?}, got {:?}",
            x.kind(),
            d.kind()
        )));
    }
    if d.numel() > 0 && d.f_isfinite()?.f_all()?.f_int64_value(&[])? == 0 {
        return invalid(format!("{name} contains NaN or inf"));
    }
    Ok(())
}

/// Values of the model on the grid `clip_[0,1](x_n + a_i u_n + b_j v_n)`,
/// `a = b = linspace(-span, span, steps)`, as an `(N, steps, steps)` tensor
/// indexed `[n, i, j]`. All `N * steps^2` points are flattened and run in
/// forward passes of at most `batch_size` points without autograd.
pub fn surface(model: &impl Model, x: &Tensor, y: &Tensor, u: &Tensor, v: &Tensor, p: SurfaceParams) -> Result<Tensor> {
    let labels = check_batch(x, y)?;
    check_direction("u", u, x)?;
    check_direction("v", v, x)?;
    check_positive("span", p.span)?;
    if p.steps < 2 {
        return invalid(format!("steps must be >= 2 (grid points per axis), got {}", p.steps));
    }
    check_count("batch_size", p.batch_size)?;
    let n = x.size().first().copied().unwrap_or(0);
    let per = p.steps * p.steps;
    let device = x.device();
    let coords = Tensor::f_linspace(-p.span, p.span, p.steps, (x.kind(), device))?;
    if n == 0 {
        return Ok(Tensor::f_empty([0, p.steps, p.steps], (x.kind(), device))?);
    }
    let ndim = x.dim();
    let total = n * per;
    let model = &CheckedModel::new(model, Some(&labels))?;
    model.finish(tch::no_grad(|| {
        let mut values = Vec::new();
        let mut start = 0;
        while start < total {
            let len = p.batch_size.min(total - start);
            let k = Tensor::f_arange_start(start, start + len, (Kind::Int64, device))?;
            let sample = k.f_div_scalar_mode(per, "floor")?;
            let cell = k.f_remainder(per)?;
            let i = cell.f_div_scalar_mode(p.steps, "floor")?;
            let j = cell.f_remainder(p.steps)?;
            let a = batch_view(&coords.f_index_select(0, &i)?, ndim)?;
            let b = batch_view(&coords.f_index_select(0, &j)?, ndim)?;
            // (x + a u) + b v, in this order, so a plain loop over the grid rounds the same way
            let points = x
                .f_index_select(0, &sample)?
                .f_add(&a.f_mul(&u.f_index_select(0, &sample)?)?)?
                .f_add(&b.f_mul(&v.f_index_select(0, &sample)?)?)?
                .f_clamp(0.0, 1.0)?;
            let chunk_labels = labels.f_index_select(0, &sample)?;
            let logits = checked_logits(model, &points)?;
            if start == 0 {
                check_label_range(&labels, &logits)?;
                if p.kind == SurfaceKind::Decision && num_classes(&logits) < 2 {
                    return invalid("the decision value needs a model with at least 2 classes");
                }
            }
            let value = match p.kind {
                SurfaceKind::Decision => Loss::Margin.objective(&logits, &chunk_labels, false)?.f_neg()?,
                SurfaceKind::Loss => Loss::CrossEntropy.objective(&logits, &chunk_labels, false)?,
            };
            values.push(value);
            start += len;
        }
        Ok(Tensor::f_cat(&values, 0)?.f_reshape([n, p.steps, p.steps])?)
    }))
}

/// The paper's pair of directions, one per input, each of unit L-inf norm:
/// `u = sign(d_x L(x, y))`, the gradient-sign (FGSM) direction of the loss
/// `loss`, and `v = r - (<r, u> / <u, u>) u` rescaled to `||v||_inf = 1`,
/// a Rademacher vector `r` (torch's default generator) with its component
/// along `u` removed, so `<u, v> = 0`.
pub fn surface_directions(model: &impl Model, x: &Tensor, y: &Tensor, loss: Loss) -> Result<(Tensor, Tensor)> {
    let labels = check_batch(x, y)?;
    let n = x.size().first().copied().unwrap_or(0);
    if n == 0 {
        return Ok((x.f_detach_copy()?, x.f_detach_copy()?));
    }
    if x.numel() < 2 * n.unsigned_abs() as usize {
        return invalid("two orthogonal directions need inputs with at least 2 features per sample");
    }
    let x = x.f_detach()?;
    // summed, so each sample's gradient is its own loss's
    let model = &CheckedModel::new(model, Some(&labels))?;
    let probe = model.finish(tch::with_grad(|| {
        Objective::new(labels.shallow_clone(), loss, false).summed().probe(model, &x, &labels)
    }))?;
    let u = probe.grad.f_sign()?;
    let u_norm = lp_per_sample(&u, f64::INFINITY)?;
    let flat_zero = u_norm.f_eq(0.0)?.f_nonzero()?.f_flatten(0, -1)?;
    if flat_zero.numel() > 0 {
        let idx = Vec::<i64>::try_from(&flat_zero)?;
        return invalid(format!(
            "the input gradient of the loss is exactly zero for sample(s) {idx:?}, so it has no sign \
             direction (a saturated softmax or an untrained zero-initialised last layer); try loss=\"margin\""
        ));
    }
    let r = x.f_rand_like()?.f_lt(0.5)?.f_to_kind(x.kind())?.f_mul_scalar(2.0)?.f_sub_scalar(1.0)?;
    let dims = [1i64].as_slice();
    let ru = r.f_mul(&u)?.f_flatten(1, -1)?.f_sum_dim_intlist(dims, false, None)?;
    let uu = u.f_mul(&u)?.f_flatten(1, -1)?.f_sum_dim_intlist(dims, false, None)?;
    let coef = batch_view(&ru.f_div(&uu)?, x.dim())?;
    let v = r.f_sub(&coef.f_mul(&u)?)?;
    let v_norm = lp_per_sample(&v, f64::INFINITY)?;
    if v_norm.f_eq(0.0)?.f_any()?.f_int64_value(&[])? != 0 {
        return invalid("the random direction came out parallel to the gradient sign; draw again");
    }
    let v = v.f_div(&batch_view(&v_norm, x.dim())?)?;
    Ok((u, v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    /// A fixed linear map from 3 features to 2 classes: logits `W x`.
    fn linear(x: &Tensor) -> Result<Tensor> {
        let w = Tensor::from_slice(&[1.0f64, -2.0, 0.5, -1.0, 1.0, 0.0]).reshape([2, 3]);
        Ok(x.f_matmul(&w.f_transpose(0, 1)?)?)
    }

    fn params(kind: SurfaceKind, batch_size: i64) -> SurfaceParams {
        SurfaceParams { span: 0.2, steps: 5, kind, batch_size }
    }

    #[test]
    fn decision_value_on_a_linear_model_is_the_logit_margin() {
        let x = Tensor::from_slice(&[0.5f64, 0.5, 0.5, 0.2, 0.9, 0.4]).reshape([2, 3]);
        let y = Tensor::from_slice(&[0i64, 1]);
        let u = Tensor::from_slice(&[1.0f64, 0.0, 0.0, 0.0, 1.0, 0.0]).reshape([2, 3]);
        let v = Tensor::from_slice(&[0.0f64, 0.0, 1.0, 1.0, 0.0, 0.0]).reshape([2, 3]);
        let s = surface(&linear, &x, &y, &u, &v, params(SurfaceKind::Decision, 3)).unwrap();
        assert_eq!(s.size(), vec![2, 5, 5]);
        let coords = [-0.2, -0.1, 0.0, 0.1, 0.2];
        for (n, (xn, yn)) in [([0.5, 0.5, 0.5], 0usize), ([0.2, 0.9, 0.4], 1)].iter().enumerate() {
            for (i, a) in coords.iter().enumerate() {
                for (j, b) in coords.iter().enumerate() {
                    let mut p = *xn;
                    if n == 0 { p[0] += a; p[2] += b; } else { p[1] += a; p[0] += b; }
                    let p = p.map(|t: f64| t.clamp(0.0, 1.0));
                    let z0 = p[0] - 2.0 * p[1] + 0.5 * p[2];
                    let z1 = -p[0] + p[1];
                    let want = if *yn == 0 { z0 - z1 } else { z1 - z0 };
                    let got = s.double_value(&[n as i64, i as i64, j as i64]);
                    assert!((got - want).abs() < 1e-12, "[{n},{i},{j}] {got} vs {want}");
                }
            }
        }
        let again = surface(&linear, &x, &y, &u, &v, params(SurfaceKind::Decision, 1000)).unwrap();
        assert_eq!(s, again, "batching does not change the values");
    }

    #[test]
    fn rejects_bad_arguments() {
        let x = Tensor::full([2, 3], 0.5, (Kind::Double, Device::Cpu));
        let y = Tensor::from_slice(&[0i64, 1]);
        let u = x.ones_like();
        let p = params(SurfaceKind::Loss, 8);
        assert!(matches!(surface(&linear, &x, &y, &u.narrow(0, 0, 1), &u, p), Err(LfrError::Shape(_))));
        assert!(matches!(surface(&linear, &x, &y, &u.to_kind(Kind::Float), &u, p), Err(LfrError::InvalidType(_))));
        assert!(surface(&linear, &x, &y, &u, &(&u * f64::NAN), p).is_err());
        assert!(surface(&linear, &x, &y, &u, &u, SurfaceParams { steps: 1, ..p }).is_err());
        assert!(surface(&linear, &x, &y, &u, &u, SurfaceParams { span: 0.0, ..p }).is_err());
        assert!(surface(&linear, &x, &y, &u, &u, SurfaceParams { batch_size: 0, ..p }).is_err());
        assert!(surface(&linear, &x, &(&y + 5), &u, &u, p).is_err(), "label out of range");
        assert!(SurfaceKind::parse("logit").unwrap_err().to_string().contains("decision"));
    }

    #[test]
    fn directions_are_unit_linf_and_orthogonal() {
        // 16 features: a random sign vector is (anti)parallel to u with probability 2^-15
        let w0 = Tensor::linspace(-1.0, 1.0, 16, (Kind::Double, Device::Cpu));
        let w = Tensor::stack(&[w0.shallow_clone(), w0.neg() * 0.5 + 0.2], 0);
        let model = |x: &Tensor| -> Result<Tensor> { Ok(x.f_matmul(&w.f_transpose(0, 1)?)?) };
        tch::manual_seed(0);
        let x = Tensor::rand([4, 16], (Kind::Double, Device::Cpu));
        let y = Tensor::from_slice(&[0i64, 1, 0, 1]);
        let (u, v) = surface_directions(&model, &x, &y, Loss::CrossEntropy).unwrap();
        let ones = Tensor::ones([4], (Kind::Double, Device::Cpu));
        assert_eq!(lp_per_sample(&u, f64::INFINITY).unwrap(), ones);
        let vn = lp_per_sample(&v, f64::INFINITY).unwrap();
        assert!(f64::try_from((vn - 1.0).abs().max()).unwrap() < 1e-12);
        let dot = (&u * &v).sum_dim_intlist([1i64].as_slice(), false, None);
        assert!(f64::try_from(dot.abs().max()).unwrap() < 1e-12);
        // d/dx CE for label 0 of logits W x is -(1 - p0) (w0 - w1)
        let w_diff = w.get(0) - w.get(1);
        assert_eq!(u.get(0), w_diff.neg().sign());
        assert_eq!(u.get(1), w_diff.sign());
    }

    #[test]
    fn zero_gradient_is_an_error() {
        let flat = |x: &Tensor| -> Result<Tensor> { Ok(x.f_mul_scalar(0.0)?.f_narrow(1, 0, 2)?) };
        let x = Tensor::full([1, 3], 0.5, (Kind::Double, Device::Cpu));
        let y = Tensor::from_slice(&[0i64]);
        let err = surface_directions(&flat, &x, &y, Loss::CrossEntropy).unwrap_err();
        assert!(err.to_string().contains("exactly zero"), "{err}");
    }
}
