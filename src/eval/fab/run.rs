//! One FAB run (Croce & Hein, 2020, arXiv:1907.02044) over a
//! batch of points the model classifies correctly, with torchattacks 3.5.1's
//! (AutoAttack's `fab_pt.py`) arithmetic. Every tensor holds only the samples
//! still active.
use crate::error::Result;
use crate::eval::fab::projection::projection_linf;
use crate::eval::fab::FabParams;
use crate::grad::{grad, jacobian};
use crate::model::{checked_logits, predict, Model};
use crate::norm::batch_view;
use tch::{Device, Kind, Tensor};

/// AutoAttack's stand-in for "no boundary" (the true class) and "no distance yet".
const FAR: f64 = 1e10;

fn gather_rows(v: &Tensor, rows: &Tensor) -> Result<Tensor> {
    Ok(v.f_gather(1, &rows.f_unsqueeze(1)?, false)?.f_squeeze_dim(1)?)
}

/// The linearized boundaries at `x`, flattened: `df[n, k] = f_k - f_y`
/// (logit differences) and `dg[n, k] = grad f_k - grad f_y` `(N, K, D)`, for
/// every class (`f_y`'s own entry set to `FAR`), or, targeted, for the target
/// alone (`K = 1`, one backward of `f_t - f_y`).
fn boundaries(model: &impl Model, x: &Tensor, y: &Tensor, t: Option<&Tensor>) -> Result<(Tensor, Tensor)> {
    let xr = x.f_detach()?.f_set_requires_grad(true)?;
    let logits = checked_logits(model, &xr)?;
    match t {
        Some(t) => {
            let diff = gather_rows(&logits, y)?.f_sub(&gather_rows(&logits, t)?)?.f_neg()?;
            let g = grad(&diff.f_sum(None)?, &xr, false)?;
            Ok((diff.f_detach()?.f_unsqueeze(1)?, g.f_flatten(1, -1)?.f_unsqueeze(1)?))
        }
        None => {
            let g = jacobian(&logits, &xr)?.f_flatten(2, -1)?;
            let z = logits.f_detach()?;
            let idx = y.f_unsqueeze(1)?;
            let df = z.f_sub(&z.f_gather(1, &idx, false)?)?.f_scatter_value(1, &idx, FAR)?;
            let dims = g.size().get(2).copied().unwrap_or(0);
            let g_y = g.f_gather(1, &idx.f_unsqueeze(2)?.f_expand([-1, 1, dims].as_slice(), false)?, false)?;
            Ok((df, g.f_sub(&g_y)?))
        }
    }
}

/// AutoAttack's random start: `x + min(FAR, eps) * u / max|u| * 0.5`, `u`
/// uniform in [-1, 1] drawn in float32 on the CPU as torchattacks draws it,
/// clipped to [0, 1].
fn random_start(x: &Tensor, eps: f64) -> Result<Tensor> {
    let u = Tensor::f_rand(x.size().as_slice(), (Kind::Float, Device::Cpu))?
        .f_mul_scalar(2.0)?
        .f_sub_scalar(1.0)?
        .f_to_kind(x.kind())?
        .f_to(x.device())?;
    let m = u.f_abs()?.f_flatten(1, -1)?.f_amax([1i64].as_slice(), true)?;
    let step = u.f_mul_scalar(eps.min(FAR))?.f_div(&batch_view(&m, x.dim())?)?.f_mul_scalar(0.5)?;
    Ok(x.f_add(&step)?.f_clamp(0.0, 1.0)?)
}

