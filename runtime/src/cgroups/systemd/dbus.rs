//! The calls to systemd's manager over D-Bus (zbus, blocking API): the system manager over
//! the system bus, or, rootless, the user's manager over the user's session bus (user.rs).
//!
//! zbus's blocking connection runs its socket reader on threads of its own: after the first
//! call berth is multithreaded. So D-Bus is used only where no container process is forked
//! afterwards: in create's parent once stage 1 exists (stage 1, single-threaded, forks the
//! rest), and in update and delete, which fork nothing.

use super::props::Prop;
use crate::error::{Error, Result};
use std::time::{Duration, Instant};
use zbus::blocking::Connection;
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};

const DEST: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
const NO_SUCH_UNIT: &str = "org.freedesktop.systemd1.NoSuchUnit";
/// How long a scope's start or stop may take: generous, for slow (emulated) hosts.
const JOB_LIMIT: Duration = Duration::from_secs(30);

/// Which systemd manager a container's scope belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bus {
    /// PID 1, over the system bus.
    System,
    /// The user's manager (user@UID.service) over the session bus at `address`,
    /// authenticated (EXTERNAL) as the host uid `uid`.
    User { address: String, uid: u32 },
}

impl Bus {
    /// The caller's user bus, from its environment (see user.rs).
    pub fn user() -> Result<Bus> {
        let (address, uid) = super::user::user_bus()?;
        Ok(Bus::User { address, uid })
    }

    /// The bus of a container whose scope the user's manager made (`user`), or PID 1's.
    pub fn of(user: bool) -> Result<Bus> {
        if user {
            Bus::user()
        } else {
            Ok(Bus::System)
        }
    }

    pub fn is_user(&self) -> bool {
        matches!(self, Bus::User { .. })
    }
}

/// A connection to systemd, for one unit (named in every error).
pub struct Systemd {
    conn: Connection,
    unit: String,
}

fn err(unit: &str, what: &str, e: impl std::fmt::Display) -> Error {
    Error::Other(format!("systemd unit {unit}: {what}: {e}"))
}

fn value(p: &Prop) -> Value<'_> {
    match p {
        Prop::U64(v) => Value::from(*v),
        Prop::Bool(v) => Value::from(*v),
        Prop::Str(v) => Value::from(v.as_str()),
        Prop::U32s(v) => Value::from(v.clone()),
        Prop::Bytes(v) => Value::from(v.clone()),
        Prop::Pairs(v) => Value::from(v.clone()),
    }
}

fn is_no_such_unit(e: &zbus::Error) -> bool {
    matches!(e, zbus::Error::MethodError(name, _, _) if name.as_str() == NO_SUCH_UNIT)
}

impl Systemd {
    pub fn connect(bus: &Bus, unit: &str) -> Result<Systemd> {
        use zbus::blocking::connection::Builder;
        let (b, what) = match bus {
            Bus::System => (Builder::system(), "connect to the system bus".to_string()),
            // zbus would send our euid, which inside a user namespace is not the uid the
            // bus daemon sees on the socket.
            Bus::User { address, uid } => (
                Builder::address(address.as_str()).map(|b| {
                    b.auth_mechanism(zbus::connection::AuthMechanism::External)
                        .user_id(*uid)
                }),
                format!("connect to the user bus {address} as uid {uid}"),
            ),
        };
        let conn = b
            .map(|b| b.method_timeout(JOB_LIMIT))
            .and_then(|b| b.build())
            .map_err(|e| err(unit, &what, e))?;
        Ok(Systemd {
            conn,
            unit: unit.to_string(),
        })
    }

    fn call<B>(&self, method: &str, body: &B) -> zbus::Result<zbus::Message>
    where
        B: serde::Serialize + zbus::zvariant::DynamicType,
    {
        self.conn
            .call_method(Some(DEST), PATH, Some(MANAGER), method, body)
    }

