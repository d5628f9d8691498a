use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let load = || settings::load(portal::DEFAULTS, portal::ENV_PREFIX);
    match std::env::args().nth(1).as_deref() {
        None | Some("serve") => runtime::main_with(portal::NAME, load, portal::start).await,
        Some("migrate") => {
            runtime::command(portal::NAME, load, |s| async move {
                portal::migrate(&s).await.map(|_| "migrations applied".to_owned())
            })
            .await
        }
        Some(other) => {
            eprintln!("portal: unknown command `{other}`; commands: serve (default), migrate");
            ExitCode::from(2)
        }
    }
}
