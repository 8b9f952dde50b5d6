//! Per-sample attack objectives. Each is the quantity the attacker *ascends*.
use crate::error::{invalid, Result};
use tch::{Kind, Reduction, Tensor};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// Cross-entropy of the logits against the labels.
    CrossEntropy,
    /// Carlini-Wagner margin on logits: `max_{j != y} z_j - z_y`.
    Margin,
}

impl Loss {
    pub const NAMES: [&'static str; 2] = ["ce", "margin"];

    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "ce" => Ok(Loss::CrossEntropy),
            "margin" => Ok(Loss::Margin),
            _ => invalid(format!(
                "unknown loss {name:?}; expected one of {:?}",
                Self::NAMES
            )),
        }
    }

    /// Per-sample objective `(N,)` to maximise. Untargeted attacks ascend the
    /// loss of the true label; targeted ones (`labels` = targets) descend it,
    /// as torchattacks' `-loss(outputs, target_labels)`.
    pub fn objective(self, logits: &Tensor, labels: &Tensor, targeted: bool) -> Result<Tensor> {
        let value = match self {
            Loss::CrossEntropy => {
                logits.f_cross_entropy_loss::<Tensor>(labels, None, Reduction::None, -100, 0.0)?
            }
            Loss::Margin => {
                let idx = labels.f_unsqueeze(1)?;
                let true_logit = logits.f_gather(1, &idx, false)?.f_squeeze_dim(1)?;
                let mask = logits.f_zeros_like()?.f_scatter_value(1, &idx, 1.0)?.f_to_kind(Kind::Bool)?;
                let others = logits.f_masked_fill(&mask, f64::NEG_INFINITY)?.f_amax([1i64].as_slice(), false)?;
                others.f_sub(&true_logit)?
            }
        };
        if targeted {
            Ok(value.f_neg()?)
        } else {
            Ok(value)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margin_and_ce_values() {
        let logits = Tensor::from_slice(&[2.0f64, 0.5, -1.0, 0.0, 3.0, 1.0]).reshape([2, 3]);
        let labels = Tensor::from_slice(&[0i64, 2]);
        let m = Loss::Margin.objective(&logits, &labels, false).unwrap();
        assert_eq!(Vec::<f64>::try_from(&m).unwrap(), vec![-1.5, 2.0]);
        let t = Loss::Margin.objective(&logits, &labels, true).unwrap();
        assert_eq!(Vec::<f64>::try_from(&t).unwrap(), vec![1.5, -2.0]);
        let ce = Loss::CrossEntropy.objective(&logits, &labels, false).unwrap();
        let lse0 = (2f64.exp() + 0.5f64.exp() + (-1f64).exp()).ln();
        let got = Vec::<f64>::try_from(&ce).unwrap();
        assert!((got[0] - (lse0 - 2.0)).abs() < 1e-12);
        assert!(Loss::parse("cw").unwrap_err().to_string().contains("margin"));
    }
}
