fn main() -> std::process::ExitCode {
    qwen_gateway::cli::main()
}
