// Link arguments for libtorch, as tch's python-extension example does: the
// extension is loaded after `import torch`, so the libraries are already mapped;
// the rpath lets `cargo test` binaries find them too.
//
// It also records the torch release the binary is compiled against
// (`LFR_RS_TORCH_VERSION`, read from `torch/version.py` beside the libtorch that
// torch-sys found): `python/lfr_rs/_torch_check.py` compares it with the torch
// being imported before the loader maps the extension.
use std::path::Path;

fn torch_version(lib_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(lib_dir.parent()?.join("version.py")).ok()?;
    let line = text.lines().find(|l| l.trim_start().starts_with("__version__"))?;
    let value = line.split_once('=')?.1.trim().trim_matches(|c| c == '\'' || c == '"');
    (!value.is_empty()).then(|| value.to_owned())
}

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let lib_dir = std::env::var_os("DEP_TCH_LIBTORCH_LIB");
    if os == "linux" || os == "windows" {
        if let Some(lib_path) = &lib_dir {
            println!("cargo:rustc-link-arg=-Wl,-rpath={}", lib_path.to_string_lossy());
        }
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch");
    }
    let lib_dir = lib_dir.as_deref().map(Path::new);
    if let Some(d) = lib_dir {
        println!("cargo:rerun-if-changed={}", d.with_file_name("version.py").display());
    }
    let version = lib_dir.and_then(torch_version).unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=LFR_RS_TORCH_VERSION={version}");
}
