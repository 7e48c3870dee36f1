fn main() -> std::process::ExitCode {
    batchboard::server::main()
}
