//! A throwaway PostgreSQL cluster from Debian's `postgresql` binaries
//! (`scripts/bootstrap.sh --test` installs them), for the Postgres tests and
//! the index benchmark.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A PostgreSQL cluster in a temporary directory, stopped on drop.
pub struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    as_root: bool,
}

fn pg_bin() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed: run scripts/bootstrap.sh --test")
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    found.sort();
    found
        .pop()
        .expect("no initdb under /usr/lib/postgresql: run scripts/bootstrap.sh --test")
}

impl Postgres {
    pub fn start(dir: &Path) -> Self {
        let bin = pg_bin();
        let data = dir.join("pg");
        std::fs::create_dir_all(&data).unwrap();
        // initdb refuses to run as root: run the server as `postgres` then.
        let as_root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        if as_root {
            assert!(Command::new("chown")
                .args(["-R", "postgres"])
                .arg(dir)
                .status()
                .unwrap()
                .success());
        }
        let pg = Self {
            bin,
            data,
            port: super::common::free_port(),
            as_root,
        };
        pg.run(
            "initdb",
            &[
                "-D",
                pg.data.to_str().unwrap(),
                "-U",
                "batchboard",
                "-A",
                "trust",
                "--no-sync",
            ],
        );
        pg.run(
            "pg_ctl",
            &[
                "-D",
                pg.data.to_str().unwrap(),
                "-o",
                &format!(
                    "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
                    pg.port,
                    pg.data.display()
                ),
                "-l",
                pg.data.join("log").to_str().unwrap(),
                "-w",
                "start",
            ],
        );
        pg
    }

    pub fn run(&self, tool: &str, args: &[&str]) {
        let exe = self.bin.join(tool);
        let mut cmd = if self.as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        let out = cmd.args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{tool}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn url(&self) -> String {
        self.url_of("postgres")
    }

    /// Runs `sql` with psql; its output.
    pub fn psql(&self, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "batchboard", "-d", "postgres", "-At", "-c", sql])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The URL of database `name` in this cluster.
    pub fn url_of(&self, name: &str) -> String {
        format!("postgres://batchboard@127.0.0.1:{}/{name}", self.port)
    }

    /// The postmaster's process id, read from its pid file.
    #[allow(dead_code)] // the benchmarks'
    pub fn pid(&self) -> String {
        let file = std::fs::read_to_string(self.data.join("postmaster.pid")).unwrap_or_default();
        file.lines().next().unwrap_or("").trim().to_string()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.data.to_str().unwrap().to_string();
        self.run("pg_ctl", &["-D", &data, "-m", "immediate", "stop"]);
    }
}
