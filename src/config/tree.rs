//! A configuration tree that remembers where every key and value came from.
//!
//! Files are parsed into it with their spans, layers are deep-merged (tables
//! merge, everything else - arrays included - replaces), and overrides from
//! the environment or `--set` are grafted in as raw text that the typed
//! deserializer interprets for the field it lands on.

use std::collections::BTreeMap;

use toml::de::{DeTable, DeValue};

use super::source::Origin;

#[derive(Debug, Clone)]
pub struct Node {
    pub value: Value,
    pub origin: Origin,
}

#[derive(Debug, Clone)]
pub enum Value {
    String(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
    Datetime(String),
    Array(Vec<Node>),
    Table(BTreeMap<String, Entry>),
    /// Text from an environment variable or `--set`: typed by the field it lands on.
    /// When the text is also a TOML array, its parsed items are kept for array fields.
    Raw(String, Option<Vec<Node>>),
}

/// A table entry: the key's own position (for "unknown key" problems) and the value.
#[derive(Debug, Clone)]
pub struct Entry {
    pub key_origin: Origin,
    pub node: Node,
}

impl Value {
    /// How a problem names a value's type.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::String(_) | Value::Raw(..) => "a string",
            Value::Integer(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Bool(_) => "a boolean",
            Value::Datetime(_) => "a datetime",
            Value::Array(_) => "an array",
            Value::Table(_) => "a table",
        }
    }
}

impl Node {
    pub fn empty_table(origin: Origin) -> Node {
        Node {
            value: Value::Table(BTreeMap::new()),
            origin,
        }
    }

    /// Parses a TOML document. The error carries the byte span toml reports.
    pub fn parse_toml(text: &str, source: usize) -> Result<Node, (String, std::ops::Range<usize>)> {
        match DeTable::parse(text) {
            Ok(table) => {
                let span = table.span();
                Ok(from_table(table.into_inner(), source, span))
            }
            Err(error) => {
                let span = error.span().unwrap_or(0..0);
                Err((error.message().trim().to_string(), span))
            }
        }
    }

    /// Parses one TOML value (used for array overrides such as `--set gateway.server_names=["a","b"]`).
    pub fn parse_toml_value(text: &str, origin: &Origin) -> Option<Node> {
        let parsed = DeValue::parse(text).ok()?;
        let mut node = from_value(parsed.into_inner(), origin.source, origin.span.clone());
        node.reanchor(origin);
        Some(node)
    }

    /// Points every origin in this subtree at `origin` (its spans meant another text).
    fn reanchor(&mut self, origin: &Origin) {
        self.origin = origin.clone();
        match &mut self.value {
            Value::Array(items) => items.iter_mut().for_each(|n| n.reanchor(origin)),
            Value::Table(entries) => entries.values_mut().for_each(|e| {
                e.key_origin = origin.clone();
                e.node.reanchor(origin);
            }),
            _ => {}
        }
    }

    /// Deep-merges `upper` over `self`: tables merge key by key, anything else replaces.
    pub fn merge(&mut self, upper: Node) {
        match (&mut self.value, upper.value) {
            (Value::Table(lower), Value::Table(upper_entries)) => {
                for (key, entry) in upper_entries {
                    match lower.get_mut(&key) {
                        Some(existing) => {
                            existing.key_origin = entry.key_origin;
                            existing.node.merge(entry.node);
                        }
                        None => {
                            lower.insert(key, entry);
                        }
                    }
                }
                self.origin = upper.origin;
            }
            (_, value) => {
                self.value = value;
                self.origin = upper.origin;
            }
        }
    }

    /// Sets `path` to raw text, creating intermediate tables. Fails when a
    /// non-table value is in the way (`app.port.x` when `app.port` is a number).
    pub fn set_path(
        &mut self,
        path: &[String],
        raw: String,
        origin: &Origin,
    ) -> Result<(), String> {
        let mut node = self;
        for (depth, key) in path.iter().enumerate() {
            let kind = node.value.kind();
            let Value::Table(entries) = &mut node.value else {
                return Err(format!(
                    "`{}` is {kind}, not a table",
                    path[..depth].join(".")
                ));
            };
            let entry = entries.entry(key.clone()).or_insert_with(|| Entry {
                key_origin: origin.clone(),
                node: Node::empty_table(origin.clone()),
            });
            entry.key_origin = origin.clone();
            node = &mut entry.node;
        }
        let items = match Node::parse_toml_value(&raw, origin) {
            Some(Node {
                value: Value::Array(items),
                ..
            }) => Some(items),
            _ => None,
        };
        node.value = Value::Raw(raw, items);
        node.origin = origin.clone();
        Ok(())
    }

