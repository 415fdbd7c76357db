//! Escaping for the target syntaxes. Every interpolated YAML value goes
//! through [`yaml`] (or [`compose`]); nginx and Dockerfile values are
//! refused at validation unless they are plain, so they need no escaping.

/// A double-quoted YAML scalar that parses back to exactly `s`.
///
/// JSON string syntax is valid YAML; on top of it, every character outside
/// YAML's printable set (DEL, C1 controls, U+FFFE/U+FFFF), the BOM, and the
/// Unicode line and paragraph separators (line breaks to YAML 1.1 parsers)
/// is written as a `\uXXXX` escape.
pub fn yaml(s: &str) -> String {
    let json = serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string());
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '\u{7f}'..='\u{9f}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{feff}'
            | '\u{fffe}'
            | '\u{ffff}' => {
                out.push_str(&format!("\\u{:04X}", c as u32));
            }
            _ => out.push(c),
        }
    }
    out
}

/// A YAML scalar for docker-compose, where `$` starts an interpolation: written `$$`.
pub fn compose(s: &str) -> String {
    yaml(&s.replace('$', "$$"))
}

/// A JSON string (Grafana dashboards).
pub fn json(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_round_trips_hostile_strings() {
        let hostile = [
            "plain",
            "with: colon",
            "# not a comment",
            "quote \" and ' both",
            "new\nline\r\n",
            "tab\tand\u{0}nul",
            "{{ template }} ${VAR} $(cmd)",
            "yes",
            "~",
            "null",
            "- dash",
            "del\u{7f} c1\u{85}\u{9f} bom\u{feff} nonchar\u{fffe}\u{ffff} sep\u{2028}\u{2029}",
            "emoji 🚀 and ñ",
            "",
        ];
        for s in hostile {
            let doc = format!("key: {}\n", yaml(s));
            let parsed: std::collections::BTreeMap<String, String> =
                yaml_serde::from_str(&doc).unwrap_or_else(|e| panic!("{doc:?}: {e}"));
            assert_eq!(parsed["key"], s, "{doc:?}");
        }
    }

    #[test]
    fn compose_doubles_dollars() {
        assert_eq!(compose("a$b"), "\"a$$b\"");
    }
}
