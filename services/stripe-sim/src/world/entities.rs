//! The live state of the simulated account: one struct per Stripe object, holding only what
//! rendering and later actions need. Amounts are integer minor units.

/// One `fee_details` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fee {
    pub(crate) amount: i64,
    pub(crate) application: Option<String>,
    pub(crate) description: &'static str,
    pub(crate) ty: &'static str,
}

/// A balance transaction. `cur` is the balance (settlement) currency index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bt {
    pub(crate) id: String,
    pub(crate) bal: usize,
    pub(crate) cur: usize,
    pub(crate) amount: i64,
    pub(crate) fees: Vec<Fee>,
    pub(crate) created: i64,
    pub(crate) available_on: i64,
    pub(crate) description: Option<String>,
    /// `exchange_rate` × 1e9, when the source was presented in another currency.
    pub(crate) rate: Option<i64>,
    pub(crate) source: String,
    pub(crate) ty: &'static str,
    pub(crate) category: &'static str,
}

impl Bt {
    pub(crate) fn fee(&self) -> i64 {
        self.fees.iter().map(|f| f.amount).sum()
    }

    pub(crate) fn net(&self) -> i64 {
        self.amount - self.fee()
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Account {
    /// `None` for the platform.
    pub(crate) id: Option<String>,
    /// 10 characters embedded in every id created on this account.
    pub(crate) tag: String,
    pub(crate) name: String,
    pub(crate) email: String,
    pub(crate) bank: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Customer {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) email: String,
    pub(crate) company_id: String,
    pub(crate) prefix: String,
    pub(crate) cur: usize,
    /// Pays by bank transfer (`send_invoice` invoices left for cash application).
    pub(crate) bank: bool,
    pub(crate) taxable: bool,
    pub(crate) created: i64,
    pub(crate) next_number: u32,
    pub(crate) subscription: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Product {
    pub(crate) id: String,
    pub(crate) name: &'static str,
    pub(crate) created: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct Price {
    pub(crate) id: String,
    pub(crate) product: String,
    pub(crate) cur: usize,
    pub(crate) unit_amount: i64,
    pub(crate) recurring: bool,
    pub(crate) created: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InvStatus {
    Draft,
    Open,
    Paid,
    Void,
    Uncollectible,
}

impl InvStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            InvStatus::Draft => "draft",
            InvStatus::Open => "open",
            InvStatus::Paid => "paid",
            InvStatus::Void => "void",
            InvStatus::Uncollectible => "uncollectible",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Line {
    pub(crate) id: String,
    pub(crate) item_id: String,
    pub(crate) price: String,
    pub(crate) product: String,
    pub(crate) description: String,
    pub(crate) quantity: i64,
    pub(crate) unit_amount: i64,
    /// `quantity × unit_amount`, before discount and tax.
    pub(crate) amount: i64,
    pub(crate) discount: i64,
    pub(crate) tax: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PayRef {
    PaymentIntent,
    Charge,
}

#[derive(Debug, Clone)]
pub(crate) struct InvoicePayment {
    pub(crate) id: String,
    pub(crate) invoice: String,
    pub(crate) cur: usize,
    pub(crate) amount_requested: i64,
    pub(crate) amount_paid: Option<i64>,
    pub(crate) is_default: bool,
    pub(crate) status: &'static str,
    pub(crate) payment: Option<(PayRef, String)>,
    pub(crate) created: i64,
    pub(crate) paid_at: Option<i64>,
    pub(crate) canceled_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub(crate) struct Invoice {
    pub(crate) id: String,
    pub(crate) cust: usize,
    pub(crate) customer: String,
    pub(crate) customer_name: String,
    pub(crate) customer_email: String,
    pub(crate) account_name: String,
    pub(crate) cur: usize,
    pub(crate) created: i64,
    pub(crate) number: Option<String>,
    pub(crate) status: InvStatus,
    pub(crate) send_invoice: bool,
    pub(crate) billing_reason: &'static str,
    pub(crate) subscription: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) lines: Vec<Line>,
    pub(crate) discount_id: Option<String>,
    pub(crate) tax_rate_id: Option<String>,
    pub(crate) tax_bps: i64,
    pub(crate) subtotal: i64,
    pub(crate) discount: i64,
    pub(crate) tax: i64,
    pub(crate) total: i64,
    pub(crate) amount_due: i64,
    pub(crate) amount_paid: i64,
    pub(crate) amount_remaining: i64,
    pub(crate) pre_cn: i64,
    pub(crate) post_cn: i64,
    pub(crate) attempt_count: u32,
    pub(crate) next_payment_attempt: Option<i64>,
    /// When the first automatic charge attempt is scheduled (charge_automatically only).
    pub(crate) planned_attempt: Option<i64>,
    pub(crate) due_date: Option<i64>,
    pub(crate) period_start: i64,
    pub(crate) period_end: i64,
    pub(crate) finalized_at: Option<i64>,
    pub(crate) paid_at: Option<i64>,
    pub(crate) voided_at: Option<i64>,
    pub(crate) uncollectible_at: Option<i64>,
    pub(crate) payments: Vec<InvoicePayment>,
    /// The payment (key into `payments` of the simulation) a failed attempt left open.
    pub(crate) open_payment: Option<u64>,
    /// The payment that paid it in full in one charge (for post-payment credit notes).
    pub(crate) paying_payment: Option<u64>,
    pub(crate) last_charge: Option<String>,
    pub(crate) last_payment_intent: Option<String>,
    /// Use `payment.type = charge` (instead of `payment_intent`) on its invoice payments.
    pub(crate) pay_by_charge_ref: bool,
    pub(crate) pending: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PiStatus {
    RequiresPaymentMethod,
    Succeeded,
    Canceled,
}

impl PiStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            PiStatus::RequiresPaymentMethod => "requires_payment_method",
            PiStatus::Succeeded => "succeeded",
            PiStatus::Canceled => "canceled",
        }
    }
}

/// A PaymentIntent and its latest charge.
#[derive(Debug, Clone)]
pub(crate) struct Payment {
    pub(crate) acct: usize,
    pub(crate) pi_id: String,
    pub(crate) pm_id: String,
    pub(crate) latest_charge: Option<String>,
    pub(crate) charge_created: i64,
    pub(crate) bt_id: Option<String>,
    pub(crate) cur: usize,
    pub(crate) amount: i64,
    pub(crate) amount_refunded: i64,
    pub(crate) status: PiStatus,
    pub(crate) created: i64,
    pub(crate) canceled_at: Option<i64>,
    pub(crate) customer: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) email: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) invoice: Option<String>,
    pub(crate) failed_attempts: u32,
    pub(crate) dispute: Option<String>,
    pub(crate) application: Option<String>,
    pub(crate) app_fee_id: Option<String>,
    pub(crate) app_fee_amount: Option<i64>,
    pub(crate) brand: &'static str,
    pub(crate) last4: &'static str,
    /// Balance the charge settled into, and its exchange rate (× 1e9) if converted.
    pub(crate) bal: usize,
    pub(crate) rate: Option<i64>,
    pub(crate) settled: i64,
    pub(crate) pending: u32,
}

/// What the charge renderer needs: a card charge of a payment, or a `py_` transfer payment.
pub(crate) struct ChargeView<'a> {
    pub(crate) id: &'a str,
    pub(crate) payment: Option<&'a Payment>,
    pub(crate) amount: i64,
    pub(crate) cur: usize,
    pub(crate) created: i64,
    pub(crate) succeeded: bool,
    pub(crate) bt_id: Option<&'a str>,
    pub(crate) source_transfer: Option<&'a str>,
}

#[derive(Debug, Clone)]
pub(crate) struct Refund {
    pub(crate) id: String,
    pub(crate) charge: String,
    pub(crate) payment_intent: String,
    pub(crate) payment_method: String,
    pub(crate) customer: Option<String>,
    pub(crate) amount: i64,
    pub(crate) cur: usize,
    pub(crate) created: i64,
    pub(crate) bt_id: String,
    pub(crate) credit_note: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Dispute {
    pub(crate) acct: usize,
    pub(crate) id: String,
    pub(crate) charge: String,
    pub(crate) payment_intent: String,
    pub(crate) amount: i64,
    pub(crate) cur: usize,
    pub(crate) created: i64,
    pub(crate) due_by: i64,
    pub(crate) submissions: i64,
    pub(crate) reason: &'static str,
    pub(crate) status: &'static str,
    pub(crate) bts: Vec<Bt>,
    pub(crate) bal: usize,
    pub(crate) rate: Option<i64>,
    pub(crate) settled: i64,
    pub(crate) win: bool,
    pub(crate) fee_returned: bool,
    pub(crate) pending: u32,
}

#[derive(Debug, Clone)]
pub(crate) struct Payout {
    pub(crate) acct: usize,
    pub(crate) bal: usize,
    pub(crate) id: String,
    pub(crate) amount: i64,
    pub(crate) cur: usize,
    pub(crate) created: i64,
    pub(crate) arrival_date: i64,
    pub(crate) destination: String,
    pub(crate) bt_id: String,
    pub(crate) failure_bt_id: Option<String>,
    pub(crate) status: &'static str,
    pub(crate) reconciliation_status: &'static str,
    pub(crate) pending: u32,
}

#[derive(Debug, Clone)]
pub(crate) struct Transfer {
    pub(crate) id: String,
    pub(crate) amount: i64,
    pub(crate) cur: usize,
    pub(crate) created: i64,
    pub(crate) destination: String,
    pub(crate) destination_payment: String,
    pub(crate) bt_id: String,
}

#[derive(Debug, Clone)]
pub(crate) struct AppFee {
    pub(crate) id: String,
    pub(crate) account: String,
    pub(crate) application: String,
    pub(crate) amount: i64,
    pub(crate) cur: usize,
    pub(crate) charge: String,
    pub(crate) created: i64,
    pub(crate) bt_id: String,
}

#[derive(Debug, Clone)]
pub(crate) struct CreditNote {
    pub(crate) id: String,
    pub(crate) number: String,
    pub(crate) invoice: String,
    pub(crate) invoice_line: String,
    pub(crate) line_id: String,
    pub(crate) customer: String,
    pub(crate) cur: usize,
    pub(crate) description: String,
    /// Amount credited excluding tax.
    pub(crate) subtotal: i64,
    pub(crate) tax: i64,
    pub(crate) total: i64,
    pub(crate) tax_rate_id: Option<String>,
    pub(crate) post_payment: bool,
    pub(crate) refund: Option<String>,
    pub(crate) reason: &'static str,
    pub(crate) created: i64,
}
