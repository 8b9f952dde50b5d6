//! The Difference of Logits Ratio losses of Croce & Hein (2020,
//! arXiv:2003.01690, eq. 5 and 6), per sample, with `z` sorted ascending
//! (`z_pi1` the largest logit). Both are invariant to shifting and scaling the
//! logits, which is why they see through saturated softmax outputs.
use crate::error::{LfrError, Result};
use crate::model::num_classes;
use tch::{Kind, Tensor};

/// AutoAttack's guard against a zero denominator.
const DLR_EPS: f64 = 1e-12;

fn need_classes(logits: &Tensor, k: i64, what: &str) -> Result<()> {
    let c = num_classes(logits);
    if c < k {
        return Err(LfrError::InvalidArgument(format!(
            "{what} needs a model with at least {k} classes, got {c}"
        )));
    }
    Ok(())
}

fn true_logit(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    Ok(logits.f_gather(1, &labels.f_unsqueeze(1)?, false)?.f_squeeze_dim(1)?)
}

/// `-(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3)`, eq. (5); needs 3 classes.
pub fn dlr(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    need_classes(logits, 3, "the DLR loss")?;
    let (sorted, order) = logits.f_sort(1, false)?;
    let top = sorted.f_select(1, -1)?;
    let second = sorted.f_select(1, -2)?;
    let third = sorted.f_select(1, -3)?;
    let top_is_true = order.f_select(1, -1)?.f_eq_tensor(labels)?.f_to_kind(logits.kind())?;
    // torchattacks' arithmetic, term by term, so float32 results agree.
    let other = second.f_mul(&top_is_true)?;
    let rest = top.f_mul(&top_is_true.f_neg()?.f_add_scalar(1.0)?)?;
    let num = true_logit(logits, labels)?.f_sub(&other)?.f_sub(&rest)?;
    let den = top.f_sub(&third)?.f_add_scalar(DLR_EPS)?;
    Ok(num.f_neg()?.f_div(&den)?)
}

/// `-(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2)`, eq. (6); needs 4 classes.
pub fn dlr_targeted(logits: &Tensor, labels: &Tensor, targets: &Tensor) -> Result<Tensor> {
    need_classes(logits, 4, "the targeted DLR loss")?;
    let (sorted, _) = logits.f_sort(1, false)?;
    let top = sorted.f_select(1, -1)?;
    let third = sorted.f_select(1, -3)?;
    let fourth = sorted.f_select(1, -4)?;
    let num = true_logit(logits, labels)?.f_sub(&true_logit(logits, targets)?)?;
    let den = top
        .f_sub(&third.f_mul_scalar(0.5)?)?
        .f_sub(&fourth.f_mul_scalar(0.5)?)?
        .f_add_scalar(DLR_EPS)?;
    Ok(num.f_neg()?.f_div(&den)?)
}

/// The class ranked `rank` from the top of each row (`rank` 1: the argmax).
pub fn ranked_class(logits: &Tensor, rank: i64) -> Result<Tensor> {
    let (_, order) = logits.f_sort(1, false)?;
    Ok(order.f_select(1, -rank)?.f_to_kind(Kind::Int64)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dlr_values() {
        let z = Tensor::from_slice(&[4.0f64, 1.0, 2.0, 0.0, 0.0, 3.0, 1.0, -1.0]).reshape([2, 4]);
        let y = Tensor::from_slice(&[0i64, 2]);
        let v = Vec::<f64>::try_from(dlr(&z, &y).unwrap()).unwrap();
        // row 0: y is the top class: -(4 - 2) / (4 - 1); row 1: -(1 - 3) / (3 - 0)
        assert!((v[0] + 2.0 / 3.0).abs() < 1e-9 && (v[1] - 2.0 / 3.0).abs() < 1e-9, "{v:?}");
        let t = Tensor::from_slice(&[1i64, 1]);
        let v = Vec::<f64>::try_from(dlr_targeted(&z, &y, &t).unwrap()).unwrap();
        assert!((v[0] + 3.0 / (4.0 - 0.5)).abs() < 1e-9, "{v:?}");
        assert_eq!(Vec::<i64>::try_from(ranked_class(&z, 2).unwrap()).unwrap(), vec![2, 2]);
        let small = Tensor::zeros([1, 3], (Kind::Double, tch::Device::Cpu));
        assert!(dlr_targeted(&small, &Tensor::from_slice(&[0i64]), &Tensor::from_slice(&[1i64])).is_err());
    }
}
