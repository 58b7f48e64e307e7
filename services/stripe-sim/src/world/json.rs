//! A minimal streaming JSON writer: objects are written straight into a `String` in the key
//! order we choose (Stripe's fixture order), with no intermediate tree. Fast and allocation-light,
//! which is what lets the generator render millions of objects.

use std::fmt::Write as _;

/// Writes `s` as a JSON string literal.
pub(crate) fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

pub(crate) fn write_i64(out: &mut String, v: i64) {
    let _ = write!(out, "{v}");
}

/// A JSON object being written. Drop-safe: call [`Obj::end`] to close it.
pub(crate) struct Obj<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> Obj<'a> {
    pub(crate) fn new(out: &'a mut String) -> Self {
        out.push('{');
        Obj { out, first: true }
    }

    fn key(&mut self, k: &str) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        self.out.push('"');
        self.out.push_str(k);
        self.out.push_str("\":");
    }

    pub(crate) fn s(&mut self, k: &str, v: &str) -> &mut Self {
        self.key(k);
        write_str(self.out, v);
        self
    }

    pub(crate) fn os(&mut self, k: &str, v: Option<&str>) -> &mut Self {
        match v {
            Some(v) => self.s(k, v),
            None => self.null(k),
        }
    }

    pub(crate) fn i(&mut self, k: &str, v: i64) -> &mut Self {
        self.key(k);
        write_i64(self.out, v);
        self
    }

    pub(crate) fn oi(&mut self, k: &str, v: Option<i64>) -> &mut Self {
        match v {
            Some(v) => self.i(k, v),
            None => self.null(k),
        }
    }

    pub(crate) fn b(&mut self, k: &str, v: bool) -> &mut Self {
        self.key(k);
        self.out.push_str(if v { "true" } else { "false" });
        self
    }

    pub(crate) fn null(&mut self, k: &str) -> &mut Self {
        self.key(k);
        self.out.push_str("null");
        self
    }

    /// A value already rendered as JSON.
    pub(crate) fn raw(&mut self, k: &str, json: &str) -> &mut Self {
        self.key(k);
        self.out.push_str(json);
        self
    }

    pub(crate) fn obj(&mut self, k: &str) -> Obj<'_> {
        self.key(k);
        Obj::new(self.out)
    }

    pub(crate) fn arr(&mut self, k: &str) -> Arr<'_> {
        self.key(k);
        Arr::new(self.out)
    }

    /// Direct access for nested renderers: the caller writes exactly one JSON value.
    pub(crate) fn value(&mut self, k: &str) -> &mut String {
        self.key(k);
        self.out
    }

    pub(crate) fn end(self) {
        self.out.push('}');
    }
}

/// A JSON array being written.
pub(crate) struct Arr<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> Arr<'a> {
    pub(crate) fn new(out: &'a mut String) -> Self {
        out.push('[');
        Arr { out, first: true }
    }

    fn sep(&mut self) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
    }

    pub(crate) fn s(&mut self, v: &str) -> &mut Self {
        self.sep();
        write_str(self.out, v);
        self
    }

    pub(crate) fn obj(&mut self) -> Obj<'_> {
        self.sep();
        Obj::new(self.out)
    }

    /// Direct access: the caller writes exactly one JSON value.
    pub(crate) fn value(&mut self) -> &mut String {
        self.sep();
        self.out
    }

    pub(crate) fn end(self) {
        self.out.push(']');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_valid_json() {
        let mut s = String::new();
        let mut o = Obj::new(&mut s);
        o.s("a", "x\"y\\\n").i("b", -3).b("c", true).null("d");
        {
            let mut a = o.arr("e");
            a.s("p");
            let mut q = a.obj();
            q.i("q", 1);
            q.end();
            a.end();
        }
        o.obj("f").end();
        o.end();
        let v: serde_json::Value = serde_json::from_str(&s).unwrap_or_default();
        assert_eq!(v["a"], "x\"y\\\n");
        assert_eq!(v["e"][1]["q"], 1);
        assert_eq!(
            s,
            r#"{"a":"x\"y\\\n","b":-3,"c":true,"d":null,"e":["p",{"q":1}],"f":{}}"#
        );
    }
}
