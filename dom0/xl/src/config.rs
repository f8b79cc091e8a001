//! The xl.cfg grammar, as Xen 4.17's libxlutil reads it.
//!
//! This is a faithful re-implementation of the behaviour of libxlu's
//! flex/bison parser (`tools/libs/util/libxlu_cfg_{l.l,y.y}.c`), including
//! its messages and its quirks, so that a config file that xl accepts is
//! accepted here and one that xl rejects is rejected with the same text:
//!
//! * settings are `key = value` or `key += value`, ended by a newline or `;`
//!   (the last setting may end at end of file);
//! * keys are `[a-z][._0-9a-z]*` (lower case only);
//! * values are strings (`"..."`, `'...'`), numbers (`[0-9][0-9a-fx]*`, kept
//!   as text) or lists `[ v, v, ]` (possibly nested, possibly spanning
//!   lines, trailing comma allowed);
//! * `#` starts a comment running to the end of the line;
//! * the last assignment of a key wins; `+=` concatenates strings or lists
//!   with the previous assignment of the same key (mixing is an error);
//! * errors look like `file:LINE: config parsing error near `TEXT': MSG`.
//!
//! Quirks kept on purpose because xl has them: an error whose offending
//! token is a newline is reported against the line *before* it (so
//! `memory =` on line 1 is reported as line 0); `\xHH` escapes are always
//! rejected; an octal-looking escape `\NNN` is consumed but produces no
//! character; trailing garbage without a final newline is silently ignored;
//! a comment on the last line without a final newline is a lexical error;
//! CR-LF line ends are lexical errors. The only deliberate difference: where
//! libxlu aborts on an assertion (a NUL byte inside a quoted string) this
//! parser reports a lexical error instead.

use std::fmt;

/// A configuration value: xl keeps numbers as strings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A string or a number, as text (quotes removed, escapes applied).
    String(String),
    /// A list of values (libxlu's grammar allows nesting).
    List(Vec<Value>),
}

impl Value {
    /// The string, if this is a single value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            Value::List(_) => None,
        }
    }

    /// The items, if this is a list.
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            Value::String(_) => None,
        }
    }
}

/// How a setting was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `key = value`
    Assign,
    /// `key += value` (the stored value already includes what it added to)
    Add,
}

/// One `key = value` setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    /// The key.
    pub name: String,
    /// The value (for `+=`, the concatenated result).
    pub value: Value,
    /// `=` or `+=`.
    pub op: Op,
    /// The line of the value's first token (xl's `lineno` for warnings).
    pub line: u32,
}

/// A parsed config file: its settings in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    source: String,
    settings: Vec<Setting>,
}

/// The config could not be parsed. `messages` are the lines xl prints (to
/// stderr), in order, without trailing newlines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// Every message line, exactly as xl prints them.
    pub messages: Vec<String>,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, m) in self.messages.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            f.write_str(m)?;
        }
        Ok(())
    }
}

impl std::error::Error for ParseError {}

/// Why a typed lookup failed (libxlu's `ESRCH` / `EINVAL` / `ERANGE`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GetError {
    /// The key is not set.
    NotFound,
    /// The key is set but has the wrong shape or is not a valid number. The
    /// string is the warning xl prints (`file:line: warning: ...`).
    Invalid(String),
    /// The number does not fit (strtol's ERANGE); the warning xl prints.
    Range(String),
}

impl GetError {
    /// The warning text, if any.
    pub fn message(&self) -> Option<&str> {
        match self {
            GetError::NotFound => None,
            GetError::Invalid(m) | GetError::Range(m) => Some(m),
        }
    }
}

