//! `gen-personas OUTDIR`: writes `OUTDIR/testpki/…` and `OUTDIR/personas/<name>/…` (see
//! `PERSONAS.md`). Deterministic; run with `--release` if debug key generation is slow.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(out) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: gen-personas OUTDIR   (e.g. hw-fixtures)");
        return ExitCode::from(2);
    };
    let result = jpki_vcard::testpki::generate()
        .and_then(|files| jpki_vcard::testpki::write_files(&out, &files).map(|()| files.len()));
    match result {
        Ok(n) => {
            println!("wrote {n} files under {}", out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            let mut msg = e.to_string();
            let mut cause = std::error::Error::source(&e);
            while let Some(c) = cause {
                msg.push_str(&format!(": {c}"));
                cause = c.source();
            }
            eprintln!("gen-personas: {msg}");
            ExitCode::FAILURE
        }
    }
}
