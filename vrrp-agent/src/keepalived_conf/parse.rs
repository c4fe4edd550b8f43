//! keepalived.conf syntax, written from the documented format: words separated by blanks,
//! `{ }` blocks, `"quoted strings"` (one word, blanks and `#` kept), comments from `#` or `!`
//! to the end of the line, and `include PATTERN` (globs, relative to the including file).
//!
//! A statement is a keyword and the words after it on its line; a `{` (on the same line or
//! the next ones) opens its block. Every node carries its `file:line`. Anything the grammar
//! does not allow (an unbalanced brace, an unterminated quote, an include cycle) is an error
//! naming where it is.
use std::{
    fmt,
    path::{Path, PathBuf},
    rc::Rc,
};

/// Where a word was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loc {
    pub file: Rc<PathBuf>,
    /// 1-based.
    pub line: usize,
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// An error or a warning: where, and one line of what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diag {
    pub loc: Loc,
    pub msg: String,
}

impl fmt::Display for Diag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.loc, self.msg)
    }
}

impl std::error::Error for Diag {}

pub fn diag(loc: &Loc, msg: impl Into<String>) -> Diag {
    Diag {
        loc: loc.clone(),
        msg: msg.into(),
    }
}

/// One word of a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    /// Written in double quotes.
    pub quoted: bool,
}

/// A statement: `keyword args... [{ children }]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub keyword: String,
    pub args: Vec<Word>,
    /// `Some` when the statement has a `{ }` block.
    pub block: Option<Vec<Node>>,
    pub loc: Loc,
}

impl Node {
    /// The arguments as text.
    pub fn arg_texts(&self) -> Vec<&str> {
        self.args.iter().map(|w| w.text.as_str()).collect()
    }
}

/// How deep includes may nest.
pub const MAX_INCLUDE_DEPTH: usize = 8;
/// The most files one configuration may read (globs included).
pub const MAX_FILES: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(Word),
    Open,
    Close,
    Newline,
}

/// Splits one file into tokens with their lines.
fn lex(src: &str, file: &Rc<PathBuf>) -> Result<Vec<(Tok, usize)>, Diag> {
    let mut out = Vec::new();
    for (i, line) in src.lines().enumerate() {
        let n = i + 1;
        let loc = || Loc {
            file: file.clone(),
            line: n,
        };
        let mut chars = line.char_indices().peekable();
        let mut first = true;
        while let Some(&(_, c)) = chars.peek() {
            if c.is_whitespace() {
                chars.next();
                continue;
            }
            if c == '#' || c == '!' {
                break;
            }
            if c == '{' || c == '}' {
                chars.next();
                out.push((if c == '{' { Tok::Open } else { Tok::Close }, n));
                first = false;
                continue;
            }
            if c == '"' {
                chars.next();
                let mut text = String::new();
                let mut closed = false;
                for (_, c) in chars.by_ref() {
                    if c == '"' {
                        closed = true;
                        break;
                    }
                    text.push(c);
                }
                if !closed {
                    return Err(diag(&loc(), "unterminated quoted string (a \" is missing)"));
                }
                out.push((Tok::Word(Word { text, quoted: true }), n));
                first = false;
                continue;
            }
            let mut text = String::new();
            while let Some(&(_, c)) = chars.peek() {
                if c.is_whitespace() || c == '{' || c == '}' || c == '"' {
                    break;
                }
                // A comment may start inside a line, not inside a word (`a#b` is one word).
                text.push(c);
                chars.next();
            }
            if first && (text.starts_with('@') || text.starts_with('$') || text.starts_with('~')) {
                let what = match text.chars().next() {
                    Some('@') => "conditional lines (@ID)",
                    Some('$') => "parameter definitions ($NAME=...)",
                    _ => "sequences (~SEQ)",
                };
                return Err(diag(
                    &loc(),
                    format!(
                        "{text}: keepalived's {what} are not supported: write the configuration \
                         this node runs without them"
                    ),
                ));
            }
            out.push((
                Tok::Word(Word {
                    text,
                    quoted: false,
                }),
                n,
            ));
            first = false;
        }
        out.push((Tok::Newline, n));
    }
    Ok(out)
}

