//! The parsed Dockerfile. Words are kept raw (quotes and `$VAR` intact): expansion
//! happens at build time, when ARG and ENV values are known.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    pub syntax: Option<String>,
    pub escape: char,
    /// ARG instructions before the first FROM.
    pub meta_args: Vec<Instruction>,
    pub stages: Vec<Stage>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// `AS name`, lowercased.
    pub name: Option<String>,
    /// Raw image reference of FROM (may contain $VARs from meta ARGs).
    pub base: String,
    pub platform: Option<String>,
    pub from_line: usize,
    pub from_text: String,
    pub instructions: Vec<Instruction>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    pub line: usize,
    /// The logical line as written (continuations joined), without heredoc bodies.
    pub text: String,
    pub kind: Kind,
}

/// Shell form (a string for the SHELL) or exec form (JSON array).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Shell(String),
    Exec(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    pub name: String,
    pub content: String,
    /// Unquoted delimiter: the content is subject to expansion.
    pub expand: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CopySpec {
    /// Raw source words, then the destination last.
    pub srcs: Vec<String>,
    pub dest: String,
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub checksum: Option<String>,
    pub keep_git_dir: bool,
    pub heredocs: Vec<Heredoc>,
    /// Exec (JSON) form: words are not split on whitespace.
    pub json: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunSpec {
    pub network: Option<String>,
    pub mounts: Vec<String>,
    pub security: Option<String>,
    pub heredocs: Vec<Heredoc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HealthSpec {
    /// None = `HEALTHCHECK NONE`.
    pub cmd: Option<Command>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub start_period: Option<String>,
    pub start_interval: Option<String>,
    pub retries: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    From {
        base: String,
        name: Option<String>,
        platform: Option<String>,
    },
    Run(Command, RunSpec),
    Cmd(Command),
    Entrypoint(Command),
    /// (raw key, raw value) pairs.
    Label(Vec<(String, String)>),
    Env(Vec<(String, String)>),
    Expose(Vec<String>),
    Copy(CopySpec),
    Add(CopySpec),
    Volume(Vec<String>),
    User(String),
    Workdir(String),
    /// (name, raw default)
    Arg(Vec<(String, Option<String>)>),
    /// The trigger instruction's text.
    Onbuild(String),
    Stopsignal(String),
    Healthcheck(HealthSpec),
    Shell(Vec<String>),
    Maintainer(String),
}

impl Kind {
    pub fn name(&self) -> &'static str {
        match self {
            Kind::From { .. } => "FROM",
            Kind::Run(..) => "RUN",
            Kind::Cmd(_) => "CMD",
            Kind::Entrypoint(_) => "ENTRYPOINT",
            Kind::Label(_) => "LABEL",
            Kind::Env(_) => "ENV",
            Kind::Expose(_) => "EXPOSE",
            Kind::Copy(_) => "COPY",
            Kind::Add(_) => "ADD",
            Kind::Volume(_) => "VOLUME",
            Kind::User(_) => "USER",
            Kind::Workdir(_) => "WORKDIR",
            Kind::Arg(_) => "ARG",
            Kind::Onbuild(_) => "ONBUILD",
            Kind::Stopsignal(_) => "STOPSIGNAL",
            Kind::Healthcheck(_) => "HEALTHCHECK",
            Kind::Shell(_) => "SHELL",
            Kind::Maintainer(_) => "MAINTAINER",
        }
    }
}
