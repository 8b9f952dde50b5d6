//! The one place the kernels call autograd.
use crate::error::{LfrError, Result};
use tch::Tensor;

/// `d output / d input` for a scalar `output`. With `create_graph` the result
/// can itself be differentiated (double backprop).
///
/// libtorch dereferences a null gradient function when `output` does not
/// require grad, and returns an undefined gradient when `output` requires grad
/// only through parameters (the model detached its input); both cases are
/// caught here and explained with one message.
pub fn grad(output: &Tensor, input: &Tensor, create_graph: bool) -> Result<Tensor> {
    if !output.requires_grad() {
        return Err(not_differentiable());
    }
    let g = Tensor::f_run_backward(&[output], &[input], create_graph, create_graph)?
        .pop()
        .ok_or_else(|| LfrError::Shape("autograd returned no gradient".into()))?;
    if !g.defined() {
        return Err(not_differentiable());
    }
    Ok(g)
}

/// The input gradient of every column of `logits` `(N, C)`, stacked as
/// `(N, C, ...)`: `C` backward passes through one forward graph, column `k`
/// the gradient of `sum_n logits[n, k]` (per sample, as rows do not mix).
pub fn jacobian(logits: &Tensor, input: &Tensor) -> Result<Tensor> {
    let classes = logits.size().get(1).copied().unwrap_or(0);
    let mut rows = Vec::new();
    for k in 0..classes {
        let out = logits.f_select(1, k)?.f_sum(None)?;
        if !out.requires_grad() {
            return Err(not_differentiable());
        }
        let g = Tensor::f_run_backward(&[&out], &[input], k + 1 < classes, false)?
            .pop()
            .ok_or_else(|| LfrError::Shape("autograd returned no gradient".into()))?;
        if !g.defined() {
            return Err(not_differentiable());
        }
        rows.push(g);
    }
    Ok(Tensor::f_stack(&rows, 1)?)
}

fn not_differentiable() -> LfrError {
    LfrError::InvalidArgument(
        "the model's output does not depend differentiably on its input: the model cut the autograd \
         graph from its input. It must not detach its input or output (x.detach(), torch.no_grad() \
         inside forward) or build them from constants, and kernels cannot run under \
         torch.inference_mode()"
            .into(),
    )
}
