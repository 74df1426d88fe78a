//! `hearth-probe`: the test bootstrap that runs *inside* a Hearth sandbox and reports, from the
//! inside, what the sandbox lets it see and do (like youki's `runtimetest` or bubblewrap's
//! `tests/try-syscall.c`).
//!
//! It owns only observation: one subcommand per question (`whoami`, `status`, `try-syscall`,
//! `net`, `fill`, `memhog`, `forkbomb`, ...). It deliberately does not judge: "denied" is a
//! successful probe, and the integration tests (`tests/isolation.rs`, `tests/limits.rs`) decide
//! whether the answer is the right one. Run `hearth-probe help` for the list.
//!
//! Output contract (parsed by the integration tests):
//! - stdout carries `key=value` lines, one per line; values have no spaces unless they echo
//!   something the probe does not control (paths, `/proc/1/comm`, fd targets, `env`, `echo`).
//! - Errno values are printed by name (`EPERM`, `EROFS`, ...; `ERRNO<n>` for numbers the table
//!   lacks); success is `OK`; a probe child killed by a signal prints the signal name (`SIGSYS`);
//!   if the probe could not even fork its child it prints `NOFORK_<ERRNO>`.
//! - Exit 0: the probe ran (whatever it found). Exit 1: the probe itself failed (e.g. stdout
//!   unwritable, `/proc/self/status` unreadable); message on stderr. Exit 2: usage error; message
//!   on stderr. `exit N` and `kill-self SIG` end the process as asked.
//!
//! Limits: built statically (`-C target-feature=+crt-static`) against std and libc only, so it
//! runs in any root; it is single-threaded, which is what makes its `fork` calls sound. Host
//! names are not resolved (`connect` takes an IP literal or `localhost`), because a static
//! glibc binary cannot load NSS modules. Every `try-syscall` argument is chosen so that the
//! call can only fail or do nothing even if the sandbox wrongly allows it, and each call runs
//! in a forked child so that a call that does succeed (a new namespace, a tracer) cannot change
//! the probe or the answers of the calls after it.
//!
//! Outside a sandbox, run `try-syscall all` unprivileged (`setpriv --reuid=65534 ...`) or inside
//! fresh pid and mount namespaces: as root on a host, `clock_settime` steps the real clock back
//! by the microseconds between reading and setting it, and `ptrace` briefly stops the host's
//! pid 1 (attach, wait for the stop, detach).
//!
//! All unsafe code lives in the `sys` module at the bottom, each block with a `SAFETY` comment.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// One line per subcommand, printed by `help`.
const USAGE: &str = "\
usage: hearth-probe SUBCOMMAND [ARGS...]
  whoami                    uid, gid, euid, egid, groups, pid, ppid, sid
  status                    capability sets, NoNewPrivs, Seccomp from /proc/self/status
  try-syscall NAME...|all   NAME=OK|ERRNO for each named harmless system call
  pids                      numeric entries of /proc
  pid1                      comm and uid of pid 1
  ptrace-init               ptrace attach to pid 1, open /proc/1/mem and /proc/1/environ
  hostname                  uname nodename
  net                       interfaces and whether each is up
  connect HOST:PORT         TCP connect, 2 s timeout (HOST: IP literal or localhost)
  http ADDR PATH            GET PATH over TCP (ADDR HOST:PORT) or an abstract Unix socket
                            (ADDR @NAME); prints the status line and the body
  write PATH                create and write one byte (or open an existing file for writing)
  mkdir PATH                create a directory (removed again)
  read PATH                 open and read up to 4 KiB
  fill DIR [CHUNK_KB]       write a file in DIR until an error (left in place)
  memhog MB                 map MB MiB and touch every page
  forkbomb [MAX]            fork until the first error; children pause
  fds                       open file descriptors and their targets
  rlimits                   nofile, nproc, core, fsize, as, stack, memlock, cpu
  ignore-term-double-fork   ignore SIGTERM, leave a setsid grandchild, pause forever
  sleep SECS                sleep (fractions allowed)
  exit N                    exit with status N
  kill-self SIG             send SIG (number or name) to itself
  mounts                    /proc/self/mounts verbatim
  env                       environment as K=V lines
  cwd                       working directory
  stdin                     count bytes on stdin until end of file
  echo ARGS...              print ARGS space-separated
  stderr TEXT...            print TEXT to stderr
  help                      this list";

/// `connect` gives up after this long and reports ETIMEDOUT.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const READ_LIMIT: usize = 4096;
const DEFAULT_CHUNK_KB: usize = 1024;
/// Largest `fill` chunk: 1 GiB; a bigger buffer would only measure the probe's own memory.
const MAX_CHUNK_KB: usize = 1024 * 1024;
/// Largest `memhog`: 1 TiB, far above any sandbox limit, small enough not to overflow.
const MAX_MEMHOG_MB: usize = 1024 * 1024;
const MIB: usize = 1024 * 1024;
/// `memhog` reports progress on stderr every this many MiB, so an OOM kill shows how far it got.
const MEMHOG_PROGRESS_MB: usize = 16;

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let command = match parse(&args) {
        Ok(command) => command,
        Err(err) => {
            let _ = writeln!(
                io::stderr(),
                "hearth-probe: {err} (see `hearth-probe help`)"
            );
            return ExitCode::from(2);
        }
    };
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let result = run(command, &mut out);
    let flushed = out.flush().map_err(|source| ProbeError::Io {
        what: "write stdout".into(),
        source,
    });
    match result.and_then(|code| flushed.map(|()| code)) {
        Ok(code) => code,
        Err(err) => {
            let _ = writeln!(io::stderr(), "hearth-probe: {err}");
            ExitCode::from(1)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Errors and names
// ---------------------------------------------------------------------------------------------

/// A command line the probe does not understand (exit status 2).
#[derive(Debug, Clone, PartialEq, Eq)]
struct UsageError(String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

fn usage(message: impl Into<String>) -> UsageError {
    UsageError(message.into())
}

/// The probe itself could not do its job (exit status 1); a denied check is *not* this.
#[derive(Debug)]
enum ProbeError {
    Io { what: String, source: io::Error },
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeError::Io { what, source } => write!(f, "{what}: {source}"),
        }
    }
}

impl std::error::Error for ProbeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ProbeError::Io { source, .. } => Some(source),
        }
    }
}

fn stdout_error(source: io::Error) -> ProbeError {
    ProbeError::Io {
        what: "write stdout".into(),
        source,
    }
}

/// An errno value, displayed by its symbolic name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Errno(i32);

macro_rules! name_table {
    ($($name:ident),* $(,)?) => { &[$((libc::$name, stringify!($name))),*] };
}

/// Linux errno names, 1 to 133. Aliases (EWOULDBLOCK, EDEADLOCK, ENOTSUP) share a number with
/// the name listed here, which is the one printed.
#[rustfmt::skip]
const ERRNO_NAMES: &[(i32, &str)] = name_table!(
    EPERM, ENOENT, ESRCH, EINTR, EIO, ENXIO, E2BIG, ENOEXEC, EBADF, ECHILD, EAGAIN, ENOMEM, EACCES,
    EFAULT, ENOTBLK, EBUSY, EEXIST, EXDEV, ENODEV, ENOTDIR, EISDIR, EINVAL, ENFILE, EMFILE, ENOTTY,
    ETXTBSY, EFBIG, ENOSPC, ESPIPE, EROFS, EMLINK, EPIPE, EDOM, ERANGE, EDEADLK, ENAMETOOLONG,
    ENOLCK, ENOSYS, ENOTEMPTY, ELOOP, ENOMSG, EIDRM, ECHRNG, EL2NSYNC, EL3HLT, EL3RST, ELNRNG,
    EUNATCH, ENOCSI, EL2HLT, EBADE, EBADR, EXFULL, ENOANO, EBADRQC, EBADSLT, EBFONT, ENOSTR,
    ENODATA, ETIME, ENOSR, ENONET, ENOPKG, EREMOTE, ENOLINK, EADV, ESRMNT, ECOMM, EPROTO,
    EMULTIHOP, EDOTDOT, EBADMSG, EOVERFLOW, ENOTUNIQ, EBADFD, EREMCHG, ELIBACC, ELIBBAD, ELIBSCN,
    ELIBMAX, ELIBEXEC, EILSEQ, ERESTART, ESTRPIPE, EUSERS, ENOTSOCK, EDESTADDRREQ, EMSGSIZE,
    EPROTOTYPE, ENOPROTOOPT, EPROTONOSUPPORT, ESOCKTNOSUPPORT, EOPNOTSUPP, EPFNOSUPPORT,
    EAFNOSUPPORT, EADDRINUSE, EADDRNOTAVAIL, ENETDOWN, ENETUNREACH, ENETRESET, ECONNABORTED,
    ECONNRESET, ENOBUFS, EISCONN, ENOTCONN, ESHUTDOWN, ETOOMANYREFS, ETIMEDOUT, ECONNREFUSED,
    EHOSTDOWN, EHOSTUNREACH, EALREADY, EINPROGRESS, ESTALE, EUCLEAN, ENOTNAM, ENAVAIL, EISNAM,
    EREMOTEIO, EDQUOT, ENOMEDIUM, EMEDIUMTYPE, ECANCELED, ENOKEY, EKEYEXPIRED, EKEYREVOKED,
    EKEYREJECTED, EOWNERDEAD, ENOTRECOVERABLE, ERFKILL, EHWPOISON,
);

/// Standard signal names (x86_64 numbering via libc), for `kill-self` and for probe children
/// killed by a signal (a seccomp `KILL` action shows up as `SIGSYS`).
#[rustfmt::skip]
const SIGNAL_NAMES: &[(i32, &str)] = name_table!(
    SIGHUP, SIGINT, SIGQUIT, SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE, SIGKILL, SIGUSR1, SIGSEGV,
    SIGUSR2, SIGPIPE, SIGALRM, SIGTERM, SIGSTKFLT, SIGCHLD, SIGCONT, SIGSTOP, SIGTSTP, SIGTTIN,
    SIGTTOU, SIGURG, SIGXCPU, SIGXFSZ, SIGVTALRM, SIGPROF, SIGWINCH, SIGIO, SIGPWR, SIGSYS,
);

impl Errno {
    /// The calling thread's errno after a failed libc call.
    fn last() -> Errno {
        Errno(io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }

    /// The errno behind an `io::Error`; std reports its own connect timeout without one.
    fn from_io(err: &io::Error) -> Errno {
        match err.raw_os_error() {
            Some(code) => Errno(code),
            None if err.kind() == io::ErrorKind::TimedOut => Errno(libc::ETIMEDOUT),
            None => Errno(0),
        }
    }

    fn name(self) -> Option<&'static str> {
        lookup_name(ERRNO_NAMES, self.0)
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None if self.0 == 0 => f.write_str("EUNKNOWN"),
            None => write!(f, "ERRNO{}", self.0),
        }
    }
}

