//! Balance-transaction polling publishes each version of a balance transaction once: poll
//! rounds (`poll_balance_transactions` + a forced `recheck_pending`, as the ingester's round
//! runs them) over a stripe-sim world with pending transactions, on the platform and on a
//! connected account, against the real Kafka and PostgreSQL. A round over an unchanged world
//! puts nothing on the topic — not even the transactions created in the cursor's second, which
//! every poll re-reads — and a transaction that turns `available` is published again, once.
//! A record's `livemode` is the key's mode (the object has no such field): the first world is
//! a live one read with a live key. And a payout of 40,000 of them, too many ids for one record,
//! is published as a composition in parts.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ledgerline_bus::{KafkaConfig, TopicSpec, ensure_topics};
use ledgerline_ingester::metrics::Metrics;
use ledgerline_ingester::pollers::{Ctx, DEFAULT_WALK_BUFFER, Scope};
use ledgerline_ingester::publish::Publisher;
use ledgerline_ingester::store::Store;
use ledgerline_proto::stripe::v1::{
    BalanceTransactionRecord, BalanceTransactionStatus, PayoutCompositionRecord,
};
use ledgerline_stripe::{ApiKey, Client, ClientConfig};
use ledgerline_stripe_sim::http::{
    ClockConfig, DEFAULT_LIVE_KEY, DEFAULT_TEST_KEY, SimConfig, SimServer,
};
use ledgerline_stripe_sim::object::{ObjectKind, SimObject};
use ledgerline_stripe_sim::world::{World, WorldConfig};
use prost::Message as _;

const DAY: i64 = 86_400;

/// A world's balance transaction: (account, id) → (created, available_on).
type Bts = HashMap<(String, String), (i64, Option<i64>)>;

fn pending_at(available_on: Option<i64>, t: i64) -> bool {
    available_on.is_some_and(|a| a > t)
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Poll(i64),
    Recheck(i64),
}

/// What each balance transaction's records must be: one when first listed, one more when a
/// transaction published `pending` is read `available` — by a poll (only the cursor's second,
/// the newest `created` published, is re-read) or by the look-back. Nothing else.
#[derive(Default)]
struct Model {
    /// (account, id) → published `pending`.
    published: HashMap<(String, String), bool>,
    /// Account → newest `created` published.
    cursor: HashMap<String, i64>,
    /// Changes caught by a poll's re-read of the cursor's second, and by the look-back in it.
    tie_by_poll: usize,
    tie_by_recheck: usize,
}

impl Model {
    fn step(&mut self, bts: &Bts, step: Step) -> i64 {
        let mut n = 0;
        let mut newest: HashMap<String, i64> = HashMap::new();
        for (key, (created, avail)) in bts {
            let at_cursor = self.cursor.get(&key.0) == Some(created);
            match (step, self.published.get(key).copied()) {
                (Step::Poll(t), None) if *created <= t => {
                    self.published.insert(key.clone(), pending_at(*avail, t));
                    let e = newest.entry(key.0.clone()).or_insert(*created);
                    *e = (*e).max(*created);
                    n += 1;
                }
                (Step::Poll(t), Some(true)) if at_cursor && !pending_at(*avail, t) => {
                    self.published.insert(key.clone(), false);
                    self.tie_by_poll += 1;
                    n += 1;
                }
                (Step::Recheck(t), Some(true)) if !pending_at(*avail, t) => {
                    self.published.insert(key.clone(), false);
                    if at_cursor {
                        self.tie_by_recheck += 1;
                    }
                    n += 1;
                }
                _ => {}
            }
        }
        for (acct, c) in newest {
            let e = self.cursor.entry(acct).or_insert(c);
            *e = (*e).max(c);
        }
        n
    }
}

