fn main() -> std::process::ExitCode {
    homestead::cli::main()
}
