#[tokio::main]
async fn main() -> std::process::ExitCode {
    runtime::main(gateway::NAME, gateway::DEFAULTS, gateway::ENV_PREFIX, gateway::start).await
}
