//! Dockerfile frontend, following BuildKit's dockerfile frontend:
//! `lexer` (directives, continuations, comments, heredocs → logical lines),
//! `parser` (logical lines → `ast`), `expand` (BuildKit's shell-word processing:
//! quotes, escapes, `$VAR`, `${VAR:-x}`, `${VAR:+x}`, …) applied at build time.

pub mod ast;
pub mod expand;
pub mod lexer;
pub mod parser;
pub mod signal;

pub use ast::*;
pub use parser::parse;

/// A syntax error: file, line, what is wrong, and the offending text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {msg}: {text}")]
pub struct ParseError {
    pub file: String,
    pub line: usize,
    pub msg: String,
    pub text: String,
}

#[cfg(test)]
mod tests;
