//! The `jujusim` binary: the hook tools (by argv[0]) and the driver CLI; see the library.

fn main() {
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    std::process::exit(jujusim::run(&args));
}
