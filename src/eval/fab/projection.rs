//! The L-inf projection onto a hyperplane intersected with the box, the
//! subproblem of FAB (Croce & Hein, 2020, arXiv:1907.02044): per row `i`,
//!
//! `d_i = argmin ||d||_inf  s.t.  <w_i, t_i + d> = b_i,  t_i + d in [0, 1]^D`,
//!
//! or, where the hyperplane does not meet the box, the corner of the box that
//! moves `<w_i, .>` furthest towards `b_i`. With `w` flipped so that `t` lies
//! on the positive side, the solution is `d_j = max(-lambda, -t_j)` where
//! `w_j > 0` and `min(lambda, 1 - t_j)` where `w_j < 0` (0 where `w_j = 0`),
//! for the smallest `lambda >= 0` meeting the constraint; `lambda` is found by
//! a binary search over the sorted breakpoints `p_j` at which a coordinate
//! reaches its face. Arithmetic, op for op, of `projection_linf` in AutoAttack's
//! `fab_projections.py` (torchattacks 3.5.1's `fab.py`).
use crate::error::Result;
use tch::{Kind, Tensor};

/// `(R, D)` points `t`, normals `w`, offsets `b` `(R,)`; returns the `(R, D)`
/// steps `d`. Rows are independent.
pub(crate) fn projection_linf(t: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    let dims = t.size().get(1).copied().unwrap_or(0);
    let kind = t.kind();
    let row_sum = |v: &Tensor| v.f_sum_dim_intlist([1i64].as_slice(), false, None);
    let last = |v: &Tensor| v.f_select(1, -1);

    let side = row_sum(&w.f_mul(t)?)?.f_sub(b)?.f_ge(0.0)?;
    let sign = side.f_to_kind(Kind::Int64)?.f_mul_scalar(2)?.f_sub_scalar(1)?;
    let w = w.f_mul(&sign.f_unsqueeze(1)?)?.f_to_kind(kind)?;
    let b = b.f_mul(&sign)?.f_to_kind(kind)?;

    let a = w.f_lt(0.0)?.f_to_kind(kind)?;
    let active = w.f_ne(0.0)?.f_to_kind(kind)?;
    let d = a.f_sub(t)?.f_mul(&active)?;
    // Breakpoint of coordinate j: the lambda at which it reaches its face.
    let p = a.f_sub(&t.f_mul(&a.f_mul_scalar(2)?.f_sub_scalar(1)?)?)?;
    let indp = p.f_argsort(1, false)?;

    let b = b.f_sub(&row_sum(&w.f_mul(t)?)?)?;
    let b0 = row_sum(&w.f_mul(&d)?)?;

    let indp2 = indp.f_flip([1i64].as_slice())?;
    let ws = w.f_gather(1, &indp2, false)?;
    let bs2 = ws.f_neg()?.f_mul(&d.f_gather(1, &indp2, false)?)?;
    let s = ws.f_abs()?.f_cumsum(1, None::<Kind>)?;
    let sb = bs2.f_cumsum(1, None::<Kind>)?.f_add(&b0.f_unsqueeze(1)?)?;

    let p_min = p.f_gather(1, &indp.f_narrow(1, 0, 1)?, false)?.f_squeeze_dim(1)?;
    let b2 = last(&sb)?.f_sub(&last(&s)?.f_mul(&p_min)?)?;
    let c_l = b.f_sub(&b2)?.f_gt(0.0)?;
    let c2 = b.f_sub(&b0)?.f_gt(0.0)?.f_logical_and(&c_l.f_logical_not()?)?;

    // Binary search on every row; only the rows of `c2` are kept below.
    let rows = t.size().first().copied().unwrap_or(0);
    let mut lb = Tensor::f_zeros([rows].as_slice(), (Kind::Int64, t.device()))?;
    let mut ub = Tensor::f_full([rows].as_slice(), dims - 1, (Kind::Int64, t.device()))?;
    let nitermax = (dims as f64).log2().ceil() as i64;
    for _ in 0..nitermax {
        let mid = lb.f_add(&ub)?.f_floor_divide_scalar(2)?;
        let mid2 = mid.f_unsqueeze(1)?;
        let indcurr = indp.f_gather(1, &mid2.f_neg()?.f_add_scalar(dims - 1)?, false)?;
        let b2 = sb
            .f_gather(1, &mid2, false)?
            .f_sub(&s.f_gather(1, &mid2, false)?.f_mul(&p.f_gather(1, &indcurr, false)?)?)?
            .f_squeeze_dim(1)?;
        let c = b.f_sub(&b2)?.f_gt(0.0)?;
        lb = mid.f_where_self(&c, &lb)?;
        ub = ub.f_where_self(&c, &mid)?;
    }

    let lmbd_l = b.f_sub(&last(&sb)?)?.f_div(&last(&s)?.f_neg()?)?.f_clamp_min(0.0)?.f_unsqueeze(1)?;
    let d_l = a.f_mul_scalar(2)?.f_sub_scalar(1)?.f_mul(&lmbd_l)?;
    let lb2 = lb.f_unsqueeze(1)?;
    let sb_lb = sb.f_gather(1, &lb2, false)?.f_squeeze_dim(1)?;
    let s_lb = s.f_gather(1, &lb2, false)?.f_squeeze_dim(1)?;
    let lmbd = b.f_sub(&sb_lb)?.f_div(&s_lb.f_neg()?)?.f_clamp_min(0.0)?.f_unsqueeze(1)?;
    let up = lmbd.f_minimum(&d)?.f_mul(&a)?;
    let down = lmbd.f_neg()?.f_maximum(&d)?.f_mul(&a.f_neg()?.f_add_scalar(1.0)?)?;
    let d_2 = up.f_add(&down)?;

    let d = d_2.f_where_self(&c2.f_unsqueeze(1)?, &d)?;
    let d = d_l.f_where_self(&c_l.f_unsqueeze(1)?, &d)?;
    Ok(d.f_mul(&active)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(v: &[f64], d: i64) -> Tensor {
        Tensor::from_slice(v).reshape([-1, d])
    }

    #[test]
    fn known_projections() {
        // Each row: point, hyperplane (w, b), the exact L-inf projection step.
        let t = rows(&[0.5, 0.5, 0.3, 0.05, 0.5, 0.3, 0.5, 0.5, 0.3, 0.5, 0.5, 0.3, 0.2, 0.9, 0.4], 3);
        let w = rows(&[1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 2.0, -1.0, 0.5], 3);
        let b = Tensor::from_slice(&[0.8f64, 0.4, 1.2, -1.0, 1.0]);
        // Row 4: <w, t> = -0.3 must rise by 1.3 = lambda (2 + 1 + 0.5), every coordinate inside its face.
        let lam = 1.3 / 3.5;
        let want = rows(
            &[
                -0.1, -0.1, 0.0, // interior: both coordinates move by lambda = 0.1
                -0.05, -0.1, 0.0, // x_0 reaches its face 0 first, x_1 takes the rest
                0.1, 0.1, 0.0, // the point lies below the hyperplane: w is flipped
                -0.5, -0.5, 0.0, // unreachable in the box: the nearest corner
                lam, -lam, lam,
            ],
            3,
        );
        let d = projection_linf(&t, &w, &b).unwrap();
        assert!((&d - &want).abs().max().double_value(&[]) < 1e-12, "{d}");
        // the projected points lie on their hyperplanes where reachable
        let on = ((&t + &d) * &w).sum_dim_intlist([1i64].as_slice(), false, None) - &b;
        let on = Vec::<f64>::try_from(on).unwrap();
        for (i, v) in on.iter().enumerate() {
            if i != 3 {
                assert!(v.abs() < 1e-12, "row {i}: {v}");
            }
        }
    }
}