fn lookup_name(table: &[(i32, &'static str)], value: i32) -> Option<&'static str> {
    table.iter().find(|(v, _)| *v == value).map(|(_, n)| *n)
}

fn signal_name(signal: i32) -> String {
    match lookup_name(SIGNAL_NAMES, signal) {
        Some(name) => name.to_string(),
        None => format!("SIG{signal}"),
    }
}

/// `9`, `KILL` or `SIGKILL` (any case) to a signal number.
fn parse_signal(text: &str) -> Option<i32> {
    if let Ok(number) = text.parse::<i32>() {
        return (0..=64).contains(&number).then_some(number);
    }
    let upper = text.to_ascii_uppercase();
    let wanted = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    SIGNAL_NAMES
        .iter()
        .find(|(_, name)| *name == wanted)
        .map(|(v, _)| *v)
}

/// What one probed call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    Err(Errno),
    /// The child that made the call died of this signal.
    Signaled(i32),
    /// The child that would make the call could not be forked.
    NoFork(Errno),
}

impl From<Result<(), Errno>> for Outcome {
    fn from(result: Result<(), Errno>) -> Outcome {
        match result {
            Ok(()) => Outcome::Ok,
            Err(errno) => Outcome::Err(errno),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Ok => f.write_str("OK"),
            Outcome::Err(errno) => errno.fmt(f),
            Outcome::Signaled(signal) => f.write_str(&signal_name(*signal)),
            Outcome::NoFork(errno) => write!(f, "NOFORK_{errno}"),
        }
    }
}

fn io_outcome<T>(result: &io::Result<T>) -> Outcome {
    match result {
        Ok(_) => Outcome::Ok,
        Err(err) => Outcome::Err(Errno::from_io(err)),
    }
}

// ---------------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Command {
    Whoami,
    Status,
    TrySyscall(Vec<&'static str>),
    Pids,
    Pid1,
    PtraceInit,
    Hostname,
    Net,
    Connect(SocketAddr),
    Http { addr: String, path: String },
    Write(PathBuf),
    Mkdir(PathBuf),
    Read(PathBuf),
    Fill { dir: PathBuf, chunk_kb: usize },
    Memhog { mb: usize },
    Forkbomb { max: Option<u64> },
    Fds,
    Rlimits,
    IgnoreTermDoubleFork,
    Sleep(Duration),
    Exit(u8),
    KillSelf(i32),
    Mounts,
    Env,
    Cwd,
    Stdin,
    Echo(Vec<OsString>),
    Stderr(Vec<OsString>),
    Help,
}

fn parse(args: &[OsString]) -> Result<Command, UsageError> {
    let (name, rest) = args
        .split_first()
        .ok_or_else(|| usage("missing subcommand"))?;
    let name = utf8(name, "subcommand")?;
    let command = match name {
        "whoami" => no_args(name, rest, Command::Whoami)?,
        "status" => no_args(name, rest, Command::Status)?,
        "try-syscall" => Command::TrySyscall(parse_syscall_names(rest)?),
        "pids" => no_args(name, rest, Command::Pids)?,
        "pid1" => no_args(name, rest, Command::Pid1)?,
        "ptrace-init" => no_args(name, rest, Command::PtraceInit)?,
        "hostname" => no_args(name, rest, Command::Hostname)?,
        "net" => no_args(name, rest, Command::Net)?,
        "connect" => Command::Connect(parse_host_port(utf8(one_arg(name, rest)?, "HOST:PORT")?)?),
        "http" => match rest {
            [addr, path] => Command::Http {
                addr: utf8(addr, "ADDR")?.to_owned(),
                path: utf8(path, "PATH")?.to_owned(),
            },
            _ => return Err(usage("http takes ADDR PATH")),
        },
        "write" => Command::Write(PathBuf::from(one_arg(name, rest)?)),
        "mkdir" => Command::Mkdir(PathBuf::from(one_arg(name, rest)?)),
        "read" => Command::Read(PathBuf::from(one_arg(name, rest)?)),
        "fill" => {
            let (dir, chunk) = match rest {
                [dir] => (dir, None),
                [dir, chunk] => (dir, Some(chunk)),
                _ => return Err(usage("fill takes DIR [CHUNK_KB]")),
            };
            let chunk_kb = match chunk {
                None => DEFAULT_CHUNK_KB,
                Some(chunk) => parse_number(chunk, "CHUNK_KB", 1, MAX_CHUNK_KB)?,
            };
            Command::Fill {
                dir: PathBuf::from(dir),
                chunk_kb,
            }
        }
        "memhog" => Command::Memhog {
            mb: parse_number(one_arg(name, rest)?, "MB", 0, MAX_MEMHOG_MB)?,
        },
        "forkbomb" => match rest {
            [] => Command::Forkbomb { max: None },
            [max] => Command::Forkbomb {
                max: Some(parse_number(max, "MAX", 1, u64::MAX)?),
            },
            _ => return Err(usage("forkbomb takes [MAX]")),
        },
        "fds" => no_args(name, rest, Command::Fds)?,
        "rlimits" => no_args(name, rest, Command::Rlimits)?,
        "ignore-term-double-fork" => no_args(name, rest, Command::IgnoreTermDoubleFork)?,
        "sleep" => Command::Sleep(parse_seconds(utf8(one_arg(name, rest)?, "SECS")?)?),
        "exit" => Command::Exit(parse_number(one_arg(name, rest)?, "N", 0, u8::MAX)?),
        "kill-self" => {
            let text = utf8(one_arg(name, rest)?, "SIG")?;
            let signal =
                parse_signal(text).ok_or_else(|| usage(format!("unknown signal: {text}")))?;
            Command::KillSelf(signal)
        }
        "mounts" => no_args(name, rest, Command::Mounts)?,
        "env" => no_args(name, rest, Command::Env)?,
        "cwd" => no_args(name, rest, Command::Cwd)?,
        "stdin" => no_args(name, rest, Command::Stdin)?,
        "echo" => Command::Echo(rest.to_vec()),
        "stderr" => Command::Stderr(rest.to_vec()),
        "help" | "--help" | "-h" => Command::Help,
        other => return Err(usage(format!("unknown subcommand: {other}"))),
    };
    Ok(command)
}

fn utf8<'a>(arg: &'a OsStr, what: &str) -> Result<&'a str, UsageError> {
    arg.to_str()
        .ok_or_else(|| usage(format!("{what} is not valid UTF-8")))
}

fn no_args(name: &str, rest: &[OsString], command: Command) -> Result<Command, UsageError> {
    if rest.is_empty() {
        Ok(command)
    } else {
        Err(usage(format!("{name} takes no arguments")))
    }
}

fn one_arg<'a>(name: &str, rest: &'a [OsString]) -> Result<&'a OsStr, UsageError> {
    match rest {
        [arg] => Ok(arg),
        _ => Err(usage(format!("{name} takes exactly one argument"))),
    }
}

fn parse_number<T>(arg: &OsStr, what: &str, min: T, max: T) -> Result<T, UsageError>
where
    T: std::str::FromStr + PartialOrd + fmt::Display + Copy,
{
    let text = utf8(arg, what)?;
    match text.parse::<T>() {
        Ok(value) if value >= min && value <= max => Ok(value),
        _ => Err(usage(format!(
            "{what} must be an integer from {min} to {max}, not {text:?}"
        ))),
    }
}

fn parse_seconds(text: &str) -> Result<Duration, UsageError> {
    text.parse::<f64>()
        .ok()
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
        .ok_or_else(|| usage(format!("SECS must be a non-negative number, not {text:?}")))
}

/// `127.0.0.1:9001`, `[::1]:80` or `localhost:80`. Other names are refused: resolving them
/// would need NSS, which a static binary cannot load.
fn parse_host_port(text: &str) -> Result<SocketAddr, UsageError> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let bad = || {
        usage(format!(
            "HOST:PORT must be IP:PORT or localhost:PORT, not {text:?}"
        ))
    };
    let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
    let port = port.parse::<u16>().map_err(|_| bad())?;
    if host.eq_ignore_ascii_case("localhost") {
        Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port))
    } else {
        Err(bad())
    }
}

/// Names to probe, in the order given; `all` stands for the whole table. Unknown names are a
/// usage error before anything runs, so a typo cannot pass as "not probed".
fn parse_syscall_names(rest: &[OsString]) -> Result<Vec<&'static str>, UsageError> {
    if rest.is_empty() {
        return Err(usage("try-syscall takes NAME... or all"));
    }
    let mut names = Vec::new();
    for arg in rest {
        let text = utf8(arg, "NAME")?;
        if text == "all" {
            names.extend(sys::SYSCALL_PROBES.iter().map(|(name, _)| *name));
            continue;
        }
        let name = sys::SYSCALL_PROBES
            .iter()
            .map(|(name, _)| *name)
            .find(|name| *name == text)
            .ok_or_else(|| usage(format!("unknown system call probe: {text}")))?;
        names.push(name);
    }
    Ok(names)
}

// ---------------------------------------------------------------------------------------------
// Subcommands
// ---------------------------------------------------------------------------------------------

/// One HTTP/1.1 GET with `Connection: close`; prints `http=<status line>` and
/// `body=<body>` (or `http=<errno>` when the connection fails).
fn http_get(out: &mut dyn Write, addr: &str, path: &str) -> Result<(), ProbeError> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n");
    let exchange = |stream: &mut dyn ReadWrite| -> io::Result<Vec<u8>> {
        stream.write_all(request.as_bytes())?;
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply)?;
        Ok(reply)
    };
    let reply = match addr.strip_prefix('@') {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
                .and_then(|a| std::os::unix::net::UnixStream::connect_addr(&a))
                .and_then(|mut s| exchange(&mut s))
        }
        None => addr
            .parse::<SocketAddr>()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
            .and_then(|a| TcpStream::connect_timeout(&a, CONNECT_TIMEOUT))
            .and_then(|mut s| {
                s.set_read_timeout(Some(CONNECT_TIMEOUT))?;
                exchange(&mut s)
            }),
    };
    match reply {
        Err(err) => kv(out, "http", Errno::from_io(&err)),
        Ok(reply) => {
            let text = String::from_utf8_lossy(&reply);
            let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
            kv(out, "http", head.lines().next().unwrap_or(""))?;
            kv(out, "body", body)
        }
    }
}

/// A stream both readable and writable (TCP or Unix).
trait ReadWrite: io::Read + Write {}
impl<T: io::Read + Write> ReadWrite for T {}

fn kv(out: &mut dyn Write, key: &str, value: impl fmt::Display) -> Result<(), ProbeError> {
    writeln!(out, "{key}={value}").map_err(stdout_error)
}

