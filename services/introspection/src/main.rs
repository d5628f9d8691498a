use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let load = || settings::load(introspection::DEFAULTS, introspection::ENV_PREFIX);
    match std::env::args().nth(1).as_deref() {
        None | Some("serve") => runtime::main_with(introspection::NAME, load, introspection::start).await,
        Some("migrate") => {
            runtime::command(introspection::NAME, load, |s| async move {
                introspection::migrate(&s)
                    .await
                    .map(|_| "migrations applied".to_owned())
            })
            .await
        }
        Some(other) => {
            eprintln!("introspection: unknown command `{other}`; commands: serve (default), migrate");
            ExitCode::from(2)
        }
    }
}
