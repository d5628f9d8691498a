// glibc's allocator took a fifth of the gateway's user time per proxied request (measured with
// `PROFILE=1 make bench-gateway`); the gateway allocates and frees many small buffers per
// request on two threads.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    runtime::main(gateway::NAME, gateway::DEFAULTS, gateway::ENV_PREFIX, gateway::start).await
}