fn join<T: ToString>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn run(command: Command, out: &mut dyn Write) -> Result<ExitCode, ProbeError> {
    match command {
        Command::Whoami => whoami(out)?,
        Command::Status => status(out)?,
        Command::TrySyscall(names) => try_syscall(out, &names)?,
        Command::Pids => pids(out)?,
        Command::Pid1 => pid1(out)?,
        Command::PtraceInit => ptrace_init(out)?,
        Command::Hostname => match sys::nodename() {
            Ok(name) => kv(out, "hostname", name)?,
            Err(errno) => kv(out, "hostname_errno", errno)?,
        },
        Command::Net => net(out)?,
        Command::Connect(addr) => {
            let result = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT);
            kv(out, "connect", io_outcome(&result))?;
        }
        Command::Http { addr, path } => http_get(out, &addr, &path)?,
        Command::Write(path) => write_probe(out, &path)?,
        Command::Mkdir(path) => {
            let result = fs::create_dir(&path);
            if result.is_ok() {
                // Only the directory this call created is removed; an existing one gives EEXIST.
                let _ = fs::remove_dir(&path);
            }
            kv(out, "mkdir", io_outcome(&result))?;
        }
        Command::Read(path) => read_probe(out, &path)?,
        Command::Fill { dir, chunk_kb } => fill(out, &dir, chunk_kb)?,
        Command::Memhog { mb } => memhog(out, mb)?,
        Command::Forkbomb { max } => forkbomb(out, max)?,
        Command::Fds => fds(out)?,
        Command::Rlimits => rlimits(out)?,
        Command::IgnoreTermDoubleFork => ignore_term_double_fork(out)?,
        Command::Sleep(duration) => std::thread::sleep(duration),
        Command::Exit(code) => return Ok(ExitCode::from(code)),
        Command::KillSelf(signal) => {
            out.flush().map_err(stdout_error)?;
            // Returns only if the signal did not end the process: it is ignored, blocked, stops
            // it (and it was continued), or this process is a namespace's init, which the
            // kernel shields from its own default-action signals.
            let result = sys::kill_self(signal);
            kv(out, "kill_self", Outcome::from(result))?;
        }
        Command::Mounts => copy_file(out, Path::new("/proc/self/mounts"))?,
        Command::Env => {
            for (key, value) in std::env::vars_os() {
                let line = [key.as_bytes(), b"=", value.as_bytes(), b"\n"].concat();
                out.write_all(&line).map_err(stdout_error)?;
            }
        }
        Command::Cwd => match std::env::current_dir() {
            Ok(dir) => kv(out, "cwd", dir.display())?,
            Err(err) => kv(out, "cwd_errno", Errno::from_io(&err))?,
        },
        Command::Stdin => {
            let result = io::copy(&mut io::stdin().lock(), &mut io::sink());
            match result {
                Ok(bytes) => kv(out, "stdin_bytes", bytes)?,
                Err(err) => kv(out, "stdin_errno", Errno::from_io(&err))?,
            }
        }
        Command::Echo(args) => {
            let line = [args.join(OsStr::new(" ")).as_bytes(), b"\n"].concat();
            out.write_all(&line).map_err(stdout_error)?;
        }
        Command::Stderr(args) => {
            let line = [args.join(OsStr::new(" ")).as_bytes(), b"\n"].concat();
            io::stderr()
                .write_all(&line)
                .map_err(|source| ProbeError::Io {
                    what: "write stderr".into(),
                    source,
                })?;
        }
        Command::Help => writeln!(out, "{USAGE}").map_err(stdout_error)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn whoami(out: &mut dyn Write) -> Result<(), ProbeError> {
    let ids = sys::ids();
    kv(out, "uid", ids.uid)?;
    kv(out, "gid", ids.gid)?;
    kv(out, "euid", ids.euid)?;
    kv(out, "egid", ids.egid)?;
    match ids.groups {
        Ok(groups) => kv(out, "groups", join(&groups))?,
        Err(errno) => kv(out, "groups_errno", errno)?,
    }
    kv(out, "pid", ids.pid)?;
    kv(out, "ppid", ids.ppid)?;
    match ids.sid {
        Ok(sid) => kv(out, "sid", sid)?,
        Err(errno) => kv(out, "sid_errno", errno)?,
    }
    Ok(())
}

/// `/proc/self/status` keys `status` prints, in this order, when present.
const STATUS_KEYS: &[&str] = &[
    "CapInh",
    "CapPrm",
    "CapEff",
    "CapBnd",
    "CapAmb",
    "NoNewPrivs",
    "Seccomp",
    "Seccomp_filters",
];

/// The value of `Key:` in a `/proc/<pid>/status` text, trimmed.
fn status_field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k == key).then(|| v.trim())
    })
}

fn status(out: &mut dyn Write) -> Result<(), ProbeError> {
    let path = "/proc/self/status";
    let text = fs::read_to_string(path).map_err(|source| ProbeError::Io {
        what: format!("read {path}"),
        source,
    })?;
    for key in STATUS_KEYS {
        if let Some(value) = status_field(&text, key) {
            kv(out, key, value)?;
        }
    }
    Ok(())
}

fn try_syscall(out: &mut dyn Write, names: &[&'static str]) -> Result<(), ProbeError> {
    for name in names {
        let probe = sys::SYSCALL_PROBES
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, probe)| *probe);
        let Some(probe) = probe else { continue };
        // Flushed before every fork so the child cannot inherit (and never writes) half a line.
        out.flush().map_err(stdout_error)?;
        kv(out, name, sys::in_child(probe))?;
    }
    Ok(())
}

fn pids(out: &mut dyn Write) -> Result<(), ProbeError> {
    let entries = fs::read_dir("/proc").map_err(|source| ProbeError::Io {
        what: "list /proc".into(),
        source,
    })?;
    let mut pids: Vec<u32> = entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    kv(out, "pids", join(&pids))?;
    kv(out, "count", pids.len())
}

fn pid1(out: &mut dyn Write) -> Result<(), ProbeError> {
    match fs::read_to_string("/proc/1/comm") {
        Ok(comm) => kv(out, "pid1_comm", comm.trim_end_matches('\n'))?,
        Err(err) => kv(out, "pid1_comm_errno", Errno::from_io(&err))?,
    }
    match fs::read_to_string("/proc/1/status") {
        Ok(text) => {
            kv(out, "pid1_status", Outcome::Ok)?;
            let uid = status_field(&text, "Uid").and_then(|v| v.split_whitespace().next());
            if let Some(uid) = uid {
                kv(out, "pid1_uid", uid)?;
            }
        }
        Err(err) => kv(out, "pid1_status", Errno::from_io(&err))?,
    }
    Ok(())
}

fn ptrace_init(out: &mut dyn Write) -> Result<(), ProbeError> {
    out.flush().map_err(stdout_error)?;
    // In a child, so that a successful attach is undone by the child's exit at the latest and
    // cannot make the opens below succeed by way of a tracer relationship.
    kv(
        out,
        "ptrace_attach_1",
        sys::in_child(sys::ptrace_attach_init),
    )?;
    kv(out, "proc1_mem", io_outcome(&File::open("/proc/1/mem")))?;
    kv(
        out,
        "proc1_environ",
        io_outcome(&File::open("/proc/1/environ")),
    )
}

/// Interface names from `/proc/net/dev` (the header is two lines, then `name: counters`).
fn net_dev_ifaces(text: &str) -> Vec<String> {
    text.lines()
        .skip(2)
        .filter_map(|line| Some(line.split_once(':')?.0.trim().to_string()))
        .filter(|name| !name.is_empty())
        .collect()
}

fn net(out: &mut dyn Write) -> Result<(), ProbeError> {
    // /proc/net/dev always shows the caller's network namespace; /sys/class/net shows the one
    // of whoever mounted sysfs, so it is only the fallback.
    let (source, mut ifaces) = match fs::read_to_string("/proc/net/dev") {
        Ok(text) => ("/proc/net/dev", net_dev_ifaces(&text)),
        Err(proc_err) => match fs::read_dir("/sys/class/net") {
            Ok(entries) => (
                "/sys/class/net",
                entries
                    .filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .collect(),
            ),
            Err(_) => {
                kv(out, "ifaces_errno", Errno::from_io(&proc_err))?;
                return Ok(());
            }
        },
    };
    ifaces.sort();
    kv(out, "ifaces", ifaces.join(","))?;
    kv(out, "ifaces_source", source)?;
    for iface in &ifaces {
        let state = match sys::iface_up(iface) {
            Ok(true) => "up".to_string(),
            Ok(false) => "down".to_string(),
            Err(errno) => errno.to_string(),
        };
        kv(out, &format!("iface_{iface}"), state)?;
    }
    Ok(())
}

/// A new file is created exclusively, written and removed; an existing path is only opened for
/// writing (never truncated or removed), which fails the same way on a read-only mount or
/// without permission and cannot destroy anything if the probe runs somewhere writable.
fn write_probe(out: &mut dyn Write, path: &Path) -> Result<(), ProbeError> {
    let created = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path);
    match created {
        Ok(mut file) => {
            let result = file.write_all(b"x");
            drop(file);
            let _ = fs::remove_file(path);
            kv(out, "write", io_outcome(&result))?;
            kv(out, "write_mode", "created")
        }
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
            let result = OpenOptions::new().write(true).open(path);
            kv(out, "write", io_outcome(&result))?;
            kv(out, "write_mode", "existing")
        }
        Err(err) => {
            kv(out, "write", Errno::from_io(&err))?;
            kv(out, "write_mode", "created")
        }
    }
}

fn read_probe(out: &mut dyn Write, path: &Path) -> Result<(), ProbeError> {
    let result = File::open(path).and_then(|file| {
        let mut buf = Vec::with_capacity(READ_LIMIT);
        file.take(READ_LIMIT as u64).read_to_end(&mut buf)
    });
    kv(out, "read", io_outcome(&result))?;
    if let Ok(bytes) = result {
        kv(out, "read_bytes", bytes)?;
    }
    Ok(())
}

