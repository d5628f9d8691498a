use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        None | Some("serve") => runtime::main_with(auth::NAME, auth::load_settings, auth::start).await,
        Some("rotate-keys") => {
            runtime::command(auth::NAME, auth::load_settings, |s| async move {
                auth::rotate_keys(&s).await.map(|kid| format!("new signing key: {kid}"))
            })
            .await
        }
        Some("migrate") => {
            runtime::command(auth::NAME, auth::load_settings, |s| async move {
                auth::migrate(&s).await.map(|_| "migrations applied".to_owned())
            })
            .await
        }
        Some("announce-applications") => {
            runtime::command(auth::NAME, auth::load_settings, |s| async move {
                auth::announce_applications(&s).await.map(|(apps, consents)| {
                format!(
                    "{apps} applications (application.registered) and {consents} consents (consent.granted) announced"
                )
            })
            })
            .await
        }
        Some(other) => {
            eprintln!(
                "auth: unknown command `{other}`; commands: serve (default), migrate, rotate-keys, announce-applications"
            );
            ExitCode::from(2)
        }
    }
}
