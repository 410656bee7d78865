//! The push benchmark's client (`bench/run`), so that the client is not what is measured: the
//! file goes to the socket with `std::io::copy`, which on Linux is `sendfile` (no copy through
//! this process), and the request is written by hand (HTTP/1.1, one connection).
//!
//!   bench_push push ADDR REPO FILE DIGEST USER:PASSWORD   one monolithic push (POST with the
//!                                                         digest); prints its seconds
//!   bench_push tcp FILE                                   the same bytes over one loopback TCP
//!                                                         stream to a reader that discards
//!                                                         them; prints its seconds

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("push") if args.len() == 7 => push(&args[2], &args[3], &args[4], &args[5], &args[6]),
        Some("tcp") if args.len() == 3 => tcp(&args[2]),
        _ => Err("usage: bench_push push ADDR REPO FILE DIGEST USER:PASSWORD | bench_push tcp FILE".into()),
    }
}

fn push(addr: &str, repo: &str, path: &str, digest: &str, creds: &str) -> Result<(), Box<dyn std::error::Error>> {
    use base64::Engine as _;
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let auth = base64::engine::general_purpose::STANDARD.encode(creds);
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    write!(
        stream,
        "POST /v2/{repo}/blobs/uploads/?digest={digest} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic {auth}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
    )?;
    let sent = std::io::copy(&mut file, &mut stream)?;
    let mut status = String::new();
    BufReader::new(&stream).read_line(&mut status)?;
    let elapsed = started.elapsed();
    if sent != len || !status.starts_with("HTTP/1.1 201") {
        return Err(format!("push answered {:?} after {sent} of {len} bytes", status.trim()).into());
    }
    println!("{:.3}", elapsed.as_secs_f64());
    Ok(())
}

fn tcp(path: &str) -> Result<(), Box<dyn std::error::Error>> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    // The reader reads into a buffer and drops it, as a server receiving the bytes would.
    let reader = std::thread::spawn(move || -> std::io::Result<u64> {
        let (mut conn, _) = listener.accept()?;
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            let n = conn.read(&mut buf)?;
            if n == 0 {
                return Ok(total);
            }
            total += n as u64;
        }
    });
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr)?;
    std::io::copy(&mut file, &mut stream)?;
    drop(stream);
    let received = reader.join().map_err(|_| "the reader panicked")??;
    let elapsed = started.elapsed();
    if received != len {
        return Err(format!("received {received} of {len} bytes").into());
    }
    println!("{:.3}", elapsed.as_secs_f64());
    Ok(())
}
