//! The driver APGD and FAB share: one run per target class (APGD-T, FAB-T:
//! the classes the model ranks 2nd to `n_target_classes + 1`-th on the clean
//! input; untargeted: one) and per restart, each on the points every earlier
//! run failed to fool. A fooled point is final: its adversarial input is kept
//! and it costs no more passes. Points the model misclassifies to begin with
//! are returned unchanged.
use crate::error::{LfrError, Result};
use crate::eval::dlr::ranked_class;
use crate::inputs::check_batch;
use crate::model::{check_label_range, checked_logits, num_classes, predict, CheckedModel, Model};
use tch::Tensor;

/// Who gets attacked and how often.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    pub targeted: bool,
    pub n_target_classes: i64,
    pub restarts: i64,
}

/// One run on the survivors `(inputs, labels, targets, restart index)`:
/// returns `(fooled, adversarial)` for those rows.
pub trait Run: FnMut(&Tensor, &Tensor, Option<&Tensor>, i64) -> Result<(Tensor, Tensor)> {}
impl<F: FnMut(&Tensor, &Tensor, Option<&Tensor>, i64) -> Result<(Tensor, Tensor)>> Run for F {}

/// Checks the batch, wraps `model` in the checked model (non-finite logits,
/// label range, Ctrl-C, a copy of each input) and runs `attack` with it on
/// the detached inputs; an empty batch comes back as it is.
pub fn checked<M: Model>(
    model: &M,
    x: &Tensor,
    y: &Tensor,
    attack: impl FnOnce(&CheckedModel<'_, M>, &Tensor, &Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    let labels = check_batch(x, y)?;
    let x = x.f_detach()?;
    if x.numel() == 0 {
        return Ok(x.f_detach_copy()?);
    }
    let model = &CheckedModel::new(model, Some(&labels))?;
    model.finish(attack(model, &x, &labels))
}

/// A targeted schedule needs `n_target_classes` classes besides the label.
pub fn check_targets(targeted: bool, n_target_classes: i64, classes: i64) -> Result<()> {
    if targeted && n_target_classes > classes - 1 {
        return Err(LfrError::InvalidArgument(format!(
            "n_target_classes must be at most classes - 1 = {}, got {n_target_classes}",
            classes - 1
        )));
    }
    Ok(())
}

/// The runs of `schedule` on `x`, each through `run`, on the points still robust.
pub fn on_survivors(model: &impl Model, x: &Tensor, labels: &Tensor, schedule: Schedule, mut run: impl Run) -> Result<Tensor> {
    let clean = tch::no_grad(|| checked_logits(model, x))?;
    check_label_range(labels, &clean)?;
    check_targets(schedule.targeted, schedule.n_target_classes, num_classes(&clean))?;
    let mut out = x.f_detach_copy()?;
    let mut robust = predict(&clean)?.f_eq_tensor(labels)?;
    let ranks: Vec<Option<i64>> =
        if schedule.targeted { (2..schedule.n_target_classes + 2).map(Some).collect() } else { vec![None] };
    for rank in ranks {
        let targets = rank.map(|r| ranked_class(&clean, r)).transpose()?;
        for restart in 0..schedule.restarts {
            let todo = robust.f_nonzero()?.f_squeeze_dim(1)?;
            if todo.numel() == 0 {
                return Ok(out);
            }
            let xs = x.f_index_select(0, &todo)?;
            let ys = labels.f_index_select(0, &todo)?;
            let ts = targets.as_ref().map(|t| t.f_index_select(0, &todo)).transpose()?;
            let (fooled, adv) = run(&xs, &ys, ts.as_ref(), restart)?;
            let rows = fooled.f_nonzero()?.f_squeeze_dim(1)?;
            if rows.numel() > 0 {
                let at = todo.f_index_select(0, &rows)?;
                out = out.f_index_copy(0, &at, &adv.f_index_select(0, &rows)?)?;
                robust = robust.f_index_fill(0, &at, 0)?;
            }
        }
    }
    Ok(out)
}
