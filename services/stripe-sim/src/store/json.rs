//! A small JSON scanner: finds the byte range of a top-level value without parsing the rest, so
//! the store can render a balance transaction's `status` and patch an invoice in place while
//! keeping every other byte the generator wrote.

use std::ops::Range;

/// Byte range of the value of top-level key `key` in a JSON object, if present.
pub fn top_level_value(json: &str, key: &str) -> Option<Range<usize>> {
    let b = json.as_bytes();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    loop {
        i = skip_ws(b, i);
        match b.get(i)? {
            b'}' => return None,
            b',' => {
                i += 1;
                continue;
            }
            b'"' => {}
            _ => return None,
        }
        let kend = skip_string(b, i)?;
        let k = &json[i + 1..kend - 1];
        i = skip_ws(b, kend);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(b, i + 1);
        let vend = skip_value(b, i)?;
        if k == key {
            return Some(i..vend);
        }
        i = vend;
    }
}

/// The value of a top-level key when it is a JSON string without escapes.
pub fn top_level_string(json: &str, key: &str) -> Option<String> {
    let r = top_level_value(json, key)?;
    let v = &json[r];
    let inner = v.strip_prefix('"')?.strip_suffix('"')?;
    if inner.contains('\\') {
        return None;
    }
    Some(inner.to_owned())
}

/// The value of a top-level key when it is an integer.
pub fn top_level_i64(json: &str, key: &str) -> Option<i64> {
    let r = top_level_value(json, key)?;
    json[r].trim().parse().ok()
}

/// Byte range of a nested value, e.g. `["status_transitions", "paid_at"]`.
pub fn value_at(json: &str, path: &[&str]) -> Option<Range<usize>> {
    let mut base = 0usize;
    let mut range = 0..json.len();
    for key in path {
        let r = top_level_value(&json[range.clone()], key)?;
        range = base + r.start..base + r.end;
        base = range.start;
    }
    Some(range)
}

/// Replaces the value at `path` with `new_value` (raw JSON); `false` when the path is absent.
pub fn replace_at(json: &mut String, path: &[&str], new_value: &str) -> bool {
    match value_at(json, path) {
        Some(r) => {
            json.replace_range(r, new_value);
            true
        }
        None => false,
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\n' | b'\r' | b'\t')) {
        i += 1;
    }
    i
}

/// `i` at an opening quote; returns the index after the closing quote.
fn skip_string(b: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    loop {
        match b.get(i)? {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
}

fn skip_value(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => skip_string(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match b.get(j)? {
                    b'"' => {
                        j = skip_string(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let mut j = i;
            while let Some(c) = b.get(j) {
                if matches!(c, b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t') {
                    break;
                }
                j += 1;
            }
            (j > i).then_some(j)
        }
    }
}
