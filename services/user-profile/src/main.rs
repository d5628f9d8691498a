use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let load = || settings::load(user_profile::DEFAULTS, user_profile::ENV_PREFIX);
    match std::env::args().nth(1).as_deref() {
        None | Some("serve") => runtime::main_with(user_profile::NAME, load, user_profile::start).await,
        Some("migrate") => {
            runtime::command(user_profile::NAME, load, |s| async move {
                user_profile::migrate(&s).await.map(|_| "migrations applied".to_owned())
            })
            .await
        }
        Some(other) => {
            eprintln!("user-profile: unknown command `{other}`; commands: serve (default), migrate");
            ExitCode::from(2)
        }
    }
}