    /// StartTransientUnit with `props`, then waits until the unit is active.
    pub fn start(&self, props: &[(&str, Prop)]) -> Result<()> {
        let props: Vec<(&str, Value)> = props.iter().map(|(k, v)| (*k, value(v))).collect();
        let aux: Vec<(&str, Vec<(&str, Value)>)> = vec![];
        // A failed unit of the same name from before would refuse the start.
        let _ = self.call("ResetFailedUnit", &(self.unit.as_str(),));
        self.call(
            "StartTransientUnit",
            &(self.unit.as_str(), "replace", props, aux),
        )
        .map_err(|e| err(&self.unit, "StartTransientUnit", e))?;
        self.wait(|s| match s.as_deref() {
            Some("active") => Some(Ok(())),
            Some(s @ ("failed" | "inactive")) => Some(Err(format!("the scope is {s}"))),
            _ => None,
        })
    }

    /// SetUnitProperties (runtime only: the unit is transient anyway).
    pub fn set(&self, props: &[(&str, Prop)]) -> Result<()> {
        if props.is_empty() {
            return Ok(());
        }
        let props: Vec<(&str, Value)> = props.iter().map(|(k, v)| (*k, value(v))).collect();
        self.call("SetUnitProperties", &(self.unit.as_str(), true, props))
            .map(|_| ())
            .map_err(|e| err(&self.unit, "SetUnitProperties", e))
    }

    /// AttachProcessesToUnit: moves `pid` into the unit's cgroup (or its sub-cgroup `sub`,
    /// "/" for the scope itself). The manager does it with its own rights: a user manager
    /// that may not move the process itself asks PID 1 to.
    pub fn attach(&self, pid: i32, sub: &str) -> Result<()> {
        self.call(
            "AttachProcessesToUnit",
            &(self.unit.as_str(), sub, vec![pid as u32]),
        )
        .map(|_| ())
        .map_err(|e| err(&self.unit, &format!("AttachProcessesToUnit (pid {pid})"), e))
    }

    /// StopUnit, then waits until the unit is gone (or inactive); a unit already gone is
    /// fine (systemd drops a scope by itself once its last process exits).
    pub fn stop(&self) -> Result<()> {
        match self.call("StopUnit", &(self.unit.as_str(), "replace")) {
            Ok(_) => {}
            Err(e) if is_no_such_unit(&e) => return Ok(()),
            Err(e) => return Err(err(&self.unit, "StopUnit", e)),
        }
        let r = self.wait(|s| match s.as_deref() {
            None | Some("inactive") => Some(Ok(())),
            Some("failed") => Some(Ok(())),
            _ => None,
        });
        // A scope whose processes died by a signal ends "failed" and would stay listed.
        let _ = self.call("ResetFailedUnit", &(self.unit.as_str(),));
        r
    }

    /// The unit's ActiveState; None when systemd has no such unit (any more).
    fn active_state(&self) -> Result<Option<String>> {
        let path: OwnedObjectPath = match self.call("GetUnit", &(self.unit.as_str(),)) {
            Ok(m) => m
                .body()
                .deserialize()
                .map_err(|e| err(&self.unit, "GetUnit", e))?,
            Err(e) if is_no_such_unit(&e) => return Ok(None),
            Err(e) => return Err(err(&self.unit, "GetUnit", e)),
        };
        let m = self
            .conn
            .call_method(
                Some(DEST),
                path.as_str(),
                Some("org.freedesktop.DBus.Properties"),
                "Get",
                &("org.freedesktop.systemd1.Unit", "ActiveState"),
            )
            .map_err(|e| err(&self.unit, "ActiveState", e))?;
        let v: OwnedValue = m
            .body()
            .deserialize()
            .map_err(|e| err(&self.unit, "ActiveState", e))?;
        let s = String::try_from(v).map_err(|e| err(&self.unit, "ActiveState", e))?;
        Ok(Some(s))
    }

    /// Polls the unit's state until `done` decides, up to JOB_LIMIT (a scope's job takes
    /// milliseconds; polling needs no signal subscription).
    fn wait(
        &self,
        done: impl Fn(&Option<String>) -> Option<std::result::Result<(), String>>,
    ) -> Result<()> {
        let end = Instant::now() + JOB_LIMIT;
        let mut last = None;
        while Instant::now() < end {
            last = self.active_state()?;
            if let Some(r) = done(&last) {
                return r.map_err(|why| Error::Other(format!("systemd unit {}: {why}", self.unit)));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Err(Error::Other(format!(
            "systemd unit {}: still {} after {} s",
            self.unit,
            last.as_deref().unwrap_or("gone"),
            JOB_LIMIT.as_secs()
        )))
    }
}
