//! `herald serve` as a user runs it: banner, configuration sources, durable restart, SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Served {
    child: Child,
    banner: Vec<String>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(args: &[&str], envs: &[(&str, &str)]) -> Served {
    let mut command = Command::new(env!("CARGO_BIN_EXE_herald"));
    command
        .arg("serve")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (name, value) in envs {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("herald starts");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut banner = Vec::new();
    // The banner ends with the publish line (or the note about keys).
    for line in lines.by_ref() {
        let line = line.expect("banner line");
        let last = line.contains("-d 'data=hello'") || line.starts_with("Publishing needs a key");
        banner.push(line);
        if last {
            break;
        }
    }
    Served { child, banner }
}

fn http(port: u16, request: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
}

fn publish(port: u16, token: &str, form: &str) -> String {
    http(
        port,
        &format!(
            "POST /.well-known/mercure HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{form}",
            form.len()
        ),
    )
}

fn dev_token(banner: &[String]) -> String {
    banner
        .iter()
        .find_map(|line| line.trim().strip_prefix("export TOKEN="))
        .expect("dev mode prints a token")
        .to_owned()
}

#[test]
fn dev_mode_prints_where_it_listens_and_a_working_token() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let served = serve(
        &[
            "--dev",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
            data.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(
        served.banner[0],
        format!("Herald listening on http://127.0.0.1:{port}")
    );
    assert!(served.banner.iter().any(|line| line.contains("curl -N")));
    let token = dev_token(&served.banner);
    let response = publish(port, &token, "topic=t&data=hi&id=first");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("\r\n\r\nfirst"), "{response}");
}

#[test]
fn flags_win_over_environment_and_environment_over_file() {
    let dir = tempfile::tempdir().unwrap();
    let file_port = free_port();
    let env_port = free_port();
    let config = dir.path().join("herald.toml");
    std::fs::write(
        &config,
        format!("listen = \"127.0.0.1:{file_port}\"\nmemory = true\nheartbeat = \"1s\"\n"),
    )
    .unwrap();
    let from_file = serve(&["--config", config.to_str().unwrap(), "--dev"], &[]);
    assert_eq!(
        from_file.banner[0],
        format!("Herald listening on http://127.0.0.1:{file_port}")
    );
    drop(from_file);
    let env_listen = format!("127.0.0.1:{env_port}");
    let from_env = serve(
        &["--config", config.to_str().unwrap(), "--dev"],
        &[("HERALD_LISTEN", &env_listen)],
    );
    assert_eq!(
        from_env.banner[0],
        format!("Herald listening on http://{env_listen}")
    );
    drop(from_env);
    let flag_port = free_port();
    let from_flag = serve(
        &[
            "--config",
            config.to_str().unwrap(),
            "--dev",
            "--listen",
            &format!("127.0.0.1:{flag_port}"),
        ],
        &[("HERALD_LISTEN", &env_listen)],
    );
    assert_eq!(
        from_flag.banner[0],
        format!("Herald listening on http://127.0.0.1:{flag_port}")
    );
}

#[test]
fn unknown_config_keys_are_refused_with_the_file_name() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "listne = \"127.0.0.1:1\"\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["serve", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("bad.toml") && stderr.contains("listne"),
        "{stderr}"
    );
}

#[test]
fn bad_cluster_options_are_refused_saying_what_to_use() {
    let unreachable = "redis://127.0.0.1:1";
    for (args, says) in [
        (
            vec!["--transport", "http://127.0.0.1:6379"],
            "redis://host:port",
        ),
        (
            vec!["--transport", unreachable, "--memory"],
            "exclude each other",
        ),
        (
            vec!["--transport", unreachable, "--cluster-name", "{x}"],
            "without braces",
        ),
        // Checked at start: an unreachable Redis is named, and the hub does not start.
        (
            vec!["--transport", unreachable],
            "cannot read the history store",
        ),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_herald"))
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(&args)
            .output()
            .unwrap();
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

#[test]
fn sigterm_exits_cleanly_and_history_survives_restart() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let args = [
        "--dev",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--data-dir",
        data.to_str().unwrap(),
        "--jwt-key",
        "a-secret-for-this-test",
    ];
    let mut served = serve(&args, &[]);
    let token = dev_token(&served.banner);
    for id in 1..=3 {
        let response = publish(port, &token, &format!("topic=t&data=d{id}&id=e{id}"));
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    }
    let status = Command::new("kill")
        .args(["-TERM", &served.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = served.child.wait().unwrap();
    assert!(exit.success(), "exit status {exit:?}");

    let restarted = serve(&args, &[]);
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    stream
        .write_all(
            b"GET /.well-known/mercure?match=t HTTP/1.1\r\nHost: x\r\nLast-Event-ID: e1\r\n\r\n",
        )
        .unwrap();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    while let Ok(read) = stream.read(&mut buffer) {
        if read == 0 {
            break;
        }
        received.extend_from_slice(&buffer[..read]);
        if String::from_utf8_lossy(&received).contains("data: d3") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&received);
    assert!(text.contains("mercure-last-event-id: e1"), "{text}");
    assert!(text.contains("id: e2\ndata: d2\n\n"), "{text}");
    assert!(text.contains("id: e3\ndata: d3\n\n"), "{text}");
    drop(restarted);
}
