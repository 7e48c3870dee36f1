//! Any bytes, cut into chunks anywhere: the validator must answer (never
//! panic, never loop), with the same report however the file is cut, and
//! with line numbers inside the file.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The core crate, compiled as it is into the server and the browser.
use batchboard_core::validate::{validate_bytes, Validator};

fuzz_target!(|input: &[u8]| {
    let Some((&cut, data)) = input.split_first() else {
        return;
    };
    let whole = validate_bytes(data, None);
    let mut v = Validator::new(None);
    for chunk in data.chunks(usize::from(cut).max(1)) {
        v.chunk(chunk);
    }
    let chunked = v.finish();
    assert_eq!(whole, chunked);
    let lines = data.split(|b| *b == b'\n').count() as u64;
    assert!(whole.errors.len() as u64 <= whole.error_count);
    for e in &whole.errors {
        if let Some(l) = e.line {
            assert!(l >= 1 && l <= lines);
        }
    }
    assert_eq!(whole.bytes, data.len() as u64);
});
