//! A serde deserializer over [`Node`] that never stops at the first problem.
//!
//! Every mismatch - unknown key, wrong type, out-of-range number, unknown
//! enum value - is recorded as a located [`Problem`] and a neutral value is
//! handed to the visitor instead, so one pass over the whole configuration
//! reports everything wrong with it. Unknown keys are caught here from the
//! field names serde passes to `deserialize_struct`, with a did-you-mean.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

use super::problem::{Problem, did_you_mean};
use super::tree::{Node, Value};

/// Collects problems while deserializing.
#[derive(Default)]
pub struct Sink {
    problems: RefCell<Vec<Problem>>,
}

impl Sink {
    pub fn push(&self, problem: Problem) {
        self.problems.borrow_mut().push(problem);
    }

    pub fn into_problems(self) -> Vec<Problem> {
        self.problems.into_inner()
    }
}

/// Deserializes `T` from `node`, recording every problem in `sink`.
pub fn from_node<'de, T: de::Deserialize<'de> + Default>(node: &'de Node, sink: &'de Sink) -> T {
    let de = NodeDe {
        node,
        path: String::new(),
        sink,
    };
    match T::deserialize(de) {
        Ok(value) => value,
        Err(error) => {
            sink.push(Problem::new("", Some(node.origin.clone()), error.0));
            T::default()
        }
    }
}

/// The error type serde requires; problems are recorded in the sink instead.
#[derive(Debug)]
pub struct DeError(String);

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError(msg.to_string())
    }
}

struct NodeDe<'a> {
    node: &'a Node,
    path: String,
    sink: &'a Sink,
}

impl<'a> NodeDe<'a> {
    fn child(&self, key: &str, node: &'a Node) -> NodeDe<'a> {
        let path = if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        };
        NodeDe {
            node,
            path,
            sink: self.sink,
        }
    }

    fn wrong_type(&self, expected: &str) {
        let found = match &self.node.value {
            Value::Raw(raw, _) => format!("`{raw}`"),
            other => other.kind().to_string(),
        };
        self.sink.push(
            Problem::new(
                &self.path,
                Some(self.node.origin.clone()),
                format!("expected {expected}, found {found}"),
            )
            .help(format!("set `{}` to {expected}", self.path)),
        );
    }

    fn integer(&self) -> Option<i64> {
        match &self.node.value {
            Value::Integer(n) => Some(*n),
            Value::Raw(raw, _) => raw.trim().replace('_', "").parse().ok(),
            _ => None,
        }
    }

    fn text(&self) -> Option<&'a str> {
        match &self.node.value {
            Value::String(s) | Value::Raw(s, _) => Some(s),
            _ => None,
        }
    }
}

macro_rules! integer_methods {
    ($($method:ident => $ty:ty, $visit:ident;)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            let expected = concat!("an integer from ", stringify!($ty));
            match self.integer().map(<$ty>::try_from) {
                Some(Ok(n)) => visitor.$visit(n),
                Some(Err(_)) => {
                    let msg = format!("an integer from {} to {}", <$ty>::MIN, <$ty>::MAX);
                    self.wrong_type(&msg);
                    visitor.$visit(0)
                }
                None => {
                    let _ = expected;
                    self.wrong_type("an integer");
                    visitor.$visit(0)
                }
            }
        }
    )*};
}

