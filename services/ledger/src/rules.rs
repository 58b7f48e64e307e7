//! The posting rules an [`crate::Engine`] applies, behind a guard. A panic in them is a bug in
//! Ledgerline met by one fact; unguarded, it would stop the ledger on that fact at every retry
//! and every restart (a poison fact), and every fact behind it would wait. Guarded, the fact
//! goes to the dead-letter topic with the panic's message, like a fact the rules reject, and
//! the rest is folded. A panic while a stored fact is replayed stops the ledger instead, with
//! an error naming the fact: its entries are in the books, so the join state cannot leave it
//! out.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

use ledgerline_core::{Ledger, Outcome, PostError, Posting};

/// Stripe's two modes. Test and live objects of one account share its id, so a ledger books
/// one mode's facts only: both in one journal would mix test charges into the real books.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StripeMode {
    /// Test-mode facts (`sk_test_`/`rk_test_` keys, `livemode: false`): the default, so a
    /// ledger nobody configured never books real money with test facts, nor the reverse.
    #[default]
    Test,
    Live,
}

impl StripeMode {
    pub fn of_livemode(livemode: bool) -> Self {
        if livemode { Self::Live } else { Self::Test }
    }

    /// `test` or `live`, as `LEDGERLINE_STRIPE_MODE` names it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Test => "test",
            Self::Live => "live",
        }
    }
}

impl std::str::FromStr for StripeMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "test" => Ok(Self::Test),
            "live" => Ok(Self::Live),
            _ => Err("the Stripe mode is `test` or `live`".to_owned()),
        }
    }
}

/// Which facts an engine books and how: the mode whose facts it books (a fact of the other
/// mode goes to the dead-letter topic), and the rules that post a fact and fold its posting:
/// the core's ([`PostingRules::default`]), or a test's (to check what a panic in them does).
#[derive(Clone, Copy)]
pub struct PostingRules {
    /// A fact's posting ([`ledgerline_core::post_raw`]).
    pub post: fn(&str, &[u8]) -> Result<Posting, PostError>,
    /// Folds a posting into the journal ([`Ledger::apply_posting`]).
    pub apply: fn(&mut Ledger, Posting) -> Outcome,
    /// The mode of the facts booked (its envelope's `livemode`).
    pub mode: StripeMode,
}

impl Default for PostingRules {
    fn default() -> Self {
        Self::of_mode(StripeMode::default())
    }
}

impl std::fmt::Debug for PostingRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostingRules")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// Why a fact posts nothing and goes to the dead-letter topic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unpostable {
    /// The rules reject the fact (not a usable Stripe fact, inconsistent amounts).
    #[error("the core cannot post this fact: {0}")]
    Rejected(PostError),
    /// The rules panicked on it.
    #[error(
        "the posting rules panicked on this fact ({0}): a bug in Ledgerline, not in the fact. \
         Report it with this record, and publish the record again to its topic once a fixed \
         version runs"
    )]
    Panicked(String),
}

impl PostingRules {
    /// The core's rules, booking `mode`'s facts.
    pub const fn of_mode(mode: StripeMode) -> Self {
        Self {
            post: ledgerline_core::post_raw,
            apply: Ledger::apply_posting,
            mode,
        }
    }

    /// The fact's posting; a panic in the rules is [`Unpostable::Panicked`].
    pub fn try_post(&self, account: &str, raw: &[u8]) -> Result<Posting, Unpostable> {
        match catch_unwind(|| (self.post)(account, raw)) {
            Ok(posted) => posted.map_err(Unpostable::Rejected),
            Err(panic) => Err(Unpostable::Panicked(panic_message(&*panic))),
        }
    }

    /// Folds `posting` into `ledger`; on a panic, its message. The journal may then be half
    /// changed: the caller drops it and rebuilds the state from the stored facts.
    pub fn try_apply(&self, ledger: &mut Ledger, posting: Posting) -> Result<Outcome, String> {
        catch_unwind(AssertUnwindSafe(|| (self.apply)(ledger, posting)))
            .map_err(|panic| panic_message(&*panic))
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn panics(_: &str, raw: &[u8]) -> Result<Posting, PostError> {
        panic!("no rule for {} bytes", raw.len())
    }

    #[test]
    fn a_stripe_mode_is_named_test_or_live_and_test_is_the_default() {
        assert_eq!("test".parse(), Ok(StripeMode::Test));
        assert_eq!("live".parse(), Ok(StripeMode::Live));
        assert!("Live".parse::<StripeMode>().is_err());
        assert!("production".parse::<StripeMode>().is_err());
        assert_eq!(StripeMode::of_livemode(true).name(), "live");
        assert_eq!(PostingRules::default().mode, StripeMode::Test);
    }

    #[test]
    fn a_panic_in_the_rules_is_a_reason_not_a_crash() {
        let rules = PostingRules {
            post: panics,
            ..PostingRules::default()
        };
        assert_eq!(
            rules.try_post("acct_1", b"{}").unwrap_err(),
            Unpostable::Panicked("no rule for 2 bytes".into())
        );
        let rejected = PostingRules::default().try_post("acct_1", b"not json");
        assert!(
            matches!(rejected, Err(Unpostable::Rejected(_))),
            "{rejected:?}"
        );
        let static_message = PostingRules {
            apply: |_, _| panic!("static"),
            ..PostingRules::default()
        };
        let posting = Posting {
            ledger: "acct_1".into(),
            fact_id: "evt_1".into(),
            ..Posting::default()
        };
        assert_eq!(
            static_message.try_apply(&mut Ledger::lean(), posting),
            Err("static".to_owned())
        );
    }
}
