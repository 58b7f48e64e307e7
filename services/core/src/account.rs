//! The chart of accounts.
//!
//! One chart per ledger (Stripe account) and per currency: a balance is keyed by
//! (ledger, [`Account`], [`crate::Currency`]). Names are colon paths whose first segment is the
//! class (`assets`, `liabilities`, `equity`, `income`, `expenses`), so they sort and group the
//! way a trial balance does; [`Account::describe`] says in words what each one holds.

use std::fmt;

use serde::{Serialize, Serializer};

/// The class of an account, the first segment of its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountClass {
    /// Debit-normal: what the business owns or is owed.
    Assets,
    /// Credit-normal: what the business owes.
    Liabilities,
    /// Trading and suspense accounts.
    Equity,
    /// Credit-normal; contra-income accounts (refunds, discounts) carry debits.
    Income,
    /// Debit-normal.
    Expenses,
}

/// A kind of Stripe fee, from `fee_details[].type` (or the balance transaction `type` for
/// fees billed on their own).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FeeType {
    /// `stripe_fee`: Stripe's processing fee.
    StripeFee,
    /// `application_fee`: the Connect platform's fee taken from this account.
    ApplicationFee,
    /// `payment_method_passthrough_fee`: a network or method fee passed through.
    PaymentMethodPassthroughFee,
    /// `tax`: tax charged on Stripe's fees (e.g. VAT).
    Tax,
    /// `withheld_tax`: tax withheld by Stripe.
    WithheldTax,
    /// Any other fee type, kept by name.
    Other(Box<str>),
}

impl FeeType {
    /// From Stripe's name for the fee type.
    pub fn from_stripe(name: &str) -> Self {
        match name {
            "stripe_fee" => Self::StripeFee,
            "application_fee" => Self::ApplicationFee,
            "payment_method_passthrough_fee" => Self::PaymentMethodPassthroughFee,
            "tax" => Self::Tax,
            "withheld_tax" => Self::WithheldTax,
            other => Self::Other(other.into()),
        }
    }

    /// Stripe's name for the fee type.
    pub fn as_str(&self) -> &str {
        match self {
            Self::StripeFee => "stripe_fee",
            Self::ApplicationFee => "application_fee",
            Self::PaymentMethodPassthroughFee => "payment_method_passthrough_fee",
            Self::Tax => "tax",
            Self::WithheldTax => "withheld_tax",
            Self::Other(s) => s,
        }
    }
}

/// An account of the chart. Some are per customer or per connected account.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Account {
    /// `assets:stripe:pending`: Stripe balance not yet available (before `available_on`).
    StripePending,
    /// `assets:stripe:available`: Stripe balance available for payouts.
    StripeAvailable,
    /// `assets:stripe:reserved`: Stripe balance held in a reserve.
    StripeReserved,
    /// `assets:bank:in_transit`: paid out by Stripe, not yet arrived at the bank.
    BankInTransit,
    /// `assets:bank`: the bank account(s) that receive payouts and fund top-ups.
    Bank,
    /// `assets:receivable:{customer}`: finalized invoices not yet paid.
    Receivable(Box<str>),
    /// `assets:clearing:stripe_payments`: invoice claims (payments, credit-note refunds)
    /// waiting for the Stripe balance transaction that settles them.
    ClearingStripePayments,
    /// `assets:clearing:off_stripe`: money received or returned outside Stripe (Payment
    /// Records, out-of-band credit notes) waiting for the bank side (cash application).
    ClearingOffStripe,
    /// `assets:clearing:connect_transfers`: a transfer's balance transaction waiting for the
    /// transfer event that names the connected account.
    ClearingConnectTransfers,
    /// `liabilities:customer_credit:{customer}`: credit balance owed to a customer.
    CustomerCredit(Box<str>),
    /// `liabilities:tax`: tax collected on invoices.
    Tax,
    /// `liabilities:connect:{account}`: owed to (credit) or paid to (debit) a connected account.
    Connect(Box<str>),
    /// `income:revenue`: invoiced revenue, before discounts and net of tax.
    Revenue,
    /// `income:discounts`: discounts granted on invoices (contra-income).
    Discounts,
    /// `income:uninvoiced_sales`: Stripe charges no invoice claims.
    UninvoicedSales,
    /// `income:refunds`: refunds no credit note explains (contra-income).
    Refunds,
    /// `income:application_fees`: Connect application fees earned (platform).
    ApplicationFees,
    /// `income:platform_transfers`: Connect transfers received from the platform (on a
    /// connected account's own books).
    PlatformTransfers,
    /// `expenses:stripe_fees:{type}`: Stripe fees by fee type.
    StripeFees(FeeType),
    /// `expenses:disputes`: disputed amounts withdrawn (lost or not yet won).
    Disputes,
    /// `expenses:bad_debt`: invoices marked uncollectible.
    BadDebt,
    /// `expenses:bank_fees`: short payments written off.
    BankFees,
    /// `expenses:stripe_adjustments`: Stripe's `other_adjustment` balance transactions.
    StripeAdjustments,
    /// `equity:conversion`: the trading account of cross-currency settlements; one balance
    /// per currency, so every currency balances on its own.
    Conversion,
    /// `equity:suspense`: facts not understood yet; every posting here carries a reason.
    Suspense,
}

