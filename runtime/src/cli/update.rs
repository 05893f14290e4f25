//! update: change a running container's cgroup limits (runc's flags, or --resources JSON);
//! the library's `container::update` turns either into typed `LinuxResources`.

use berth::container::update::{self, ResourceFlags};
use berth::Error;
use clap::Args;
use std::path::Path;

#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// linux.resources JSON from a file, or - for stdin
    #[arg(short, long)]
    pub resources: Option<String>,
    #[arg(long, allow_hyphen_values = true)]
    pub memory: Option<String>,
    #[arg(long = "memory-reservation", allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// memory + swap (v1 semantics), -1 for unlimited
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    #[arg(long = "cpu-shares", alias = "cpu-share")]
    pub cpu_shares: Option<u64>,
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<u64>,
    #[arg(long = "cpu-rt-runtime", allow_hyphen_values = true)]
    pub cpu_rt_runtime: Option<i64>,
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    pub id: String,
}

impl UpdateArgs {
    fn flags(&self) -> ResourceFlags {
        ResourceFlags {
            memory: self.memory.clone(),
            memory_reservation: self.memory_reservation.clone(),
            memory_swap: self.memory_swap.clone(),
            cpu_shares: self.cpu_shares,
            cpu_quota: self.cpu_quota,
            cpu_period: self.cpu_period,
            cpu_rt_period: self.cpu_rt_period,
            cpu_rt_runtime: self.cpu_rt_runtime,
            cpuset_cpus: self.cpuset_cpus.clone(),
            cpuset_mems: self.cpuset_mems.clone(),
            pids_limit: self.pids_limit,
            blkio_weight: self.blkio_weight,
        }
    }
}

pub fn update(root: &Path, a: UpdateArgs) -> berth::Result<i32> {
    let r = match &a.resources {
        Some(src) => {
            let data = if src == "-" {
                let mut d = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut d)
                    .map_err(|e| Error::io("stdin", e))?;
                d
            } else {
                std::fs::read(src).map_err(|e| Error::io(src, e))?
            };
            update::parse_resources(src, &data)?
        }
        None => a.flags().resources()?,
    };
    berth::container::ops::update(root, &a.id, &r).map(|_| 0)
}
