//! The parent↔child protocol of `create` and `exec`: JSON messages on a SOCK_SEQPACKET
//! socketpair, each as its length and then as many packets as it needs (so a message of
//! any size arrives whole; a fixed receive buffer cut large ones short).
//!
//! ```text
//!  berth (parent)                     stage-1 (joins/unshares user ns)      init (container)
//!        |  <-- Stage1Ready ------------------|                                   |
//!        |  (cgroup join, uid/gid maps)       |                                   |
//!        |  --- Go ------------------------->  |-- unshare rest, fork ----------->  |
//!        |  <-- Pid{init} --------------------| exit                              |
//!        |  --- State{json} -----------------------------------------------------> |
//!        |  <-- RunHooks ------------------------------------------------------- |  (mounts done)
//!        |  (prestart, createRuntime)                                              |
//!        |  --- HooksDone ------------------------------------------------------> |
//!        |  <-- SeccompFd + fd (only with notify rules; parent passes it on) ------ |
//!        |  <-- Ready / Error{msg} ---------------------------------------------- |  (waits on exec.fifo)
//! ```

use crate::error::{Error, Result};
use nix::sys::socket::{socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use serde::{Deserialize, Serialize};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

#[derive(Debug, Serialize, Deserialize)]
pub enum ToParent {
    Stage1Ready,
    Pid(i32),
    RunHooks,
    /// Sent with the seccomp notify listener fd attached (SCM_RIGHTS).
    SeccompFd,
    Ready,
    Error(String),
}

#[derive(Debug, Serialize, Deserialize)]
pub enum ToChild {
    Go,
    /// The state document hooks get (the parent alone knows the init's host pid).
    State(String),
    HooksDone,
}

pub struct Channel {
    fd: OwnedFd,
}

/// Payload bytes per packet: far below the socket's default send buffer (~208 KiB), so a
/// packet always fits. A message is split into as many packets as it needs, the first one
/// led by the message's length, so any size arrives whole (annotations of megabytes).
const CHUNK: usize = 32 * 1024;
const HEADER: usize = 8;

pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| Error::sys("socketpair", e))?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    pub fn send<T: Serialize>(&self, msg: &T) -> Result<()> {
        self.send_parts(msg, None)
    }

    /// Sends a message with a descriptor attached.
    pub fn send_fd<T: Serialize>(&self, msg: &T, fd: &OwnedFd) -> Result<()> {
        self.send_parts(msg, Some(fd.as_raw_fd()))
    }

    /// Length, then the payload in packets of at most CHUNK bytes; `fd` rides on the first.
    fn send_parts<T: Serialize>(&self, msg: &T, fd: Option<RawFd>) -> Result<()> {
        use nix::sys::socket::{sendmsg, ControlMessage, UnixAddr};
        let data = serde_json::to_vec(msg).map_err(|e| Error::Other(format!("encode: {e}")))?;
        let mut first = (data.len() as u64).to_le_bytes().to_vec();
        let split = data.len().min(CHUNK);
        first.extend_from_slice(&data[..split]);
        let fds = fd.map(|f| [f]);
        let cmsg: Vec<ControlMessage> = fds.iter().map(|f| ControlMessage::ScmRights(f)).collect();
        let packets = std::iter::once(&first[..]).chain(data[split..].chunks(CHUNK));
        for (i, p) in packets.enumerate() {
            let c = if i == 0 { &cmsg[..] } else { &[] };
            let iov = [std::io::IoSlice::new(p)];
            loop {
                match sendmsg::<UnixAddr>(self.raw(), &iov, c, MsgFlags::MSG_NOSIGNAL, None) {
                    Err(nix::Error::EINTR) => continue,
                    Err(e) => return Err(Error::sys("send to peer", e)),
                    Ok(_) => break,
                }
            }
        }
        Ok(())
    }

    /// Receives one message; `None` when the peer closed (exited or exec'd).
    pub fn recv<T: for<'de> Deserialize<'de>>(&self) -> Result<Option<T>> {
        Ok(self.recv_fd()?.map(|(m, _)| m))
    }

    /// A message the peer has already sent, without waiting for one: after a failed send,
    /// the error a peer that exited sent first (it is queued before its end closed), or
    /// None when nothing is there (the peer is alive and waiting; do not wait for it).
    pub fn try_recv<T: for<'de> Deserialize<'de>>(&self) -> Option<T> {
        match self.recv_parts(MsgFlags::MSG_DONTWAIT) {
            Ok(Some((data, _))) => serde_json::from_slice(&data).ok(),
            _ => None,
        }
    }

    /// Receives one message and the descriptor sent with it, if any.
    pub fn recv_fd<T: for<'de> Deserialize<'de>>(&self) -> Result<Option<(T, Option<OwnedFd>)>> {
        let Some((data, fd)) = self.recv_parts(MsgFlags::empty())? else {
            return Ok(None);
        };
        serde_json::from_slice(&data)
            .map(|m| Some((m, fd)))
            .map_err(|e| Error::Other(format!("bad message from peer: {e}")))
    }

    /// The packets of one message, joined; `first` flags the first receive only.
    fn recv_parts(&self, first: MsgFlags) -> Result<Option<(Vec<u8>, Option<OwnedFd>)>> {
        let mut buf = vec![0u8; HEADER + CHUNK];
        let (n, fd) = self.recv_packet(&mut buf, first)?;
        if n == 0 {
            return Ok(None);
        }
        let bad = |what: &str| Error::Other(format!("bad message from peer: {what}"));
        if n < HEADER {
            return Err(bad("shorter than its header"));
        }
        let len = u64::from_le_bytes(buf[..HEADER].try_into().expect("8 bytes")) as usize;
        let mut data = Vec::with_capacity(len.min(64 << 20));
        data.extend_from_slice(&buf[HEADER..n]);
        while data.len() < len {
            let (n, _) = self.recv_packet(&mut buf, MsgFlags::empty())?;
            if n == 0 {
                return Err(bad("peer closed in the middle of a message"));
            }
            data.extend_from_slice(&buf[..n]);
        }
        if data.len() != len {
            return Err(bad("longer than its header says"));
        }
        Ok(Some((data, fd)))
    }

    /// One packet into `buf`: its length and the descriptor it carried. A packet larger
    /// than `buf` (the kernel would cut it silently) is an error, not a short message.
    fn recv_packet(&self, buf: &mut [u8], flags: MsgFlags) -> Result<(usize, Option<OwnedFd>)> {
        use nix::sys::socket::{recvmsg, ControlMessageOwned, UnixAddr};
        use std::os::fd::FromRawFd;
        let mut space = nix::cmsg_space!([RawFd; 1]);
        loop {
            let mut iov = [std::io::IoSliceMut::new(buf)];
            let f = flags | MsgFlags::MSG_CMSG_CLOEXEC;
            match recvmsg::<UnixAddr>(self.raw(), &mut iov, Some(&mut space), f) {
                Err(nix::Error::EINTR) => continue,
                // The peer closed with a message of ours unread. The kernel reports that
                // (once) before the packets it queued ahead of its close, such as the error
                // that made it exit: read on; with nothing queued the next read is EOF.
                Err(nix::Error::ECONNRESET) => continue,
                Err(e) => return Err(Error::sys("receive from peer", e)),
                Ok(m) => {
                    let fd = m.cmsgs().ok().into_iter().flatten().find_map(|c| match c {
                        // SAFETY: the kernel installed this descriptor for us.
                        ControlMessageOwned::ScmRights(f) => {
                            f.first().map(|f| unsafe { OwnedFd::from_raw_fd(*f) })
                        }
                        _ => None,
                    });
                    if m.flags.contains(MsgFlags::MSG_TRUNC) {
                        return Err(Error::Other("bad message from peer: truncated".into()));
                    }
                    return Ok((m.bytes, fd));
                }
            }
        }
    }

    pub fn raw(&self) -> i32 {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_of_any_size_arrive_whole() {
        let (a, b) = pair().unwrap();
        for len in [0, 1, CHUNK - 9, CHUNK, CHUNK + 1, 5 * CHUNK + 3] {
            let msg = ToChild::State("x".repeat(len));
            // A writer thread: a big message fills the socket buffer until it is read.
            let t = std::thread::scope(|s| {
                s.spawn(|| a.send(&msg).unwrap());
                b.recv::<ToChild>().unwrap()
            });
            match t {
                Some(ToChild::State(got)) => assert_eq!(got.len(), len),
                other => panic!("{other:?}"),
            }
        }
        // Nothing queued: try_recv does not wait.
        assert!(b.try_recv::<ToChild>().is_none());
        drop(a);
        assert!(b.recv::<ToChild>().unwrap().is_none());
    }

    /// A peer that exits with a message of ours unread leaves ECONNRESET pending on our end,
    /// and the kernel reports it before the messages queued ahead of the close: the error
    /// the peer sent must still be what we read.
    #[test]
    fn a_peer_closing_with_unread_data_still_delivers_its_last_message() {
        let (parent, child) = pair().unwrap();
        parent.send(&ToChild::Go).unwrap();
        child
            .send(&ToParent::Error("mount refused".into()))
            .unwrap();
        drop(child);
        match parent.recv::<ToParent>().unwrap() {
            Some(ToParent::Error(m)) => assert_eq!(m, "mount refused"),
            other => panic!("{other:?}"),
        }
        assert!(parent.recv::<ToParent>().unwrap().is_none());
        // The same through try_recv (after a failed send).
        let (parent, child) = pair().unwrap();
        parent.send(&ToChild::Go).unwrap();
        child.send(&ToParent::Error("late".into())).unwrap();
        drop(child);
        assert!(matches!(
            parent.try_recv::<ToParent>(),
            Some(ToParent::Error(m)) if m == "late"
        ));
    }
}
