//! The operator under test as a child process: started with the flags and environment a test
//! chooses, then killed, terminated, paused and resumed at the moments it chooses, or crashed
//! by the operator itself at a named crash point (`REKOGNITION_OPERATOR_CRASH_AT`, built with
//! the operator's `chaos-hooks` feature).
//!
//! It lives here rather than in the operator's `tests/support` because the benchmarks and the
//! chaos campaign drive operator processes too, and all it needs of the operator is the path of
//! its binary (`env!("CARGO_BIN_EXE_rekognition-operator")` in the operator's own tests).

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rustix::process::{Pid, Signal, kill_process};
use tokio::process::{Child, Command};

use crate::BackgroundEmulator;

/// The environment variable that names the operator's crash point (see the operator's
/// `chaos` module): `<point>` or `<point>:<n>`, e.g. `after-create-collection:2`.
pub const CRASH_AT_ENV: &str = "REKOGNITION_OPERATOR_CRASH_AT";

/// How to start an operator process.
#[derive(Clone, Debug)]
pub struct OperatorOptions {
    /// The `rekognition-operator` binary.
    pub binary: PathBuf,
    /// The kubeconfig it uses (`KUBECONFIG`).
    pub kubeconfig: PathBuf,
    /// Its flags; unless given here, `--metrics-addr 127.0.0.1:0` is added and the port the
    /// operator bound is read from its log.
    pub args: Vec<String>,
    /// Its environment, on top of this process's (AWS endpoint and keys, crash point, …).
    pub env: Vec<(String, String)>,
    /// Where its stdout and stderr go (appended, so restarts share one log).
    pub log: PathBuf,
}

impl OperatorOptions {
    /// An operator using `binary` and `kubeconfig`, writing to `log`, with the AWS endpoint and
    /// keys of `emulator`, JSON logs and no other flag.
    pub fn new(
        binary: impl Into<PathBuf>,
        kubeconfig: impl Into<PathBuf>,
        emulator: &BackgroundEmulator,
        log: impl Into<PathBuf>,
    ) -> Self {
        Self {
            binary: binary.into(),
            kubeconfig: kubeconfig.into(),
            args: vec!["--log-format".into(), "json".into()],
            env: emulator
                .env()
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value))
                .collect(),
            log: log.into(),
        }
    }

    /// Adds flags.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Makes the process kill itself (SIGKILL) the `hit`-th time it reaches crash point
    /// `point` (e.g. `after-create-collection`).
    pub fn crash_at(self, point: &str, hit: u64) -> Self {
        self.env(CRASH_AT_ENV, format!("{point}:{hit}"))
    }
}

/// A running operator process. Dropping it kills it (SIGKILL) and reaps it.
pub struct OperatorProcess {
    child: Child,
    pid: u32,
    /// The `--metrics-addr` given, or None where the operator picked a port (see `bound_addr`).
    metrics_addr: Option<String>,
    log: PathBuf,
    /// Where this process's lines start in the log (restarts append to one log).
    log_start: u64,
}

