//! Latency of diagnostics: time from a `didChange` to its
//! `publishDiagnostics`, on each example recipe, through the real server
//! loop (in memory). The figure includes the 100 ms debounce; the analysis
//! alone (parse, check, world checks reading model and data headers) is
//! timed separately. Prints numbers; asserts nothing.
//!
//! `cargo run --release -p ft-ide --example latency [recipes…]`

use std::path::PathBuf;
use std::time::{Duration, Instant};

use lsp_server::{Connection, Message, Notification, Request, RequestId};
use serde_json::json;

const ROUNDS: usize = 10;

fn main() {
    let mut args: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    if args.is_empty() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../recipes");
        args = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "ft"))
            .collect();
        args.sort();
    }
    let (server, client) = Connection::memory();
    let handle = std::thread::spawn(move || ft_ide::run(server));
    let send = |m: Message| client.sender.send(m).unwrap();
    send(
        Request::new(
            RequestId::from(1),
            "initialize".into(),
            json!({ "capabilities": {} }),
        )
        .into(),
    );
    let _ = client.receiver.recv().unwrap();
    send(Notification::new("initialized".into(), json!({})).into());

    println!(
        "{:<40} {:>12} {:>12} {:>12}",
        "recipe", "analysis", "change→diag", "minus debounce"
    );
    for path in &args {
        let path = path.canonicalize().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let uri = format!("file://{}", path.display());
        let mut analysis = Vec::new();
        for _ in 0..ROUNDS {
            let t = Instant::now();
            let a = ft_compiler::driver::analyze_text(&path, &text, Default::default());
            analysis.push(t.elapsed());
            std::hint::black_box(a);
        }
        send(Notification::new(
            "textDocument/didOpen".into(),
            json!({ "textDocument": { "uri": uri, "languageId": "ft", "version": 0, "text": text } }),
        )
        .into());
        wait_diagnostics(&client, &uri, 0);
        let mut round_trip = Vec::new();
        for v in 1..=ROUNDS as i32 {
            // Alternate a trailing space so every version differs.
            let t2 = if v % 2 == 0 {
                text.clone()
            } else {
                format!("{text} ")
            };
            let t = Instant::now();
            send(Notification::new(
                "textDocument/didChange".into(),
                json!({ "textDocument": { "uri": uri, "version": v }, "contentChanges": [{ "text": t2 }] }),
            )
            .into());
            wait_diagnostics(&client, &uri, v);
            round_trip.push(t.elapsed());
        }
        let med = |v: &mut Vec<Duration>| {
            v.sort();
            v[v.len() / 2]
        };
        let a = med(&mut analysis);
        let r = med(&mut round_trip);
        println!(
            "{:<40} {:>10.1}ms {:>10.1}ms {:>10.1}ms",
            path.file_name().unwrap().to_string_lossy(),
            ms(a),
            ms(r),
            ms(r.saturating_sub(ft_ide::server::DEBOUNCE))
        );
    }
    send(Request::new(RequestId::from(2), "shutdown".into(), json!(null)).into());
    send(Notification::new("exit".into(), json!(null)).into());
    let _ = handle.join();
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn wait_diagnostics(client: &Connection, uri: &str, version: i32) {
    loop {
        if let Message::Notification(n) = client.receiver.recv().unwrap() {
            if n.method == "textDocument/publishDiagnostics"
                && n.params["uri"] == uri
                && n.params["version"].as_i64() >= Some(version as i64)
            {
                return;
            }
        }
    }
}
