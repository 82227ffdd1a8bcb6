fn main() {
    std::process::exit(warmstart::cli::main());
}
