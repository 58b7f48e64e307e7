//! API keys and restricted-key permissions.
//!
//! Stripe names restricted-key permissions `rak_<resource>_<read|write>`; a write permission
//! also grants the read of the same resource. The table of which endpoint needs which
//! permission is [`Permission`]'s docs and `services/stripe-sim/README.md`.

use std::fmt;
use std::str::FromStr;

/// A restricted-key permission.
///
/// | permission | grants |
/// |---|---|
/// | `rak_event_read` | `GET /v1/events`, `GET /v1/events/{id}` |
/// | `rak_balance_read` | `GET /v1/balance` |
/// | `rak_balance_transaction_read` | `GET /v1/balance_transactions[/{id}]` |
/// | `rak_payout_read` | `GET /v1/payouts[/{id}]` |
/// | `rak_invoice_read` | `GET /v1/invoices[/{id}]`, `GET /v1/invoice_payments[/{id}]` |
/// | `rak_invoice_write` | `POST /v1/invoices/{id}/attach_payment` (and the reads above) |
/// | `rak_credit_note_read` | `GET /v1/credit_notes[/{id}]` |
/// | `rak_charge_read` | `GET /v1/charges[/{id}]` |
/// | `rak_refund_read` | `GET /v1/refunds[/{id}]` |
/// | `rak_dispute_read` | `GET /v1/disputes[/{id}]` |
/// | `rak_customer_read` | `GET /v1/customers[/{id}]` |
/// | `rak_account_read` | `GET /v1/accounts[/{id}]` (Connect) |
/// | `rak_payment_record_read` | `GET /v1/payment_records[/{id}]` |
/// | `rak_payment_record_write` | `POST /v1/payment_records/report_payment` (and the reads) |
/// | `rak_webhook_read` | `GET /v1/webhook_endpoints[/{id}]` |
/// | `rak_webhook_write` | `POST /v1/webhook_endpoints`, `DELETE /v1/webhook_endpoints/{id}` |
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Permission {
    /// `rak_event_read`
    EventRead,
    /// `rak_balance_read`
    BalanceRead,
    /// `rak_balance_transaction_read`
    BalanceTransactionRead,
    /// `rak_payout_read`
    PayoutRead,
    /// `rak_invoice_read`
    InvoiceRead,
    /// `rak_invoice_write`
    InvoiceWrite,
    /// `rak_credit_note_read`
    CreditNoteRead,
    /// `rak_charge_read`
    ChargeRead,
    /// `rak_refund_read`
    RefundRead,
    /// `rak_dispute_read`
    DisputeRead,
    /// `rak_customer_read`
    CustomerRead,
    /// `rak_account_read`
    AccountRead,
    /// `rak_payment_record_read`
    PaymentRecordRead,
    /// `rak_payment_record_write`
    PaymentRecordWrite,
    /// `rak_webhook_read`
    WebhookRead,
    /// `rak_webhook_write`
    WebhookWrite,
}

impl Permission {
    /// Every permission, in table order.
    pub const ALL: [Permission; 16] = [
        Permission::EventRead,
        Permission::BalanceRead,
        Permission::BalanceTransactionRead,
        Permission::PayoutRead,
        Permission::InvoiceRead,
        Permission::InvoiceWrite,
        Permission::CreditNoteRead,
        Permission::ChargeRead,
        Permission::RefundRead,
        Permission::DisputeRead,
        Permission::CustomerRead,
        Permission::AccountRead,
        Permission::PaymentRecordRead,
        Permission::PaymentRecordWrite,
        Permission::WebhookRead,
        Permission::WebhookWrite,
    ];

    /// Stripe's name, `rak_…`.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::EventRead => "rak_event_read",
            Permission::BalanceRead => "rak_balance_read",
            Permission::BalanceTransactionRead => "rak_balance_transaction_read",
            Permission::PayoutRead => "rak_payout_read",
            Permission::InvoiceRead => "rak_invoice_read",
            Permission::InvoiceWrite => "rak_invoice_write",
            Permission::CreditNoteRead => "rak_credit_note_read",
            Permission::ChargeRead => "rak_charge_read",
            Permission::RefundRead => "rak_refund_read",
            Permission::DisputeRead => "rak_dispute_read",
            Permission::CustomerRead => "rak_customer_read",
            Permission::AccountRead => "rak_account_read",
            Permission::PaymentRecordRead => "rak_payment_record_read",
            Permission::PaymentRecordWrite => "rak_payment_record_write",
            Permission::WebhookRead => "rak_webhook_read",
            Permission::WebhookWrite => "rak_webhook_write",
        }
    }

    /// The write permission that also grants this read, if any.
    pub fn granted_by_write(self) -> Option<Permission> {
        match self {
            Permission::InvoiceRead => Some(Permission::InvoiceWrite),
            Permission::PaymentRecordRead => Some(Permission::PaymentRecordWrite),
            Permission::WebhookRead => Some(Permission::WebhookWrite),
            _ => None,
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A permission name that is not in the table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown restricted-key permission '{0}'")]
pub struct UnknownPermission(pub String);

impl FromStr for Permission {
    type Err = UnknownPermission;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Permission::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownPermission(s.to_owned()))
    }
}

/// The key as Stripe shows it in error messages: its prefix, then `****` and its last four
/// characters (`sk_test_****1234`). Short or unrecognised keys show only `****`.
pub fn mask_key(key: &str) -> String {
    let prefix_len = [
        "sk_test_", "sk_live_", "rk_test_", "rk_live_", "pk_test_", "pk_live_",
    ]
    .iter()
    .find(|p| key.starts_with(*p))
    .map_or(0, |p| p.len());
    let chars: Vec<char> = key.chars().collect();
    if chars.len() < prefix_len + 8 {
        return format!("{}****", &key[..prefix_len.min(key.len())]);
    }
    let last4: String = chars[chars.len() - 4..].iter().collect();
    format!("{}****{}", &key[..prefix_len], last4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        assert_eq!(mask_key("sk_test_abcdefgh1234"), "sk_test_****1234");
        assert_eq!(mask_key("rk_live_abcdefghXYZW"), "rk_live_****XYZW");
        assert_eq!(mask_key("sk_test_1"), "sk_test_****");
        assert_eq!(mask_key("garbage"), "****");
    }

    #[test]
    fn names_round_trip() {
        for p in Permission::ALL {
            assert_eq!(p.as_str().parse::<Permission>(), Ok(p));
        }
    }
}
