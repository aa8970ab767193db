//! The files a profile was loaded from, and how a byte position maps back to them.
//!
//! Like rustc's source map, every loaded file gets its own range of global byte
//! positions, so a plain `Range<usize>` span says both *which* file and *where*.
//! That lets `extends` merge TOML trees from several files and still point every
//! error into the file the offending value came from.

use std::ops::Range;
use std::path::{Path, PathBuf};

/// A span in global positions (see the module docs).
pub type Span = Range<usize>;

#[derive(Debug)]
pub struct SourceFile {
    /// The path as it is shown to the user.
    pub path: PathBuf,
    pub text: &'static str,
    /// Global position of the file's first byte.
    pub base: usize,
}

#[derive(Debug, Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

/// A resolved position: file, 1-based line and column.
#[derive(Debug, Clone)]
pub struct Location<'a> {
    pub file: &'a SourceFile,
    pub line: usize,
    pub column: usize,
}

impl SourceMap {
    /// Adds a file and returns its base position.
    ///
    /// The text is leaked on purpose: TOML trees borrow from it for the rest of the
    /// run (the process loads each profile once, and diagnostics need the text
    /// until exit), and `toml`'s trees cannot be turned into owned `'static` ones.
    pub fn add(&mut self, path: &Path, text: String) -> usize {
        let base = self.files.last().map_or(0, |f| f.base + f.text.len() + 1);
        let text: &'static str = Box::leak(text.into_boxed_str());
        self.files.push(SourceFile {
            path: path.to_path_buf(),
            text,
            base,
        });
        base
    }

    /// Every file read, the profile itself first, then what it extends.
    pub fn files(&self) -> &[SourceFile] {
        &self.files
    }

    pub fn file_at(&self, pos: usize) -> Option<&SourceFile> {
        self.files
            .iter()
            .rev()
            .find(|f| f.base <= pos && pos <= f.base + f.text.len())
    }

    pub fn locate(&self, pos: usize) -> Option<Location<'_>> {
        let file = self.file_at(pos)?;
        let offset = pos - file.base;
        let before = &file.text[..floor_char_boundary(file.text, offset)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Some(Location { file, line, column })
    }

    /// The source text a span covers, if it lies in one file.
    pub fn snippet(&self, span: &Span) -> Option<&str> {
        let file = self.file_at(span.start)?;
        file.text.get(span.start - file.base..span.end - file.base)
    }
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}