impl Config {
    /// Parses config text. `source` is the name used in messages (xl uses
    /// the config file name as given on the command line).
    pub fn parse(source: &str, data: &[u8]) -> Result<Config, ParseError> {
        let mut p = Parser {
            lx: Lexer {
                src: data,
                pos: 0,
                lineno: 1,
                text: Vec::new(),
            },
            source: source.to_string(),
            err: false,
            lexerrlineno: -1,
            likely_python: false,
            messages: Vec::new(),
            settings: Vec::new(),
        };
        p.run();
        if p.err {
            if p.likely_python {
                p.messages
                    .push("warning: Config file looks like it contains Python code.".into());
                p.messages
                    .push("warning:  Arbitrary Python is no longer supported.".into());
                p.messages
                    .push("warning:  See https://wiki.xen.org/wiki/PythonInXlConfig".into());
            }
            return Err(ParseError {
                messages: p.messages,
            });
        }
        Ok(Config {
            source: p.source,
            settings: p.settings,
        })
    }

    /// The name used in messages.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// All settings in file order (a key may appear more than once; the
    /// last one is the effective one).
    pub fn settings(&self) -> &[Setting] {
        &self.settings
    }

    /// The effective setting of `name` (its last assignment).
    pub fn get(&self, name: &str) -> Option<&Setting> {
        self.settings.iter().rev().find(|s| s.name == name)
    }

    /// The distinct keys, in order of first appearance, with the line of
    /// their effective setting.
    pub fn keys(&self) -> Vec<(&str, u32)> {
        let mut out: Vec<(&str, u32)> = Vec::new();
        for s in &self.settings {
            if !out.iter().any(|(n, _)| *n == s.name) {
                out.push((&s.name, self.get(&s.name).map_or(s.line, |e| e.line)));
            }
        }
        out
    }

    fn atom(&self, name: &str) -> Result<&Setting, GetError> {
        let set = self.get(name).ok_or(GetError::NotFound)?;
        if set.value.as_str().is_none() {
            return Err(GetError::Invalid(format!(
                "{}:{}: warning: parameter `{}' is a list but should be a single value",
                self.source, set.line, name
            )));
        }
        Ok(set)
    }

    /// `xlu_cfg_get_string`: a single value.
    pub fn get_string(&self, name: &str) -> Result<&str, GetError> {
        let set = self.atom(name)?;
        Ok(set.value.as_str().unwrap_or_default())
    }

    /// `xlu_cfg_get_long`: a single value parsed like C `strtol(s, &e, 0)`
    /// (decimal, `0x` hex, leading-`0` octal), the whole string must parse,
    /// and `+=` is refused.
    pub fn get_long(&self, name: &str) -> Result<i64, GetError> {
        self.get_bounded_long(name, i64::MIN, i64::MAX)
    }

    /// `xlu_cfg_get_bounded_long`.
    pub fn get_bounded_long(&self, name: &str, min: i64, max: i64) -> Result<i64, GetError> {
        let set = self.atom(name)?;
        let src = &self.source;
        let line = set.line;
        if set.op == Op::Add {
            return Err(GetError::Invalid(format!(
                "{src}:{line}: warning: can't use += with numbers for parameter `{name}'"
            )));
        }
        let text = set.value.as_str().unwrap_or_default();
        let (res, used) = c_strtol(text.as_bytes());
        let l = match res {
            Ok(l) => l,
            Err(()) => {
                return Err(GetError::Range(format!(
                    "{src}:{line}: warning: parameter `{name}' could not be parsed as a number: Numerical result out of range"
                )))
            }
        };
        if used != text.len() || used == 0 {
            return Err(GetError::Invalid(format!(
                "{src}:{line}: warning: parameter `{name}' is not a valid number"
            )));
        }
        if l < min {
            return Err(GetError::Invalid(format!(
                "{src}:{line}: warning: value `{l}' is smaller than minimum bound '{min}'"
            )));
        }
        if l > max {
            return Err(GetError::Invalid(format!(
                "{src}:{line}: warning: value `{l}' is greater than maximum bound '{max}'"
            )));
        }
        Ok(l)
    }

