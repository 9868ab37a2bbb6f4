//! Redis over TLS with an ACL user:
//! `rediss://USER:PASSWORD@HOST:PORT/?tls_ca=..&tls_cert=..&tls_key=..` against a
//! redis-server of this test's own started with `tls-port`, client certificates required
//! (`tls-auth-clients yes`), the `default` user off and one ACL user limited to Sluice's
//! keys (`~sluice:*`). The certificates are made by openssl here. An event goes in over
//! HTTP and reaches a local HTTP target, so the ingest, router and dispatcher connections all
//! spoke TLS; wrong credentials or certificates leave `/readyz` at 503.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, structured_event, Receiver};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by
/// the CA; and a second CA that signed nothing of this.
fn certificates(dir: &Path) {
    for ca in ["ca", "other-ca"] {
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                &format!("/CN=sluice test {ca}"),
                "-keyout",
                &format!("{ca}.key"),
                "-out",
                &format!("{ca}.pem"),
            ],
        );
    }
    for (name, ext) in [
        (
            "server",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        ),
        ("client", "extendedKeyUsage=clientAuth\n"),
    ] {
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                &format!("/CN=sluice test {name}"),
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
            ],
        );
        std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &format!("{name}.ext"),
                "-out",
                &format!("{name}.pem"),
            ],
        );
    }
}

struct TlsRedis {
    port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TlsRedis {
    /// Starts redis-server with TLS only (no plain port), or `None` with a loud line when
    /// redis-server or openssl is missing (a failure under CI).
    fn start() -> Option<TlsRedis> {
        for tool in ["redis-server", "openssl"] {
            if Command::new(tool).arg("--version").output().is_err() {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "{tool} is missing under CI"
                );
                eprintln!("\n*** SKIPPED: {tool} is not installed ***\n");
                return None;
            }
        }
        let dir = tempfile::tempdir().unwrap();
        certificates(dir.path());
        let port = free_port();
        let conf = format!(
            "port 0\nbind 127.0.0.1\ntls-port {port}\ntls-cert-file server.pem\n\
             tls-key-file server.key\ntls-ca-cert-file ca.pem\ntls-auth-clients yes\n\
             save \"\"\nappendonly no\nuser default off\n\
             user app on >s3cret@pass ~sluice:* +@all\n"
        );
        std::fs::write(dir.path().join("redis.conf"), conf).unwrap();
        let child = Command::new("redis-server")
            .arg("redis.conf")
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let redis = TlsRedis { port, dir, child };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "redis-server with TLS did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(redis)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The URL with the ACL user, trusting `ca` and presenting the client certificate.
    fn url(&self, password: &str, ca: &str, client_cert: bool) -> String {
        let mut url = format!(
            "rediss://app:{password}@127.0.0.1:{}/?tls_ca={}",
            self.port,
            self.file(ca).display()
        );
        if client_cert {
            url += &format!(
                "&tls_cert={}&tls_key={}",
                self.file("client.pem").display(),
                self.file("client.key").display()
            );
        }
        url
    }
}

struct Sluice {
    port: u16,
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Sluice {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sluice {
    async fn start(redis_url: &str, config: &str) -> Sluice {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sluice.yaml");
        std::fs::write(&path, config).unwrap();
        let log = dir.path().join("sluice.log");
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["serve", "--config"])
            .arg(&path)
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--redis",
                redis_url,
            ])
            .env("RUST_LOG", "info")
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let gw = Sluice {
            port,
            child,
            log,
            _dir: dir,
        };
        let start = Instant::now();
        while gw.status("/healthz").await != 200 {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "no /healthz: {}",
                gw.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        gw
    }

    async fn status(&self, path: &str) -> u16 {
        reqwest::get(format!("http://127.0.0.1:{}{path}", self.port))
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    }

