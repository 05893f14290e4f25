//! STOPSIGNAL values as BuildKit accepts them (moby/sys/signal `ParseSignal`): a non-zero
//! number, or a Linux signal name with or without `SIG`, any case.

const NAMES: [&str; 34] = [
    "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT", "KILL",
    "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP", "TSTP",
    "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ",
];

fn known(name: &str) -> bool {
    if NAMES.contains(&name) || name == "RTMIN" || name == "RTMAX" {
        return true;
    }
    // RTMIN+1 … RTMIN+15 and RTMAX-14 … RTMAX-1.
    let offset = |rest: &str| rest.parse::<u8>().ok().filter(|n| (1..=15).contains(n));
    match (name.strip_prefix("RTMIN+"), name.strip_prefix("RTMAX-")) {
        (Some(n), _) => offset(n).is_some(),
        (_, Some(n)) => offset(n).is_some_and(|n| n <= 14),
        _ => false,
    }
}

/// Ok when `s` names a signal; the error says which value is not one.
pub fn check_signal(s: &str) -> Result<(), String> {
    let ok = match s.parse::<i64>() {
        Ok(n) => n != 0,
        Err(_) => {
            let up = s.to_ascii_uppercase();
            known(up.strip_prefix("SIG").unwrap_or(&up))
        }
    };
    match ok {
        true => Ok(()),
        false => Err(format!("invalid signal: {s}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn signals() {
        for s in [
            "SIGTERM",
            "term",
            "9",
            "SIGRTMIN+3",
            "RTMAX",
            "rtmax-14",
            "sigcld",
        ] {
            assert!(check_signal(s).is_ok(), "{s}");
        }
        for s in ["SIGNOPE", "0", "", "RTMIN+16", "RTMAX-15", "SIG", "TERM "] {
            assert!(check_signal(s).is_err(), "{s}");
        }
    }
}