    /// `xlu_cfg_get_list`: a list value.
    pub fn get_list(&self, name: &str) -> Result<&[Value], GetError> {
        let set = self.get(name).ok_or(GetError::NotFound)?;
        set.value.as_list().ok_or_else(|| {
            GetError::Invalid(format!(
                "{}:{}: warning: parameter `{}' is a single value but should be a list",
                self.source, set.line, name
            ))
        })
    }
}

/// C `strtol(s, &end, 0)` on a 64-bit `long`: returns the value (or `Err`
/// for ERANGE) and how many bytes were consumed (0 if no digits).
pub(crate) fn c_strtol(s: &[u8]) -> (Result<i64, ()>, usize) {
    let mut i = 0;
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
        i += 1;
    }
    let mut neg = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        neg = s[i] == b'-';
        i += 1;
    }
    let mut base = 10u32;
    if s.get(i) == Some(&b'0') {
        let hex = matches!(s.get(i + 1), Some(b'x' | b'X'))
            && s.get(i + 2).is_some_and(|c| c.is_ascii_hexdigit());
        if hex {
            base = 16;
            i += 2;
        } else {
            base = 8;
        }
    }
    let start = i;
    // Magnitude accumulated in u128 so that i64::MIN is representable.
    let mut mag: u128 = 0;
    let mut overflow = false;
    while i < s.len() {
        let d = match (s[i] as char).to_digit(base) {
            Some(d) => d,
            None => break,
        };
        if !overflow {
            mag = mag * base as u128 + d as u128;
            if mag > (i64::MAX as u128) + 1 {
                overflow = true;
            }
        }
        i += 1;
    }
    if i == start {
        return (Ok(0), 0);
    }
    let limit = if neg {
        (i64::MAX as u128) + 1
    } else {
        i64::MAX as u128
    };
    if overflow || mag > limit {
        return (Err(()), i);
    }
    let v = if neg {
        (mag as i128).wrapping_neg() as i64
    } else {
        mag as i64
    };
    (Ok(v), i)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    End,
    Ident,
    Str,
    Number,
    Newline,
    AddEq,
    Eq,
    Semi,
    LBrack,
    RBrack,
    Comma,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::End => "$end",
            Kind::Ident => "IDENT",
            Kind::Str => "STRING",
            Kind::Number => "NUMBER",
            Kind::Newline => "NEWLINE",
            Kind::AddEq => "+=",
            Kind::Eq => "'='",
            Kind::Semi => "';'",
            Kind::LBrack => "'['",
            Kind::RBrack => "']'",
            Kind::Comma => "','",
        }
    }
}

struct Token {
    kind: Kind,
    /// Identifier, number text or dequoted string (None once in error).
    text: Option<String>,
    line: u32,
}

struct Lexer<'a> {
    src: &'a [u8],
    pos: usize,
    /// flex's yylineno
    lineno: u32,
    /// flex's yytext of the last match (with yymore accumulation)
    text: Vec<u8>,
}

/// Semantic value on the parser stack.
enum Sem {
    None,
    Text(Option<String>),
    Val(Option<Value>),
}

struct Parser<'a> {
    lx: Lexer<'a>,
    source: String,
    err: bool,
    lexerrlineno: i64,
    likely_python: bool,
    messages: Vec<String>,
    settings: Vec<Setting>,
}

fn is_ident_rest(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_'
}

fn is_number_rest(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b) || b == b'x'
}

