//! `xenstored`: see `xenstored --help`.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(xenstored::daemon::main(&args));
}
