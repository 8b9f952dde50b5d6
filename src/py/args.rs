//! Parsing of string options into the kernels' enums (a `ValueError` that
//! lists the accepted values otherwise).
use crate::loss::Loss;
use crate::norm::Norm;
use pyo3::PyResult;

pub fn norm(name: &str) -> PyResult<Norm> {
    Ok(Norm::parse(name)?)
}

pub fn loss(name: &str) -> PyResult<Loss> {
    Ok(Loss::parse(name)?)
}
