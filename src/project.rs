//! Projections onto the threat set `B_p(x, eps) ∩ [0, 1]^d` and the steepest-
//! ascent steps of each norm. The order (ball first, then box) is
//! torchattacks': `delta = clamp(adv - x, -eps, eps); adv = clamp(x + delta, 0, 1)`.
use crate::error::Result;
use crate::norm::{batch_view, l2_per_sample, Norm};
use tch::Tensor;

/// torchattacks' guard against dividing by a zero gradient norm (PGDL2).
pub const L2_DIV_EPS: f64 = 1e-10;

/// Projects `adv` onto `B_inf(x, eps) ∩ [0, 1]`.
pub fn project_linf(adv: &Tensor, x: &Tensor, eps: f64) -> Result<Tensor> {
    let delta = adv.f_sub(x)?.f_clamp(-eps, eps)?;
    Ok(x.f_add(&delta)?.f_clamp(0.0, 1.0)?)
}

/// Projects `adv` onto `B_2(x, eps)` (radial scaling), then onto `[0, 1]`.
pub fn project_l2(adv: &Tensor, x: &Tensor, eps: f64) -> Result<Tensor> {
    let delta = adv.f_sub(x)?;
    let norms = l2_per_sample(&delta)?;
    // eps / 0 = inf, and min(inf, 1) = 1 leaves a zero delta untouched.
    let factor = norms.f_reciprocal()?.f_mul_scalar(eps)?.f_clamp_max(1.0)?;
    let delta = delta.f_mul(&batch_view(&factor, adv.dim())?)?;
    Ok(x.f_add(&delta)?.f_clamp(0.0, 1.0)?)
}

impl Norm {
    /// Projects onto the norm's ball of radius `eps` around `x`, then `[0, 1]`.
    pub fn project(self, adv: &Tensor, x: &Tensor, eps: f64) -> Result<Tensor> {
        match self {
            Norm::Linf => project_linf(adv, x, eps),
            Norm::L2 => project_l2(adv, x, eps),
        }
    }

    /// Steepest-ascent direction for this norm: `sign(g)` for L-inf,
    /// `g / (||g||_2 + 1e-10)` for L2.
    pub fn direction(self, grad: &Tensor) -> Result<Tensor> {
        match self {
            Norm::Linf => Ok(grad.f_sign()?),
            Norm::L2 => {
                let norms = l2_per_sample(grad)?.f_add_scalar(L2_DIV_EPS)?;
                Ok(grad.f_div(&batch_view(&norms, grad.dim())?)?)
            }
        }
    }

    /// One projected ascent step: `Π(adv + alpha * direction(grad))`.
    pub fn step(self, adv: &Tensor, grad: &Tensor, x: &Tensor, alpha: f64, eps: f64) -> Result<Tensor> {
        let moved = adv.f_add(&self.direction(grad)?.f_mul_scalar(alpha)?)?;
        self.project(&moved, x, eps)
    }

    /// A random start inside the ball (then clipped to `[0, 1]`), drawn from
    /// torch's default generator in torchattacks' order: L-inf uniform in
    /// `[-eps, eps]`; L2 a Gaussian direction scaled to radius `eps * U(0, 1)`.
    pub fn random_start(self, x: &Tensor, eps: f64) -> Result<Tensor> {
        let delta = match self {
            Norm::Linf => x.f_empty_like()?.f_uniform_(-eps, eps)?,
            Norm::L2 => {
                let mut d = x.f_empty_like()?;
                let _ = d.f_normal_(0.0, 1.0)?;
                let n = l2_per_sample(&d)?;
                let r = n.f_zeros_like()?.f_uniform_(0.0, 1.0)?;
                let scale = r.f_div(&n)?.f_mul_scalar(eps)?;
                d.f_mul(&batch_view(&scale, x.dim())?)?
            }
        };
        Ok(x.f_add(&delta)?.f_clamp(0.0, 1.0)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn t(v: &[f64], shape: &[i64]) -> Tensor {
        Tensor::from_slice(v).reshape(shape)
    }

    #[test]
    fn linf_projection_ball_then_box() {
        let x = t(&[0.1, 0.5, 0.95], &[1, 3]);
        let adv = t(&[-0.5, 0.6, 1.5], &[1, 3]);
        let p = project_linf(&adv, &x, 0.2).unwrap();
        let got = Vec::<f64>::try_from(p.flatten(0, -1)).unwrap();
        assert_eq!(got, vec![0.0, 0.6, 1.0]);
    }

    #[test]
    fn l2_projection_scales_radially() {
        let x = Tensor::full([2, 2], 0.5, (Kind::Double, Device::Cpu));
        let adv = t(&[0.8, 0.9, 0.5, 0.6], &[2, 2]);
        let p = project_l2(&adv, &x, 0.25).unwrap();
        let d = l2_per_sample(&(p - &x)).unwrap();
        let d = Vec::<f64>::try_from(&d).unwrap();
        assert!((d[0] - 0.25).abs() < 1e-12, "outside radius gets scaled to it");
        assert!((d[1] - 0.1).abs() < 1e-12, "inside radius is untouched");
    }

    #[test]
    fn linf_step_moves_by_alpha_sign() {
        let x = Tensor::full([1, 3], 0.5, (Kind::Double, Device::Cpu));
        let g = t(&[2.0, -0.1, 0.0], &[1, 3]);
        let s = Norm::Linf.step(&x, &g, &x, 0.1, 0.3).unwrap();
        assert_eq!(Vec::<f64>::try_from(s.flatten(0, -1)).unwrap(), vec![0.6, 0.4, 0.5]);
    }

    #[test]
    fn l2_direction_unit_norm_and_zero_safe() {
        let g = t(&[3.0, 4.0, 0.0, 0.0], &[2, 2]);
        let d = Norm::L2.direction(&g).unwrap();
        let v = Vec::<f64>::try_from(d.flatten(0, -1)).unwrap();
        assert!((v[0] - 0.6).abs() < 1e-9 && (v[1] - 0.8).abs() < 1e-9);
        assert_eq!(&v[2..], &[0.0, 0.0]);
    }

    #[test]
    fn random_starts_stay_in_ball_and_box() {
        tch::manual_seed(0);
        let x = Tensor::rand([16, 1, 4, 4], (Kind::Double, Device::Cpu));
        for norm in [Norm::Linf, Norm::L2] {
            let a = norm.random_start(&x, 0.3).unwrap();
            let d = &a - &x;
            let n = match norm {
                Norm::Linf => d.abs().flatten(1, -1).amax([1i64].as_slice(), false),
                Norm::L2 => l2_per_sample(&d).unwrap(),
            };
            assert!(n.max().double_value(&[]) <= 0.3 + 1e-12);
            assert!(a.min().double_value(&[]) >= 0.0 && a.max().double_value(&[]) <= 1.0);
        }
    }
}
