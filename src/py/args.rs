//! Parsing of string options into the kernels' enums (a `ValueError` that
//! lists the accepted values otherwise), and the parameter structs that more
//! than one binding builds from the same keywords (an eager kernel and its
//! capture-safe body).
use crate::attacks::pgd::PgdParams;
use crate::eval::{ApgdLoss, ApgdParams, SurfaceKind};
use crate::loss::Loss;
use crate::norm::Norm;
use crate::regularizers::{Hvp, LfrParams, Start};
use pyo3::PyResult;

pub fn norm(name: &str) -> PyResult<Norm> {
    Ok(Norm::parse(name)?)
}

pub fn loss(name: &str) -> PyResult<Loss> {
    Ok(Loss::parse(name)?)
}

pub fn apgd_loss(name: &str) -> PyResult<ApgdLoss> {
    Ok(ApgdLoss::parse(name)?)
}

pub fn surface_kind(name: &str) -> PyResult<SurfaceKind> {
    Ok(SurfaceKind::parse(name)?)
}

pub fn hvp(name: &str, fd_step: f64) -> PyResult<Hvp> {
    Ok(Hvp::parse(name, fd_step)?)
}

/// The keywords shared by `lfr_perturb` and `local_flatness`.
#[allow(clippy::too_many_arguments)]
pub fn lfr_params(eps: f64, alpha: f64, steps: i64, random_start: bool, start: &str, start_std: f64, hvp: &str, fd_step: f64) -> PyResult<LfrParams> {
    Ok(LfrParams { eps, alpha, steps, start: Start::parse(random_start, start, start_std)?, hvp: self::hvp(hvp, fd_step)? })
}

/// The keywords shared by `pgd` and its capture-safe body.
#[allow(clippy::too_many_arguments)]
pub fn pgd_params(eps: f64, alpha: f64, steps: i64, random_start: bool, norm: &str, loss: &str, targeted: bool, restarts: i64, keep_best: bool) -> PyResult<PgdParams> {
    Ok(PgdParams { eps, alpha, steps, random_start, norm: self::norm(norm)?, loss: self::loss(loss)?, targeted, restarts, keep_best })
}

/// The keywords shared by `apgd` and its capture-safe body.
#[allow(clippy::too_many_arguments)]
pub fn apgd_params(eps: f64, steps: i64, norm: &str, loss: &str, targeted: bool, n_target_classes: i64, restarts: i64, rho: f64) -> PyResult<ApgdParams> {
    Ok(ApgdParams { eps, steps, norm: self::norm(norm)?, loss: apgd_loss(loss)?, targeted, n_target_classes, restarts, rho })
}
