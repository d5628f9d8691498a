use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let load = || settings::load(blog::DEFAULTS, blog::ENV_PREFIX);
    match std::env::args().nth(1).as_deref() {
        None | Some("serve") => runtime::main_with(blog::NAME, load, blog::start).await,
        Some("migrate") => {
            runtime::command(blog::NAME, load, |s| async move {
                blog::migrate(&s).await.map(|_| "migrations applied".to_owned())
            })
            .await
        }
        Some(other) => {
            eprintln!("blog: unknown command `{other}`; commands: serve (default), migrate");
            ExitCode::from(2)
        }
    }
}
