fn main() -> std::process::ExitCode {
    tunnelgate::main()
}