/// Builds the statements of one file from its tokens (includes not yet followed).
fn tree(toks: &[(Tok, usize)], file: &Rc<PathBuf>) -> Result<Vec<Node>, Diag> {
    let loc = |line: usize| Loc {
        file: file.clone(),
        line,
    };
    // A stack of open blocks: the statements read so far at each level, and the line of
    // the `{` that opened it.
    let mut stack: Vec<(Vec<Node>, usize)> = vec![(Vec::new(), 0)];
    // The statement being read (its words are on one line), if any.
    let mut cur: Option<Node> = None;
    // The last statement ended by a newline, which a `{` on a later line may still open.
    let mut can_open = false;
    for (tok, line) in toks {
        match tok {
            Tok::Word(w) => {
                match &mut cur {
                    Some(node) => node.args.push(w.clone()),
                    None => {
                        cur = Some(Node {
                            keyword: w.text.clone(),
                            args: Vec::new(),
                            block: None,
                            loc: loc(*line),
                        })
                    }
                }
                can_open = false;
            }
            Tok::Newline => {
                if let Some(node) = cur.take() {
                    stack.last_mut().expect("root level").0.push(node);
                    can_open = true;
                }
            }
            Tok::Open => {
                let node = match cur.take() {
                    Some(n) => n,
                    None if can_open => stack
                        .last_mut()
                        .expect("root level")
                        .0
                        .pop()
                        .expect("can_open follows a statement"),
                    None => return Err(diag(&loc(*line), "`{` without a keyword before it")),
                };
                if node.block.is_some() {
                    return Err(diag(&loc(*line), "a second `{` for one keyword"));
                }
                // The node waits on the stack of its parent; its children go on a new level.
                stack.last_mut().expect("root level").0.push(node);
                stack.push((Vec::new(), *line));
                can_open = false;
            }
            Tok::Close => {
                if let Some(node) = cur.take() {
                    stack.last_mut().expect("root level").0.push(node);
                }
                if stack.len() == 1 {
                    return Err(diag(&loc(*line), "`}` without a matching `{`"));
                }
                let (children, _) = stack.pop().expect("checked");
                let parent = stack
                    .last_mut()
                    .expect("root level")
                    .0
                    .last_mut()
                    .expect("a block belongs to a statement");
                parent.block = Some(children);
                can_open = false;
            }
        }
    }
    if let Some(node) = cur.take() {
        stack.last_mut().expect("root level").0.push(node);
    }
    if stack.len() > 1 {
        let (_, line) = stack.last().expect("checked");
        return Err(diag(
            &loc(*line),
            "this `{` is never closed (a `}` is missing)",
        ));
    }
    Ok(stack.pop().expect("root level").0)
}

/// Reads a configuration and every file it includes: the statements, in order, with the
/// includes replaced by the statements of the files they name (at the level they are
/// written). Warnings (an include that matches nothing) go to `warnings`.
pub fn read(path: &Path, warnings: &mut Vec<Diag>) -> Result<Vec<Node>, Diag> {
    let mut reader = Reader {
        files: 0,
        stack: Vec::new(),
        warnings,
    };
    let top = Loc {
        file: Rc::new(path.to_path_buf()),
        line: 0,
    };
    reader.file(path, &top)
}

/// [`read`] on text already in memory (`path` names it in diagnostics; includes resolve
/// relative to its directory): what the fuzzing bench feeds, without a file per input.
pub fn read_str(src: &str, path: &Path, warnings: &mut Vec<Diag>) -> Result<Vec<Node>, Diag> {
    let mut reader = Reader {
        files: 1,
        stack: Vec::new(),
        warnings,
    };
    let file = Rc::new(path.to_path_buf());
    let nodes = tree(&lex(src, &file)?, &file)?;
    let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    reader.expand(nodes, &dir)
}

struct Reader<'w> {
    files: usize,
    /// The files being read, outermost first (canonical paths), for cycles.
    stack: Vec<PathBuf>,
    warnings: &'w mut Vec<Diag>,
}

