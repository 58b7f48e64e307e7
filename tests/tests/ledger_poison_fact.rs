//! A poison fact: posting rules that panic on one fact (a bug in Ledgerline the fact runs
//! into) would stop the ledger on it at every retry and restart, with every fact behind it
//! waiting. Here rules panic on two facts of a world, one while it is posted and one while its
//! posting is applied after it changed the journal (so the batch's journal is really spoiled);
//! on both stores, each goes to the dead-letter topic with the panic's message, and the books
//! equal the core's fold of the world without them. A panic on a stored fact at catch-up stops
//! with an error naming it.
#![allow(clippy::unwrap_used)]

mod ledger_support;

use std::sync::OnceLock;

use ledger_support::*;
use ledgerline_bus::EmbeddedLog;
use ledgerline_core::{Ledger, Outcome, PostError, Posting, post_raw};
use ledgerline_ledger::consumer::fold_and_commit;
use ledgerline_ledger::engine::Engine;
use ledgerline_ledger::rules::PostingRules;
use ledgerline_ledger::store::{PgStore, SqliteStore, Store};

/// The world every test here folds, and its two poison facts' ids (events that post entries:
/// one in the first half, one in the second).
struct Poisoned {
    facts: Vec<WireFact>,
    when_posted: String,
    when_applied: String,
}

fn poisoned() -> &'static Poisoned {
    static WORLD: OnceLock<Poisoned> = OnceLock::new();
    WORLD.get_or_init(|| {
        let (_world, facts) = world_facts(16, 600);
        let mut ledger = Ledger::new();
        let posting_events: Vec<(usize, String)> = facts
            .iter()
            .enumerate()
            .filter_map(|(i, f)| {
                let posting = post_raw(&f.account, &f.raw).ok()?;
                let id = posting.fact_id.to_string();
                let posted = ledger.apply_posting(posting).posted;
                (f.topic_is_events && !posted.is_empty()).then_some((i, id))
            })
            .collect();
        let half = facts.len() / 2;
        let first = posting_events.iter().find(|(i, _)| *i < half).unwrap();
        let second = posting_events.iter().find(|(i, _)| *i >= half).unwrap();
        Poisoned {
            when_posted: first.1.clone(),
            when_applied: second.1.clone(),
            facts,
        }
    })
}

fn panics_when_posted(account: &str, raw: &[u8]) -> Result<Posting, PostError> {
    let posting = post_raw(account, raw)?;
    assert!(
        *posting.fact_id != *poisoned().when_posted,
        "test poison: posting {}",
        posting.fact_id
    );
    Ok(posting)
}

/// Changes the journal, then panics: what a bug halfway through the joins would leave.
fn panics_when_applied(ledger: &mut Ledger, posting: Posting) -> Outcome {
    let poison = *posting.fact_id == *poisoned().when_applied;
    let outcome = ledger.apply_posting(posting);
    assert!(!poison, "test poison: applying {}", poisoned().when_applied);
    outcome
}

const POISONED_RULES: PostingRules = PostingRules {
    post: panics_when_posted,
    apply: panics_when_applied,
    mode: ledgerline_ledger::StripeMode::Test,
};

async fn poison_facts_go_to_the_dead_letters<S: Store>(store: S) {
    let world = poisoned();
    let poison = [world.when_posted.as_str(), world.when_applied.as_str()];
    let dlq = EmbeddedLog::in_memory(1);
    let mut engine = Engine::with_rules(POISONED_RULES);
    let mut dead_letters = 0;
    for chunk in in_records(&world.facts).chunks(150) {
        dead_letters += fold_and_commit(&store, &mut engine, &dlq, "g", chunk)
            .await
            .unwrap()
            .dead_letters;
    }
    assert_eq!(dead_letters, 2);

    let dead = dead_events(&dlq, "e.dlq");
    assert_eq!(
        dead.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(),
        poison,
        "{dead:?}"
    );
    for ((_, reason), id) in dead.iter().zip(poison) {
        assert!(
            reason.starts_with("the posting rules panicked on this fact (test poison: ")
                && reason.contains(id)
                && reason.contains("publish the record again"),
            "{reason}"
        );
    }

    let healthy = facts_without(&world.facts, &poison);
    assert_eq!(healthy.len(), world.facts.len() - 2);
    let model = model(&healthy);
    let stored = store_digests(&store).await;
    assert_eq!(
        stored,
        model_digests(&model),
        "the books equal the fold without the poison facts"
    );
    assert!(store.verify_chain().await.unwrap().ok());
    // The engine that met the poison (rebuilt from the stored facts after the spoiled batch)
    // and a restarted one know what the core's fold knows.
    assert_eq!(core_state(engine.ledger()), core_state(&model));
    let mut restarted = Engine::new();
    let mut tx = store.begin_write().await.unwrap();
    assert_eq!(
        restarted.catch_up(&mut tx).await.unwrap(),
        healthy.len(),
        "every healthy fact is stored, the poison ones are not"
    );
    assert_eq!(core_state(restarted.ledger()), core_state(&model));

    // Rules that panic on a stored fact cannot rebuild the state: an error names the fact,
    // and the engine is left empty rather than half built.
    fn panics_on_any_entry(ledger: &mut Ledger, posting: Posting) -> Outcome {
        assert!(posting.entries.is_empty(), "test poison: an entry");
        ledger.apply_posting(posting)
    }
    let mut upgraded = Engine::with_rules(PostingRules {
        apply: panics_on_any_entry,
        ..PostingRules::default()
    });
    let error = upgraded.catch_up(&mut tx).await.unwrap_err().to_string();
    assert!(
        error.starts_with("the posting rules panic on stored fact fact_seq ")
            && error.contains("test poison: an entry")
            && error.contains("run the version that stored it"),
        "{error}"
    );
    assert_eq!(upgraded.facts_known(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_facts_go_to_the_dead_letters_in_postgresql() {
    let (_pool, url) = fresh_db("poison_pg").await;
    poison_facts_go_to_the_dead_letters(PgStore::connect(&url).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_facts_go_to_the_dead_letters_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("l.sqlite"))
        .await
        .unwrap();
    poison_facts_go_to_the_dead_letters(store).await;
}
