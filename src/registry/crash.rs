//! Crash-safety test of the registry (test-only module).
//!
//! The test binary re-runs itself (`current_exe()` with a filter for [`tests::crash_child`] and
//! an environment variable naming the state directory) as a child that performs creates, code
//! and configuration updates, publishes and deletes without pause, printing one `ACK` line after
//! each call returns. The parent reads a random number of acknowledgements, kills the child
//! with SIGKILL wherever it happens to be, reopens the registry and checks that every
//! acknowledged change is there, that at most the one unacknowledged call in flight went
//! further, and that nothing is half-written: the database passes `integrity_check` and
//! `foreign_key_check`, and every version's code tree and kept zip exist and match.
//!
//! Does not: simulate power loss (SIGKILL leaves the page cache intact; the `fsync`s that cover
//! power loss are argued in `schema` and `blobs`, not tested).

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::fs;
    use std::io::{BufRead, BufReader, Write};
    use std::path::Path;
    use std::process::{Command, Stdio};
    use std::time::Duration;

    use crate::function::env::random_hex32;
    use crate::function::runtime::Runtime;
    use crate::registry::store::ZIP_DIR;
    use crate::registry::tests::{account, zip_with};
    use crate::registry::{CodeUpdate, ConfigUpdate, CreateInput, Registry, RegistryError};

    /// Names the child's state directory; unset in ordinary test runs.
    const CHILD_DIR: &str = "HEARTH_REGISTRY_CRASH_CHILD";
    /// Distinguishes the names each child round creates.
    const CHILD_ROUND: &str = "HEARTH_REGISTRY_CRASH_ROUND";
    /// The child test's full path, for libtest's `--exact` filter.
    const CHILD_TEST: &str = "registry::crash::tests::crash_child";
    /// Kill/reopen rounds on the same state directory.
    const ROUNDS: u32 = 5;

    /// What the acknowledgements say a function should look like.
    #[derive(Debug, Default, Clone)]
    struct Expected {
        code: u32,
        memory: u32,
        published: bool,
        deleted: bool,
        /// The delete that follows this function's successor may have committed unacknowledged.
        maybe_deleted: bool,
    }

    fn random_below(n: u64) -> u64 {
        u64::from_str_radix(&random_hex32()[..12], 16).unwrap_or(0) % n
    }

    fn ack(line: &str) {
        let mut out = std::io::stdout().lock();
        writeln!(out, "ACK {line}").unwrap();
        out.flush().unwrap();
    }

    /// The child: does nothing unless started by the parent test with [`CHILD_DIR`] set.
    #[test]
    fn crash_child() {
        let Ok(dir) = std::env::var(CHILD_DIR) else {
            return;
        };
        let round = std::env::var(CHILD_ROUND).unwrap_or_default();
        let mut reg = Registry::open(Path::new(&dir), account()).unwrap();
        // Bounded so a parent that fails to kill it does not leave it running forever.
        for i in 0..5_000u32 {
            let name = format!("f{round}_{i}");
            let zip = zip_with(&format!("{name}:0"));
            let mut input = CreateInput::new(&name, Runtime::Provided, "h", &zip);
            input.env = BTreeMap::from([("ROUND".to_owned(), round.clone())]);
            reg.create_function(input).unwrap();
            ack(&format!("C {name}"));
            let zip = zip_with(&format!("{name}:1"));
            let update = CodeUpdate {
                zip: &zip,
                revision_id: None,
                publish: false,
            };
            reg.update_function_code(&name, update).unwrap();
            ack(&format!("U {name} 1"));
            reg.publish_version(&name, None, None, None).unwrap();
            ack(&format!("P {name}"));
            let update = ConfigUpdate {
                memory_mb: Some(256),
                ..ConfigUpdate::default()
            };
            reg.update_function_configuration(&name, update, None)
                .unwrap();
            ack(&format!("M {name} 256"));
            if i % 3 == 2 {
                let victim = format!("f{round}_{}", i - 1);
                reg.delete_function(&victim, None).unwrap();
                ack(&format!("D {victim}"));
            }
        }
    }

    /// Runs one child round, kills it after a random number of acknowledgements, and returns
    /// every acknowledgement it printed.
    fn run_child(dir: &Path, round: u32) -> Vec<String> {
        let kill_after = 2 + random_below(60);
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([CHILD_TEST, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR, dir)
            .env(CHILD_ROUND, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut acks = Vec::new();
        while (acks.len() as u64) < kill_after {
            match lines.next() {
                Some(line) => {
                    if let Some(a) = line.unwrap().strip_prefix("ACK ") {
                        acks.push(a.to_owned());
                    }
                }
                None => panic!("child ended before being killed (see its stderr)"),
            }
        }
        // A random extra moment, so the kill lands anywhere inside the next call (this only
        // spreads the kill point; nothing is asserted about time).
        std::thread::sleep(Duration::from_micros(random_below(3_000)));
        child.kill().unwrap(); // SIGKILL
                               // Lines already in the pipe were printed after their call returned: acknowledged too.
        for line in lines {
            if let Some(a) = line.unwrap().strip_prefix("ACK ") {
                acks.push(a.to_owned());
            }
        }
        let status = child.wait().unwrap();
        assert!(!status.success(), "child was not killed: {status}");
        acks
    }

    fn apply(expected: &mut BTreeMap<String, Expected>, ack: &str) {
        let parts: Vec<&str> = ack.split(' ').collect();
        let e = expected.entry(parts[1].to_owned()).or_default();
        match parts[0] {
            "C" => e.memory = 128,
            "U" => e.code = parts[2].parse().unwrap(),
            "P" => e.published = true,
            "M" => e.memory = parts[2].parse().unwrap(),
            "D" => e.deleted = true,
            other => panic!("unknown ack {other}"),
        }
    }

    /// Checks the reopened state against the acknowledgements; returns how many functions
    /// exist that no acknowledgement mentions (creates committed but not yet acknowledged).
    fn verify(dir: &Path, expected: &BTreeMap<String, Expected>) -> usize {
        let reg = Registry::open(dir, account()).unwrap();
        assert_eq!(reg.integrity_check().unwrap(), "ok");
        assert!(reg.unrepaired_code().is_empty());
        let mut marker = None;
        let mut versions = Vec::new();
        loop {
            let (page, next) = reg.list_all_versions(marker.as_deref(), None).unwrap();
            versions.extend(page);
            match next {
                Some(m) => marker = Some(m),
                None => break,
            }
        }
        // Nothing half-written: every version's code is complete and kept.
        for v in &versions {
            let data = fs::read_to_string(v.code_dir.join("data.txt"))
                .unwrap_or_else(|e| panic!("{}:{} code: {e}", v.name, v.version));
            assert!(data.starts_with(&format!("{}:", v.name)), "{data}");
            let zip = dir.join(ZIP_DIR).join(format!("{}.zip", v.code_sha256));
            assert_eq!(fs::metadata(&zip).unwrap().len(), v.code_size);
        }
        let mut unacknowledged = 0;
        for f in versions.iter().filter(|v| v.version == "$LATEST") {
            if !expected.contains_key(&f.name) {
                unacknowledged += 1;
            }
        }
        for (name, e) in expected {
            let latest = match reg.get_function(name, None) {
                Err(RegistryError::FunctionNotFound { .. }) => {
                    assert!(
                        e.deleted || e.maybe_deleted,
                        "acknowledged function {name} lost"
                    );
                    continue;
                }
                other => other.unwrap(),
            };
            assert!(!e.deleted, "acknowledged delete of {name} lost");
            let code: u32 = fs::read_to_string(latest.code_dir.join("data.txt"))
                .unwrap()
                .rsplit(':')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            // The acknowledged value, or the next call's if it committed before the kill.
            assert!(
                code == e.code || code == e.code + 1,
                "{name}: code {code}, {e:?}"
            );
            assert!(
                latest.memory_mb == e.memory || latest.memory_mb == 256,
                "{name}: memory {}, {e:?}",
                latest.memory_mb
            );
            if e.published {
                let v1 = reg.get_function(name, Some("1")).unwrap();
                assert!(v1.code_dir.join("data.txt").is_file());
            }
        }
        unacknowledged
    }

    #[test]
    fn sigkill_at_random_moments_loses_no_acknowledged_change() {
        if std::env::var_os(CHILD_DIR).is_some() {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let mut expected = BTreeMap::new();
        let mut total_acks = 0;
        for round in 0..ROUNDS {
            let acks = run_child(tmp.path(), round);
            total_acks += acks.len();
            for a in &acks {
                apply(&mut expected, a);
            }
            // After `M f<r>_<i>` with i % 3 == 2 the call in flight was the delete of f<r>_<i-1>.
            if let Some(last) = acks.last().and_then(|a| a.strip_prefix("M ")) {
                let name = last.split(' ').next().unwrap();
                let i: u32 = name.rsplit('_').next().unwrap().parse().unwrap();
                if i % 3 == 2 {
                    let victim = format!("f{round}_{}", i - 1);
                    expected.entry(victim).or_default().maybe_deleted = true;
                }
            }
            let unacknowledged = verify(tmp.path(), &expected);
            // At most one create per round can have committed without its acknowledgement.
            assert!(
                unacknowledged <= (round + 1) as usize,
                "{unacknowledged} unexplained functions after round {round}"
            );
        }
        assert!(total_acks >= (2 * ROUNDS) as usize);
    }
}