impl Account {
    /// The Stripe id an account name embeds (a customer's, a connected account's, a fee
    /// type's); `None` for the fixed accounts.
    pub fn id_part(&self) -> Option<&str> {
        match self {
            Self::Receivable(id) | Self::CustomerCredit(id) | Self::Connect(id) => Some(id),
            Self::StripeFees(fee) => Some(fee.as_str()),
            _ => None,
        }
    }

    /// The class (first segment of the name).
    pub fn class(&self) -> AccountClass {
        use Account::*;
        match self {
            StripePending
            | StripeAvailable
            | StripeReserved
            | BankInTransit
            | Bank
            | Receivable(_)
            | ClearingStripePayments
            | ClearingOffStripe
            | ClearingConnectTransfers => AccountClass::Assets,
            CustomerCredit(_) | Tax | Connect(_) => AccountClass::Liabilities,
            Revenue | Discounts | UninvoicedSales | Refunds | ApplicationFees
            | PlatformTransfers => AccountClass::Income,
            StripeFees(_) | Disputes | BadDebt | BankFees | StripeAdjustments => {
                AccountClass::Expenses
            }
            Conversion | Suspense => AccountClass::Equity,
        }
    }

    /// The full name, e.g. `assets:receivable:cus_123`.
    pub fn name(&self) -> String {
        self.to_string()
    }

    /// What the account holds, in words an accountant reads without help.
    pub fn describe(&self) -> String {
        use Account::*;
        match self {
            StripePending => "Stripe balance, pending (not yet available)".into(),
            StripeAvailable => "Stripe balance, available for payout".into(),
            StripeReserved => "Stripe balance held in reserve".into(),
            BankInTransit => "Payouts in transit to the bank".into(),
            Bank => "Bank account".into(),
            Receivable(c) => format!("Accounts receivable from customer {c}"),
            ClearingStripePayments => {
                "Clearing: invoice payments and refunds awaiting Stripe settlement".into()
            }
            ClearingOffStripe => "Clearing: payments outside Stripe awaiting the bank".into(),
            ClearingConnectTransfers => "Clearing: Connect transfers awaiting details".into(),
            CustomerCredit(c) => format!("Credit balance owed to customer {c}"),
            Tax => "Sales tax collected, payable".into(),
            Connect(a) => format!("Due to connected account {a}"),
            Revenue => "Invoiced revenue".into(),
            Discounts => "Discounts granted (contra-revenue)".into(),
            UninvoicedSales => "Sales by Stripe charge without an invoice".into(),
            Refunds => "Refunds without a credit note (contra-revenue)".into(),
            ApplicationFees => "Connect application fees earned".into(),
            PlatformTransfers => "Transfers received from the Connect platform".into(),
            StripeFees(t) => format!("Stripe fees: {}", t.as_str().replace('_', " ")),
            Disputes => "Disputed payments withdrawn (chargebacks)".into(),
            BadDebt => "Bad debt: invoices written off as uncollectible".into(),
            BankFees => "Short payments written off".into(),
            StripeAdjustments => "Stripe balance adjustments".into(),
            Conversion => "Currency conversion (trading account)".into(),
            Suspense => "Suspense: facts awaiting classification".into(),
        }
    }

