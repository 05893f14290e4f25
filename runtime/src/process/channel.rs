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
//!        |  <-- SeccompFd + fd (only with notify rules; parent passes it on) ------ |
//!        |  <-- Ready / Error{msg} ---------------------------------------------- |  (waits on exec.fifo)
//! ```

use crate::error::{Error, Result};
use nix::sys::socket::{send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use serde::{Deserialize, Serialize};
use std::os::fd::{AsRawFd, OwnedFd};

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

    /// Sends a message with a descriptor attached.
    pub fn send_fd<T: Serialize>(&self, msg: &T, fd: &OwnedFd) -> Result<()> {
        use nix::sys::socket::{sendmsg, ControlMessage, UnixAddr};
        let data = serde_json::to_vec(msg).expect("message serialises");
        let fds = [fd.as_raw_fd()];
        let iov = [std::io::IoSlice::new(&data)];
        let cmsg = [ControlMessage::ScmRights(&fds)];
        sendmsg::<UnixAddr>(
            self.fd.as_raw_fd(),
            &iov,
            &cmsg,
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .map_err(|e| Error::sys("send to peer", e))?;
        Ok(())
    }

    /// Receives one message; `None` when the peer closed (exited or exec'd).
    pub fn recv<T: for<'de> Deserialize<'de>>(&self) -> Result<Option<T>> {
        Ok(self.recv_fd()?.map(|(m, _)| m))
    }

    /// Receives one message and the descriptor sent with it, if any.
    pub fn recv_fd<T: for<'de> Deserialize<'de>>(&self) -> Result<Option<(T, Option<OwnedFd>)>> {
        use nix::sys::socket::{recvmsg, ControlMessageOwned, UnixAddr};
        use std::os::fd::FromRawFd;
        let mut buf = vec![0u8; 65536];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let (n, fd) = loop {
            let mut iov = [std::io::IoSliceMut::new(&mut buf)];
            let flags = MsgFlags::MSG_CMSG_CLOEXEC;
            match recvmsg::<UnixAddr>(self.fd.as_raw_fd(), &mut iov, Some(&mut space), flags) {
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(Error::sys("receive from peer", e)),
                Ok(m) => {
                    let fd = m.cmsgs().ok().into_iter().flatten().find_map(|c| match c {
                        // SAFETY: the kernel installed this descriptor for us.
                        ControlMessageOwned::ScmRights(f) => {
                            f.first().map(|f| unsafe { OwnedFd::from_raw_fd(*f) })
                        }
                        _ => None,
                    });
                    break (m.bytes, fd);
                }
            }
        };
        if n == 0 {
            return Ok(None);
        }
        serde_json::from_slice(&buf[..n])
            .map(|m| Some((m, fd)))
            .map_err(|e| Error::Other(format!("bad message from peer: {e}")))
    }

    pub fn raw(&self) -> i32 {
        self.fd.as_raw_fd()
    }
}