/// A stripe-sim server over `objects` with its clock stopped at `now`, and the pollers over it
/// with `key`, writing to a fresh database and fresh one-partition balance-transaction and
/// payout topics (the balance transactions' returned, then the payouts').
async fn poller_over(
    objects: Vec<SimObject>,
    now: i64,
    key: &str,
) -> (SimServer, Ctx, Client, String, String) {
    let sim = SimServer::start(
        SimConfig {
            clock: ClockConfig {
                start: Some(now),
                speed: 0,
            },
            ..SimConfig::default()
        },
        objects,
    )
    .await
    .unwrap();
    let db_url = common::fresh_database_url().await;
    let pool = sqlx::PgPool::connect(&db_url).await.unwrap();
    ledgerline_ingester::MIGRATOR.run(&pool).await.unwrap();
    let topics = ledgerline_bus::Topics::with_prefix(
        ledgerline_tests::unique_name("btrepub").to_lowercase() + ".",
    );
    let topic = topics.stripe_balance_transactions();
    let payouts_topic = topics.stripe_payouts();
    let kafka = KafkaConfig::new(ledgerline_tests::kafka_bootstrap_servers(), "bt-republish");
    let specs = [
        TopicSpec::new(topic.clone(), 1),
        TopicSpec::new(payouts_topic.clone(), 1),
    ];
    ensure_topics(&kafka.admin().unwrap(), &specs)
        .await
        .unwrap();
    let metrics = Arc::new(Metrics::default());
    let ctx = Ctx {
        store: Store::new(pool),
        publisher: Publisher::new(
            kafka.idempotent_producer().unwrap(),
            topics,
            metrics.clone(),
        ),
        metrics,
        filters: Arc::new(Default::default()),
        walk_buffer: DEFAULT_WALK_BUFFER,
    };
    let mut client = ClientConfig::new(sim.base_url(), ApiKey::parse(key).unwrap());
    client.requests_per_sec = Some(0);
    let client = Client::new(client).unwrap();
    (sim, ctx, client, topic, payouts_topic)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_balance_transactions_are_not_republished_and_changed_ones_are_once() {
    let world = World::generate(&WorldConfig {
        connected_accounts: 1,
        days: Some(8),
        livemode: true,
        ..WorldConfig::with_facts(57, 600)
    });
    let start = world.config.start;
    let connected = world
        .objects
        .iter()
        .find(|o| o.kind == ObjectKind::Account)
        .map(|o| o.id.clone())
        .unwrap();
    let bts: Bts = world
        .objects
        .iter()
        .filter(|o: &&SimObject| o.kind == ObjectKind::BalanceTransaction)
        .map(|o| {
            let acct = o
                .account
                .clone()
                .unwrap_or_else(|| common::PLATFORM.to_owned());
            ((acct, o.id.clone()), (o.created, o.available_on))
        })
        .collect();
    // t1: the platform's newest transaction then is pending (so it is in the cursor's second
    // while pending); t2: it is available; t3: everything is.
    let platform_newest = |t: i64| {
        bts.iter()
            .filter(|((a, _), (c, _))| a == common::PLATFORM && *c <= t)
            .map(|(_, v)| *v)
            .max_by_key(|(c, _)| *c)
    };
    let t1 = (0..48)
        .map(|h| start + 3 * DAY + h * 3_600)
        .find(|t| platform_newest(*t).is_some_and(|(_, avail)| pending_at(avail, *t)))
        .unwrap();
    let t2 = platform_newest(t1).unwrap().1.unwrap();
    let t3 = world.truth.end + 60 * DAY;
    let (sim, ctx, client, topic, _) = poller_over(world.objects, t1, DEFAULT_LIVE_KEY).await;
    let scopes = [
        Scope {
            key: format!("default/test/{}", common::PLATFORM),
            client: client.clone(),
            account: common::PLATFORM.to_owned(),
            stripe_account: None,
        },
        Scope {
            key: format!("default/test/{connected}"),
            client,
            account: connected.clone(),
            stripe_account: Some(connected.clone()),
        },
    ];

    // Rounds as the ingester runs them (a poll, then the look-back), rounds over an unchanged
    // world, and a clock that moves between a poll and the look-back (the look-back then
    // catches transactions of the cursor's second the next poll re-reads).
    use Step::{Poll, Recheck};
    let steps = [
        Poll(t1),
        Recheck(t1),
        Poll(t1),
        Recheck(t1),
        Poll(t2),
        Recheck(t2),
        Poll(t2),
        Recheck(t2),
        Poll(t2),
        Recheck(t3),
        Poll(t3),
        Recheck(t3),
        Poll(t3),
        Recheck(t3),
    ];
    let mut model = Model::default();
    let mut total = 0i64;
    for (i, step) in steps.into_iter().enumerate() {
        let (Poll(now) | Recheck(now)) = step;
        sim.handle().set_now(now);
        for scope in &scopes {
            match step {
                Poll(_) => {
                    ctx.poll_balance_transactions(scope).await.unwrap();
                }
                Recheck(_) => {
                    ctx.recheck_pending(scope, now, true).await.unwrap();
                }
            }
        }
        let on_topic = common::topic_records(&topic);
        let want = model.step(&bts, step);
        println!(
            "step {i} {step:?}: {} records published, {want} expected",
            on_topic - total
        );
        assert_eq!(on_topic - total, want, "step {i} {step:?}");
        total = on_topic;
    }
    assert!(
        model.tie_by_poll > 0 && model.tie_by_recheck > 0,
        "the world must have pending transactions in the cursor's second that turn available \
         while a poll re-reads them ({}) and before the look-back reads them ({})",
        model.tie_by_poll,
        model.tie_by_recheck
    );

    // Every transaction: one record while pending (if it ever was seen pending), one available.
    let records = common::consume_all(&topic, std::time::Duration::from_secs(3)).await;
    let mut seen: HashMap<(String, String), Vec<i32>> = HashMap::new();
    for (_, v) in &records {
        let r = BalanceTransactionRecord::decode(v.as_slice()).unwrap();
        assert!(
            r.livemode,
            "{} read with a live key",
            r.balance_transaction_id
        );
        seen.entry((r.account, r.balance_transaction_id))
            .or_default()
            .push(r.observed_status);
    }
    assert_eq!(seen.len(), bts.len());
    let (pending, available) = (
        BalanceTransactionStatus::Pending as i32,
        BalanceTransactionStatus::Available as i32,
    );
    for (key, statuses) in &seen {
        let (created, avail) = bts[key];
        let first = [t1, t2, t3].into_iter().find(|t| created <= *t).unwrap();
        let want = if pending_at(avail, first) {
            vec![pending, available]
        } else {
            vec![available]
        };
        assert_eq!(
            statuses, &want,
            "{key:?} created {created} available {avail:?}"
        );
    }
    assert!(seen.keys().any(|(a, _)| *a == connected));
    sim.shutdown().await;
}

/// Stripe may move a pending transaction's `available_on` (the architecture's rule: the ledger
/// then reverses its reclass and posts a new one). Nothing announces it, so the look-back must
/// see it: the moved transaction is published again once, still `pending`, with the new time;
/// an unchanged world then publishes nothing; the old time passing changes nothing; the new
/// time passing publishes it once more, `available`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_transaction_whose_available_on_moves_is_republished_once() {
    let world = World::generate(&WorldConfig {
        connected_accounts: 0,
        days: Some(8),
        ..WorldConfig::with_facts(91, 400)
    });
    let start = world.config.start;
    // The platform's transactions: id → (created, available_on).
    let bts: HashMap<String, (i64, i64)> = world
        .objects
        .iter()
        .filter(|o| o.kind == ObjectKind::BalanceTransaction && o.account.is_none())
        .filter_map(|o| Some((o.id.clone(), (o.created, o.available_on?))))
        .collect();
    // A moment with a pending transaction, and the one of them that matures first.
    let (t1, (moved, (_, old_available_on))) = (0..96)
        .map(|h| start + 2 * DAY + h * 3_600)
        .find_map(|t| {
            bts.iter()
                .filter(|(_, (c, a))| *c <= t && *a > t)
                .min_by_key(|(id, (_, a))| (*a, (*id).clone()))
                .map(|(id, v)| (t, (id.clone(), *v)))
        })
        .unwrap();
    // Stripe holds it three more days.
    let new_available_on = old_available_on + 3 * DAY;
    let (sim, ctx, client, topic, _) = poller_over(world.objects, t1, DEFAULT_TEST_KEY).await;
    let scope = Scope {
        key: format!("default/test/{}", common::PLATFORM),
        client,
        account: common::PLATFORM.to_owned(),
        stripe_account: None,
    };
    let mut published = 0i64;
    let mut published_since = || {
        let total = common::topic_records(&topic);
        let new = total - published;
        published = total;
        new
    };

    ctx.poll_balance_transactions(&scope).await.unwrap();
    ctx.recheck_pending(&scope, t1, true).await.unwrap();
    assert!(
        published_since() > 0,
        "the first poll publishes the world so far"
    );

    assert!(sim.handle().move_available_on(&moved, new_available_on));
    ctx.recheck_pending(&scope, t1, true).await.unwrap();
    assert_eq!(published_since(), 1, "the moved transaction, once");
    ctx.recheck_pending(&scope, t1, true).await.unwrap();
    ctx.poll_balance_transactions(&scope).await.unwrap();
    assert_eq!(published_since(), 0, "nothing changed since");

    // The old time passes: the moved transaction is still pending.
    sim.handle().set_now(old_available_on);
    ctx.poll_balance_transactions(&scope).await.unwrap();
    ctx.recheck_pending(&scope, old_available_on, true)
        .await
        .unwrap();
    // The new time passes: it turns available.
    sim.handle().set_now(new_available_on);
    ctx.poll_balance_transactions(&scope).await.unwrap();
    ctx.recheck_pending(&scope, new_available_on, true)
        .await
        .unwrap();

    let records = common::consume_all(&topic, std::time::Duration::from_secs(3)).await;
    let versions: Vec<(i32, i64)> = records
        .iter()
        .map(|(_, v)| BalanceTransactionRecord::decode(v.as_slice()).unwrap())
        .filter(|r| r.balance_transaction_id == moved)
        .map(|r| (r.observed_status, r.available_on))
        .collect();
    let (pending, available) = (
        BalanceTransactionStatus::Pending as i32,
        BalanceTransactionStatus::Available as i32,
    );
    assert_eq!(
        versions,
        vec![
            (pending, old_available_on),
            (pending, new_available_on),
            (available, new_available_on),
        ],
        "{moved}: published pending, pending with the moved time, then available"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payout_of_40000_transactions_is_published_in_parts_that_hold_every_id_once_past_one_that_fails()
 {
    let now = 1_780_000_000;
    let payout = "po_1LedgerlineBigPayout0000";
    let txns: Vec<String> = (0..40_000).map(|n| format!("txn_1Big{n:0>19}")).collect();
    let mut objects: Vec<SimObject> = txns
        .iter()
        .enumerate()
        .map(|(n, id)| {
            let created = now - 86_400 + i64::try_from(n / 10).unwrap();
            SimObject {
                kind: ObjectKind::BalanceTransaction,
                id: id.clone(),
                created,
                account: None,
                livemode: false,
                filters: vec![("payout", payout.to_owned())],
                available_on: None,
                json: format!(
                    r#"{{"id":"{id}","object":"balance_transaction","amount":100,"currency":"usd","created":{created},"status":"available"}}"#
                ),
            }
        })
        .collect();
    objects.push(SimObject {
        kind: ObjectKind::Payout,
        id: payout.to_owned(),
        created: now - 60,
        account: None,
        livemode: false,
        filters: Vec::new(),
        available_on: None,
        json: format!(
            r#"{{"id":"{payout}","object":"payout","amount":4000000,"currency":"usd","arrival_date":{now},"created":{},"livemode":false,"reconciliation_status":"completed"}}"#,
            now - 60
        ),
    });
    // A payout Stripe answers with JSON the ingester cannot read, listed before the big one.
    let unreadable = "po_0LedgerlineUnreadable000";
    objects.push(SimObject {
        kind: ObjectKind::Payout,
        id: unreadable.to_owned(),
        created: now - 60,
        account: None,
        livemode: false,
        filters: Vec::new(),
        available_on: None,
        json: format!(r#"{{"id":"{unreadable}","object":"payout","amount":"lots"}}"#),
    });
    let (sim, ctx, client, _, payouts_topic) = poller_over(objects, now, DEFAULT_TEST_KEY).await;
    let scope = Scope {
        key: format!("default/test/{}", common::PLATFORM),
        client,
        account: common::PLATFORM.to_owned(),
        stripe_account: None,
    };
    ctx.store
        .add_pending_payouts(&scope.key, &[payout.to_owned(), unreadable.to_owned()])
        .await
        .unwrap();
    // The round fails on the unreadable payout, after publishing the big one.
    let e = ctx.payouts(&scope).await.unwrap_err().to_string();
    assert!(e.contains(unreadable), "{e}");
    let records = common::consume_all(&payouts_topic, Duration::from_secs(3)).await;
    let parts: Vec<PayoutCompositionRecord> = records
        .iter()
        .map(|(key, v)| {
            assert_eq!(key, &format!("{}/{payout}", common::PLATFORM));
            PayoutCompositionRecord::decode(v.as_slice()).unwrap()
        })
        .collect();
    assert!(parts.len() > 1, "{} record(s)", parts.len());
    let count = u32::try_from(parts.len()).unwrap();
    let mut ids = Vec::new();
    for (n, part) in (0..).zip(parts) {
        assert_eq!((part.part, part.parts), (n, count));
        assert_eq!((part.amount, part.currency.as_str()), (4_000_000, "usd"));
        ids.extend(part.balance_transaction_ids);
    }
    // Stripe lists them newest first.
    let mut expected = txns;
    expected.reverse();
    assert_eq!(ids, expected);
    // The big one is done: a second round publishes nothing, and still fails on the other.
    assert!(ctx.payouts(&scope).await.is_err());
    let again = common::consume_all(&payouts_topic, Duration::from_secs(3)).await;
    assert_eq!(again.len(), records.len());
    sim.shutdown().await;
}
