//! A real rsyslog collector for tests: Debian's `rsyslogd -n -f CONF -i PIDFILE`, `imtcp` on
//! a loopback port (optionally TLS through gnutls), writing every message it receives to a
//! file. Killed on drop; `stop`/`start` simulate a collector outage on the same port.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// CA, certificate and key for a TLS listener (PEM files).
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub struct Rsyslog {
    pub port: u16,
    pub received: PathBuf,
    dir: PathBuf,
    child: Option<Child>,
}

pub fn rsyslogd() -> PathBuf {
    let p = PathBuf::from("/usr/sbin/rsyslogd");
    assert!(p.exists(), "rsyslogd not found: apt-get install -y rsyslog rsyslog-gnutls");
    p
}

impl Rsyslog {
    pub fn start(dir: &Path, tls: Option<&TlsFiles>) -> Self {
        std::fs::create_dir_all(dir.join("work")).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let received = dir.join("received.log");
        let (global_tls, input_tls) = match tls {
            Some(t) => (
                format!(
                    "global(DefaultNetstreamDriver=\"gtls\" DefaultNetstreamDriverCAFile=\"{}\" DefaultNetstreamDriverCertFile=\"{}\" DefaultNetstreamDriverKeyFile=\"{}\")\n",
                    t.ca.display(),
                    t.cert.display(),
                    t.key.display()
                ),
                " StreamDriver.Name=\"gtls\" StreamDriver.Mode=\"1\" StreamDriver.AuthMode=\"anon\"",
            ),
            None => (String::new(), ""),
        };
        let conf = format!(
            "global(workDirectory=\"{work}\" maxMessageSize=\"64k\")\n{global_tls}module(load=\"imtcp\"{input_tls})\ntemplate(name=\"raw\" type=\"string\" string=\"%TIMESTAMP:::date-rfc3339% %HOSTNAME% %APP-NAME% %msg%\\n\")\nruleset(name=\"audit\") {{ action(type=\"omfile\" file=\"{out}\" template=\"raw\") }}\ninput(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"audit\")\n",
            work = dir.join("work").display(),
            out = received.display(),
        );
        std::fs::write(dir.join("rsyslog.conf"), conf).unwrap();
        let mut r = Self { port, received, dir: dir.to_path_buf(), child: None };
        r.start_again();
        r
    }

    /// Starts the collector (again) on the same port.
    pub fn start_again(&mut self) {
        let child = Command::new(rsyslogd())
            .args(["-n", "-f"])
            .arg(self.dir.join("rsyslog.conf"))
            .arg("-i")
            .arg(self.dir.join("rsyslogd.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(start.elapsed() < Duration::from_secs(10), "rsyslogd did not listen on {}", self.port);
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Stops the collector: its connections drop, the port refuses.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_file(self.dir.join("rsyslogd.pid"));
    }

    /// The JSON records received so far (what follows the first `{` of each line).
    pub fn records(&self) -> Vec<String> {
        std::fs::read_to_string(&self.received)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.find('{').map(|i| l[i..].trim_end().to_owned()))
            .collect()
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A throwaway CA and a certificate for 127.0.0.1 (IP SAN), made with openssl.
pub fn tls_files(dir: &Path) -> TlsFiles {
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=sshwarden test CA",
    ]);
    run(&["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem", "-out", "cert.csr", "-subj", "/CN=127.0.0.1"]);
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "cert.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "cert.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
    TlsFiles { ca: dir.join("ca.pem"), cert: dir.join("cert.pem"), key: dir.join("key.pem") }
}
