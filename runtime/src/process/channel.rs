//! The parent↔child protocol of `create` and `exec`: JSON messages on a SOCK_SEQPACKET
//! socketpair (one message per packet, so no framing is needed).
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
//!        |  <-- Ready / Error{msg} ---------------------------------------------- |  (waits on exec.fifo)
//! ```

use crate::error::{Error, Result};
use nix::sys::socket::{recv, send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use serde::{Deserialize, Serialize};
use std::os::fd::{AsRawFd, OwnedFd};

#[derive(Debug, Serialize, Deserialize)]
pub enum ToParent {
    Stage1Ready,
    Pid(i32),
    RunHooks,
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
        let data = serde_json::to_vec(msg).expect("message serialises");
        send(self.fd.as_raw_fd(), &data, MsgFlags::MSG_NOSIGNAL)
            .map_err(|e| Error::sys("send to peer", e))?;
        Ok(())
    }

    /// Receives one message; `None` when the peer closed (exited or exec'd).
    pub fn recv<T: for<'de> Deserialize<'de>>(&self) -> Result<Option<T>> {
        let mut buf = vec![0u8; 65536];
        let n = loop {
            match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Err(nix::Error::EINTR) => continue,
                r => break r.map_err(|e| Error::sys("receive from peer", e))?,
            }
        };
        if n == 0 {
            return Ok(None);
        }
        serde_json::from_slice(&buf[..n])
            .map(Some)
            .map_err(|e| Error::Other(format!("bad message from peer: {e}")))
    }

    pub fn raw(&self) -> i32 {
        self.fd.as_raw_fd()
    }
}
