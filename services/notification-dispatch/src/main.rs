use std::process::ExitCode;

use notification_dispatch as service;

#[tokio::main]
async fn main() -> ExitCode {
    let load = || settings::load(service::DEFAULTS, service::ENV_PREFIX);
    match std::env::args().nth(1).as_deref() {
        None | Some("serve") => runtime::main_with(service::NAME, load, service::start).await,
        Some("migrate") => {
            runtime::command(service::NAME, load, |s| async move {
                service::migrate(&s).await.map(|_| "migrations applied".to_owned())
            })
            .await
        }
        Some(other) => {
            eprintln!("notification-dispatch: unknown command `{other}`; commands: serve (default), migrate");
            ExitCode::from(2)
        }
    }
}
