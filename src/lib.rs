//! lfr-rs: adversarial attacks and Local Flatness Regularization kernels on
//! libtorch, with a thin PyO3 binding (`src/py/`).
pub mod alloc;
pub mod attacks;
pub mod data;
pub mod error;
pub mod eval;
pub mod grad;
pub mod inputs;
pub mod loss;
pub mod model;
pub mod norm;
pub mod project;
pub mod regularizers;

#[cfg(feature = "python")]
pub mod py;

/// The torch release this binary is compiled against (see build.rs), in the
/// form `python/lfr_rs/_torch_check.py` searches the file for before loading it.
#[cfg(feature = "python")]
const BUILT_AGAINST_TORCH: &str = concat!("lfr-rs built against torch ", env!("LFR_RS_TORCH_VERSION"), ";");

#[cfg(feature = "python")]
#[pyo3::pymodule]
fn _native(m: &pyo3::Bound<'_, pyo3::types::PyModule>) -> pyo3::PyResult<()> {
    // torch must be initialised before any tensor is wrapped (tch-rs #723).
    m.py().import("torch")?;
    // black_box keeps the whole marker text in the binary.
    let marker = std::hint::black_box(BUILT_AGAINST_TORCH);
    let version = marker.trim_start_matches("lfr-rs built against torch ").trim_end_matches(';');
    pyo3::types::PyModuleMethods::add(m, "__torch_version__", version)?;
    py::register(m)
}
