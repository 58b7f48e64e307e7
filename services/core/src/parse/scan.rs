//! A structural JSON scanner: walks the members of an object and hands out the raw bytes of
//! each value, skipping nested values without building anything.
//!
//! It is the fast path of [`super::parse`]: the members a rule reads are then deserialized
//! one by one with serde (which checks them fully, UTF-8 included), and everything else is
//! only *skipped*: strings (with their escapes), brackets (which must match) and scalars are
//! delimited, not validated. So bytes no rule reads may hold invalid UTF-8 or a malformed
//! number without an error; an unterminated string or unbalanced brackets are errors.

/// Why the bytes are not a JSON object (with the byte offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ScanError {
    pub(crate) what: &'static str,
    pub(crate) at: usize,
}

impl std::fmt::Display for ScanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at byte {}", self.what, self.at)
    }
}

type Result<T> = std::result::Result<T, ScanError>;

fn err<T>(what: &'static str, at: usize) -> Result<T> {
    Err(ScanError { what, at })
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Bits set at the bytes of `w` equal to `c`: non-zero exactly when one is, and exact at the
/// lowest one (bits above it may be wrong).
#[inline]
fn bytes_equal(w: u64, c: u8) -> u64 {
    let x = w ^ (ONES * u64::from(c));
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// The position after the string whose opening quote is at `i - 1`.
#[inline]
fn skip_string(b: &[u8], i: usize) -> Result<usize> {
    skip_string_escapes(b, i).map(|(end, _)| end)
}

/// [`skip_string`], and whether the string has escapes.
#[inline]
fn skip_string_escapes(b: &[u8], mut i: usize) -> Result<(usize, bool)> {
    let start = i;
    let mut escapes = false;
    loop {
        // Eight bytes at a time to the next quote or backslash.
        while let Some(chunk) = b.get(i..i + 8) {
            let mut word = [0_u8; 8];
            word.copy_from_slice(chunk);
            let w = u64::from_le_bytes(word);
            let hits = bytes_equal(w, b'"') | bytes_equal(w, b'\\');
            if hits != 0 {
                i += usize::try_from(hits.trailing_zeros() / 8).unwrap_or(0);
                break;
            }
            i += 8;
        }
        match b.get(i) {
            Some(b'"') => return Ok((i + 1, escapes)),
            Some(b'\\') => {
                escapes = true;
                i += 2;
            }
            Some(_) => i += 1,
            None => return err("unterminated string", start),
        }
    }
}

#[inline]
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while let Some(c) = b.get(i) {
        if !matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
            break;
        }
        i += 1;
    }
    i
}

/// The position after the value starting at `i` (not whitespace).
fn skip_value(b: &[u8], i: usize) -> Result<usize> {
    match b.get(i) {
        Some(b'"') => skip_string(b, i + 1),
        Some(b'{' | b'[') => skip_nested(b, i),
        Some(b'}' | b']' | b',' | b':') | None => err("expected a value", i),
        Some(_) => {
            // A number or a literal: up to the next delimiter (serde checks it if it is read).
            let mut j = i + 1;
            while let Some(c) = b.get(j) {
                if matches!(c, b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t') {
                    break;
                }
                j += 1;
            }
            Ok(j)
        }
    }
}

/// The bytes that matter between strings inside an object or array.
const STRUCTURAL: [bool; 256] = {
    let mut t = [false; 256];
    t[b'"' as usize] = true;
    t[b'{' as usize] = true;
    t[b'}' as usize] = true;
    t[b'[' as usize] = true;
    t[b']' as usize] = true;
    t
};

