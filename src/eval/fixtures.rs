//! Test fixtures the evaluation kernels share.
use crate::error::Result;
use tch::Tensor;

/// A three-class linear model on two inputs, `logits = [x_0 - x_1, 0, x_1 - x_0]`
/// (class 0 until `x_1 > x_0`, then class 2), and two points of class 0: one
/// 0.05 (L-inf) from the boundary, one 0.4 from it.
pub(crate) fn linear_model_and_points() -> (impl Fn(&Tensor) -> Result<Tensor>, Tensor, Tensor) {
    let w = Tensor::from_slice(&[1.0f64, -1.0, 0.0, 0.0, -1.0, 1.0]).reshape([3, 2]);
    let model = move |x: &Tensor| -> Result<Tensor> { Ok(x.f_matmul(&w.f_transpose(0, 1)?)?) };
    let x = Tensor::from_slice(&[0.55f64, 0.45, 0.9, 0.1]).reshape([2, 2]);
    let y = Tensor::from_slice(&[0i64, 0]);
    (model, x, y)
}
