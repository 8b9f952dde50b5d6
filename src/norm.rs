//! Norms used by the attacks and the penalty, computed per sample.
use crate::error::{invalid, Result};
use tch::Tensor;

/// Threat-model norm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Norm {
    Linf,
    L2,
}

impl Norm {
    pub const NAMES: [&'static str; 2] = ["linf", "l2"];

    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "linf" => Ok(Norm::Linf),
            "l2" => Ok(Norm::L2),
            _ => invalid(format!(
                "unknown norm {name:?}; expected one of {:?}",
                Self::NAMES
            )),
        }
    }
}

/// Reshapes a per-sample `(N,)` tensor to `(N, 1, ..., 1)` so it broadcasts
/// against a batch of `ndim` dimensions.
pub fn batch_view(per_sample: &Tensor, ndim: usize) -> Result<Tensor> {
    let mut shape = vec![-1i64];
    shape.resize(ndim.max(1), 1);
    Ok(per_sample.f_reshape(shape.as_slice())?)
}

/// Per-sample `||t_i||_p` over all non-batch dimensions, `p` in {1, 2, inf}.
pub fn lp_per_sample(t: &Tensor, p: f64) -> Result<Tensor> {
    let flat = t.f_flatten(1, -1)?;
    Ok(flat.f_norm_scalaropt_dim(p, [1i64].as_slice(), false)?)
}

/// Per-sample L2 norm.
pub fn l2_per_sample(t: &Tensor) -> Result<Tensor> {
    lp_per_sample(t, 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn parse_names() {
        assert_eq!(Norm::parse("linf").unwrap(), Norm::Linf);
        assert_eq!(Norm::parse("l2").unwrap(), Norm::L2);
        let err = Norm::parse("L3").unwrap_err().to_string();
        assert!(err.contains("linf") && err.contains("l2"), "{err}");
    }

    #[test]
    fn per_sample_norms() {
        let t = Tensor::from_slice(&[3.0f64, -4.0, 0.0, 1.0, 1.0, -1.0]).reshape([2, 1, 3]);
        let l2 = lp_per_sample(&t, 2.0).unwrap();
        let l1 = lp_per_sample(&t, 1.0).unwrap();
        let li = lp_per_sample(&t, f64::INFINITY).unwrap();
        assert_eq!(Vec::<f64>::try_from(&l2).unwrap(), vec![5.0, 3f64.sqrt()]);
        assert_eq!(Vec::<f64>::try_from(&l1).unwrap(), vec![7.0, 3.0]);
        assert_eq!(Vec::<f64>::try_from(&li).unwrap(), vec![4.0, 1.0]);
    }

    #[test]
    fn batch_view_broadcasts() {
        let v = Tensor::ones([4], (Kind::Float, Device::Cpu));
        assert_eq!(batch_view(&v, 4).unwrap().size(), vec![4, 1, 1, 1]);
        assert_eq!(batch_view(&v, 1).unwrap().size(), vec![4]);
    }
}