/// Skips an object or array starting at `i`, checking that brackets match (a bit per level:
/// set for an object), up to 128 levels as serde_json. (An eight-bytes-at-a-time version that
/// tracked strings by a running XOR of the quotes measured no faster on Stripe's JSON, whose
/// strings are short: this one is simpler and stricter.)
fn skip_nested(b: &[u8], mut i: usize) -> Result<usize> {
    let start = i;
    let mut stack: u128 = 0;
    let mut depth: u32 = 0;
    loop {
        let next = b
            .get(i..)
            .and_then(|rest| rest.iter().position(|&c| STRUCTURAL[usize::from(c)]));
        let Some(off) = next else {
            return err("unterminated object or array", start);
        };
        i += off;
        let Some(&c) = b.get(i) else {
            return err("unterminated object or array", start);
        };
        match c {
            b'"' => {
                i = skip_string(b, i + 1)?;
                continue;
            }
            b'{' | b'[' => {
                if depth == 128 {
                    return err("nested too deeply", i);
                }
                stack = (stack << 1) | u128::from(c == b'{');
                depth += 1;
            }
            b'}' | b']' => {
                if depth == 0 || (stack & 1 == 1) != (c == b'}') {
                    return err("mismatched bracket", i);
                }
                stack >>= 1;
                depth -= 1;
                if depth == 0 {
                    return Ok(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
}

/// A cursor over the members of one JSON object: [`Members::next_key`] gives each raw key
/// (between the quotes, escapes left as they are); then the caller takes the raw value
/// ([`Members::value`]), walks into it if it is an object ([`Members::enter`], then
/// [`Members::leave`]), or ignores it (the next call skips it).
pub(crate) struct Members<'a> {
    b: &'a [u8],
    i: usize,
    first: bool,
    done: bool,
    /// A key was returned and its value (at `i`) is not consumed yet.
    pending: bool,
    /// The key just returned has escapes.
    escaped: bool,
}

impl<'a> Members<'a> {
    /// The object that `b` holds (leading whitespace allowed), or `None` if `b` holds another
    /// kind of value.
    pub(crate) fn of(b: &'a [u8]) -> Result<Option<Self>> {
        Self::at(b, skip_ws(b, 0))
    }

    fn at(b: &'a [u8], i: usize) -> Result<Option<Self>> {
        match b.get(i) {
            Some(b'{') => Ok(Some(Members {
                b,
                i: i + 1,
                first: true,
                done: false,
                pending: false,
                escaped: false,
            })),
            Some(_) => Ok(None),
            None => err("expected a JSON value", i),
        }
    }

    /// The next key, or `None` after the closing brace.
    pub(crate) fn next_key(&mut self) -> Result<Option<&'a [u8]>> {
        if self.pending {
            self.i = skip_value(self.b, self.i)?;
            self.pending = false;
        }
        if self.done {
            return Ok(None);
        }
        let b = self.b;
        let mut i = skip_ws(b, self.i);
        match b.get(i) {
            Some(b'}') => {
                self.done = true;
                self.i = i + 1;
                return Ok(None);
            }
            Some(b',') if !self.first => i = skip_ws(b, i + 1),
            Some(_) if self.first => {}
            _ => return err("expected ',' or '}'", i),
        }
        self.first = false;
        if b.get(i) != Some(&b'"') {
            return err("expected a key", i);
        }
        let (key_end, escaped) = skip_string_escapes(b, i + 1)?;
        self.escaped = escaped;
        let key = b.get(i + 1..key_end - 1).unwrap_or_default();
        let colon = skip_ws(b, key_end);
        if b.get(colon) != Some(&b':') {
            return err("expected ':'", colon);
        }
        self.i = skip_ws(b, colon + 1);
        self.pending = true;
        Ok(Some(key))
    }

    /// The key just returned has escapes (compare it after [`unescape`]).
    pub(crate) fn key_escaped(&self) -> bool {
        self.escaped
    }

    /// The raw value of the member whose key was just returned.
    pub(crate) fn value(&mut self) -> Result<&'a [u8]> {
        let start = self.i;
        if self.pending {
            self.i = skip_value(self.b, start)?;
            self.pending = false;
        }
        Ok(self.b.get(start..self.i).unwrap_or_default())
    }

    /// A cursor into the value of the member just returned if it is an object (hand it back
    /// to [`Members::leave`]); `None` (and the value left for the next call to skip) if not.
    pub(crate) fn enter(&mut self) -> Result<Option<Members<'a>>> {
        if !self.pending {
            return Ok(None);
        }
        let inner = Self::at(self.b, self.i)?;
        if inner.is_some() {
            self.pending = false;
        }
        Ok(inner)
    }

    /// Continues after an object walked with [`Members::enter`] (its remaining members are
    /// skipped).
    pub(crate) fn leave(&mut self, mut inner: Members<'a>) -> Result<()> {
        while inner.next_key()?.is_some() {}
        self.i = inner.i;
        Ok(())
    }

    /// Skips the remaining members and checks that nothing but whitespace follows the object.
    pub(crate) fn finish(mut self) -> Result<()> {
        while self.next_key()?.is_some() {}
        let end = skip_ws(self.b, self.i);
        if end != self.b.len() {
            return err("trailing characters", end);
        }
        Ok(())
    }
}

/// A cursor over the elements of one JSON array, each as its raw value.
pub(crate) struct Elements<'a> {
    b: &'a [u8],
    i: usize,
    first: bool,
    done: bool,
}