impl Parser<'_> {
    /// libxlu's `xlu__cfg_yyerror`.
    fn yyerror(&mut self, line: i64, msg: &str) {
        if line <= self.lexerrlineno {
            return;
        }
        let text = &self.lx.text;
        let mut lineno = line;
        let mut len = text.len();
        let mut newline = "";
        if len > 0 && text[len - 1] == b'\n' {
            len -= 1;
            lineno -= 1;
            if len == 0 {
                newline = "<newline>";
            }
        }
        while len > 0 && (text[len - 1] == b'\t' || text[len - 1] == b' ') {
            len -= 1;
        }
        // printf("%.*s") stops at a NUL byte.
        let shown = &text[..len];
        let shown = match shown.iter().position(|&b| b == 0) {
            Some(n) => &shown[..n],
            None => shown,
        };
        let (q1, q2) = if len > 0 { ("`", "'") } else { ("", "") };
        self.messages.push(format!(
            "{}:{}: config parsing error near {}{}{}{}: {}",
            self.source,
            lineno,
            q1,
            String::from_utf8_lossy(shown),
            q2,
            newline,
            msg
        ));
        self.err = true;
    }

    /// libxlu's `xlu__cfgl_lexicalerror`: reported at the scanner's line.
    fn lexical_error(&mut self, msg: &str) {
        let line = self.lx.lineno as i64;
        self.yyerror(line, msg);
        self.lexerrlineno = line;
    }

    /// The scanner (`libxlu_cfg_l.l`): returns the next token.
    fn next_token(&mut self) -> Token {
        loop {
            let src = self.lx.src;
            let p = self.lx.pos;
            if p >= src.len() {
                // At end of input yytext is empty; xl prints "near `'".
                self.lx.text = vec![0];
                return Token {
                    kind: Kind::End,
                    text: None,
                    line: 0,
                };
            }
            let b = src[p];
            let simple = |kind: Kind| (kind, 1usize);
            let (kind, len) = match b {
                b'a'..=b'z' => {
                    let n = src[p + 1..]
                        .iter()
                        .take_while(|&&c| is_ident_rest(c))
                        .count();
                    (Kind::Ident, n + 1)
                }
                b'0'..=b'9' => {
                    let n = src[p + 1..]
                        .iter()
                        .take_while(|&&c| is_number_rest(c))
                        .count();
                    (Kind::Number, n + 1)
                }
                b' ' | b'\t' => {
                    self.lx.pos += 1;
                    self.lx.text = vec![b];
                    continue;
                }
                b',' => simple(Kind::Comma),
                b'[' => simple(Kind::LBrack),
                b']' => simple(Kind::RBrack),
                b'=' => simple(Kind::Eq),
                b';' => simple(Kind::Semi),
                b'+' if src.get(p + 1) == Some(&b'=') => (Kind::AddEq, 2),
                b'\n' => simple(Kind::Newline),
                b'#' => match src[p..].iter().position(|&c| c == b'\n') {
                    Some(n) => (Kind::Newline, n + 1),
                    None => {
                        self.lex_error_state(1);
                        if let Some(t) = self.finish_lexerr() {
                            return t;
                        }
                        continue;
                    }
                },
                b'"' | b'\'' => match string_len(&src[p..]) {
                    Some(n) => (Kind::Str, n),
                    None => {
                        self.lex_error_state(1);
                        if let Some(t) = self.finish_lexerr() {
                            return t;
                        }
                        continue;
                    }
                },
                _ => {
                    if matches!(b, b'+' | b'-' | b'.' | b'(' | b')' | b':') {
                        self.likely_python = true;
                    }
                    self.lex_error_state(1);
                    if let Some(t) = self.finish_lexerr() {
                        return t;
                    }
                    continue;
                }
            };
            let raw = &src[p..p + len];
            self.lx.pos += len;
            self.lx.text = raw.to_vec();
            if kind == Kind::Newline {
                self.lx.lineno += 1;
                return Token {
                    kind,
                    text: None,
                    line: self.lx.lineno - 1,
                };
            }
            let line = self.lx.lineno;
            let text = match kind {
                Kind::Ident | Kind::Number => {
                    if self.err {
                        None
                    } else {
                        Some(String::from_utf8_lossy(raw).into_owned())
                    }
                }
                Kind::Str => self.dequote(raw),
                _ => None,
            };
            return Token { kind, text, line };
        }
    }

    /// Consumes the first `n` bytes as the start of a lexical error (flex's
    /// `BEGIN(lexerr); yymore();`).
    fn lex_error_state(&mut self, n: usize) {
        let p = self.lx.pos;
        self.lx.text = self.lx.src[p..p + n].to_vec();
        self.lx.pos += n;
    }

    /// The `<lexerr>` rules: report and, if the error ran into a newline,
    /// return that NEWLINE token.
    fn finish_lexerr(&mut self) -> Option<Token> {
        let src = self.lx.src;
        let p = self.lx.pos;
        if p >= src.len() {
            // flex reaches end of file in the lexerr state: no report.
            self.lx.text = vec![0];
            return Some(Token {
                kind: Kind::End,
                text: None,
                line: 0,
            });
        }
        match src[p] {
            b'\n' => {
                self.lx.text.push(b'\n');
                self.lx.pos += 1;
                self.lx.lineno += 1;
                self.lexical_error("lexical error");
                Some(Token {
                    kind: Kind::Newline,
                    text: None,
                    line: self.lx.lineno,
                })
            }
            b' ' | b'\t' => {
                self.lx.text.push(src[p]);
                self.lx.pos += 1;
                self.lexical_error("lexical error");
                None
            }
            _ => {
                let n = src[p..]
                    .iter()
                    .take_while(|&&c| !matches!(c, b' ' | b'\t' | b'\n'))
                    .count();
                self.lx.text.extend_from_slice(&src[p..p + n]);
                self.lx.pos += n;
                self.lexical_error("lexical error");
                None
            }
        }
    }

    /// libxlu's `xlu__cfgl_dequote`, on a complete quoted token.
    fn dequote(&mut self, raw: &[u8]) -> Option<String> {
        if self.err {
            return None;
        }
        if raw.contains(&0) {
            // libxlu would fail an assertion here.
            self.lexical_error("lexical error");
            return None;
        }
        let body = &raw[1..raw.len() - 1];
        let mut out: Vec<u8> = Vec::with_capacity(body.len());
        let mut i = 0;
        while i < body.len() {
            let c = body[i];
            i += 1;
            if c != b'\\' {
                out.push(c);
                continue;
            }
            // The scanner guarantees a character after a backslash.
            let Some(&nc) = body.get(i) else { break };
            i += 1;
            match nc {
                b'"' | b'\'' | b'\\' => out.push(nc),
                b'a' => out.push(0x07),
                b'b' => out.push(0x08),
                b'f' => out.push(0x0c),
                b'n' => out.push(b'\n'),
                b'r' => out.push(b'\r'),
                b't' => out.push(b'\t'),
                b'v' => out.push(0x0b),
                b'x' => {
                    // libxlu's hex escape can never succeed: it skips one
                    // character too many and then demands more than two
                    // digits out of two.
                    self.lexical_error(
                        "invalid digit after backslash hexnumerical character escape in quoted string",
                    );
                    self.err = true;
                    break;
                }
                b'0'..=b'7' => {
                    // libxlu parses up to three more characters with
                    // strtoul(.., 10), needs it to consume at least two, then
                    // drops the character (it never stores it).
                    let rest = &raw[1 + i..];
                    let window = &rest[..rest.len().min(3)];
                    let used = c_strtoul_consumed(window);
                    if used <= 1 {
                        self.lexical_error(
                            "invalid digit after backslash octalnumerical character escape in quoted string",
                        );
                        self.err = true;
                        break;
                    }
                    i += used;
                }
                _ => {
                    self.lexical_error("invalid character after backlash in quoted string");
                    self.err = true;
                    break;
                }
            }
        }
        Some(String::from_utf8_lossy(&out).into_owned())
    }

    fn syntax_error(&mut self, state: u8, tok: &Token) {
        let expected: &[&str] = match state {
            1 => &["$end"],
            2 => &["$end", "IDENT", "NEWLINE", "';'"],
            4 => &["NEWLINE"],
            5 => &["+=", "'='"],
            12 | 13 => &["STRING", "NUMBER", "'['"],
            24 => &["']'"],
            _ => &[],
        };
        let mut msg = format!("syntax error, unexpected {}", tok.kind.name());
        for (i, e) in expected.iter().enumerate() {
            msg.push_str(if i == 0 { ", expecting " } else { " or " });
            msg.push_str(e);
        }
        self.yyerror(tok.line as i64, &msg);
    }

    /// libxlu's `xlu__cfg_set_store`.
    fn store(&mut self, name: Option<String>, op: Op, value: Option<Value>, line: u32) {
        if self.err {
            return;
        }
        let (Some(name), Some(mut value)) = (name, value) else {
            return;
        };
        if op == Op::Add {
            if let Some(prev) = self.settings.iter_mut().rev().find(|s| s.name == name) {
                match (&mut prev.value, &mut value) {
                    (Value::String(a), Value::String(b)) => *b = format!("{a}{b}"),
                    (Value::List(a), Value::List(b)) => {
                        // libxlu moves the items: the shadowed setting ends
                        // up empty.
                        let mut joined = std::mem::take(a);
                        joined.append(b);
                        *b = joined;
                    }
                    _ => {
                        self.lexical_error("can't add [list] to \"string\" or vice versa");
                        return;
                    }
                }
            }
        }
        self.settings.push(Setting {
            name,
            value,
            op,
            line,
        });
    }

    /// The LALR(1) automaton of libxlu's grammar, with bison's default
    /// reductions, error recovery (`stmt: error NEWLINE`) and lookahead
    /// timing, so that messages come out in xl's order.
    fn run(&mut self) {
        // (state, semantic value, first line)
        let mut stack: Vec<(u8, Sem, u32)> = vec![(0, Sem::None, 1)];
        let mut la: Option<Token> = None;
        let mut errstatus = 0u8;
        let mut last_line = 1u32;
        loop {
            let state = stack.last().map_or(0, |s| s.0);
            if state == 3 {
                return; // accept
            }
            let act = match default_only(state) {
                Some(r) => Act::Reduce(r),
                None => {
                    if la.is_none() {
                        let mut t = self.next_token();
                        if t.kind == Kind::End {
                            t.line = last_line;
                        }
                        last_line = t.line;
                        la = Some(t);
                    }
                    let kind = la.as_ref().map_or(Kind::End, |t| t.kind);
                    action(state, kind)
                }
            };
            match act {
                Act::Shift(s) => {
                    errstatus = errstatus.saturating_sub(1);
                    let Some(t) = la.take() else { return };
                    stack.push((s, Sem::Text(t.text), t.line));
                }
                Act::Reduce(rule) => {
                    let (lhs, n) = RULES[rule as usize];
                    let at = stack.len() - n;
                    let rhs: Vec<(u8, Sem, u32)> = stack.drain(at..).collect();
                    let prev_line = stack.last().map_or(1, |s| s.2);
                    let line = rhs.first().map_or(prev_line, |s| s.2);
                    let sem = self.reduce(rule, rhs);
                    let below = stack.last().map_or(0, |s| s.0);
                    let Some(next) = goto(below, lhs) else { return };
                    stack.push((next, sem, line));
                }
                Act::Error => {
                    let Some(tok) = la.take() else { return };
                    if errstatus == 0 {
                        self.syntax_error(state, &tok);
                    }
                    // A syntax error always fails the parse, even when its
                    // message was suppressed.
                    self.err = true;
                    if errstatus == 3 {
                        if tok.kind == Kind::End {
                            return; // YYABORT
                        }
                        // discard the lookahead
                    } else {
                        la = Some(tok);
                    }
                    errstatus = 3;
                    loop {
                        let top = stack.last().map_or(0, |s| s.0);
                        if top == 2 {
                            let line = stack.last().map_or(1, |s| s.2);
                            stack.push((4, Sem::None, line));
                            break;
                        }
                        if stack.len() <= 1 {
                            return; // YYABORT
                        }
                        stack.pop();
                    }
                }
            }
        }
    }

    fn reduce(&mut self, rule: u8, rhs: Vec<(u8, Sem, u32)>) -> Sem {
        let mut it = rhs.into_iter();
        let mut next = || it.next().map(|(_, s, l)| (s, l));
        match rule {
            8 | 9 => {
                let name = match next() {
                    Some((Sem::Text(t), _)) => t,
                    _ => None,
                };
                next();
                let (value, line) = match next() {
                    Some((Sem::Val(v), l)) => (v, l),
                    _ => (None, 0),
                };
                let op = if rule == 8 { Op::Assign } else { Op::Add };
                self.store(name, op, value, line);
                Sem::None
            }
            12 => match next() {
                Some((Sem::Text(Some(t)), _)) if !self.err => Sem::Val(Some(Value::String(t))),
                _ => Sem::Val(None),
            },
            13 => {
                next();
                next();
                match next() {
                    Some((Sem::Val(v), _)) => Sem::Val(v),
                    _ => Sem::Val(None),
                }
            }
            14 | 15 => match next() {
                Some((Sem::Text(t), _)) => Sem::Text(t),
                _ => Sem::Text(None),
            },
            16 => Sem::Val(if self.err {
                None
            } else {
                Some(Value::List(Vec::new()))
            }),
            17 | 18 => match next() {
                Some((Sem::Val(v), _)) => Sem::Val(v),
                _ => Sem::Val(None),
            },
            19 => match next() {
                Some((Sem::Val(Some(v)), _)) if !self.err => Sem::Val(Some(Value::List(vec![v]))),
                _ => Sem::Val(None),
            },
            20 => {
                let list = match next() {
                    Some((Sem::Val(v), _)) => v,
                    _ => None,
                };
                next();
                next();
                let item = match next() {
                    Some((Sem::Val(v), _)) => v,
                    _ => None,
                };
                match (list, item) {
                    (Some(Value::List(mut l)), Some(v)) if !self.err => {
                        l.push(v);
                        Sem::Val(Some(Value::List(l)))
                    }
                    (l, _) => Sem::Val(if self.err { None } else { l }),
                }
            }
            _ => Sem::None,
        }
    }
}

