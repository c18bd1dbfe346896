fn main() -> std::process::ExitCode {
    tunnelgate::cli::main()
}
