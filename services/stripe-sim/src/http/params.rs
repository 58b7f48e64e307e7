//! Stripe's form encoding (`a[b][c]=v`, `list[]=x`, `list[0]=x`) for query strings and POST
//! bodies, kept flat: `"amount_requested[currency]"` is one key.

use std::hash::{Hash, Hasher};

use crate::http::error::ApiError;

/// Decoded parameters in the order they were sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Decodes `a=1&b%5Bc%5D=2` (`+` is a space).
    pub fn parse(s: &str) -> Result<Params, ApiError> {
        let mut pairs = Vec::new();
        for part in s.split('&') {
            if part.is_empty() {
                continue;
            }
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            let k = decode(k)?;
            let v = decode(v)?;
            pairs.push((k, v));
        }
        Ok(Params { pairs })
    }

    /// Every `(key, value)` pair.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// The first value of a flat key.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The values of an array parameter, sent as `name[]=…` (in order) or `name[N]=…` (by N).
    pub fn array(&self, name: &str) -> Vec<&str> {
        let mut indexed: Vec<(usize, usize, &str)> = Vec::new();
        for (pos, (k, v)) in self.pairs.iter().enumerate() {
            let Some(rest) = k.strip_prefix(name) else {
                continue;
            };
            if rest == "[]" {
                indexed.push((usize::MAX, pos, v));
            } else if let Some(n) = rest.strip_prefix('[').and_then(|r| r.strip_suffix(']'))
                && let Ok(n) = n.parse::<usize>()
            {
                indexed.push((n, pos, v));
            }
        }
        indexed.sort_by_key(|(n, pos, _)| if *n == usize::MAX { (*pos, 0) } else { (*n, 1) });
        indexed.into_iter().map(|(_, _, v)| v).collect()
    }

    /// `(sub key, value)` of a hash parameter: `metadata[a]=1` gives `("a", "1")`.
    pub fn hash(&self, name: &str) -> Vec<(&str, &str)> {
        self.pairs
            .iter()
            .filter_map(|(k, v)| {
                let inner = k.strip_prefix(name)?.strip_prefix('[')?.strip_suffix(']')?;
                (!inner.contains('[')).then_some((inner, v.as_str()))
            })
            .collect()
    }

    /// Whether any key is `name` or starts with `name[`.
    pub fn has(&self, name: &str) -> bool {
        self.pairs.iter().any(|(k, _)| top_name(k) == name)
    }

    /// The first key whose top-level name is not in `allowed`.
    pub fn first_unknown(&self, allowed: &[&str]) -> Option<&str> {
        self.pairs
            .iter()
            .map(|(k, _)| top_name(k))
            .find(|n| !allowed.contains(n))
    }

    /// A hash of the parameters that ignores the order of distinct keys but keeps the order of
    /// repeated ones (array elements): what an idempotency key is compared on.
    pub fn fingerprint(&self, method: &str, path: &str) -> u64 {
        let mut sorted: Vec<&(String, String)> = self.pairs.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        let mut h = std::collections::hash_map::DefaultHasher::new();
        method.hash(&mut h);
        path.hash(&mut h);
        sorted.hash(&mut h);
        h.finish()
    }
}

/// `created[gte]` → `created`.
pub fn top_name(key: &str) -> &str {
    key.split('[').next().unwrap_or(key)
}

fn decode(s: &str) -> Result<String, ApiError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out)
        .map_err(|_| ApiError::invalid("Invalid UTF-8 in the request parameters."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_brackets_and_arrays() {
        let p = Params::parse(
            "types%5B%5D=a.b&types[]=c.d&created%5Bgte%5D=5&metadata[k]=v+w&x[1]=second&x[0]=first",
        )
        .expect("parse");
        assert_eq!(p.array("types"), ["a.b", "c.d"]);
        assert_eq!(p.get("created[gte]"), Some("5"));
        assert_eq!(p.hash("metadata"), [("k", "v w")]);
        assert_eq!(p.array("x"), ["first", "second"]);
        assert_eq!(
            p.first_unknown(&["types", "created", "metadata"]),
            Some("x")
        );
        let q = Params::parse(
            "x[0]=first&metadata[k]=v+w&x[1]=second&types[]=a.b&types[]=c.d&created[gte]=5",
        )
        .expect("parse");
        assert_eq!(
            p.fingerprint("POST", "/v1/a"),
            q.fingerprint("POST", "/v1/a")
        );
        let r = Params::parse("types[]=c.d&types[]=a.b").expect("parse");
        let s = Params::parse("types[]=a.b&types[]=c.d").expect("parse");
        assert_ne!(r.fingerprint("POST", "/"), s.fingerprint("POST", "/"));
    }
}