impl Reader<'_> {
    /// Reads one file (`from`: the include that names it, line 0 for the top file).
    fn file(&mut self, path: &Path, from: &Loc) -> Result<Vec<Node>, Diag> {
        let at = |msg: String| {
            if from.line == 0 {
                Diag {
                    loc: from.clone(),
                    msg,
                }
            } else {
                diag(from, msg)
            }
        };
        self.files += 1;
        if self.files > MAX_FILES {
            return Err(at(format!(
                "more than {MAX_FILES} files included: refusing to read more"
            )));
        }
        let canon = std::fs::canonicalize(path)
            .map_err(|e| at(format!("cannot read {}: {e}", path.display())))?;
        if self.stack.contains(&canon) {
            return Err(at(format!(
                "include {}: the file includes itself (through {}); remove the cycle",
                path.display(),
                self.stack
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" -> ")
            )));
        }
        if self.stack.len() >= MAX_INCLUDE_DEPTH {
            return Err(at(format!(
                "include {}: includes nest deeper than {MAX_INCLUDE_DEPTH} files",
                path.display()
            )));
        }
        let src = std::fs::read_to_string(path)
            .map_err(|e| at(format!("cannot read {}: {e}", path.display())))?;
        let file = Rc::new(path.to_path_buf());
        let nodes = tree(&lex(&src, &file)?, &file)?;
        self.stack.push(canon);
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let out = self.expand(nodes, &dir);
        self.stack.pop();
        out
    }

    /// Replaces the include statements of `nodes` (at every level) by what they include.
    fn expand(&mut self, nodes: Vec<Node>, dir: &Path) -> Result<Vec<Node>, Diag> {
        let mut out = Vec::with_capacity(nodes.len());
        for mut node in nodes {
            if is_include(&node.keyword) {
                if node.block.is_some() || node.args.len() != 1 {
                    return Err(diag(
                        &node.loc,
                        format!("{}: takes one file name or pattern", node.keyword),
                    ));
                }
                let pattern = &node.args[0].text;
                let full = if Path::new(pattern).is_absolute() {
                    PathBuf::from(pattern)
                } else {
                    dir.join(pattern)
                };
                let full_text = full.to_string_lossy().into_owned();
                let paths = glob::glob(&full_text).map_err(|e| {
                    diag(
                        &node.loc,
                        format!("{}: {pattern}: bad pattern: {e}", node.keyword),
                    )
                })?;
                let mut matched: Vec<PathBuf> = Vec::new();
                for p in paths {
                    let p =
                        p.map_err(|e| diag(&node.loc, format!("{} {pattern}: {e}", node.keyword)))?;
                    if p.is_file() {
                        matched.push(p);
                    }
                    if matched.len() > MAX_FILES {
                        break;
                    }
                }
                matched.sort();
                if matched.is_empty() {
                    self.warnings.push(diag(
                        &node.loc,
                        format!(
                            "{} {pattern}: no file matches (nothing included)",
                            node.keyword
                        ),
                    ));
                }
                for p in matched {
                    out.extend(self.file(&p, &node.loc)?);
                }
                continue;
            }
            if let Some(children) = node.block.take() {
                node.block = Some(self.expand(children, dir)?);
            }
            out.push(node);
        }
        Ok(out)
    }
}

/// `include` and its checking variants (`includer`, `includem`, ...), which read the same way.
fn is_include(k: &str) -> bool {
    matches!(
        k,
        "include" | "includer" | "includem" | "includew" | "includeb" | "includea"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> Result<Vec<Node>, Diag> {
        let f = Rc::new(PathBuf::from("k.conf"));
        tree(&lex(src, &f)?, &f)
    }

    #[test]
    fn blocks_words_quotes_comments() {
        let n = parse(
            "! Configuration File\nglobal_defs {\n  router_id r1 # a comment\n}\n\
             vrrp_script chk\n{\n  script \"/bin/check --x # y\"\n}\nvrrp_sync_group G { group { A B } }\n",
        )
        .unwrap();
        assert_eq!(n.len(), 3);
        assert_eq!(n[0].keyword, "global_defs");
        assert_eq!(n[0].loc.line, 2);
        let g = n[0].block.as_ref().unwrap();
        assert_eq!(g[0].keyword, "router_id");
        assert_eq!(g[0].arg_texts(), ["r1"]);
        assert_eq!(g[0].loc.line, 3);
        // `{` on the next line opens the previous statement's block.
        let s = n[1].block.as_ref().unwrap();
        assert_eq!(s[0].args[0].text, "/bin/check --x # y");
        assert!(s[0].args[0].quoted);
        let grp = &n[2].block.as_ref().unwrap()[0];
        assert_eq!(grp.keyword, "group");
        let members = &grp.block.as_ref().unwrap()[0];
        assert_eq!(members.keyword, "A");
        assert_eq!(members.arg_texts(), ["B"]);
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let e = parse("a {\n b 1\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "k.conf:1: this `{` is never closed (a `}` is missing)"
        );
        let e = parse("a {\n}\n}\n").unwrap_err();
        assert_eq!(e.to_string(), "k.conf:3: `}` without a matching `{`");
        let e = parse("a \"b\n").unwrap_err();
        assert!(e.to_string().starts_with("k.conf:1: unterminated"), "{e}");
        let e = parse("x {\n}\n\n{\n}\n").unwrap_err();
        assert!(e.to_string().starts_with("k.conf:4:"), "{e}");
        let e = parse("@main router_id x\n").unwrap_err();
        assert!(e.to_string().starts_with("k.conf:1: @main:"), "{e}");
    }
}
