//! The few rtnetlink requests linux.netDevices needs, on a raw NETLINK_ROUTE socket: list a
//! link's addresses, move/rename a link into another network namespace, add an address and
//! bring a link up. A socket works in the network namespace it was opened in.

use std::io::{Error, Result};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RTM_NEWLINK: u16 = 16;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const F_REQUEST: u16 = 1;
const F_ACK: u16 = 4;
const F_DUMP: u16 = 0x300;
const F_EXCL: u16 = 0x200;
const F_CREATE: u16 = 0x400;
const IFLA_IFNAME: u16 = 3;
const IFLA_NET_NS_FD: u16 = 28;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_FLAGS: u16 = 8;
const IFA_F_PERMANENT: u32 = 0x80;

/// One address of a link, as netlink reports it (kept to add it again elsewhere).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Addr {
    pub family: u8,
    pub prefixlen: u8,
    pub scope: u8,
    pub local: Vec<u8>,
    pub address: Vec<u8>,
}

pub struct Socket {
    fd: OwnedFd,
    seq: u32,
}

fn attr(buf: &mut Vec<u8>, typ: u16, data: &[u8]) {
    let len = 4 + data.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&typ.to_ne_bytes());
    buf.extend_from_slice(data);
    buf.resize(buf.len().next_multiple_of(4), 0);
}

/// (type, payload) of each attribute in `buf`.
fn attrs(mut buf: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = vec![];
    while buf.len() >= 4 {
        let len = u16::from_ne_bytes([buf[0], buf[1]]) as usize;
        let typ = u16::from_ne_bytes([buf[2], buf[3]]);
        if len < 4 || len > buf.len() {
            break;
        }
        out.push((typ, &buf[4..len]));
        buf = &buf[len.next_multiple_of(4).min(buf.len())..];
    }
    out
}

fn ifinfomsg(index: i32, flags: u32, change: u32) -> Vec<u8> {
    let mut b = vec![0u8; 4]; // family, pad, type
    b.extend_from_slice(&index.to_ne_bytes());
    b.extend_from_slice(&flags.to_ne_bytes());
    b.extend_from_slice(&change.to_ne_bytes());
    b
}

impl Socket {
    /// A NETLINK_ROUTE socket in the caller's current network namespace.
    pub fn open() -> Result<Socket> {
        // SAFETY: plain socket(2); the result is owned below.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Socket { fd, seq: 0 })
    }

    /// Sends one request and collects the payloads of the replies until DONE or the ACK.
    fn request(&mut self, typ: u16, flags: u16, body: &[u8]) -> Result<Vec<(u16, Vec<u8>)>> {
        self.seq += 1;
        let mut msg = Vec::with_capacity(16 + body.len());
        msg.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
        msg.extend_from_slice(&typ.to_ne_bytes());
        msg.extend_from_slice(&(flags | F_REQUEST).to_ne_bytes());
        msg.extend_from_slice(&self.seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(body);
        // SAFETY: msg is a valid buffer; the kernel is the default destination.
        if unsafe { libc::send(self.fd.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) } < 0 {
            return Err(Error::last_os_error());
        }
        let mut out = vec![];
        let mut buf = vec![0u8; 65536];
        loop {
            // SAFETY: buf is writable for its length.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                return Err(Error::last_os_error());
            }
            let mut rest = &buf[..n as usize];
            while rest.len() >= 16 {
                let len = u32::from_ne_bytes(rest[0..4].try_into().unwrap()) as usize;
                let t = u16::from_ne_bytes([rest[4], rest[5]]);
                if len < 16 || len > rest.len() {
                    break;
                }
                let payload = &rest[16..len];
                match t {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => {
                        let errno = i32::from_ne_bytes(payload[0..4].try_into().unwrap());
                        return if errno == 0 {
                            Ok(out)
                        } else {
                            Err(Error::from_raw_os_error(-errno))
                        };
                    }
                    _ => out.push((t, payload.to_vec())),
                }
                rest = &rest[len.next_multiple_of(4).min(rest.len())..];
            }
        }
    }

    /// The permanent, global-scope addresses of link `index` (what moving must keep).
    pub fn addresses(&mut self, index: i32) -> Result<Vec<Addr>> {
        let body = [0u8; 8]; // struct ifaddrmsg, family AF_UNSPEC: all families
        let mut out = vec![];
        for (t, p) in self.request(RTM_GETADDR, F_DUMP, &body)? {
            if t != RTM_NEWADDR || p.len() < 8 {
                continue;
            }
            let idx = i32::from_ne_bytes(p[4..8].try_into().unwrap());
            let (family, prefixlen, mut flags, scope) = (p[0], p[1], p[2] as u32, p[3]);
            let mut a = Addr {
                family,
                prefixlen,
                scope,
                local: vec![],
                address: vec![],
            };
            for (at, data) in attrs(&p[8..]) {
                match at {
                    IFA_LOCAL => a.local = data.to_vec(),
                    IFA_ADDRESS => a.address = data.to_vec(),
                    IFA_FLAGS if data.len() >= 4 => {
                        flags = u32::from_ne_bytes(data[0..4].try_into().unwrap())
                    }
                    _ => {}
                }
            }
            if idx == index && scope == 0 && flags & IFA_F_PERMANENT != 0 {
                out.push(a);
            }
        }
        Ok(out)
    }

    /// Moves link `index` into the network namespace `ns` under `name`.
    pub fn move_link(&mut self, index: i32, ns: &OwnedFd, name: &str) -> Result<()> {
        let mut body = ifinfomsg(index, 0, 0);
        attr(
            &mut body,
            IFLA_NET_NS_FD,
            &(ns.as_raw_fd() as u32).to_ne_bytes(),
        );
        let mut n = name.as_bytes().to_vec();
        n.push(0);
        attr(&mut body, IFLA_IFNAME, &n);
        self.request(RTM_NEWLINK, F_ACK, &body).map(drop)
    }

    pub fn set_up(&mut self, index: i32) -> Result<()> {
        let up = libc::IFF_UP as u32;
        self.request(RTM_NEWLINK, F_ACK, &ifinfomsg(index, up, up))
            .map(drop)
    }

    pub fn add_address(&mut self, index: i32, a: &Addr) -> Result<()> {
        let mut body = vec![a.family, a.prefixlen, 0, a.scope];
        body.extend_from_slice(&index.to_ne_bytes());
        if !a.local.is_empty() {
            attr(&mut body, IFA_LOCAL, &a.local);
        }
        if !a.address.is_empty() {
            attr(&mut body, IFA_ADDRESS, &a.address);
        }
        self.request(RTM_NEWADDR, F_ACK | F_CREATE | F_EXCL, &body)
            .map(drop)
    }
}