/// Length of a complete quoted string at the start of `s`, if any.
fn string_len(s: &[u8]) -> Option<usize> {
    let q = s[0];
    let mut i = 1;
    while i < s.len() {
        match s[i] {
            c if c == q => return Some(i + 1),
            b'\n' => return None,
            b'\\' => {
                if i + 1 >= s.len() || s[i + 1] == b'\n' {
                    return None;
                }
                i += 2;
            }
            _ => i += 1,
        }
    }
    None
}

/// How many bytes C `strtoul(s, &end, 10)` consumes (0 when no digits).
fn c_strtoul_consumed(s: &[u8]) -> usize {
    let mut i = 0;
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
        i += 1;
    }
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        i += 1;
    }
    let d = s[i.min(s.len())..]
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .count();
    if d == 0 {
        0
    } else {
        i + d
    }
}

#[derive(Clone, Copy)]
enum Act {
    Shift(u8),
    Reduce(u8),
    Error,
}

/// (left-hand side, right-hand side length) of each grammar rule.
/// Non-terminals: 0 file, 1 stmts, 2 stmt, 3 assignment, 4 endstmt,
/// 5 value, 6 atom, 7 valuelist, 8 values, 9 nlok.
const RULES: [(u8, usize); 23] = [
    (0, 2), // 0  $accept: file $end (unused)
    (0, 1), // 1  file: stmts
    (0, 2), // 2  file: stmts assignment
    (1, 0), // 3  stmts: <empty>
    (1, 2), // 4  stmts: stmts stmt
    (2, 2), // 5  stmt: assignment endstmt
    (2, 1), // 6  stmt: endstmt
    (2, 2), // 7  stmt: error NEWLINE
    (3, 3), // 8  assignment: IDENT '=' value
    (3, 3), // 9  assignment: IDENT "+=" value
    (4, 1), // 10 endstmt: NEWLINE
    (4, 1), // 11 endstmt: ';'
    (5, 1), // 12 value: atom
    (5, 4), // 13 value: '[' nlok valuelist ']'
    (6, 1), // 14 atom: STRING
    (6, 1), // 15 atom: NUMBER
    (7, 0), // 16 valuelist: <empty>
    (7, 1), // 17 valuelist: values
    (7, 3), // 18 valuelist: values ',' nlok
    (8, 2), // 19 values: value nlok
    (8, 5), // 20 values: values ',' nlok value nlok
    (9, 0), // 21 nlok: <empty>
    (9, 2), // 22 nlok: nlok NEWLINE
];

