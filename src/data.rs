//! IDX files (LeCun's MNIST format; also Fashion-MNIST), plain or gzipped.
//!
//! Layout: two zero bytes, a type code (0x08 = unsigned byte), the number of
//! dimensions, then each dimension as a big-endian u32, then the data.
use crate::error::{LfrError, Result};
use flate2::read::GzDecoder;
use std::io::Read;
use std::path::Path;
use tch::{Kind, Tensor};

fn format_error(path: &Path, msg: impl std::fmt::Display) -> LfrError {
    LfrError::InvalidArgument(format!("{}: not an IDX file of unsigned bytes: {msg}", path.display()))
}

/// Reads the whole file, gunzipping it when it starts with the gzip magic.
fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path)
        .map_err(|e| LfrError::InvalidArgument(format!("cannot read {}: {e}", path.display())))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| format_error(path, format!("bad gzip stream ({e})")))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Parses an IDX buffer of unsigned bytes into its shape and data.
pub fn parse_idx<'a>(bytes: &'a [u8], path: &Path) -> Result<(Vec<i64>, &'a [u8])> {
    let header = bytes.get(..4).ok_or_else(|| format_error(path, "shorter than its header"))?;
    if header.get(..3) != Some(&[0, 0, 0x08][..]) {
        return Err(format_error(path, format!("magic {header:02x?}, expected [00, 00, 08, ndim]")));
    }
    let ndim = usize::from(header.get(3).copied().unwrap_or(0));
    let body_start = 4 + 4 * ndim;
    let dims_raw = bytes.get(4..body_start).ok_or_else(|| format_error(path, "truncated dimensions"))?;
    let dims: Vec<i64> = dims_raw
        .chunks_exact(4)
        .filter_map(|c| <[u8; 4]>::try_from(c).ok())
        .map(|c| i64::from(u32::from_be_bytes(c)))
        .collect();
    let count = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d as usize));
    let data = count
        .and_then(|n| bytes.get(body_start..body_start + n))
        .ok_or_else(|| format_error(path, format!("data shorter than its dimensions {dims:?}")))?;
    Ok((dims, data))
}

/// Reads an IDX file as a `uint8` tensor of its own shape.
pub fn read_idx(path: &Path) -> Result<Tensor> {
    let bytes = read_bytes(path)?;
    let (dims, data) = parse_idx(&bytes, path)?;
    Ok(Tensor::f_from_slice(data)?.f_reshape(dims.as_slice())?)
}

/// Loads an image/label pair of IDX files: images as float32 `(N, 1, H, W)`
/// scaled to [0, 1], labels as int64 `(N,)`.
pub fn load_idx_pair(images: &Path, labels: &Path) -> Result<(Tensor, Tensor)> {
    let x = read_idx(images)?;
    let y = read_idx(labels)?;
    let (n, h, w) = match x.size().as_slice() {
        [n, h, w] => (*n, *h, *w),
        other => return Err(LfrError::Shape(format!("{}: expected (N, H, W) images, got {other:?}", images.display()))),
    };
    if y.size() != [n] {
        return Err(LfrError::Shape(format!(
            "{} holds {:?} labels for {n} images in {}",
            labels.display(),
            y.size(),
            images.display()
        )));
    }
    let x = x.f_to_kind(Kind::Float)?.f_div_scalar(255.0)?.f_reshape([n, 1, h, w].as_slice())?;
    Ok((x, y.f_to_kind(Kind::Int64)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_header_and_rejects_bad_files() {
        let p = Path::new("mem");
        let mut buf = vec![0u8, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3];
        buf.extend([1, 2, 3, 4, 5, 6]);
        let (dims, data) = parse_idx(&buf, p).unwrap();
        assert_eq!(dims, vec![2, 3]);
        assert_eq!(data, &[1, 2, 3, 4, 5, 6]);
        assert!(parse_idx(&buf[..15], p).is_err(), "truncated data");
        assert!(parse_idx(&[0, 0, 9, 1], p).is_err(), "wrong type code");
        assert!(parse_idx(&[0, 0], p).is_err(), "no header");
    }
}
