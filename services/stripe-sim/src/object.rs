//! The unit the world generator hands to the HTTP store: one Stripe object (or event) as
//! Stripe would render it, plus the attributes the list endpoints filter and order on.

/// Every Stripe resource the simulator serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectKind {
    Event,
    BalanceTransaction,
    Customer,
    Product,
    Price,
    Invoice,
    InvoicePayment,
    CreditNote,
    PaymentIntent,
    Charge,
    Refund,
    Dispute,
    Payout,
    Transfer,
    ApplicationFee,
    Account,
    PaymentRecord,
    WebhookEndpoint,
}

/// One Stripe object in its final state (or one event, whose `data.object` is a snapshot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimObject {
    pub kind: ObjectKind,
    /// Stripe id (`evt_…`, `txn_…`, `in_…`).
    pub id: String,
    /// Unix seconds, Stripe's `created`.
    pub created: i64,
    /// The connected account that owns it (`acct_…`), or `None` for the platform account.
    pub account: Option<String>,
    pub livemode: bool,
    /// List-endpoint filter values by parameter name, e.g. `("type", "charge")`,
    /// `("payout", "po_…")`, `("customer", "cus_…")`, `("invoice", "in_…")`.
    pub filters: Vec<(&'static str, String)>,
    /// Balance transactions only: Stripe's `available_on`. The HTTP layer renders `status`
    /// (`pending`/`available`) against the simulated clock from it, so a poller sees it change.
    pub available_on: Option<i64>,
    /// The JSON body exactly as the API returns it.
    pub json: String,
}