impl OperatorProcess {
    /// Starts the operator. It is not ready yet: see [`OperatorProcess::wait_ready`].
    pub fn spawn(options: &OperatorOptions) -> Result<Self> {
        let mut args = options.args.clone();
        // The operator binds a port of the kernel's choosing and logs it. A port found free here
        // and handed over could be taken meanwhile (by any process's outgoing connection), and
        // the readiness probe would then ask whoever holds it.
        let metrics_addr = flag_value(&args, "--metrics-addr");
        if metrics_addr.is_none() {
            args.extend(["--metrics-addr".to_owned(), "127.0.0.1:0".to_owned()]);
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&options.log)
            .with_context(|| format!("opening {}", options.log.display()))?;
        let log_start = log.metadata()?.len();
        let mut command = Command::new(&options.binary);
        command
            .args(&args)
            .env("KUBECONFIG", &options.kubeconfig)
            .envs(options.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", options.binary.display()))?;
        let pid = child.id().context("the operator exited at once")?;
        Ok(Self {
            child,
            pid,
            metrics_addr,
            log: options.log.clone(),
            log_start,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Base URL of its `/livez`, `/readyz` and `/metrics`; empty until it has bound its port.
    pub fn health_url(&self) -> String {
        self.metrics_addr
            .clone()
            .or_else(|| bound_addr(&self.log, self.log_start))
            .map(|addr| format!("http://{addr}"))
            .unwrap_or_default()
    }

    /// Waits until `/readyz` answers 200 (its watch cache has synced); fails early, with the
    /// end of its log, if the process exits first.
    pub async fn wait_ready(&mut self, deadline: Duration) -> Result<()> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()?;
        let (given, log, log_start) = (self.metrics_addr.clone(), self.log.clone(), self.log_start);
        let child = std::sync::Mutex::new(&mut self.child);
        let waited = crate::wait_until("the operator is ready", deadline, || {
            let exited = child
                .lock()
                .map_err(|_| anyhow::anyhow!("poisoned"))
                .and_then(|mut c| Ok(c.try_wait()?));
            // Until the operator has logged its port, there is nobody to ask.
            let request = given
                .clone()
                .or_else(|| bound_addr(&log, log_start))
                .map(|addr| http.get(format!("http://{addr}/readyz")).send());
            async move {
                if let Some(status) = exited? {
                    bail!("the operator exited before it was ready ({status})");
                }
                Ok(match request {
                    Some(request) => request.await.is_ok_and(|r| r.status().is_success()),
                    None => false,
                })
            }
        })
        .await;
        waited.map_err(|error| anyhow::anyhow!("{error:#}\n{}", self.log_tail(30)))
    }

    /// `kill -9`: the process dies at once, wherever it is, and is reaped.
    pub async fn kill(&mut self) -> Result<ExitStatus> {
        self.signal(Signal::KILL)?;
        Ok(self.child.wait().await?)
    }

    /// SIGTERM: the operator shuts down gracefully (releasing its Lease); see
    /// [`OperatorProcess::wait_exit`].
    pub fn terminate(&self) -> Result<()> {
        self.signal(Signal::TERM)
    }

    /// SIGSTOP: the process freezes (a long GC pause, a frozen node) until
    /// [`OperatorProcess::resume`].
    pub fn pause(&self) -> Result<()> {
        self.signal(Signal::STOP)
    }

    /// SIGCONT: a paused process carries on.
    pub fn resume(&self) -> Result<()> {
        self.signal(Signal::CONT)
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: Signal) -> Result<()> {
        let pid = i32::try_from(self.pid)
            .ok()
            .and_then(Pid::from_raw)
            .context("not a process id")?;
        kill_process(pid, signal).with_context(|| format!("signalling process {}", self.pid))
    }

    /// Waits for the process to exit (by itself, a crash point or a signal sent earlier).
    pub async fn wait_exit(&mut self, deadline: Duration) -> Result<ExitStatus> {
        match tokio::time::timeout(deadline, self.child.wait()).await {
            Ok(status) => Ok(status?),
            Err(_) => bail!(
                "the operator did not exit within {deadline:?}\n{}",
                self.log_tail(30)
            ),
        }
    }

    /// Its exit status, if it has exited.
    pub fn try_exit(&mut self) -> Result<Option<ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// The whole log of this process (and of earlier ones that wrote to the same file).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `lines` lines of the log, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let tail = log_tail(&self.log(), lines);
        format!("--- last lines of {} ---\n{tail}", self.log.display())
    }

    /// The path of the log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }
}

/// The address an operator logged, from `start` in its log, that it serves /readyz on (the line
/// `serving /livez, /readyz and /metrics`, field `bound`, in JSON or text logs).
fn bound_addr(log: &Path, start: u64) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(log).ok()?;
    file.seek(SeekFrom::Start(start)).ok()?;
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    text.lines()
        .filter(|line| line.contains("serving /livez"))
        .find_map(bound_field)
}

/// `127.0.0.1:41234` from `… "bound":"127.0.0.1:41234" …` or `… bound=127.0.0.1:41234 …`.
fn bound_field(line: &str) -> Option<String> {
    let after = &line[line.find("bound")? + "bound".len()..];
    let addr: String = after
        .trim_start_matches(['"', ':', '='])
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
        .collect();
    addr.contains(':').then_some(addr)
}

/// The last `lines` lines of an operator's log, less the frames of a backtrace: an operator that
/// stops on an error prints the error, then a backtrace of thirty-odd frames, and the error is
/// what a failed run needs shown.
pub fn log_tail(log: &str, lines: usize) -> String {
    let kept: Vec<&str> = log.lines().filter(|line| !backtrace_frame(line)).collect();
    kept[kept.len().saturating_sub(lines)..].join("\n")
}

/// A line of a Rust backtrace: `  12: function` or `             at path:line:column`.
fn backtrace_frame(line: &str) -> bool {
    let trimmed = line.trim_start();
    trimmed.starts_with("at ") && line.len() > trimmed.len()
        || trimmed
            .split_once(": ")
            .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether `status` is the exit of a process killed by SIGKILL (`kill -9`, or a crash point).
pub fn killed_by_sigkill(status: &ExitStatus) -> bool {
    status.signal() == Some(Signal::KILL.as_raw())
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        // SIGKILL also ends a stopped process; `kill_on_drop` reaps it.
        let _ = self.signal(Signal::KILL);
    }
}

fn flag_value(args: &[String], flag: &str) -> Option<String> {
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == flag {
            return iter.next().cloned();
        }
        if let Some(value) = arg.strip_prefix(flag).and_then(|v| v.strip_prefix('=')) {
            return Some(value.to_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|a| (*a).to_owned()).collect()
    }

    #[test]
    fn the_bound_address_is_read_from_json_and_text_logs() {
        let json = r#"{"timestamp":"t","level":"INFO","fields":{"message":"serving /livez, /readyz and /metrics","bound":"127.0.0.1:41234"}}"#;
        assert_eq!(bound_field(json).as_deref(), Some("127.0.0.1:41234"));
        let text = "2026-12-07T04:14:53Z  INFO rekognition_operator::runtime::operator: serving /livez, /readyz and /metrics bound=127.0.0.1:38591";
        assert_eq!(bound_field(text).as_deref(), Some("127.0.0.1:38591"));
        assert_eq!(bound_field("serving /livez, no address"), None);
    }

    #[test]
    fn a_log_tail_leaves_out_backtrace_frames() {
        let log = "{\"msg\":\"ready\"}\nError: listening on 127.0.0.1:1\n\nCaused by:\n    Address in use\n\nStack backtrace:\n   0: anyhow::error::new\n             at /x/error.rs:1:2\n  12: main\n";
        assert_eq!(
            log_tail(log, 4),
            "Caused by:\n    Address in use\n\nStack backtrace:"
        );
        assert!(log_tail(log, 10).contains("Error: listening on 127.0.0.1:1"));
    }

    #[test]
    fn a_metrics_address_given_as_a_flag_is_found_in_either_form() {
        assert_eq!(
            flag_value(
                &args(&["--namespace", "a", "--metrics-addr", "127.0.0.1:1"]),
                "--metrics-addr"
            ),
            Some("127.0.0.1:1".to_owned())
        );
        assert_eq!(
            flag_value(&args(&["--metrics-addr=127.0.0.1:2"]), "--metrics-addr"),
            Some("127.0.0.1:2".to_owned())
        );
        assert_eq!(
            flag_value(&args(&["--namespace", "a"]), "--metrics-addr"),
            None
        );
    }

    #[test]
    fn a_crash_point_is_passed_with_its_hit_count() {
        let options = OperatorOptions {
            binary: "op".into(),
            kubeconfig: "kc".into(),
            args: Vec::new(),
            env: Vec::new(),
            log: "log".into(),
        }
        .crash_at("after-delete-collection", 2);
        assert_eq!(
            options.env,
            [(
                CRASH_AT_ENV.to_owned(),
                "after-delete-collection:2".to_owned()
            )]
        );
    }
}
