//! Turning a stored blob into the chunks an HTTP body sends.
//!
//! A local file is sent from memory maps of bounded windows: each chunk is a `Bytes` that owns
//! its mapping, so the socket write copies straight from the page cache and no user-space
//! buffer sits in between (read-then-write would copy every byte twice). A window is mapped
//! and faulted in on a blocking thread, so a cold cache never stalls the async workers, and it
//! is unmapped as soon as the server has written it, so memory stays bounded.

use std::fs::File;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;

use crate::{BlobBody, ByteStream};

/// Size of one mapped window. Large enough that the per-chunk costs (a blocking-pool hop, a
/// mmap call) vanish next to the copy, small enough to keep a few in flight per client.
const WINDOW: u64 = 8 << 20;

/// Owner of one mapped window, kept alive by the `Bytes` that points into it.
struct Window {
    map: memmap2::Mmap,
    skip: usize,
}

impl AsRef<[u8]> for Window {
    fn as_ref(&self) -> &[u8] {
        &self.map[self.skip..]
    }
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 { size as u64 } else { 4096 }
}

fn map_window(file: &File, offset: u64, len: u64) -> std::io::Result<Bytes> {
    if len == 0 {
        return Ok(Bytes::new());
    }
    // mmap offsets must be page aligned: map from the page start and skip the difference.
    let aligned = offset - offset % page_size();
    let skip = (offset - aligned) as usize;
    // SAFETY: published blobs are immutable: they are written to another name, fsynced and
    // renamed into place, never opened for writing again, and removed only by unlinking,
    // which keeps the mapped inode alive. So the mapping cannot change or shrink under us.
    let map = unsafe { memmap2::MmapOptions::new().offset(aligned).len(skip + len as usize).populate().map(file)? };
    let _ = map.advise(memmap2::Advice::Sequential);
    Ok(Bytes::from_owner(Window { map, skip }))
}

impl BlobBody {
    /// The blob's bytes as a stream of chunks.
    pub fn into_stream(self) -> ByteStream {
        match self {
            BlobBody::Stream { stream, .. } => stream,
            BlobBody::File { file, start, len } => {
                let file = Arc::new(file);
                let end = start + len;
                let windows = futures_util::stream::unfold(start, move |offset| {
                    let file = file.clone();
                    async move {
                        if offset >= end {
                            return None;
                        }
                        let n = WINDOW.min(end - offset);
                        let chunk = tokio::task::spawn_blocking(move || map_window(&file, offset, n))
                            .await
                            .map_err(|e| e.to_string())
                            .and_then(|r| r.map_err(|e| e.to_string()));
                        Some((chunk, offset + n))
                    }
                });
                windows.boxed()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use futures_util::StreamExt;

    use crate::BlobBody;

    #[tokio::test]
    async fn windows_cover_any_range_exactly() {
        let mut file = tempfile::tempfile().unwrap();
        let data: Vec<u8> = (0..(super::WINDOW as usize * 2 + 12_345)).map(|i| (i % 241) as u8).collect();
        file.write_all(&data).unwrap();
        for (start, len) in [(0u64, data.len() as u64), (1, 10), (4095, 2), (4097, super::WINDOW + 3), (0, 0)] {
            let body = BlobBody::File { file: file.try_clone().unwrap(), start, len };
            let mut got = Vec::new();
            let mut stream = body.into_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.unwrap();
                assert!(chunk.len() as u64 <= super::WINDOW);
                got.extend_from_slice(&chunk);
            }
            assert_eq!(got, &data[start as usize..(start + len) as usize], "range {start}+{len}");
        }
    }
}