impl<'de> de::Deserializer<'de> for NodeDe<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::String(s) | Value::Raw(s, _) | Value::Datetime(s) => visitor.visit_str(s),
            Value::Integer(n) => visitor.visit_i64(*n),
            Value::Float(f) => visitor.visit_f64(*f),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Array(_) => self.deserialize_seq(visitor),
            Value::Table(_) => self.deserialize_map(visitor),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Raw(raw, _) if raw.trim() == "true" => visitor.visit_bool(true),
            Value::Raw(raw, _) if raw.trim() == "false" => visitor.visit_bool(false),
            _ => {
                self.wrong_type("a boolean (true or false)");
                visitor.visit_bool(false)
            }
        }
    }

    integer_methods! {
        deserialize_i8 => i8, visit_i8;
        deserialize_i16 => i16, visit_i16;
        deserialize_i32 => i32, visit_i32;
        deserialize_i64 => i64, visit_i64;
        deserialize_u8 => u8, visit_u8;
        deserialize_u16 => u16, visit_u16;
        deserialize_u32 => u32, visit_u32;
        deserialize_u64 => u64, visit_u64;
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let value = match &self.node.value {
            Value::Float(f) => Some(*f),
            Value::Integer(n) => Some(*n as f64),
            Value::Raw(raw, _) => raw.trim().parse().ok(),
            _ => None,
        };
        match value {
            Some(f) if f.is_finite() => visitor.visit_f64(f),
            _ => {
                self.wrong_type("a finite number");
                visitor.visit_f64(0.0)
            }
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.text() {
            Some(s) => visitor.visit_borrowed_str(s),
            None => {
                self.wrong_type("a string");
                visitor.visit_str("")
            }
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_some(self)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Array(items) => visitor.visit_seq(Seq {
                parent: &self,
                items: items.iter().enumerate(),
            }),
            Value::Raw(_, Some(items)) => visitor.visit_seq(Seq {
                parent: &self,
                items: items.iter().enumerate(),
            }),
            Value::Raw(..) => {
                self.wrong_type("an array, written as TOML: [\"a\", \"b\"]");
                visitor.visit_seq(Seq {
                    parent: &self,
                    items: [].iter().enumerate(),
                })
            }
            _ => {
                self.wrong_type("an array");
                visitor.visit_seq(Seq {
                    parent: &self,
                    items: [].iter().enumerate(),
                })
            }
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Table(entries) => {
                let entries: Vec<_> = entries.iter().collect();
                visitor.visit_map(Map {
                    parent: &self,
                    entries: entries.into_iter(),
                    pending: None,
                })
            }
            _ => {
                self.wrong_type("a table");
                visitor.visit_map(Map {
                    parent: &self,
                    entries: Vec::new().into_iter(),
                    pending: None,
                })
            }
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let Value::Table(entries) = &self.node.value else {
            self.wrong_type("a table");
            return visitor.visit_map(Map {
                parent: &self,
                entries: Vec::new().into_iter(),
                pending: None,
            });
        };
        let mut known = Vec::new();
        for (key, entry) in entries {
            if fields.contains(&key.as_str()) {
                known.push((key, entry));
                continue;
            }
            let path = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            let mut valid: Vec<&str> = fields.to_vec();
            valid.sort_unstable();
            let help = match did_you_mean(key, fields) {
                Some(close) => format!(
                    "did you mean `{close}`? valid keys here: {}",
                    valid.join(", ")
                ),
                None => format!("valid keys here: {}", valid.join(", ")),
            };
            let scope = if self.path.is_empty() {
                "at the top level".to_string()
            } else {
                format!("in [{}]", self.path)
            };
            self.sink.push(
                Problem::new(
                    path,
                    Some(entry.key_origin.clone()),
                    format!("unknown key `{key}` {scope}"),
                )
                .help(help),
            );
        }
        visitor.visit_map(Map {
            parent: &self,
            entries: known.into_iter(),
            pending: None,
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let chosen = match self.text() {
            Some(s) if variants.contains(&s) => s,
            Some(s) => {
                let help = match did_you_mean(s, variants) {
                    Some(close) => format!(
                        "did you mean \"{close}\"? valid values: {}",
                        quoted(variants)
                    ),
                    None => format!("valid values: {}", quoted(variants)),
                };
                self.sink.push(
                    Problem::new(
                        &self.path,
                        Some(self.node.origin.clone()),
                        format!("invalid value \"{s}\""),
                    )
                    .help(help),
                );
                variants[0]
            }
            None => {
                self.wrong_type(&format!("one of {}", quoted(variants)));
                variants[0]
            }
        };
        visitor.visit_enum(chosen.into_deserializer())
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}

fn quoted(values: &[&str]) -> String {
    values
        .iter()
        .map(|v| format!("\"{v}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

struct Seq<'p, 'a, I> {
    parent: &'p NodeDe<'a>,
    items: I,
}

impl<'de, I: Iterator<Item = (usize, &'de Node)>> de::SeqAccess<'de> for Seq<'_, 'de, I> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.items.next() {
            Some((index, node)) => seed
                .deserialize(self.parent.child(&index.to_string(), node))
                .map(Some),
            None => Ok(None),
        }
    }
}

struct Map<'p, 'a, I> {
    parent: &'p NodeDe<'a>,
    entries: I,
    pending: Option<(&'a String, &'a Node)>,
}

impl<'de, I: Iterator<Item = (&'de String, &'de super::tree::Entry)>> de::MapAccess<'de>
    for Map<'_, 'de, I>
{
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        match self.entries.next() {
            Some((key, entry)) => {
                self.pending = Some((key, &entry.node));
                let key_de: de::value::BorrowedStrDeserializer<'de, DeError> =
                    de::value::BorrowedStrDeserializer::new(key);
                seed.deserialize(key_de).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let (key, node) = self
            .pending
            .take()
            .ok_or_else(|| DeError("value without a key".into()))?;
        seed.deserialize(self.parent.child(key, node))
    }
}
