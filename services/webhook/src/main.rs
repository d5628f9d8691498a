use std::process::ExitCode;

// glibc's allocator took a sixth of the process's time at peak deliveries (`perf record` of
// `cargo bench -p webhook`): every attempt allocates its request, headers and answer.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let load = || settings::load(webhook::DEFAULTS, webhook::ENV_PREFIX);
    match std::env::args().nth(1).as_deref() {
        None | Some("serve") => runtime::main_with(webhook::NAME, load, webhook::start).await,
        Some("migrate") => {
            runtime::command(webhook::NAME, load, |s| async move {
                webhook::migrate(&s).await.map(|_| "migrations applied".to_owned())
            })
            .await
        }
        Some(other) => {
            eprintln!("webhook: unknown command `{other}`; commands: serve (default), migrate");
            ExitCode::from(2)
        }
    }
}
