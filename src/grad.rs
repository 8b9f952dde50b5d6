//! The one place the kernels call autograd.
use crate::error::{LfrError, Result};
use tch::Tensor;

/// `d output / d input` for a scalar `output`. With `create_graph` the result
/// can itself be differentiated (double backprop).
///
/// libtorch dereferences a null gradient function when `output` does not
/// require grad, so that case is caught here and explained.
pub fn grad(output: &Tensor, input: &Tensor, create_graph: bool) -> Result<Tensor> {
    if !output.requires_grad() {
        return Err(LfrError::InvalidArgument(
            "the model's output does not depend differentiably on its input: the model must not \
             detach its output or build it from constants, and kernels cannot run under \
             torch.inference_mode()"
                .into(),
        ));
    }
    Tensor::f_run_backward(&[output], &[input], create_graph, create_graph)?
        .pop()
        .ok_or_else(|| LfrError::Shape("autograd returned no gradient".into()))
}