impl<'a> Elements<'a> {
    /// The array that `b` holds, or `None` if `b` holds another kind of value.
    pub(crate) fn of(b: &'a [u8]) -> Result<Option<Self>> {
        let i = skip_ws(b, 0);
        match b.get(i) {
            Some(b'[') => Ok(Some(Elements {
                b,
                i: i + 1,
                first: true,
                done: false,
            })),
            Some(_) => Ok(None),
            None => err("expected a JSON value", i),
        }
    }

    /// The next element's raw value, or `None` after the closing bracket.
    pub(crate) fn next_element(&mut self) -> Result<Option<&'a [u8]>> {
        if self.done {
            return Ok(None);
        }
        let b = self.b;
        let mut i = skip_ws(b, self.i);
        match b.get(i) {
            Some(b']') => {
                self.done = true;
                self.i = i + 1;
                return Ok(None);
            }
            Some(b',') if !self.first => i = skip_ws(b, i + 1),
            Some(_) if self.first => {}
            _ => return err("expected ',' or ']'", i),
        }
        self.first = false;
        let end = skip_value(b, i)?;
        self.i = end;
        Ok(b.get(i..end))
    }
}

/// True if `key` (raw, as [`Members`] gives it) is `name`. Keys with escapes are compared
/// after unescaping.
#[inline]
pub(crate) fn key_is(key: &[u8], name: &str) -> bool {
    key == name.as_bytes() || (key.contains(&b'\\') && unescape(key).as_deref() == Some(name))
}

