//! The example suite: one test per case file under `cases/`.

fn main() -> std::process::ExitCode {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("cases");
    fitcheck::harness::run(&dir, libtest_mimic::Arguments::from_args())
}
