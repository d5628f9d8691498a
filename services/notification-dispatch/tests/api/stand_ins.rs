//! The channels' stand-ins, run as child processes: a stand-in SMSC on the npm `smpp` package
//! (`tests/stand-ins/smsc.js`) and a real SMTP server (`aiosmtpd` from PyPI, writing a
//! maildir). `deploy/stand-ins.sh` installs both; a test that cannot start one fails.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use notification_dispatch::channels::smpp::SmppSettings;
use notification_dispatch::channels::smtp::{SmtpSettings, SmtpTls};
use notification_dispatch::channels::{ProviderEntry, ProviderKind};
use serde_json::Value;
use settings::Span;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn scratch(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(test_support::unique(what));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A `[[channels.<channel>]]` entry.
pub fn entry(name: &str, kind: ProviderKind) -> ProviderEntry {
    ProviderEntry {
        name: name.to_owned(),
        rate_limit: None,
        kind,
    }
}

/// Plain SMTP to a server on loopback.
pub fn plain_smtp(port: u16, from: &str) -> SmtpSettings {
    SmtpSettings {
        host: "127.0.0.1".into(),
        port,
        tls: SmtpTls::None,
        from: from.into(),
        username: None,
        password: None,
    }
}

pub const SYSTEM_ID: &str = "platform";
/// `[[channels.sms]]`'s own default.
const DEFAULT_WINDOW: usize = 10;
const PASSWORD: &str = "smscpass";

pub struct Smsc {
    pub port: u16,
    log: PathBuf,
    child: Child,
    /// The unanswered submit_sm it allows a session, which its provider entry keeps to.
    window: usize,
}

/// What a stand-in SMSC does besides answering at once.
#[derive(Clone, Copy)]
enum Behaviour {
    Healthy,
    Failing,
    /// Takes every submit_sm; its receipts say the phone was never reached.
    Undelivering,
    /// Answers each submit_sm after `latency`; throttles a session past `window` unanswered.
    Distant {
        latency: Duration,
        window: usize,
    },
}

impl Smsc {
    pub fn start() -> Self {
        Self::spawn(Behaviour::Healthy, 0, None)
    }

    /// One whose receipts all say UNDELIV.
    pub fn undelivering() -> Self {
        Self::spawn(Behaviour::Undelivering, 0, None)
    }

    /// One far away: each submit_sm answered after `latency`, ESME_RTHROTTLED past `window`.
    pub fn distant(latency: Duration, window: usize) -> Self {
        Self::spawn(Behaviour::Distant { latency, window }, 0, None)
    }

    /// One that answers every submit_sm with ESME_RSYSERR.
    pub fn failing() -> Self {
        Self::spawn(Behaviour::Failing, 0, None)
    }

    /// Stops this SMSC (every session drops) and starts another on its port and log.
    pub fn restart(mut self) -> Self {
        let _ = self.child.kill();
        let _ = self.child.wait();
        Self::spawn(Behaviour::Healthy, self.port, Some(self.log.clone()))
    }

    /// Stops it; the port stays free.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn spawn(behaviour: Behaviour, port: u16, log: Option<PathBuf>) -> Self {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/stand-ins");
        assert!(
            dir.join("node_modules/smpp").exists(),
            "the SMSC stand-in is not installed: run deploy/stand-ins.sh"
        );
        let log = log.unwrap_or_else(|| scratch("smsc").join("submits.jsonl"));
        let mut node = Command::new("node");
        let window = match behaviour {
            Behaviour::Healthy => DEFAULT_WINDOW,
            Behaviour::Failing => {
                node.env("SMSC_FAIL", "1");
                DEFAULT_WINDOW
            }
            Behaviour::Undelivering => {
                node.env("SMSC_DLR_STAT", "UNDELIV");
                DEFAULT_WINDOW
            }
            Behaviour::Distant { latency, window } => {
                node.env("SMSC_RESP_DELAY_MS", latency.as_millis().to_string())
                    .env("SMSC_WINDOW", window.to_string());
                window
            }
        };
        let mut child = node
            .arg(dir.join("smsc.js"))
            .env("SMSC_PORT", port.to_string())
            .env("SMSC_SYSTEM_ID", SYSTEM_ID)
            .env("SMSC_PASSWORD", PASSWORD)
            .env("SMSC_LOG", &log)
            // At once: the receipt may come before the send's outcome is committed.
            .env("SMSC_DLR_DELAY_MS", "0")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node runs the SMSC stand-in");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let port = loop {
            let line = lines.next().expect("the SMSC says where it listens").unwrap();
            if let Some(port) = line.strip_prefix("listening ") {
                break port.trim().parse().unwrap();
            }
        };
        // Its log of sessions goes on; nobody reads it, so it must not fill the pipe.
        std::thread::spawn(move || for _ in lines {});
        Self {
            port,
            log,
            child,
            window,
        }
    }

    /// A `[[channels.sms]]` entry for this SMSC.
    pub fn provider(&self, name: &str) -> ProviderEntry {
        let smpp = SmppSettings {
            url: format!("smpp://127.0.0.1:{}", self.port),
            system_id: SYSTEM_ID.into(),
            password: PASSWORD.into(),
            source_addr: "Clinic".into(),
            enquire_link: Span::from_secs(1),
            window: self.window,
        };
        entry(name, ProviderKind::Smpp(smpp))
    }

    /// Every submit_sm received, in order.
    pub fn submits(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    pub async fn wait_for(&self, n: usize) -> Vec<Value> {
        let started = Instant::now();
        loop {
            let got = self.submits();
            if got.len() >= n {
                return got;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{} submit_sm of {n}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for Smsc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct SmtpServer {
    pub port: u16,
    maildir: PathBuf,
    child: Child,
}

impl SmtpServer {
    pub fn start() -> Self {
        let python = root().join("target/stand-ins/venv/bin/python");
        assert!(python.exists(), "aiosmtpd is not installed: run deploy/stand-ins.sh");
        let port = test_support::free_port();
        // Python's maildir creates its folders only when the directory does not exist yet.
        let maildir = scratch("maildir").join("mail");
        let child = Command::new(python)
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("aiosmtpd starts");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(10), "aiosmtpd never listened");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { port, maildir, child }
    }

    /// A `[[channels.email]]` entry for this server.
    pub fn provider(&self, name: &str) -> ProviderEntry {
        entry(
            name,
            ProviderKind::Smtp(plain_smtp(self.port, "Clinic Dr. Nano <turnos@clinic.example>")),
        )
    }

    /// Every message received, as its raw text.
    pub fn messages(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.maildir.join("new")) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
            .collect()
    }

    pub async fn wait_for(&self, n: usize) -> Vec<String> {
        let started = Instant::now();
        loop {
            let got = self.messages();
            if got.len() >= n {
                return got;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{} messages of {n}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