/// One run from `x` (or, with `random`, from a random point on the surface
/// of the L-inf ball of radius `eps / 2`). Returns `(fooled, adv)`: whether an iterate within `eps` fooled
/// the model and, where one did, the first such iterate. A sample stops as
/// soon as it has one; the others follow exactly the trajectory of a
/// full-batch run.
pub(crate) fn single_run(model: &impl Model, x: &Tensor, y: &Tensor, t: Option<&Tensor>, p: &FabParams, random: bool) -> Result<(Tensor, Tensor)> {
    let m = x.size().first().copied().unwrap_or(0);
    let nd = x.dim();
    let mut found = x.f_detach_copy()?;
    let mut done = Tensor::f_zeros([m].as_slice(), (Kind::Bool, x.device()))?;
    let mut idx = Tensor::f_arange(m, (Kind::Int64, x.device()))?;
    let (mut im, mut ya, mut ta) = (x.shallow_clone(), y.shallow_clone(), t.map(|t| t.shallow_clone()));
    let mut x1 = if random { random_start(x, p.eps)? } else { x.shallow_clone() };
    for _ in 0..p.steps {
        let rows = im.size().first().copied().unwrap_or(0);
        if rows == 0 {
            break;
        }
        let (df, dgf) = tch::with_grad(|| boundaries(model, &x1, &ya, ta.as_ref()))?;
        let x0 = im.f_flatten(1, -1)?;
        let dist = df.f_abs()?.f_div(&dgf.f_abs()?.f_sum_dim_intlist([2i64].as_slice(), false, None)?.f_add_scalar(1e-12)?)?;
        let (_, ind) = dist.f_min_dim(1, false)?;
        let sel = ind.f_view([-1i64, 1, 1].as_slice())?.f_expand([rows, 1, x0.size().get(1).copied().unwrap_or(0)].as_slice(), false)?;
        let w = dgf.f_gather(1, &sel, false)?.f_squeeze_dim(1)?;
        let x1f = x1.f_flatten(1, -1)?;
        let b = gather_rows(&df, &ind)?.f_neg()?.f_add(&w.f_mul(&x1f)?.f_sum_dim_intlist([1i64].as_slice(), false, None)?)?;

        let d3 = projection_linf(&Tensor::f_cat(&[&x1f, &x0], 0)?, &Tensor::f_cat(&[&w, &w], 0)?, &Tensor::f_cat(&[&b, &b], 0)?)?;
        let d1 = d3.f_narrow(0, 0, rows)?.f_view_as(&x1)?;
        let d2 = d3.f_narrow(0, rows, rows)?.f_view_as(&x1)?;
        let a0 = d3.f_abs()?.f_amax([1i64].as_slice(), true)?.f_clamp_min(1e-8)?;
        let a1 = a0.f_narrow(0, 0, rows)?;
        let a2 = a0.f_narrow(0, rows, rows)?;
        // The step from the original point weighs more as the two
        // projections get close, at most alpha_max.
        let alpha = batch_view(&a1.f_div(&a1.f_add(&a2)?)?.f_clamp(0.0, p.alpha_max)?, nd)?;
        let from_x1 = x1.f_add(&d1.f_mul_scalar(p.eta)?)?.f_mul(&alpha.f_neg()?.f_add_scalar(1.0)?)?;
        let from_x0 = im.f_add(&d2.f_mul_scalar(p.eta)?)?.f_mul(&alpha)?;
        x1 = from_x1.f_add(&from_x0)?.f_clamp(0.0, 1.0)?;

        let pred = tch::no_grad(|| checked_logits(model, &x1).and_then(|z| predict(&z)))?;
        let is_adv = pred.f_ne_tensor(&ya)?;
        let norm = x1.f_sub(&im)?.f_abs()?.f_flatten(1, -1)?.f_amax([1i64].as_slice(), false)?;
        let hit = is_adv.f_logical_and(&norm.f_le(p.eps)?)?;
        let hits = hit.f_nonzero()?.f_squeeze_dim(1)?;
        if hits.numel() > 0 {
            let at = idx.f_index_select(0, &hits)?;
            found = found.f_index_copy(0, &at, &x1.f_index_select(0, &hits)?)?;
            done = done.f_index_fill(0, &at, 1)?;
        }
        // Fooled: step back towards the original point, to shrink the distance.
        let back = im.f_add(&x1.f_sub(&im)?.f_mul_scalar(p.beta)?)?;
        x1 = back.f_where_self(&batch_view(&is_adv, nd)?, &x1)?;
        if hits.numel() > 0 {
            let keep = hit.f_logical_not()?.f_nonzero()?.f_squeeze_dim(1)?;
            let sel = |v: &Tensor| v.f_index_select(0, &keep);
            (idx, im, ya, x1) = (sel(&idx)?, sel(&im)?, sel(&ya)?, sel(&x1)?);
            ta = ta.as_ref().map(sel).transpose()?;
        }
    }
    Ok((done, found))
}
