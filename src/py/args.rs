//! Parsing of string options into the kernels' enums (a `ValueError` that
//! lists the accepted values otherwise), and the parameter structs that more
//! than one binding builds from the same keywords.
use crate::eval::{ApgdLoss, SurfaceKind};
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