    /// The node at a dotted path, if present.
    pub fn lookup(&self, path: &str) -> Option<&Node> {
        let mut node = self;
        for key in path.split('.').filter(|k| !k.is_empty()) {
            node = match &node.value {
                Value::Table(entries) => &entries.get(key)?.node,
                Value::Array(items) => items.get(key.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(node)
    }

    /// The origin that best explains `path`: the value if present, else its closest ancestor.
    pub fn origin_of(&self, path: &str) -> Origin {
        let mut best = &self.origin;
        let mut node = self;
        for key in path.split('.').filter(|k| !k.is_empty()) {
            let next = match &node.value {
                Value::Table(entries) => entries.get(key).map(|e| &e.node),
                Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
                _ => None,
            };
            match next {
                Some(n) => {
                    best = &n.origin;
                    node = n;
                }
                None => break,
            }
        }
        best.clone()
    }
}

fn from_table(table: DeTable<'_>, source: usize, span: std::ops::Range<usize>) -> Node {
    let entries = table
        .into_iter()
        .map(|(key, value)| {
            let key_origin = Origin {
                source,
                span: key.span(),
            };
            let value_span = value.span();
            let node = from_value(value.into_inner(), source, value_span);
            (key.into_inner().into_owned(), Entry { key_origin, node })
        })
        .collect();
    Node {
        value: Value::Table(entries),
        origin: Origin { source, span },
    }
}

fn from_value(value: DeValue<'_>, source: usize, span: std::ops::Range<usize>) -> Node {
    let origin = Origin {
        source,
        span: span.clone(),
    };
    let value = match value {
        DeValue::String(s) => Value::String(s.into_owned()),
        DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
            Ok(n) => Value::Integer(n),
            Err(_) => Value::Raw(i.to_string(), None),
        },
        DeValue::Float(f) => Value::Float(parse_toml_float(f.as_str())),
        DeValue::Boolean(b) => Value::Bool(b),
        DeValue::Datetime(d) => Value::Datetime(d.to_string()),
        DeValue::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|item| {
                    let item_span = item.span();
                    from_value(item.into_inner(), source, item_span)
                })
                .collect(),
        ),
        DeValue::Table(table) => return from_table(table, source, span),
    };
    Node { value, origin }
}

fn parse_toml_float(text: &str) -> f64 {
    match text.trim_start_matches('+') {
        "inf" => f64::INFINITY,
        "-inf" => f64::NEG_INFINITY,
        "nan" | "-nan" => f64::NAN,
        other => other.replace('_', "").parse().unwrap_or(f64::NAN),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, source: usize) -> Node {
        Node::parse_toml(text, source).expect("valid toml")
    }

    #[test]
    fn merge_is_deep_for_tables_and_replaces_arrays() {
        let mut base = parse("[a]\nx = 1\ny = [1, 2]\n[a.inner]\nkeep = true\n", 0);
        let env = parse("[a]\ny = [3]\n[a.inner]\nadded = \"v\"\n", 1);
        base.merge(env);
        let a = base.lookup("a").unwrap();
        assert!(matches!(
            base.lookup("a.x").unwrap().value,
            Value::Integer(1)
        ));
        match &base.lookup("a.y").unwrap().value {
            Value::Array(items) => assert_eq!(items.len(), 1),
            other => panic!("expected array, got {other:?}"),
        }
        assert!(matches!(
            base.lookup("a.inner.keep").unwrap().value,
            Value::Bool(true)
        ));
        assert!(matches!(
            base.lookup("a.inner.added").unwrap().value,
            Value::String(_)
        ));
        assert_eq!(base.lookup("a.y").unwrap().origin.source, 1);
        assert_eq!(base.lookup("a.x").unwrap().origin.source, 0);
        assert!(matches!(a.value, Value::Table(_)));
    }

    #[test]
    fn set_path_creates_tables_and_refuses_to_descend_into_values() {
        let mut root = parse("[app]\nport = 1\n", 0);
        let origin = Origin {
            source: 9,
            span: 0..3,
        };
        root.set_path(&["image".into(), "tag".into()], "v1".into(), &origin)
            .unwrap();
        assert!(
            matches!(&root.lookup("image.tag").unwrap().value, Value::Raw(s, None) if s == "v1")
        );
        root.set_path(
            &["gateway".into(), "server_names".into()],
            "[\"a\", \"b\"]".into(),
            &origin,
        )
        .unwrap();
        assert!(
            matches!(&root.lookup("gateway.server_names").unwrap().value, Value::Raw(_, Some(items)) if items.len() == 2)
        );
        let err = root
            .set_path(
                &["app".into(), "port".into(), "x".into()],
                "1".into(),
                &origin,
            )
            .unwrap_err();
        assert_eq!(err, "`app.port` is an integer, not a table");
    }

    #[test]
    fn origin_of_falls_back_to_the_nearest_ancestor() {
        let root = parse("[gateway]\nburst = 5\n", 3);
        let o = root.origin_of("gateway.tls.enabled");
        assert_eq!(o, root.lookup("gateway").unwrap().origin);
    }
}