fn fill(out: &mut dyn Write, dir: &Path, chunk_kb: usize) -> Result<(), ProbeError> {
    match sys::statvfs(dir) {
        Ok(space) => {
            kv(out, "statfs_total", space.total)?;
            kv(out, "statfs_avail", space.avail)?;
        }
        Err(errno) => kv(out, "statfs_errno", errno)?,
    }
    let path = dir.join(format!(".hearth-probe-fill-{}", std::process::id()));
    kv(out, "file", path.display())?;
    let mut file = match OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
    {
        Ok(file) => file,
        Err(err) => {
            kv(out, "bytes", 0)?;
            kv(out, "failed_at", "open")?;
            return kv(out, "errno", Errno::from_io(&err));
        }
    };
    let chunk = vec![0x5a_u8; chunk_kb * 1024];
    let mut bytes: u64 = 0;
    let mut offset = 0;
    // A short write is followed by a write of the remainder, so the loop ends only on an error
    // and `bytes` counts everything the kernel accepted, including a final partial chunk.
    let errno = loop {
        match file.write(&chunk[offset..]) {
            Ok(0) => break Errno(libc::ENOSPC),
            Ok(n) => {
                bytes += n as u64;
                offset = (offset + n) % chunk.len();
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => break Errno::from_io(&err),
        }
    };
    kv(out, "bytes", bytes)?;
    kv(out, "failed_at", "write")?;
    kv(out, "errno", errno)?;
    if let Err(err) = file.sync_all() {
        kv(out, "fsync_errno", Errno::from_io(&err))?;
    }
    if let Ok(space) = sys::statvfs(dir) {
        kv(out, "statfs_avail_after", space.avail)?;
    }
    Ok(())
}

fn memhog(out: &mut dyn Write, mb: usize) -> Result<(), ProbeError> {
    let mut progress = |done: usize| {
        if done.is_multiple_of(MEMHOG_PROGRESS_MB * MIB) {
            // Best effort: a closed stderr must not stop the allocation.
            let _ = writeln!(io::stderr(), "progress_mb={}", done / MIB);
        }
    };
    match sys::memhog(mb * MIB, &mut progress) {
        Ok(()) => kv(out, "touched_mb", mb),
        Err(errno) => {
            kv(out, "mmap_errno", errno)?;
            kv(out, "touched_mb", 0)
        }
    }
}

fn forkbomb(out: &mut dyn Write, max: Option<u64>) -> Result<(), ProbeError> {
    out.flush().map_err(stdout_error)?;
    let mut forked: u64 = 0;
    let stopped_by = loop {
        if max.is_some_and(|max| forked >= max) {
            break None;
        }
        match sys::fork() {
            Ok(sys::Fork::Child) => {
                // Off the probe's stdout, so whoever reads it sees end-of-file when the probe
                // exits rather than when the last child is killed.
                sys::stdio_to_dev_null();
                sys::pause_forever()
            }
            Ok(sys::Fork::Parent(_)) => forked += 1,
            Err(errno) => break Some(errno),
        }
    };
    kv(out, "forked", forked)?;
    match stopped_by {
        Some(errno) => kv(out, "errno", errno),
        None => kv(out, "errno", "NONE"),
    }
}

fn fds(out: &mut dyn Write) -> Result<(), ProbeError> {
    let entries = fs::read_dir("/proc/self/fd").map_err(|source| ProbeError::Io {
        what: "list /proc/self/fd".into(),
        source,
    })?;
    let listed: Vec<i32> = entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    // The directory's own fd was closed when `entries` was consumed; its link is gone now, which
    // is how it is told apart from the inherited ones.
    let mut open: Vec<(i32, Option<PathBuf>)> = listed
        .into_iter()
        .filter_map(|fd| match fs::read_link(format!("/proc/self/fd/{fd}")) {
            Ok(target) => Some((fd, Some(target))),
            Err(err) if err.kind() == io::ErrorKind::NotFound => None,
            Err(_) => Some((fd, None)),
        })
        .collect();
    open.sort_by_key(|(fd, _)| *fd);
    let numbers: Vec<i32> = open.iter().map(|(fd, _)| *fd).collect();
    kv(out, "fds", join(&numbers))?;
    for (fd, target) in open.iter().filter(|(fd, _)| *fd > 2) {
        match target {
            Some(target) => kv(out, &format!("fd_{fd}"), target.display())?,
            None => kv(out, &format!("fd_{fd}"), "?")?,
        }
    }
    Ok(())
}

fn rlimit_text(value: u64) -> String {
    if value == libc::RLIM_INFINITY {
        "unlimited".to_string()
    } else {
        value.to_string()
    }
}

fn rlimits(out: &mut dyn Write) -> Result<(), ProbeError> {
    let limits = [
        ("nofile", libc::RLIMIT_NOFILE),
        ("nproc", libc::RLIMIT_NPROC),
        ("core", libc::RLIMIT_CORE),
        ("fsize", libc::RLIMIT_FSIZE),
        ("as", libc::RLIMIT_AS),
        ("stack", libc::RLIMIT_STACK),
        ("memlock", libc::RLIMIT_MEMLOCK),
        ("cpu", libc::RLIMIT_CPU),
    ];
    for (key, resource) in limits {
        match sys::getrlimit(resource) {
            Ok((soft, hard)) => kv(
                out,
                key,
                format!("{}:{}", rlimit_text(soft), rlimit_text(hard)),
            )?,
            Err(errno) => kv(out, key, errno)?,
        }
    }
    Ok(())
}

/// Leaves a process that escapes the obvious ways of stopping it: SIGTERM ignored, reparented
/// away from the probe and in its own session. The sandbox's shutdown must still remove it.
fn ignore_term_double_fork(out: &mut dyn Write) -> Result<(), ProbeError> {
    let failed = |what: &str, errno: Errno| ProbeError::Io {
        what: what.to_string(),
        source: io::Error::from_raw_os_error(errno.0),
    };
    sys::ignore_sigterm().map_err(|e| failed("ignore SIGTERM", e))?;
    let (mut reader, mut writer) = sys::pipe().map_err(|e| failed("pipe", e))?;
    out.flush().map_err(stdout_error)?;
    let child = match sys::fork().map_err(|e| failed("fork child", e))? {
        sys::Fork::Child => {
            drop(reader);
            let _ = sys::setsid();
            match sys::fork() {
                Ok(sys::Fork::Child) => {
                    drop(writer);
                    // Inherited already; set again so the grandchild does not depend on it.
                    let _ = sys::ignore_sigterm();
                    // Like a daemon, off the probe's stdout, so a reader of it is not kept
                    // waiting for end-of-file by the process under test.
                    sys::stdio_to_dev_null();
                    sys::pause_forever()
                }
                Ok(sys::Fork::Parent(grandchild)) => {
                    let code = match writeln!(writer, "{grandchild}") {
                        Ok(()) => 0,
                        Err(_) => 1,
                    };
                    sys::exit_now(code)
                }
                Err(_) => sys::exit_now(1),
            }
        }
        sys::Fork::Parent(pid) => pid,
    };
    drop(writer);
    let mut line = String::new();
    let read = BufReader::new(&mut reader).read_line(&mut line);
    let _ = sys::reap(child);
    match read {
        Ok(_) if !line.trim().is_empty() => kv(out, "grandchild", line.trim())?,
        Ok(_) => kv(out, "grandchild_errno", "EUNKNOWN")?,
        Err(err) => kv(out, "grandchild_errno", Errno::from_io(&err))?,
    }
    kv(out, "pid", std::process::id())?;
    out.flush().map_err(stdout_error)?;
    sys::pause_forever()
}

fn copy_file(out: &mut dyn Write, path: &Path) -> Result<(), ProbeError> {
    let mut file = File::open(path).map_err(|source| ProbeError::Io {
        what: format!("open {}", path.display()),
        source,
    })?;
    // Read whole first so that a read error is not mistaken for a stdout error.
    let mut text = Vec::new();
    file.read_to_end(&mut text)
        .map_err(|source| ProbeError::Io {
            what: format!("read {}", path.display()),
            source,
        })?;
    out.write_all(&text).map_err(stdout_error)
}

// ---------------------------------------------------------------------------------------------
// The only unsafe code
// ---------------------------------------------------------------------------------------------

/// Thin wrappers over raw system calls, and the `try-syscall` table.
///
/// Every `try-syscall` entry is built to be harmless if the sandbox wrongly allows it: paths
/// that do not exist, invalid magic numbers or flags that the kernel checks only *after* the
/// permission check, read-only queries, and fds that are closed again. Where the kernel checks
/// an argument before the permission, the comment says which answer to expect when allowed.
mod sys {
    #![allow(unsafe_code)]

    use super::{Errno, Outcome};
    use std::ffi::{CStr, CString};
    use std::fs::File;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;
    use std::ptr;

    use libc::{c_char, c_int, c_long, c_void, pid_t};

    pub type ProbeFn = fn() -> Result<(), Errno>;

    /// Every `try-syscall` name, in the order `all` runs them.
    pub const SYSCALL_PROBES: &[(&str, ProbeFn)] = &[
        ("mount", mount),
        ("umount2", umount2),
        ("unshare", unshare_ns),
        ("unshare_user", unshare_user),
        ("unshare_net", unshare_net),
        ("setns", setns),
        ("pivot_root", pivot_root),
        ("chroot", chroot),
        ("fsopen", fsopen),
        ("open_tree", open_tree),
        ("ptrace_traceme", ptrace_traceme),
        ("ptrace", ptrace_attach_init),
        ("process_vm_readv", process_vm_readv),
        ("kexec_load", kexec_load),
        ("kexec_file_load", kexec_file_load),
        ("bpf", bpf),
        ("perf_event_open", perf_event_open),
        ("keyctl", keyctl),
        ("add_key", add_key),
        ("request_key", request_key),
        ("userfaultfd", userfaultfd),
        ("open_by_handle_at", open_by_handle_at),
        ("name_to_handle_at", name_to_handle_at),
        ("init_module", init_module),
        ("finit_module", finit_module),
        ("delete_module", delete_module),
        ("reboot", reboot),
        ("swapon", swapon),
        ("swapoff", swapoff),
        ("acct", acct),
        ("settimeofday", settimeofday),
        ("clock_settime", clock_settime),
        ("clock_adjtime", clock_adjtime),
        ("adjtimex", adjtimex),
        ("iopl", iopl),
        ("ioperm", ioperm),
        ("quotactl", quotactl),
        ("syslog", syslog),
        ("sethostname", sethostname),
        ("setdomainname", setdomainname),
        ("setuid", setuid),
        ("mknod", mknod),
        ("io_uring_setup", io_uring_setup),
        ("io_uring_enter", io_uring_enter),
        ("io_uring_register", io_uring_register),
        ("clone_newns", clone_newns),
        ("clone_newuser", clone_newuser),
        ("clone_newnet", clone_newnet),
        ("clone3", clone3),
        ("fork", fork_probe),
        ("socket_raw", socket_raw),
        ("socket_packet", socket_packet),
        ("socket_inet", socket_inet),
        ("socket_inet6", socket_inet6),
        ("socket_icmp", socket_icmp),
        ("socket_unix", socket_unix),
        ("socket_netlink_route", socket_netlink_route),
        ("tiocsti", tiocsti),
        ("personality", personality),
    ];

    /// A path no test root contains, for calls that look a path up after their permission check.
    const MISSING: &CStr = c"/nonexistent-hearth-probe";
    /// `BPF_PROG_LOAD` from `linux/bpf.h`.
    const BPF_PROG_LOAD: c_long = 5;
    /// `SYSLOG_ACTION_SIZE_BUFFER` from `linux/syslog.h`: a read-only query.
    const SYSLOG_ACTION_SIZE_BUFFER: c_long = 10;
    /// `UFFD_USER_MODE_ONLY` from `linux/userfaultfd.h`.
    const UFFD_USER_MODE_ONLY: c_long = 1;
    /// `SIOCGIFFLAGS` from `linux/sockios.h`.
    const SIOCGIFFLAGS: libc::c_ulong = 0x8913;
    /// `KEXEC_SEGMENT_MAX` + 1: more segments than the kernel accepts.
    const TOO_MANY_KEXEC_SEGMENTS: c_long = 17;
    /// A flag bit neither `kexec_load` nor `kexec_file_load` defines.
    const UNDEFINED_KEXEC_FLAG: c_long = 0x100;
    const UNDEFINED_KEXEC_FILE_FLAG: c_long = 0x4000_0000;
    /// Size of `struct clone_args` up to `cgroup` (`CLONE_ARGS_SIZE_VER2`).
    const CLONE_ARGS_SIZE: usize = 88;
    /// Size of `struct io_uring_params`.
    const IO_URING_PARAMS_SIZE: usize = 120;

    fn check(ret: c_long) -> Result<c_long, Errno> {
        if ret < 0 {
            Err(Errno::last())
        } else {
            Ok(ret)
        }
    }

    fn check_unit(ret: c_long) -> Result<(), Errno> {
        check(ret).map(drop)
    }

    /// For calls that return a new fd on success: close it, the probe only wanted the answer.
    fn check_fd(ret: c_long) -> Result<(), Errno> {
        let fd = check(ret)?;
        // SAFETY: the kernel just returned this fd to us and nothing else refers to it.
        drop(unsafe { OwnedFd::from_raw_fd(fd as c_int) });
        Ok(())
    }

    /// An fd on /dev/null (or -1 if there is none), for calls that must get a harmless fd.
    fn dev_null() -> Option<File> {
        File::options()
            .read(true)
            .write(true)
            .open("/dev/null")
            .ok()
    }

    /// Runs one probe in a forked child and reports how it ended: the child exits with 0 or
    /// the errno, so a call that succeeds (a namespace, a tracer, a new root) changes only the
    /// child, and a seccomp kill shows as a signal instead of ending the whole probe.
    pub fn in_child(probe: ProbeFn) -> Outcome {
        match fork() {
            Ok(Fork::Child) => {
                // A panic must not unwind out of the child into the parent's code path (it
                // would finish the probe a second time); 255 reads as EUNKNOWN.
                let code = match std::panic::catch_unwind(probe) {
                    Ok(Ok(())) => 0,
                    Ok(Err(Errno(errno))) if (1..255).contains(&errno) => errno,
                    Ok(Err(_)) | Err(_) => 255,
                };
                exit_now(code)
            }
            Ok(Fork::Parent(pid)) => match reap(pid) {
                Ok(status) if libc::WIFEXITED(status) => match libc::WEXITSTATUS(status) {
                    0 => Outcome::Ok,
                    255 => Outcome::Err(Errno(0)),
                    errno => Outcome::Err(Errno(errno)),
                },
                Ok(status) if libc::WIFSIGNALED(status) => {
                    Outcome::Signaled(libc::WTERMSIG(status))
                }
                Ok(_) => Outcome::Err(Errno(0)),
                Err(errno) => Outcome::Err(errno),
            },
            Err(errno) => Outcome::NoFork(errno),
        }
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Fork {
        Child,
        Parent(pid_t),
    }

    /// `fork(2)`. Sound here because the probe never starts a second thread, so the child
    /// cannot inherit a lock some other thread held.
    pub fn fork() -> Result<Fork, Errno> {
        // SAFETY: single-threaded process (see above); both sides continue with valid state.
        match unsafe { libc::fork() } {
            -1 => Err(Errno::last()),
            0 => Ok(Fork::Child),
            pid => Ok(Fork::Parent(pid)),
        }
    }

    /// Waits for `pid` (any kind of child, `__WALL`), retrying on EINTR; returns the raw status.
    pub fn reap(pid: pid_t) -> Result<c_int, Errno> {
        let mut status: c_int = 0;
        loop {
            // SAFETY: `status` is a live, writable c_int.
            let ret = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
            if ret >= 0 {
                return Ok(status);
            }
            let errno = Errno::last();
            if errno.0 != libc::EINTR {
                return Err(errno);
            }
        }
    }

    /// Leaves at once: no destructors, no atexit handlers, no stdio flush (a forked child must
    /// not write out the parent's buffers a second time).
    pub fn exit_now(code: c_int) -> ! {
        // SAFETY: `_exit` takes no pointers and does not return.
        unsafe { libc::_exit(code) }
    }

    pub fn pause_forever() -> ! {
        loop {
            // SAFETY: `pause` takes no arguments; it returns only after a handled signal.
            unsafe { libc::pause() };
        }
    }

    /// A close-on-exec pipe: (read end, write end).
    pub fn pipe() -> Result<(File, File), Errno> {
        let mut fds: [c_int; 2] = [-1, -1];
        // SAFETY: `fds` has room for the two fds the kernel writes.
        check_unit(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } as c_long)?;
        // SAFETY: both fds were just returned by the kernel and nothing else owns them.
        Ok(unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) })
    }

    /// Points stdin, stdout and stderr at /dev/null (or just closes them if it cannot be
    /// opened). Best effort: used only by children that then pause forever.
    pub fn stdio_to_dev_null() {
        let null = dev_null();
        for fd in 0..=2 {
            match &null {
                // SAFETY: plain fds; replacing 0-2 is this child's own business.
                Some(null) => unsafe { libc::dup2(null.as_raw_fd(), fd) },
                // SAFETY: plain fd; nothing in this child uses it afterwards.
                None => unsafe { libc::close(fd) },
            };
        }
    }

    pub fn ignore_sigterm() -> Result<(), Errno> {
        // SAFETY: SIG_IGN is a valid disposition for SIGTERM; no handler code is installed.
        if unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) } == libc::SIG_ERR {
            return Err(Errno::last());
        }
        Ok(())
    }

    pub fn setsid() -> Result<(), Errno> {
        // SAFETY: `setsid` takes no arguments.
        check_unit(unsafe { libc::setsid() } as c_long)
    }

    pub fn kill_self(signal: c_int) -> Result<(), Errno> {
        // SAFETY: `kill` takes plain integers; the target is this process.
        check_unit(unsafe { libc::kill(libc::getpid(), signal) } as c_long)
    }

    #[derive(Debug)]
    pub struct Ids {
        pub uid: u32,
        pub gid: u32,
        pub euid: u32,
        pub egid: u32,
        pub groups: Result<Vec<u32>, Errno>,
        pub pid: i32,
        pub ppid: i32,
        pub sid: Result<i32, Errno>,
    }

    pub fn ids() -> Ids {
        // SAFETY: these calls take no pointers and cannot fail (getsid(0) can, checked below).
        let (uid, gid, euid, egid, pid, ppid, sid) = unsafe {
            (
                libc::getuid(),
                libc::getgid(),
                libc::geteuid(),
                libc::getegid(),
                libc::getpid(),
                libc::getppid(),
                libc::getsid(0),
            )
        };
        Ids {
            uid,
            gid,
            euid,
            egid,
            groups: groups(),
            pid,
            ppid,
            sid: check(sid as c_long).map(|s| s as i32),
        }
    }

    fn groups() -> Result<Vec<u32>, Errno> {
        // SAFETY: size 0 with a null list only asks for the count.
        let count = check(unsafe { libc::getgroups(0, ptr::null_mut()) } as c_long)?;
        let mut list = vec![0 as libc::gid_t; count as usize];
        // SAFETY: `list` has room for exactly `count` gids.
        let n = check(unsafe { libc::getgroups(count as c_int, list.as_mut_ptr()) } as c_long)?;
        list.truncate(n as usize);
        Ok(list)
    }

    pub fn nodename() -> Result<String, Errno> {
        // SAFETY: utsname is plain byte arrays, for which all zeroes is valid.
        let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
        // SAFETY: `uts` is a live, writable utsname.
        check_unit(unsafe { libc::uname(&mut uts) } as c_long)?;
        // SAFETY: the kernel NUL-terminates nodename within its array.
        let name = unsafe { CStr::from_ptr(uts.nodename.as_ptr()) };
        Ok(name.to_string_lossy().into_owned())
    }

    /// `struct ifreq` reduced to the name and the flags member of its union (40 bytes).
    #[repr(C)]
    #[derive(Debug)]
    struct IfreqFlags {
        name: [u8; libc::IFNAMSIZ],
        flags: libc::c_short,
        _pad: [u8; 22],
    }

    /// Whether `iface` has IFF_UP, by SIOCGIFFLAGS on an AF_INET datagram socket.
    pub fn iface_up(iface: &str) -> Result<bool, Errno> {
        let mut req = IfreqFlags {
            name: [0; libc::IFNAMSIZ],
            flags: 0,
            _pad: [0; 22],
        };
        if iface.len() >= libc::IFNAMSIZ {
            return Err(Errno(libc::ENAMETOOLONG));
        }
        req.name[..iface.len()].copy_from_slice(iface.as_bytes());
        // SAFETY: plain integer arguments.
        let fd =
            check(
                unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) }
                    as c_long,
            )?;
        // SAFETY: the kernel just returned this fd and nothing else owns it.
        let sock = unsafe { OwnedFd::from_raw_fd(fd as c_int) };
        // SAFETY: `req` is a live ifreq-sized buffer the kernel reads the name from and writes
        // the flags into.
        check_unit(unsafe { libc::ioctl(sock.as_raw_fd(), SIOCGIFFLAGS, &mut req) } as c_long)?;
        Ok(req.flags as c_int & libc::IFF_UP != 0)
    }

    pub fn getrlimit(resource: libc::__rlimit_resource_t) -> Result<(u64, u64), Errno> {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `limit` is a live, writable rlimit.
        check_unit(unsafe { libc::getrlimit(resource, &mut limit) } as c_long)?;
        Ok((limit.rlim_cur, limit.rlim_max))
    }

    #[derive(Debug, Clone, Copy)]
    pub struct Space {
        pub total: u64,
        pub avail: u64,
    }

    pub fn statvfs(dir: &Path) -> Result<Space, Errno> {
        let path = CString::new(dir.as_os_str().as_bytes()).map_err(|_| Errno(libc::EINVAL))?;
        // SAFETY: statvfs is plain integers, for which all zeroes is valid.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: `path` is NUL-terminated and `st` is a live, writable statvfs.
        check_unit(unsafe { libc::statvfs(path.as_ptr(), &mut st) } as c_long)?;
        Ok(Space {
            total: st.f_blocks * st.f_frsize,
            avail: st.f_bavail * st.f_frsize,
        })
    }

    /// Maps `bytes` of anonymous memory and writes one byte per 4 KiB, calling `progress` with
    /// the bytes touched after each page. Volatile writes, because stores to memory that is
    /// unmapped unread are otherwise the compiler's to drop.
    pub fn memhog(bytes: usize, progress: &mut dyn FnMut(usize)) -> Result<(), Errno> {
        const PAGE: usize = 4096;
        if bytes == 0 {
            return Ok(());
        }
        // SAFETY: an anonymous private mapping at an address of the kernel's choosing touches no
        // existing memory.
        let addr = unsafe {
            libc::mmap(
                ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(Errno::last());
        }
        let base = addr.cast::<u8>();
        let mut offset = 0;
        while offset < bytes {
            // SAFETY: offset < bytes, so the byte lies inside the mapping made above.
            unsafe { ptr::write_volatile(base.add(offset), 1) };
            offset += PAGE;
            progress(offset.min(bytes));
        }
        // SAFETY: exactly the mapping made above, no longer used.
        unsafe { libc::munmap(addr, bytes) };
        Ok(())
    }

    // --- try-syscall probes (each runs in a forked child) ---

    fn mount() -> Result<(), Errno> {
        // A bind mount of a missing source: the kernel checks CAP_SYS_ADMIN (may_mount) before
        // it looks the source up, so EPERM without it and ENOENT with it; it never mounts.
        // SAFETY: NUL-terminated static strings and null pointers.
        check_unit(unsafe {
            libc::syscall(
                libc::SYS_mount,
                MISSING.as_ptr(),
                c"/".as_ptr(),
                ptr::null::<c_char>(),
                libc::MS_BIND,
                ptr::null::<c_void>(),
            )
        })
    }

    fn umount2() -> Result<(), Errno> {
        // An existing directory that is never a mount point: EPERM without CAP_SYS_ADMIN,
        // EINVAL with it.
        // SAFETY: NUL-terminated static string.
        check_unit(unsafe {
            libc::syscall(
                libc::SYS_umount2,
                c"/proc/self/fd".as_ptr(),
                libc::MNT_DETACH | libc::UMOUNT_NOFOLLOW,
            )
        })
    }

    fn unshare(flags: c_int) -> Result<(), Errno> {
        // SAFETY: plain integer; a new namespace only affects this throwaway child.
        check_unit(unsafe { libc::syscall(libc::SYS_unshare, flags) })
    }

    fn unshare_ns() -> Result<(), Errno> {
        unshare(libc::CLONE_NEWNS)
    }

    fn unshare_user() -> Result<(), Errno> {
        unshare(libc::CLONE_NEWUSER)
    }

    fn unshare_net() -> Result<(), Errno> {
        unshare(libc::CLONE_NEWNET)
    }

    fn setns() -> Result<(), Errno> {
        // /dev/null is not a namespace fd: EINVAL if allowed.
        let null = dev_null();
        let fd = null.as_ref().map_or(-1, |f| f.as_raw_fd());
        // SAFETY: plain integers.
        check_unit(unsafe { libc::syscall(libc::SYS_setns, fd, libc::CLONE_NEWNET) })
    }

    fn pivot_root() -> Result<(), Errno> {
        // may_mount() is checked first: EPERM without CAP_SYS_ADMIN, ENOENT with it.
        // SAFETY: NUL-terminated static strings.
        check_unit(unsafe {
            libc::syscall(libc::SYS_pivot_root, MISSING.as_ptr(), MISSING.as_ptr())
        })
    }

    fn chroot() -> Result<(), Errno> {
        // SAFETY: NUL-terminated static string; "/" is the root already.
        check_unit(unsafe { libc::syscall(libc::SYS_chroot, c"/".as_ptr()) })
    }

    fn fsopen() -> Result<(), Errno> {
        // Needs CAP_SYS_ADMIN; even when allowed only a filesystem context fd is returned
        // (closed), nothing is mounted.
        // SAFETY: NUL-terminated static string and a flag.
        check_fd(unsafe {
            libc::syscall(libc::SYS_fsopen, c"tmpfs".as_ptr(), libc::FSOPEN_CLOEXEC)
        })
    }

    fn open_tree() -> Result<(), Errno> {
        // OPEN_TREE_CLONE needs CAP_SYS_ADMIN; the path does not exist, so ENOENT if allowed.
        // SAFETY: NUL-terminated static string and flags.
        check_fd(unsafe {
            libc::syscall(
                libc::SYS_open_tree,
                libc::AT_FDCWD,
                MISSING.as_ptr(),
                libc::OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
            )
        })
    }

    fn ptrace_traceme() -> Result<(), Errno> {
        // The tracer would be the probe itself, which only waits for this child's exit.
        // SAFETY: plain integers.
        check_unit(unsafe { libc::syscall(libc::SYS_ptrace, libc::PTRACE_TRACEME, 0, 0, 0) })
    }

    /// `ptrace(PTRACE_ATTACH, 1)`. If it is allowed, wait for pid 1's attach stop, which
    /// consumes the SIGSTOP the attach sent, and detach with no signal so pid 1 runs on.
    pub fn ptrace_attach_init() -> Result<(), Errno> {
        // SAFETY: plain integers.
        check_unit(unsafe { libc::syscall(libc::SYS_ptrace, libc::PTRACE_ATTACH, 1, 0, 0) })?;
        let _ = reap(1);
        // SAFETY: plain integers.
        unsafe { libc::syscall(libc::SYS_ptrace, libc::PTRACE_DETACH, 1, 0, 0) };
        Ok(())
    }

    fn process_vm_readv() -> Result<(), Errno> {
        // One byte from address 0 of pid 1: EPERM/ESRCH without access, EFAULT with it.
        let mut byte = 0u8;
        let local = libc::iovec {
            iov_base: (&mut byte as *mut u8).cast(),
            iov_len: 1,
        };
        let remote = libc::iovec {
            iov_base: ptr::null_mut(),
            iov_len: 1,
        };
        // SAFETY: `local` points at one writable byte; `remote` is only read by the kernel.
        check_unit(unsafe {
            libc::syscall(libc::SYS_process_vm_readv, 1, &local, 1, &remote, 1, 0)
        })
    }

    fn kexec_load() -> Result<(), Errno> {
        // CAP_SYS_BOOT is checked first; then the undefined flag and the segment count are
        // each EINVAL on their own. Nothing is loaded or unloaded.
        // SAFETY: plain integers and a null segment list.
        check_unit(unsafe {
            libc::syscall(
                libc::SYS_kexec_load,
                0,
                TOO_MANY_KEXEC_SEGMENTS,
                ptr::null::<c_void>(),
                UNDEFINED_KEXEC_FLAG,
            )
        })
    }

    fn kexec_file_load() -> Result<(), Errno> {
        // CAP_SYS_BOOT first; then the undefined flag is EINVAL (and the fds are invalid).
        // SAFETY: plain integers and a null command line of length 0.
        check_unit(unsafe {
            libc::syscall(
                libc::SYS_kexec_file_load,
                -1,
                -1,
                0,
                ptr::null::<c_char>(),
                UNDEFINED_KEXEC_FILE_FLAG,
            )
        })
    }

    fn bpf() -> Result<(), Errno> {
        // A zero-length attr: EINVAL if allowed and permitted (no instructions).
        // SAFETY: null attr with size 0; the kernel copies nothing.
        check_fd(unsafe { libc::syscall(libc::SYS_bpf, BPF_PROG_LOAD, ptr::null::<c_void>(), 0) })
    }

    fn perf_event_open() -> Result<(), Errno> {
        // The attr is copied first: EFAULT if allowed.
        // SAFETY: null attr, which the kernel rejects with EFAULT.
        check_fd(unsafe {
            libc::syscall(
                libc::SYS_perf_event_open,
                ptr::null::<c_void>(),
                0,
                -1,
                -1,
                0,
            )
        })
    }

    fn keyctl() -> Result<(), Errno> {
        // A read-only lookup of the session keyring without creating it.
        // SAFETY: plain integers.
        check_unit(unsafe {
            libc::syscall(
                libc::SYS_keyctl,
                libc::KEYCTL_GET_KEYRING_ID,
                libc::KEY_SPEC_SESSION_KEYRING,
                0,
            )
        })
    }

    fn add_key() -> Result<(), Errno> {
        // Keyring id 0 does not exist: ENOKEY if allowed, no key is added.
        // SAFETY: NUL-terminated static strings, a null payload of length 0.
        check_unit(unsafe {
            libc::syscall(
                libc::SYS_add_key,
                c"user".as_ptr(),
                c"hearth-probe".as_ptr(),
                ptr::null::<c_void>(),
                0,
                0,
            )
        })
    }

    fn request_key() -> Result<(), Errno> {
        // No callout and no destination keyring: a search only, ENOKEY if allowed.
        // SAFETY: NUL-terminated static strings and a null callout.
        check_unit(unsafe {
            libc::syscall(
                libc::SYS_request_key,
                c"user".as_ptr(),
                c"hearth-probe-nonexistent".as_ptr(),
                ptr::null::<c_char>(),
                0,
            )
        })
    }

    fn userfaultfd() -> Result<(), Errno> {
        // UFFD_USER_MODE_ONLY is permitted to unprivileged callers regardless of
        // vm.unprivileged_userfaultfd, so EPERM here means the filter (OK means allowed).
        // SAFETY: plain integer flags.
        check_fd(unsafe {
            libc::syscall(
                libc::SYS_userfaultfd,
                libc::O_CLOEXEC as c_long | UFFD_USER_MODE_ONLY,
            )
        })
    }

    fn open_by_handle_at() -> Result<(), Errno> {
        // handle_bytes 0: EPERM without CAP_DAC_READ_SEARCH, EINVAL with it.
        let mut handle = [0u32; 2];
        // SAFETY: `handle` is a file_handle header (handle_bytes, handle_type) of 8 bytes.
        check_fd(unsafe {
            libc::syscall(
                libc::SYS_open_by_handle_at,
                libc::AT_FDCWD,
                handle.as_mut_ptr(),
                libc::O_RDONLY | libc::O_CLOEXEC,
            )
        })
    }

    fn name_to_handle_at() -> Result<(), Errno> {
        // handle_bytes 0 is too small: EOVERFLOW if allowed (the kernel writes the needed size).
        let mut handle = [0u32; 2];
        let mut mount_id: c_int = 0;
        // SAFETY: a writable 8-byte file_handle header with handle_bytes 0, a writable c_int.
        check_unit(unsafe {
            libc::syscall(
                libc::SYS_name_to_handle_at,
                libc::AT_FDCWD,
                c"/".as_ptr(),
                handle.as_mut_ptr(),
                &mut mount_id,
                0,
            )
        })
    }

    fn init_module() -> Result<(), Errno> {
        // An empty image: EPERM without CAP_SYS_MODULE, ENOEXEC with it.
        let image = [0u8; 1];
        // SAFETY: `image` is readable for the 0 bytes passed; NUL-terminated static string.
        check_unit(unsafe { libc::syscall(libc::SYS_init_module, image.as_ptr(), 0, c"".as_ptr()) })
    }

    fn finit_module() -> Result<(), Errno> {
        // SAFETY: an invalid fd and a NUL-terminated static string: EPERM or EBADF.
        check_unit(unsafe { libc::syscall(libc::SYS_finit_module, -1, c"".as_ptr(), 0) })
    }

    fn delete_module() -> Result<(), Errno> {
        // SAFETY: NUL-terminated static string of a module that does not exist: EPERM or ENOENT.
        check_unit(unsafe {
            libc::syscall(
                libc::SYS_delete_module,
                c"hearth_probe_nonexistent".as_ptr(),
                libc::O_NONBLOCK,
            )
        })
    }

    fn reboot() -> Result<(), Errno> {
        // Magic numbers 0: CAP_SYS_BOOT is checked before the magic, then EINVAL. Never the
        // real magic, so this cannot reboot anything even if allowed.
        // SAFETY: plain integers and a null argument.
        check_unit(unsafe { libc::syscall(libc::SYS_reboot, 0, 0, 0, ptr::null::<c_void>()) })
    }

    fn swapon() -> Result<(), Errno> {
        // SAFETY: NUL-terminated static string: EPERM or ENOENT.
        check_unit(unsafe { libc::syscall(libc::SYS_swapon, MISSING.as_ptr(), 0) })
    }

    fn swapoff() -> Result<(), Errno> {
        // SAFETY: NUL-terminated static string: EPERM or ENOENT.
        check_unit(unsafe { libc::syscall(libc::SYS_swapoff, MISSING.as_ptr()) })
    }

    fn acct() -> Result<(), Errno> {
        // A missing file rather than NULL, because acct(NULL) would switch accounting off:
        // EPERM without CAP_SYS_PACCT, ENOENT with it.
        // SAFETY: NUL-terminated static string.
        check_unit(unsafe { libc::syscall(libc::SYS_acct, MISSING.as_ptr()) })
    }

    fn settimeofday() -> Result<(), Errno> {
        // (NULL, NULL) changes nothing but still passes the CAP_SYS_TIME check.
        // SAFETY: null pointers.
        check_unit(unsafe {
            libc::syscall(
                libc::SYS_settimeofday,
                ptr::null::<c_void>(),
                ptr::null::<c_void>(),
            )
        })
    }

    fn clock_settime() -> Result<(), Errno> {
        // The current time, read just before: if allowed, the clock moves back by the
        // microseconds between the two calls. The kernel validates the value before it checks
        // CAP_SYS_TIME, so a valid time is needed to reach the permission check.
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `now` is a live, writable timespec.
        check_unit(unsafe {
            libc::syscall(libc::SYS_clock_gettime, libc::CLOCK_REALTIME, &mut now)
        })?;
        // SAFETY: `now` is a valid timespec the kernel only reads.
        check_unit(unsafe { libc::syscall(libc::SYS_clock_settime, libc::CLOCK_REALTIME, &now) })
    }

    fn zeroed_timex() -> libc::timex {
        // SAFETY: timex is plain integers (and padding), for which all zeroes is valid;
        // modes 0 makes the calls below read-only queries.
        unsafe { std::mem::zeroed() }
    }

    fn clock_adjtime() -> Result<(), Errno> {
        let mut tx = zeroed_timex();
        // SAFETY: `tx` is a live, writable timex with modes 0.
        check_unit(unsafe { libc::syscall(libc::SYS_clock_adjtime, libc::CLOCK_REALTIME, &mut tx) })
    }

    fn adjtimex() -> Result<(), Errno> {
        let mut tx = zeroed_timex();
        // SAFETY: `tx` is a live, writable timex with modes 0.
        check_unit(unsafe { libc::syscall(libc::SYS_adjtimex, &mut tx) })
    }

    #[cfg(target_arch = "x86_64")]
    fn iopl() -> Result<(), Errno> {
        // Level 0 is the level every process has: OK if allowed, EPERM only from a filter.
        // SAFETY: plain integer.
        check_unit(unsafe { libc::syscall(libc::SYS_iopl, 0) })
    }

    #[cfg(target_arch = "x86_64")]
    fn ioperm() -> Result<(), Errno> {
        // An empty port range: EINVAL if allowed.
        // SAFETY: plain integers.
        check_unit(unsafe { libc::syscall(libc::SYS_ioperm, 0, 0, 0) })
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn iopl() -> Result<(), Errno> {
        Err(Errno(libc::ENOSYS))
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn ioperm() -> Result<(), Errno> {
        Err(Errno(libc::ENOSYS))
    }

    fn quotactl() -> Result<(), Errno> {
        // Q_SYNC without a device syncs quota files everywhere: harmless, needs no capability,
        // so OK if allowed.
        let cmd = (libc::Q_SYNC << 8) | (libc::USRQUOTA & 0xff);
        // SAFETY: a null special device and a null address.
        check_unit(unsafe {
            libc::syscall(
                libc::SYS_quotactl,
                cmd,
                ptr::null::<c_char>(),
                0,
                ptr::null::<c_void>(),
            )
        })
    }

    fn syslog() -> Result<(), Errno> {
        // Asks only for the kernel log buffer size. EPERM also with kernel.dmesg_restrict.
        // SAFETY: a null buffer of length 0.
        check_unit(unsafe {
            libc::syscall(
                libc::SYS_syslog,
                SYSLOG_ACTION_SIZE_BUFFER,
                ptr::null_mut::<c_char>(),
                0,
            )
        })
    }

    fn set_uts_name(nr: c_long) -> Result<(), Errno> {
        // 100 bytes is over the 64-byte limit, which the kernel checks after CAP_SYS_ADMIN:
        // EPERM without it, EINVAL with it; the name is never changed.
        let name = [b'x'; 100];
        // SAFETY: `name` is readable for the 100 bytes passed.
        check_unit(unsafe { libc::syscall(nr, name.as_ptr(), name.len()) })
    }

    fn sethostname() -> Result<(), Errno> {
        set_uts_name(libc::SYS_sethostname)
    }

    fn setdomainname() -> Result<(), Errno> {
        set_uts_name(libc::SYS_setdomainname)
    }

    fn setuid() -> Result<(), Errno> {
        // Raw, not libc's, so glibc does not try to broadcast it to other threads.
        // SAFETY: plain integer; a changed uid only affects this throwaway child.
        check_unit(unsafe { libc::syscall(libc::SYS_setuid, 0) })
    }

    fn mknod() -> Result<(), Errno> {
        // A /dev/null-like character device in /tmp: EPERM without CAP_MKNOD; removed if made.
        // SAFETY: `getpid` takes no arguments.
        let path = format!("/tmp/.hearth-probe-mknod-{}", unsafe { libc::getpid() });
        let path = CString::new(path).map_err(|_| Errno(libc::EINVAL))?;
        let dev = libc::makedev(1, 3);
        // SAFETY: `path` is NUL-terminated; mode and dev are plain integers.
        let result = check_unit(unsafe {
            libc::syscall(
                libc::SYS_mknodat,
                libc::AT_FDCWD,
                path.as_ptr(),
                libc::S_IFCHR | 0o600,
                dev,
            )
        });
        if result.is_ok() {
            // SAFETY: `path` is NUL-terminated; it names the node this call just made.
            unsafe { libc::unlink(path.as_ptr()) };
        }
        result
    }

    fn io_uring_setup() -> Result<(), Errno> {
        // A one-entry ring; closed at once if created. EPERM also with kernel.io_uring_disabled.
        let mut params = [0u32; IO_URING_PARAMS_SIZE / 4];
        // SAFETY: `params` is a writable, zeroed io_uring_params.
        check_fd(unsafe { libc::syscall(libc::SYS_io_uring_setup, 1, params.as_mut_ptr()) })
    }

    fn io_uring_enter() -> Result<(), Errno> {
        // SAFETY: an invalid fd and a null sigset of size 0: EBADF if allowed.
        check_unit(unsafe {
            libc::syscall(
                libc::SYS_io_uring_enter,
                -1,
                0,
                0,
                0,
                ptr::null::<c_void>(),
                0,
            )
        })
    }

    fn io_uring_register() -> Result<(), Errno> {
        // SAFETY: an invalid fd and a null argument: EBADF if allowed.
        check_unit(unsafe {
            libc::syscall(libc::SYS_io_uring_register, -1, 0, ptr::null::<c_void>(), 0)
        })
    }

    /// The child side of a clone that unexpectedly worked leaves at once; the parent reaps it.
    fn after_clone(ret: c_long) -> Result<(), Errno> {
        match check(ret)? {
            0 => exit_now(0),
            pid => {
                let _ = reap(pid as pid_t);
                Ok(())
            }
        }
    }

    fn raw_clone(flags: c_int) -> Result<(), Errno> {
        // SAFETY: without CLONE_VM and with a null stack this is a fork: the child gets its own
        // copy of this single-threaded process and only calls `_exit`.
        after_clone(unsafe {
            libc::syscall(
                libc::SYS_clone,
                (flags | libc::SIGCHLD) as c_long,
                0,
                0,
                0,
                0,
            )
        })
    }

    fn clone_newns() -> Result<(), Errno> {
        raw_clone(libc::CLONE_NEWNS)
    }

    fn clone_newuser() -> Result<(), Errno> {
        raw_clone(libc::CLONE_NEWUSER)
    }

    fn clone_newnet() -> Result<(), Errno> {
        raw_clone(libc::CLONE_NEWNET)
    }

    fn clone3() -> Result<(), Errno> {
        // All zeroes: flags 0, no exit signal (reaped with __WALL), no stack, i.e. a fork.
        let args = [0u64; CLONE_ARGS_SIZE / 8];
        // SAFETY: `args` is a readable clone_args of the size passed; a fork-like child as in
        // `raw_clone` only calls `_exit`.
        after_clone(unsafe { libc::syscall(libc::SYS_clone3, args.as_ptr(), CLONE_ARGS_SIZE) })
    }

    fn fork_probe() -> Result<(), Errno> {
        match fork()? {
            Fork::Child => exit_now(0),
            Fork::Parent(pid) => {
                let _ = reap(pid);
                Ok(())
            }
        }
    }

    fn socket(domain: c_int, kind: c_int, protocol: c_int) -> Result<(), Errno> {
        // SAFETY: plain integers; the socket is closed at once.
        check_fd(unsafe {
            libc::syscall(
                libc::SYS_socket,
                domain,
                kind | libc::SOCK_CLOEXEC,
                protocol,
            )
        })
    }

    fn socket_raw() -> Result<(), Errno> {
        socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP)
    }

    fn socket_packet() -> Result<(), Errno> {
        socket(libc::AF_PACKET, libc::SOCK_RAW, 0)
    }

    fn socket_inet() -> Result<(), Errno> {
        socket(libc::AF_INET, libc::SOCK_STREAM, 0)
    }

    fn socket_inet6() -> Result<(), Errno> {
        socket(libc::AF_INET6, libc::SOCK_STREAM, 0)
    }

    fn socket_icmp() -> Result<(), Errno> {
        // An unprivileged "ping" socket: EACCES when the gid is outside
        // net.ipv4.ping_group_range, which is per network namespace.
        socket(libc::AF_INET, libc::SOCK_DGRAM, libc::IPPROTO_ICMP)
    }

    fn socket_unix() -> Result<(), Errno> {
        socket(libc::AF_UNIX, libc::SOCK_STREAM, 0)
    }

    fn socket_netlink_route() -> Result<(), Errno> {
        socket(libc::AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_ROUTE)
    }

    fn tiocsti() -> Result<(), Errno> {
        // /dev/null is not a terminal, so nothing can be injected: ENOTTY if allowed.
        let null = dev_null();
        let fd = null.as_ref().map_or(-1, |f| f.as_raw_fd());
        let byte: c_char = b'x' as c_char;
        // SAFETY: `byte` is a readable char, which is all TIOCSTI reads.
        check_unit(unsafe { libc::syscall(libc::SYS_ioctl, fd, libc::TIOCSTI, &byte) })
    }

    fn personality() -> Result<(), Errno> {
        // 0xffffffff only queries the current persona.
        // SAFETY: plain integer.
        check_unit(unsafe { libc::syscall(libc::SYS_personality, 0xffff_ffff_u32 as c_long) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    fn parse_str(list: &[&str]) -> Result<Command, UsageError> {
        parse(&args(list))
    }

    #[test]
    fn errno_names_cover_the_common_ones() {
        for (value, name) in [
            (libc::EPERM, "EPERM"),
            (libc::EACCES, "EACCES"),
            (libc::ENOENT, "ENOENT"),
            (libc::EROFS, "EROFS"),
            (libc::ENOSPC, "ENOSPC"),
            (libc::ENOSYS, "ENOSYS"),
            (libc::ECONNREFUSED, "ECONNREFUSED"),
            (libc::ENETUNREACH, "ENETUNREACH"),
            (libc::EAGAIN, "EAGAIN"),
            (libc::EDQUOT, "EDQUOT"),
            (libc::ETIMEDOUT, "ETIMEDOUT"),
            (libc::EHWPOISON, "EHWPOISON"),
        ] {
            assert_eq!(Errno(value).to_string(), name);
        }
    }

    #[test]
    fn errno_aliases_print_the_canonical_name() {
        assert_eq!(Errno(libc::EWOULDBLOCK).to_string(), "EAGAIN");
        assert_eq!(Errno(libc::EDEADLOCK).to_string(), "EDEADLK");
        assert_eq!(Errno(libc::ENOTSUP).to_string(), "EOPNOTSUPP");
    }

    #[test]
    fn errno_table_is_complete_and_unique() {
        let mut values: Vec<i32> = ERRNO_NAMES.iter().map(|(v, _)| *v).collect();
        values.sort_unstable();
        values.dedup();
        assert_eq!(values.len(), ERRNO_NAMES.len(), "duplicate errno value");
        // Linux leaves 41 and 58 unassigned.
        let expected: Vec<i32> = (1..=133).filter(|v| *v != 41 && *v != 58).collect();
        assert_eq!(values, expected);
        for (_, name) in ERRNO_NAMES {
            assert!(name.starts_with('E') && !name.contains(' '), "{name}");
        }
    }

    #[test]
    fn unknown_errno_values_get_a_spaceless_name() {
        assert_eq!(Errno(999).to_string(), "ERRNO999");
        assert_eq!(Errno(0).to_string(), "EUNKNOWN");
    }

    #[test]
    fn io_errors_map_to_errno() {
        let timed_out = io::Error::new(io::ErrorKind::TimedOut, "connection timed out");
        assert_eq!(Errno::from_io(&timed_out), Errno(libc::ETIMEDOUT));
        let refused = io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(Errno::from_io(&refused).to_string(), "ECONNREFUSED");
    }

    #[test]
    fn outcomes_display_as_the_contract_says() {
        assert_eq!(Outcome::Ok.to_string(), "OK");
        assert_eq!(Outcome::Err(Errno(libc::EPERM)).to_string(), "EPERM");
        assert_eq!(Outcome::Signaled(libc::SIGSYS).to_string(), "SIGSYS");
        assert_eq!(Outcome::Signaled(40).to_string(), "SIG40");
        assert_eq!(
            Outcome::NoFork(Errno(libc::EAGAIN)).to_string(),
            "NOFORK_EAGAIN"
        );
    }

    #[test]
    fn signals_parse_by_number_and_name() {
        assert_eq!(parse_signal("9"), Some(libc::SIGKILL));
        assert_eq!(parse_signal("KILL"), Some(libc::SIGKILL));
        assert_eq!(parse_signal("sigterm"), Some(libc::SIGTERM));
        assert_eq!(parse_signal("SIGSEGV"), Some(libc::SIGSEGV));
        assert_eq!(parse_signal("NOPE"), None);
        assert_eq!(parse_signal("65"), None);
        assert_eq!(parse_signal("-1"), None);
    }

    #[test]
    fn simple_subcommands_parse_and_refuse_extra_arguments() {
        assert_eq!(parse_str(&["whoami"]), Ok(Command::Whoami));
        assert_eq!(parse_str(&["status"]), Ok(Command::Status));
        assert_eq!(parse_str(&["help"]), Ok(Command::Help));
        assert!(parse_str(&["whoami", "extra"]).is_err());
        assert!(parse_str(&[]).is_err());
        assert!(parse_str(&["bogus"]).is_err());
    }

    #[test]
    fn try_syscall_validates_names_and_expands_all() {
        assert_eq!(
            parse_str(&["try-syscall", "mount", "socket_inet"]),
            Ok(Command::TrySyscall(vec!["mount", "socket_inet"]))
        );
        let err = parse_str(&["try-syscall", "mount", "mountt"]).unwrap_err();
        assert!(err.0.contains("mountt"), "{err}");
        assert!(parse_str(&["try-syscall"]).is_err());
        match parse_str(&["try-syscall", "all"]) {
            Ok(Command::TrySyscall(names)) => assert_eq!(names.len(), sys::SYSCALL_PROBES.len()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn syscall_probe_names_are_unique_and_spaceless() {
        let mut names: Vec<&str> = sys::SYSCALL_PROBES.iter().map(|(n, _)| *n).collect();
        assert!(names.iter().all(|n| !n.contains(' ') && !n.contains('=')));
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len());
        assert!(!names.contains(&"all"));
    }

    #[test]
    fn connect_takes_ip_literals_and_localhost_only() {
        assert_eq!(
            parse_str(&["connect", "127.0.0.1:9001"]),
            Ok(Command::Connect("127.0.0.1:9001".parse().unwrap()))
        );
        assert_eq!(
            parse_str(&["connect", "[::1]:80"]),
            Ok(Command::Connect("[::1]:80".parse().unwrap()))
        );
        assert_eq!(
            parse_str(&["connect", "localhost:80"]),
            Ok(Command::Connect("127.0.0.1:80".parse().unwrap()))
        );
        assert!(parse_str(&["connect", "example.com:80"]).is_err());
        assert!(parse_str(&["connect", "127.0.0.1"]).is_err());
        assert!(parse_str(&["connect", "127.0.0.1:99999"]).is_err());
    }

    #[test]
    fn numeric_arguments_are_range_checked() {
        assert_eq!(
            parse_str(&["fill", "/tmp"]),
            Ok(Command::Fill {
                dir: "/tmp".into(),
                chunk_kb: DEFAULT_CHUNK_KB
            })
        );
        assert_eq!(
            parse_str(&["fill", "/tmp", "64"]),
            Ok(Command::Fill {
                dir: "/tmp".into(),
                chunk_kb: 64
            })
        );
        assert!(parse_str(&["fill", "/tmp", "0"]).is_err());
        assert!(parse_str(&["fill"]).is_err());
        assert_eq!(parse_str(&["memhog", "64"]), Ok(Command::Memhog { mb: 64 }));
        assert!(parse_str(&["memhog", "lots"]).is_err());
        assert!(parse_str(&["memhog", "-1"]).is_err());
        assert_eq!(parse_str(&["exit", "3"]), Ok(Command::Exit(3)));
        assert!(parse_str(&["exit", "256"]).is_err());
        assert_eq!(
            parse_str(&["forkbomb"]),
            Ok(Command::Forkbomb { max: None })
        );
        assert_eq!(
            parse_str(&["forkbomb", "5"]),
            Ok(Command::Forkbomb { max: Some(5) })
        );
        assert!(parse_str(&["forkbomb", "0"]).is_err());
        assert_eq!(
            parse_str(&["kill-self", "TERM"]),
            Ok(Command::KillSelf(libc::SIGTERM))
        );
    }

    #[test]
    fn sleep_takes_fractional_non_negative_seconds() {
        assert_eq!(
            parse_str(&["sleep", "0.25"]),
            Ok(Command::Sleep(Duration::from_millis(250)))
        );
        assert_eq!(
            parse_str(&["sleep", "2"]),
            Ok(Command::Sleep(Duration::from_secs(2)))
        );
        assert!(parse_str(&["sleep", "-1"]).is_err());
        assert!(parse_str(&["sleep", "NaN"]).is_err());
        assert!(parse_str(&["sleep", "soon"]).is_err());
    }

    #[test]
    fn path_and_text_arguments_are_kept_as_given() {
        assert_eq!(
            parse_str(&["write", "/var/task/x"]),
            Ok(Command::Write("/var/task/x".into()))
        );
        assert!(parse_str(&["read"]).is_err());
        assert_eq!(
            parse_str(&["echo", "a", "b c"]),
            Ok(Command::Echo(args(&["a", "b c"])))
        );
        assert_eq!(parse_str(&["echo"]), Ok(Command::Echo(Vec::new())));
    }

    #[test]
    fn status_fields_are_found_by_exact_key() {
        let text = "Name:\tprobe\nCapEff:\t0000000000000000\nSeccomp:\t2\nSeccomp_filters:\t1\n\
                    Uid:\t1000\t1000\t1000\t1000\n";
        assert_eq!(status_field(text, "CapEff"), Some("0000000000000000"));
        assert_eq!(status_field(text, "Seccomp"), Some("2"));
        assert_eq!(status_field(text, "Seccomp_filters"), Some("1"));
        assert_eq!(status_field(text, "CapAmb"), None);
        assert_eq!(
            status_field(text, "Uid").and_then(|v| v.split_whitespace().next()),
            Some("1000")
        );
    }

    #[test]
    fn proc_net_dev_lists_interface_names() {
        let text = "Inter-|   Receive                            |  Transmit\n \
                    face |bytes    packets errs drop fifo frame compressed multicast|bytes\n    \
                    lo:    1234      10    0    0    0     0          0         0     1234\n  \
                    eth0: 99 1 0 0 0 0 0 0 99\n";
        assert_eq!(net_dev_ifaces(text), vec!["lo", "eth0"]);
    }

    #[test]
    fn rlimit_infinity_prints_unlimited() {
        assert_eq!(rlimit_text(libc::RLIM_INFINITY), "unlimited");
        assert_eq!(rlimit_text(1024), "1024");
    }

    #[test]
    fn echo_and_exit_run_without_side_effects() {
        let mut out = Vec::new();
        let code = run(Command::Echo(args(&["hello", "world"])), &mut out).unwrap();
        assert_eq!(code, ExitCode::SUCCESS);
        assert_eq!(out, b"hello world\n");
        let mut out = Vec::new();
        assert_eq!(run(Command::Exit(7), &mut out).unwrap(), ExitCode::from(7));
        assert!(out.is_empty());
    }
}
