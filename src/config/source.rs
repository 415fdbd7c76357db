//! Where a configuration value came from: a file, an environment variable or a `--set` flag.

use std::ops::Range;

/// One piece of configuration text, kept so problems can point into it.
#[derive(Debug, Clone)]
pub struct Source {
    /// How a person names it: `environments/staging.toml`, `environment variable SHIPIT__APP__PORT`, `--set app.port=1`.
    pub name: String,
    pub kind: SourceKind,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    File,
    EnvVar,
    Flag,
    Default,
}

/// An index into [`Sources`] plus a byte range in that source's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub source: usize,
    pub span: Range<usize>,
}

/// All configuration text read for one environment.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    items: Vec<Source>,
}

/// A resolved position: source name, 1-based line and column, and the line's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub name: String,
    pub kind: SourceKind,
    pub line: usize,
    pub column: usize,
    pub line_text: String,
    pub width: usize,
}

impl Sources {
    pub fn add(
        &mut self,
        name: impl Into<String>,
        kind: SourceKind,
        text: impl Into<String>,
    ) -> usize {
        self.items.push(Source {
            name: name.into(),
            kind,
            text: text.into(),
        });
        self.items.len() - 1
    }

    pub fn get(&self, index: usize) -> &Source {
        &self.items[index]
    }

    /// Turns a byte span into line and column (columns count characters, as editors do).
    pub fn locate(&self, origin: &Origin) -> Location {
        let source = &self.items[origin.source];
        let text = &source.text;
        let start = origin.span.start.min(text.len());
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let line = text[..start].matches('\n').count() + 1;
        let column = text[line_start..start].chars().count() + 1;
        let end = origin.span.end.clamp(start, line_end);
        let width = text[start..end].chars().count().max(1);
        Location {
            name: source.name.clone(),
            kind: source.kind,
            line,
            column,
            line_text: text[line_start..line_end]
                .trim_end_matches('\r')
                .to_string(),
            width,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_line_and_column_in_characters() {
        let mut sources = Sources::default();
        let id = sources.add("a.toml", SourceKind::File, "x = 1\nnäme = \"y\"\n");
        let offset = "x = 1\nnäme = ".len();
        let loc = sources.locate(&Origin {
            source: id,
            span: offset..offset + 3,
        });
        assert_eq!((loc.line, loc.column, loc.width), (2, 8, 3));
        assert_eq!(loc.line_text, "näme = \"y\"");
    }
}
