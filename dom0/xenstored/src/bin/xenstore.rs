//! `xenstore <command>` / `xenstore-<command>`: see `xenstore help`.

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    std::process::exit(xenstored::cli::main(&argv));
}
