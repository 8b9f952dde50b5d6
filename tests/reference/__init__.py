"""Plain-PyTorch oracles for the Rust kernels, one pure function per kernel (adv_lib style)."""
