fn main() -> std::process::ExitCode {
    homestead::commands::main()
}
