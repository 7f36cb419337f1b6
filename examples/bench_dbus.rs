//! D-Bus benchmark driver for `scripts/bench-dbus.sh` (BENCHMARKS.md).
//!
//! `bench_dbus start ADDRESS -- JPKID ARGS...` spawns the daemon, measures the time until it
//! owns `io.jpkid.Jpki1` on ADDRESS (polled every 0.5 ms), prints `ready_ms=… pid=…` and leaves
//! it running. `bench_dbus sign ADDRESS N PIN` waits for a ready reader, then calls
//! `Sign("auth", "sha256", digest, PIN)` N times and prints p50, p99 and calls per second.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use zbus::{OwnedObjectPath, Variant};

const NAME: &str = "io.jpkid.Jpki1";
const MANAGER: &str = "/io/jpkid/Jpki1";

async fn connect(address: &str) -> zbus::Connection {
    zbus::connection::Builder::address(address)
        .build()
        .await
        .unwrap()
}

/// The daemon is meant to outlive this process (the script stops it), so it is not waited for.
#[allow(clippy::zombie_processes)]
async fn start(address: &str, cmd: &[String]) {
    let conn = connect(address).await;
    let dbus = zbus::fdo::DBusProxy::new(&conn).await.unwrap();
    let t0 = Instant::now();
    let child = std::process::Command::new(&cmd[0])
        .args(&cmd[1..])
        .spawn()
        .unwrap();
    let name = zbus::names::BusName::try_from(NAME).unwrap();
    while !dbus.name_has_owner(name.clone()).await.unwrap() {
        assert!(t0.elapsed() < Duration::from_secs(10), "jpkid not ready");
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
    println!(
        "ready_ms={:.1} pid={}",
        t0.elapsed().as_secs_f64() * 1e3,
        child.id()
    );
}

async fn ready_reader(conn: &zbus::Connection) -> OwnedObjectPath {
    let t0 = Instant::now();
    loop {
        let reply = conn
            .call_method(
                Some(NAME),
                MANAGER,
                Some("io.jpkid.Jpki1.Manager"),
                "GetReaders",
                &(),
            )
            .await
            .unwrap();
        let readers: Vec<OwnedObjectPath> = reply.body().deserialize().unwrap();
        for r in readers {
            let props = zbus::fdo::PropertiesProxy::builder(conn)
                .destination(NAME)
                .path(r.clone())
                .build()
                .await
                .unwrap();
            let iface = zbus::names::InterfaceName::try_from("io.jpkid.Jpki1.Reader").unwrap();
            let state = props.get(iface, "State").await.unwrap();
            if String::try_from(state).unwrap() == "ready" {
                return r;
            }
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "no ready reader");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn sign(address: &str, n: usize, pin: &str) {
    let conn = connect(address).await;
    let reader = ready_reader(&conn).await;
    let digest = vec![0x5Au8; 32];
    let options: HashMap<&str, Variant> = HashMap::new();
    let mut times = Vec::with_capacity(n);
    let total = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        let reply = conn
            .call_method(
                Some(NAME),
                reader.as_str(),
                Some("io.jpkid.Jpki1.Reader"),
                "Sign",
                &("auth", "sha256", &digest, pin.as_bytes(), &options),
            )
            .await
            .unwrap();
        times.push(t.elapsed());
        let sig: Vec<u8> = reply.body().deserialize().unwrap();
        assert_eq!(sig.len(), 256);
    }
    let wall = total.elapsed();
    times.sort();
    let pct = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "sign n={n} p50={:.2}ms p99={:.2}ms max={:.2}ms calls_per_s={:.0}",
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3,
        n as f64 / wall.as_secs_f64()
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("start") if args.len() > 3 && args[2] == "--" => start(&args[1], &args[3..]).await,
        Some("sign") if args.len() == 4 => sign(&args[1], args[2].parse().unwrap(), &args[3]).await,
        _ => {
            eprintln!("usage: bench_dbus start ADDRESS -- JPKID ARGS... | sign ADDRESS N PIN");
            std::process::exit(2);
        }
    }
}
