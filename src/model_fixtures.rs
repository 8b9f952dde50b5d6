//! Fixtures of the kernels' unit tests: linear models, whose input gradients
//! are known in closed form, and batches placed against the box or away from it.
use crate::error::Result;
use tch::{Device, Kind, Tensor};

/// A 2-class linear model on 4 features, `W_0 - W_1 = [2, -3, -1.5, 3]`.
pub fn two_classes() -> Tensor {
    Tensor::from_slice(&[1.0f64, -2.0, 0.5, 3.0, -1.0, 1.0, 2.0, 0.0]).reshape([2, 4])
}

/// [`two_classes`] with a third class.
pub fn three_classes() -> Tensor {
    Tensor::cat(&[two_classes(), Tensor::from_slice(&[0.5f64, 0.5, -1.0, 1.0]).reshape([1, 4])], 0)
}

/// Logits `x W^T` (one row of `w` per class).
pub fn linear(w: &Tensor) -> impl Fn(&Tensor) -> Result<Tensor> + '_ {
    move |x: &Tensor| Ok(x.f_matmul(&w.f_transpose(0, 1)?)?)
}

/// `(n, 4)` float64 inputs in [0.3, 0.7]: a step of 0.3 or less stays in the box.
pub fn interior(n: i64) -> Tensor {
    Tensor::rand([n, 4], (Kind::Double, Device::Cpu)) * 0.4 + 0.3
}

/// `(n, 4)` float64 inputs in [0, 1] with about a fifth of the pixels on
/// each face of the box.
pub fn on_box_faces(n: i64) -> Tensor {
    let x = Tensor::rand([n, 4], (Kind::Double, Device::Cpu));
    let x = x.where_self(&x.gt(0.2), &x.zeros_like());
    x.where_self(&x.lt(0.8), &x.ones_like())
}

/// The largest distance, per sample to the nearer of the two vertices
/// `+-eps sign(dir)` of the L-inf ball, of the offsets `d` (rows).
pub fn off_vertex(d: &Tensor, dir: &Tensor, eps: f64) -> f64 {
    let v = dir.sign() * eps;
    let dims = [1i64].as_slice();
    let plus = (d - &v).abs().amax(dims, false);
    let minus = (d + &v).abs().amax(dims, false);
    f64::try_from(plus.minimum(&minus).max()).unwrap()
}

/// Whether `adv` lies in `B_inf(x, eps)` and in [0, 1].
pub fn in_linf_threat_set(adv: &Tensor, x: &Tensor, eps: f64) -> bool {
    let far = f64::try_from((adv - x).abs().max()).unwrap();
    far <= eps + 1e-12 && f64::try_from(adv.min()).unwrap() >= 0.0 && f64::try_from(adv.max()).unwrap() <= 1.0
}
