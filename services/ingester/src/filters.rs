//! Include/exclude filters by event type, customer and invoice (ids or a metadata value).

use crate::records::ObjectHead;

/// Empty include lists include everything.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    /// Event types to keep (`invoice.*` wildcards allowed); empty = all.
    pub include_event_types: Vec<String>,
    pub exclude_event_types: Vec<String>,
    /// Customer ids to keep; empty = all.
    pub include_customers: Vec<String>,
    pub exclude_customers: Vec<String>,
    pub include_invoices: Vec<String>,
    pub exclude_invoices: Vec<String>,
    /// `(key, value)` pairs: keep objects whose `metadata[key] == value` (any pair); empty = all.
    pub include_metadata: Vec<(String, String)>,
    pub exclude_metadata: Vec<(String, String)>,
}

fn type_matches(pattern: &str, ty: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => ty.starts_with(prefix),
        None => pattern == ty,
    }
}

impl Filters {
    pub fn is_empty(&self) -> bool {
        self.include_event_types.is_empty()
            && self.exclude_event_types.is_empty()
            && self.include_customers.is_empty()
            && self.exclude_customers.is_empty()
            && self.include_invoices.is_empty()
            && self.exclude_invoices.is_empty()
            && self.include_metadata.is_empty()
            && self.exclude_metadata.is_empty()
    }

    /// Whether an event of `event_type` about `object` passes (`None` type: a backfilled object).
    pub fn accepts(&self, event_type: Option<&str>, object: &ObjectHead) -> bool {
        if let Some(ty) = event_type {
            if !self.include_event_types.is_empty()
                && !self.include_event_types.iter().any(|p| type_matches(p, ty))
            {
                return false;
            }
            if self.exclude_event_types.iter().any(|p| type_matches(p, ty)) {
                return false;
            }
        }
        let customer = object.customer_id();
        if !self.include_customers.is_empty()
            && !customer.is_some_and(|c| self.include_customers.iter().any(|x| x == c))
        {
            return false;
        }
        if customer.is_some_and(|c| self.exclude_customers.iter().any(|x| x == c)) {
            return false;
        }
        let invoice = object.invoice_id();
        if !self.include_invoices.is_empty()
            && !invoice.is_some_and(|i| self.include_invoices.iter().any(|x| x == i))
        {
            return false;
        }
        if invoice.is_some_and(|i| self.exclude_invoices.iter().any(|x| x == i)) {
            return false;
        }
        let meta = |pairs: &[(String, String)]| {
            pairs
                .iter()
                .any(|(k, v)| object.metadata_value(k) == Some(v.as_str()))
        };
        if !self.include_metadata.is_empty() && !meta(&self.include_metadata) {
            return false;
        }
        !meta(&self.exclude_metadata)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn obj(json: &str) -> ObjectHead {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn filters_by_type_customer_invoice_and_metadata() {
        let inv = obj(
            r#"{"id":"in_1","object":"invoice","customer":"cus_1","metadata":{"company_id":"c9"}}"#,
        );
        let f = Filters::default();
        assert!(f.accepts(Some("invoice.paid"), &inv));
        let f = Filters {
            include_event_types: vec!["invoice.*".into()],
            exclude_event_types: vec!["invoice.updated".into()],
            ..Filters::default()
        };
        assert!(f.accepts(Some("invoice.paid"), &inv));
        assert!(!f.accepts(Some("invoice.updated"), &inv));
        assert!(!f.accepts(Some("charge.succeeded"), &inv));
        let f = Filters {
            include_customers: vec!["cus_2".into()],
            ..Filters::default()
        };
        assert!(!f.accepts(Some("invoice.paid"), &inv));
        let f = Filters {
            exclude_invoices: vec!["in_1".into()],
            ..Filters::default()
        };
        assert!(!f.accepts(None, &inv));
        let f = Filters {
            include_metadata: vec![("company_id".into(), "c9".into())],
            ..Filters::default()
        };
        assert!(f.accepts(None, &inv));
        let charge = obj(r#"{"id":"ch_1","object":"charge","customer":{"id":"cus_1"}}"#);
        assert!(!f.accepts(None, &charge));
    }
}
