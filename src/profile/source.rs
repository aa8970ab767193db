//! The files a profile was loaded from, and how a byte position maps back to them.
//!
//! Like rustc's source map, every loaded file gets its own range of global byte
//! positions, so a plain `Range<usize>` span says both *which* file and *where*.
//! That lets `extends` merge TOML trees from several files and still point every
//! error into the file the offending value came from.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A span in global positions (see the module docs).
pub type Span = Range<usize>;

#[derive(Debug)]
pub struct SourceFile {
    /// The path as it is shown to the user.
    pub path: PathBuf,
    pub text: &'static str,
    /// Global position of the file's first byte.
    pub base: usize,
    /// Who owns the file (uid, gid): whose keys it holds.
    pub owner: Option<(u32, u32)>,
    /// Never quoted under a diagnostic (an env file's values are secrets).
    pub secret: bool,
    /// Offsets where lines start, so a position is located by binary search
    /// rather than by counting from the top for every diagnostic.
    line_starts: Vec<usize>,
    /// Offsets of UTF-8 continuation bytes: a column counts characters, and
    /// this counts them in one search however long the line is.
    continuations: Vec<usize>,
}

/// Every file read in one run. Cloning shares the files.
#[derive(Debug, Default, Clone)]
pub struct SourceMap {
    files: Vec<Arc<SourceFile>>,
}

/// A resolved position: file, 1-based line and column.
#[derive(Debug, Clone)]
pub struct Location<'a> {
    pub file: &'a SourceFile,
    pub line: usize,
    pub column: usize,
}

impl SourceFile {
    /// The 1-based line of an offset into the file, and the offset its line starts at.
    pub fn line_of(&self, offset: usize) -> (usize, usize) {
        let line = self.line_starts.partition_point(|&s| s <= offset);
        (line.max(1), self.line_starts[line.max(1) - 1])
    }

    /// Where the line after `line` (1-based) starts, or the end of the text.
    pub fn line_end(&self, line: usize) -> usize {
        self.line_starts
            .get(line)
            .copied()
            .unwrap_or(self.text.len())
    }

    /// Characters in `start..end` (byte offsets into the file).
    fn chars_between(&self, start: usize, end: usize) -> usize {
        let inside = self.continuations.partition_point(|&c| c < end)
            - self.continuations.partition_point(|&c| c < start);
        end - start - inside
    }
}

impl SourceMap {
    /// Adds a file and returns its base position.
    ///
    /// The text is leaked on purpose: TOML trees borrow from it for the rest of the
    /// run (the process reads each file once, and diagnostics need the text
    /// until exit), and `toml`'s trees cannot be turned into owned `'static` ones.
    pub fn add(&mut self, path: &Path, text: String) -> usize {
        self.add_file(path, text, None, false)
    }

    /// Adds a file with its owner; a `secret` file is located, never quoted.
    pub fn add_file(
        &mut self,
        path: &Path,
        text: String,
        owner: Option<(u32, u32)>,
        secret: bool,
    ) -> usize {
        let base = self.files.last().map_or(0, |f| f.base + f.text.len() + 1);
        let text: &'static str = Box::leak(text.into_boxed_str());
        let bytes = text.as_bytes();
        let line_starts = std::iter::once(0)
            .chain(memchr_all(bytes, b'\n').map(|i| i + 1))
            .collect();
        let continuations = bytes
            .iter()
            .enumerate()
            .filter(|(_, b)| **b & 0xC0 == 0x80)
            .map(|(i, _)| i)
            .collect();
        self.files.push(Arc::new(SourceFile {
            path: path.to_path_buf(),
            text,
            base,
            owner,
            secret,
            line_starts,
            continuations,
        }));
        base
    }

    pub fn file_at(&self, pos: usize) -> Option<&SourceFile> {
        let after = self.files.partition_point(|f| f.base <= pos);
        let file = self.files.get(after.checked_sub(1)?)?;
        (pos <= file.base + file.text.len()).then_some(&**file)
    }

    pub fn locate(&self, pos: usize) -> Option<Location<'_>> {
        let file = self.file_at(pos)?;
        let offset = floor_char_boundary(file.text, pos - file.base);
        let (line, line_start) = file.line_of(offset);
        let column = file.chars_between(line_start, offset) + 1;
        Some(Location { file, line, column })
    }

    /// Every file read, in the order read.
    pub fn files(&self) -> impl Iterator<Item = &SourceFile> {
        self.files.iter().map(|f| &**f)
    }

    /// The source text a span covers, if it lies in one file.
    pub fn snippet(&self, span: &Span) -> Option<&str> {
        let file = self.file_at(span.start)?;
        file.text
            .get(span.start - file.base..span.end.checked_sub(file.base)?)
    }
}

fn memchr_all(bytes: &[u8], needle: u8) -> impl Iterator<Item = usize> + '_ {
    bytes
        .iter()
        .enumerate()
        .filter(move |(_, b)| **b == needle)
        .map(|(i, _)| i)
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_lines_and_columns_in_each_file() {
        let mut map = SourceMap::default();
        let a = map.add(Path::new("a.toml"), "x = 1\nyé = 2\n".into());
        let b = map.add(Path::new("b.toml"), "\n\nz".into());
        let at = |pos| {
            let l = map.locate(pos).unwrap();
            (l.file.path.display().to_string(), l.line, l.column)
        };
        assert_eq!(at(a), ("a.toml".into(), 1, 1));
        assert_eq!(at(a + 4), ("a.toml".into(), 1, 5));
        // `é` is two bytes and one column.
        assert_eq!(at(a + 10), ("a.toml".into(), 2, 4));
        assert_eq!(at(b + 2), ("b.toml".into(), 3, 1));
        assert_eq!(map.snippet(&(b + 2..b + 3)), Some("z"));
    }
}