    /// Parses a name written by [`fmt::Display`] (used by fixtures and tools).
    pub fn parse(name: &str) -> Option<Self> {
        use Account::*;
        let fixed = match name {
            "assets:stripe:pending" => Some(StripePending),
            "assets:stripe:available" => Some(StripeAvailable),
            "assets:stripe:reserved" => Some(StripeReserved),
            "assets:bank:in_transit" => Some(BankInTransit),
            "assets:bank" => Some(Bank),
            "assets:clearing:stripe_payments" => Some(ClearingStripePayments),
            "assets:clearing:off_stripe" => Some(ClearingOffStripe),
            "assets:clearing:connect_transfers" => Some(ClearingConnectTransfers),
            "liabilities:tax" => Some(Tax),
            "income:revenue" => Some(Revenue),
            "income:discounts" => Some(Discounts),
            "income:uninvoiced_sales" => Some(UninvoicedSales),
            "income:refunds" => Some(Refunds),
            "income:application_fees" => Some(ApplicationFees),
            "income:platform_transfers" => Some(PlatformTransfers),
            "expenses:disputes" => Some(Disputes),
            "expenses:bad_debt" => Some(BadDebt),
            "expenses:bank_fees" => Some(BankFees),
            "expenses:stripe_adjustments" => Some(StripeAdjustments),
            "equity:conversion" => Some(Conversion),
            "equity:suspense" => Some(Suspense),
            _ => None,
        };
        if fixed.is_some() {
            return fixed;
        }
        let sub = |prefix: &str| {
            name.strip_prefix(prefix)
                .filter(|rest| !rest.is_empty())
                .map(Box::<str>::from)
        };
        if let Some(c) = sub("assets:receivable:") {
            return Some(Receivable(c));
        }
        if let Some(c) = sub("liabilities:customer_credit:") {
            return Some(CustomerCredit(c));
        }
        if let Some(a) = sub("liabilities:connect:") {
            return Some(Connect(a));
        }
        sub("expenses:stripe_fees:").map(|t| StripeFees(FeeType::from_stripe(&t)))
    }
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Account::*;
        match self {
            StripePending => f.write_str("assets:stripe:pending"),
            StripeAvailable => f.write_str("assets:stripe:available"),
            StripeReserved => f.write_str("assets:stripe:reserved"),
            BankInTransit => f.write_str("assets:bank:in_transit"),
            Bank => f.write_str("assets:bank"),
            Receivable(c) => write!(f, "assets:receivable:{c}"),
            ClearingStripePayments => f.write_str("assets:clearing:stripe_payments"),
            ClearingOffStripe => f.write_str("assets:clearing:off_stripe"),
            ClearingConnectTransfers => f.write_str("assets:clearing:connect_transfers"),
            CustomerCredit(c) => write!(f, "liabilities:customer_credit:{c}"),
            Tax => f.write_str("liabilities:tax"),
            Connect(a) => write!(f, "liabilities:connect:{a}"),
            Revenue => f.write_str("income:revenue"),
            Discounts => f.write_str("income:discounts"),
            UninvoicedSales => f.write_str("income:uninvoiced_sales"),
            Refunds => f.write_str("income:refunds"),
            ApplicationFees => f.write_str("income:application_fees"),
            PlatformTransfers => f.write_str("income:platform_transfers"),
            StripeFees(t) => write!(f, "expenses:stripe_fees:{}", t.as_str()),
            Disputes => f.write_str("expenses:disputes"),
            BadDebt => f.write_str("expenses:bad_debt"),
            BankFees => f.write_str("expenses:bank_fees"),
            StripeAdjustments => f.write_str("expenses:stripe_adjustments"),
            Conversion => f.write_str("equity:conversion"),
            Suspense => f.write_str("equity:suspense"),
        }
    }
}

impl Serialize for Account {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let all = [
            Account::StripePending,
            Account::StripeAvailable,
            Account::StripeReserved,
            Account::BankInTransit,
            Account::Bank,
            Account::Receivable("cus_1".into()),
            Account::ClearingStripePayments,
            Account::ClearingOffStripe,
            Account::ClearingConnectTransfers,
            Account::CustomerCredit("cus_1".into()),
            Account::Tax,
            Account::Connect("acct_1".into()),
            Account::Revenue,
            Account::Discounts,
            Account::UninvoicedSales,
            Account::Refunds,
            Account::ApplicationFees,
            Account::PlatformTransfers,
            Account::StripeFees(FeeType::StripeFee),
            Account::StripeFees(FeeType::Other("stripe_fx_fee".into())),
            Account::Disputes,
            Account::BadDebt,
            Account::BankFees,
            Account::StripeAdjustments,
            Account::Conversion,
            Account::Suspense,
        ];
        for a in all {
            let name = a.to_string();
            assert_eq!(Account::parse(&name), Some(a.clone()), "{name}");
            assert!(name.starts_with(match a.class() {
                AccountClass::Assets => "assets:",
                AccountClass::Liabilities => "liabilities:",
                AccountClass::Equity => "equity:",
                AccountClass::Income => "income:",
                AccountClass::Expenses => "expenses:",
            }));
            assert!(!a.describe().is_empty());
        }
        assert_eq!(Account::parse("assets:receivable:"), None);
        assert_eq!(Account::parse("nonsense"), None);
    }
}