/// States whose only action is a default reduction (no lookahead read).
fn default_only(state: u8) -> Option<u8> {
    Some(match state {
        0 => 3,
        6 => 10,
        7 => 11,
        8 => 4,
        10 => 6,
        11 => 7,
        14 => 5,
        15 => 14,
        16 => 15,
        17 | 23 | 28 | 30 => 21,
        18 => 9,
        19 => 12,
        20 => 8,
        22 => 22,
        27 => 13,
        _ => return None,
    })
}

fn action(state: u8, k: Kind) -> Act {
    use Act::*;
    let value_start = |k: Kind| match k {
        Kind::Str => Some(Shift(15)),
        Kind::Number => Some(Shift(16)),
        Kind::LBrack => Some(Shift(17)),
        _ => None,
    };
    match state {
        1 => match k {
            Kind::End => Shift(3),
            _ => Error,
        },
        2 => match k {
            Kind::Ident => Shift(5),
            Kind::Newline => Shift(6),
            Kind::Semi => Shift(7),
            Kind::End => Reduce(1),
            _ => Error,
        },
        4 => match k {
            Kind::Newline => Shift(11),
            _ => Error,
        },
        5 => match k {
            Kind::AddEq => Shift(12),
            Kind::Eq => Shift(13),
            _ => Error,
        },
        9 => match k {
            Kind::Newline => Shift(6),
            Kind::Semi => Shift(7),
            _ => Reduce(2),
        },
        12 | 13 => value_start(k).unwrap_or(Error),
        21 => match k {
            Kind::Newline => Shift(22),
            _ => value_start(k).unwrap_or(Reduce(16)),
        },
        24 => match k {
            Kind::RBrack => Shift(27),
            _ => Error,
        },
        25 => match k {
            Kind::Comma => Shift(28),
            _ => Reduce(17),
        },
        26 => match k {
            Kind::Newline => Shift(22),
            _ => Reduce(19),
        },
        29 => match k {
            Kind::Newline => Shift(22),
            _ => value_start(k).unwrap_or(Reduce(18)),
        },
        31 => match k {
            Kind::Newline => Shift(22),
            _ => Reduce(20),
        },
        _ => Error,
    }
}

fn goto(state: u8, lhs: u8) -> Option<u8> {
    Some(match (state, lhs) {
        (0, 0) => 1,
        (0, 1) => 2,
        (2, 2) => 8,
        (2, 3) => 9,
        (2, 4) => 10,
        (9, 4) => 14,
        (12, 5) => 18,
        (13, 5) => 20,
        (21, 5) => 23,
        (29, 5) => 30,
        (12 | 13 | 21 | 29, 6) => 19,
        (21, 7) => 24,
        (21, 8) => 25,
        (17, 9) => 21,
        (23, 9) => 26,
        (28, 9) => 29,
        (30, 9) => 31,
        _ => return None,
    })
}