    /// `/readyz` after Redis had a few seconds to answer.
    async fn ready(&self) -> u16 {
        let start = Instant::now();
        loop {
            let s = self.status("/readyz").await;
            if s == 200 || start.elapsed() > Duration::from_secs(4) {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn config(target: &str) -> String {
    format!(
        "buses: [{{name: orders}}]\nrules:\n  - name: all\n    bus: orders\n    targets:\n      - {{name: t, kind: http, url: \"{target}\"}}\n"
    )
}

/// Posts a structured-mode event to the bus `orders`; returns the status.
async fn post(gw: &Sluice, body: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/buses/orders/events", gw.port))
        .header("content-type", "application/cloudevents+json")
        .body(body.to_string())
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

#[tokio::test]
async fn events_flow_through_redis_over_tls_with_an_acl_user() {
    let Some(redis) = TlsRedis::start() else {
        return;
    };
    let receiver = Receiver::start().await;
    let gw = Sluice::start(
        &redis.url("s3cret%40pass", "ca.pem", true),
        &config(&receiver.url("/hook")),
    )
    .await;
    assert_eq!(gw.ready().await, 200, "{}", gw.logs());
    let status = post(&gw, &structured_event("tls-1", "order.paid", r#"{"n":1}"#)).await;
    assert_eq!(status, 202, "{}", gw.logs());
    assert!(
        common::wait_until(Duration::from_secs(15), || receiver.count() == 1).await,
        "{}",
        gw.logs()
    );
    assert_eq!(receiver.ce_ids(), ["tls-1"]);
}

#[tokio::test]
async fn wrong_password_certificate_or_ca_leave_the_gateway_unready() {
    let Some(redis) = TlsRedis::start() else {
        return;
    };
    let cfg = config("http://127.0.0.1:9/unused");
    for (case, url) in [
        ("wrong password", redis.url("wrong", "ca.pem", true)),
        (
            "no client certificate",
            redis.url("s3cret%40pass", "ca.pem", false),
        ),
        (
            "server not signed by the trusted CA",
            redis.url("s3cret%40pass", "other-ca.pem", true),
        ),
        (
            "plain TCP to the TLS port",
            format!("redis://app:s3cret%40pass@127.0.0.1:{}", redis.port),
        ),
    ] {
        let gw = Sluice::start(&url, &cfg).await;
        assert_eq!(gw.ready().await, 503, "{case}: {}", gw.logs());
        let status = post(&gw, &structured_event("x", "t", "{}")).await;
        assert_eq!(status, 503, "{case}");
    }
}

/// `sluice check` reads the TLS files of the config's `redis` URL and names what is wrong.
#[test]
fn check_reports_unusable_tls_options() {
    let dir = tempfile::tempdir().unwrap();
    let run = |redis: &str| {
        let path = dir.path().join("sluice.yaml");
        std::fs::write(&path, format!("redis: \"{redis}\"\nbuses: [{{name: b}}]\n")).unwrap();
        common::sluice(&["check", "--config", path.to_str().unwrap()])
    };
    let (code, out, err) = run("rediss://app:pw@127.0.0.1:6380/?tls_ca=/no/such/ca.pem");
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("redis:") && err.contains("tls_ca=/no/such/ca.pem"),
        "{err}"
    );
    let (code, _, err) = run("redis://127.0.0.1:6379/?tls_ca=/etc/hostname");
    assert_eq!(code, 1);
    assert!(err.contains("rediss://"), "{err}");
    let (code, _, err) = run("rediss://127.0.0.1:6380/?tls_cert=/etc/hostname");
    assert_eq!(code, 1);
    assert!(err.contains("tls_cert and tls_key"), "{err}");
    certificates(dir.path());
    let ca = dir.path().join("ca.pem");
    let (code, out, err) = run(&format!(
        "rediss://app:pw@127.0.0.1:6380/?tls_ca={}",
        ca.display()
    ));
    assert_eq!(code, 0, "{out}{err}");
}