/// The key with its escapes resolved (rare: Stripe never escapes keys).
pub(crate) fn unescape(key: &[u8]) -> Option<String> {
    let mut quoted = Vec::with_capacity(key.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(key);
    quoted.push(b'"');
    serde_json::from_slice(&quoted).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(json: &str) -> Vec<(String, String)> {
        let mut m = Members::of(json.as_bytes()).unwrap().unwrap();
        let mut out = Vec::new();
        while let Some(k) = m.next_key().unwrap() {
            let v = m.value().unwrap();
            out.push((
                String::from_utf8(k.to_vec()).unwrap(),
                String::from_utf8(v.to_vec()).unwrap(),
            ));
        }
        m.finish().unwrap();
        out
    }

    #[test]
    fn walks_members_and_skips_nested_values() {
        let got = members(
            r#" { "a" : 1 , "b":"x\"}\\","c":{"d":[1,{"e":"]"}],"f":null},"g":[],"h":-1.5e3,"i":true } "#,
        );
        let keys: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["a", "b", "c", "g", "h", "i"]);
        assert_eq!(got[1].1, r#""x\"}\\""#);
        assert_eq!(got[2].1, r#"{"d":[1,{"e":"]"}],"f":null}"#);
        assert_eq!(got[4].1, "-1.5e3");
        assert!(members("{}").is_empty());
    }

    #[test]
    fn brackets_in_strings_and_escapes_across_words() {
        // Every split of quotes, escapes and brackets over the eight-byte words of the string
        // skip.
        for pad in 0..24 {
            let a = "x".repeat(pad);
            let json = format!(
                r#"{{"{a}":{{"k{a}":"{{[\"}}]\\","l":[{{"m":"]}}"}},[]],"n":"\\"}},"z":"{a}{{"}}"#
            );
            assert!(
                serde_json::from_str::<serde_json::Value>(&json).is_ok(),
                "{json}"
            );
            let got = members(&json);
            assert_eq!(got.len(), 2, "{json}");
            assert_eq!(got[1].0, "z", "{json}");
        }
    }

    #[test]
    fn long_strings_and_escapes_at_every_offset() {
        for pad in 0..20 {
            let s = format!(
                r#"{{"k":"{}\\\"{}","z":1}}"#,
                "a".repeat(pad),
                "b".repeat(pad)
            );
            let got = members(&s);
            assert_eq!(got.len(), 2, "{s}");
            assert_eq!(got[1], ("z".to_owned(), "1".to_owned()));
        }
    }

    #[test]
    fn broken_structure_is_an_error() {
        for bad in [
            r#"{"a":1"#,
            r#"{"a":"x}"#,
            r#"{"a":[1,2}"#,
            r#"{"a":{]}"#,
            r#"{"a" 1}"#,
            r#"{"a":1 "b":2}"#,
            r#"{"a":1}x"#,
            r#"{,"a":1}"#,
            r#"{"a":}"#,
            "",
        ] {
            let r = Members::of(bad.as_bytes()).and_then(|m| match m {
                Some(m) => m.finish(),
                None => err("not an object", 0),
            });
            assert!(r.is_err(), "{bad:?} should not scan");
        }
        assert!(Members::of(b"[1]").unwrap().is_none());
        let deep = format!(r#"{{"a":{}{}}}"#, "[".repeat(200), "]".repeat(200));
        assert!(
            Members::of(deep.as_bytes())
                .unwrap()
                .unwrap()
                .finish()
                .is_err()
        );
    }

    #[test]
    fn enters_objects_and_skips_what_is_not_read() {
        let json = br#"{"a":{"x":1,"y":{"z":[2]},"w":3},"b":null,"c":{"q":4}}"#;
        let mut m = Members::of(json).unwrap().unwrap();
        assert_eq!(m.next_key().unwrap(), Some(&b"a"[..]));
        let mut a = m.enter().unwrap().unwrap();
        assert_eq!(a.next_key().unwrap(), Some(&b"x"[..]));
        assert_eq!(a.next_key().unwrap(), Some(&b"y"[..]));
        assert_eq!(a.value().unwrap(), br#"{"z":[2]}"#);
        m.leave(a).unwrap();
        assert_eq!(m.next_key().unwrap(), Some(&b"b"[..]));
        assert!(m.enter().unwrap().is_none());
        assert_eq!(m.next_key().unwrap(), Some(&b"c"[..]));
        assert_eq!(m.next_key().unwrap(), None);
        m.finish().unwrap();
    }

    #[test]
    fn walks_array_elements() {
        let mut e = Elements::of(br#" [ 1, {"a":[2]} ,"x" ] "#)
            .unwrap()
            .unwrap();
        assert_eq!(e.next_element().unwrap(), Some(&b"1"[..]));
        assert_eq!(e.next_element().unwrap(), Some(&br#"{"a":[2]}"#[..]));
        assert_eq!(e.next_element().unwrap(), Some(&br#""x""#[..]));
        assert_eq!(e.next_element().unwrap(), None);
        assert!(
            Elements::of(b"[]")
                .unwrap()
                .unwrap()
                .next_element()
                .unwrap()
                .is_none()
        );
        assert!(
            Elements::of(b"[1 2]")
                .unwrap()
                .unwrap()
                .next_element()
                .is_ok()
        );
        let mut bad = Elements::of(b"[1 2]").unwrap().unwrap();
        bad.next_element().unwrap();
        assert!(bad.next_element().is_err());
        assert!(Elements::of(b"{}").unwrap().is_none());
    }

    #[test]
    fn escaped_keys_compare_unescaped() {
        assert!(key_is(b"type", "type"));
        assert!(key_is(br"typ\u0065", "type"));
        assert!(!key_is(b"types", "type"));
    }
}
