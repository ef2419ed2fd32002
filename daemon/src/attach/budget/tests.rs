//! The budget's permits: requests refused at once over the app's or their
//! method's limit, deliveries waiting for the share and their handler's.

use futures::FutureExt as _;

use super::{Budget, delivery_share};
use crate::error::ErrorKind;
use crate::spec::{AppSpec, InterfaceDef, MethodDef, SubscriptionDef};

fn method(name: &str, concurrency: u32) -> MethodDef {
    MethodDef {
        name: name.to_owned(),
        params: vec![],
        help: String::new(),
        raises: vec![],
        concurrency,
    }
}

fn subscription(event_type: &str, handler: &str, concurrency: u32) -> SubscriptionDef {
    SubscriptionDef {
        event_type: event_type.to_owned(),
        broadcast: false,
        retry: 0,
        handler: handler.to_owned(),
        concurrency,
    }
}

fn spec() -> AppSpec {
    AppSpec {
        app_name: "echo".to_owned(),
        interfaces: vec![InterfaceDef {
            name: "Echo".to_owned(),
            version: None,
            methods: vec![method("slow_one", 1), method("echo", 0)],
            subscriptions: vec![
                subscription("a", "on_a", 1),
                subscription("b", "on_b", 0),
                // One handler, two event types: one limit, the smaller.
                subscription("c1", "on_c", 3),
                subscription("c2", "on_c", 2),
            ],
            routes: vec![],
        }],
        ..AppSpec::default()
    }
}

#[test]
fn the_delivery_share_is_half_rounded_up_and_at_least_one() {
    let shares: Vec<u32> = [0, 1, 2, 3, 4, 5, 64].map(delivery_share).to_vec();
    assert_eq!(shares, [1, 1, 1, 2, 2, 3, 32]);
}

#[test]
fn a_method_over_its_limit_is_refused_naming_it_and_others_go_on() {
    let budget = Budget::new(&spec(), 8);
    let first = budget
        .request(Some(("Echo", "slow_one")))
        .expect("one runs");
    let refused = budget
        .request(Some(("Echo", "slow_one")))
        .err()
        .expect("the second is over the method's limit");
    assert_eq!(refused.kind, ErrorKind::Overloaded);
    assert!(
        refused.message.contains("Echo.slow_one") && refused.message.contains("(1 at once)"),
        "{}",
        refused.message
    );
    let others: Vec<_> = (0..7)
        .map(|_| {
            budget
                .request(Some(("Echo", "echo")))
                .expect("another method")
        })
        .collect();
    let full = budget
        .request(Some(("Echo", "echo")))
        .err()
        .expect("the app's budget is used up");
    assert!(
        full.message
            .contains("(8 requests and deliveries in flight)"),
        "{}",
        full.message
    );
    drop(others);
    drop(first);
    assert!(budget.request(Some(("Echo", "slow_one"))).is_ok(), "freed");
    assert!(budget.request(None).is_ok(), "HTTP has no method limit");
    assert!(budget.request(Some(("Other", "slow_one"))).is_ok());
}

#[test]
fn a_method_refused_by_the_app_budget_gives_its_own_permit_back() {
    let budget = Budget::new(&spec(), 1);
    let held = budget.request(Some(("Echo", "echo"))).expect("the budget");
    let refused = budget.request(Some(("Echo", "slow_one"))).err();
    assert!(refused.is_some_and(|e| e.message.contains("echo is at its")));
    drop(held);
    assert!(budget.request(Some(("Echo", "slow_one"))).is_ok());
}

#[test]
fn deliveries_hold_at_most_the_share_and_requests_may_use_the_rest() {
    let budget = Budget::new(&spec(), 4);
    let (gate, prefetch) = budget.gate("Echo", "on_b");
    assert_eq!(prefetch, 2, "no limit of its own: the share");
    let d1 = budget
        .delivery(&gate)
        .now_or_never()
        .flatten()
        .expect("1st");
    let d2 = budget
        .delivery(&gate)
        .now_or_never()
        .flatten()
        .expect("2nd");
    assert_eq!(gate.held(), 2);
    let mut third = Box::pin(budget.delivery(&gate));
    assert!((&mut third).now_or_never().is_none(), "over the share");
    let r1 = budget.request(None).expect("requests keep half");
    let r2 = budget.request(None).expect("requests keep half");
    assert!(budget.request(None).is_err(), "the budget is used up");
    drop(d1);
    assert_eq!(gate.held(), 1);
    let d3 = third.now_or_never().flatten().expect("the freed permits");
    assert_eq!(gate.held(), 2);
    drop(d2);
    let r3 = budget
        .request(None)
        .expect("a request takes the freed budget");
    // The share has room, the budget has none: the delivery waits for it.
    let mut fourth = Box::pin(budget.delivery(&gate));
    assert!((&mut fourth).now_or_never().is_none(), "no budget left");
    assert!(budget.request(None).is_err(), "still used up");
    drop(r1);
    let d4 = fourth
        .now_or_never()
        .flatten()
        .expect("the request's permit");
    drop((d3, d4, r2, r3));
    assert_eq!(gate.held(), 0);
    let all: Vec<_> = (0..4)
        .map(|_| budget.request(None).expect("all of it"))
        .collect();
    assert_eq!(all.len(), 4);
}

#[test]
fn a_handler_limit_bounds_its_deliveries_and_its_prefetch() {
    let budget = Budget::new(&spec(), 16);
    let (a, prefetch) = budget.gate("Echo", "on_a");
    assert_eq!(prefetch, 1);
    let held = budget.delivery(&a).now_or_never().flatten().expect("1st");
    assert!(budget.delivery(&a).now_or_never().is_none(), "waits");
    let (b, prefetch) = budget.gate("Echo", "on_b");
    assert_eq!(prefetch, 8, "the share of 16");
    assert!(budget.delivery(&b).now_or_never().flatten().is_some());
    drop(held);
    assert!(budget.delivery(&a).now_or_never().flatten().is_some());

    let (c1, p1) = budget.gate("Echo", "on_c");
    let (c2, p2) = budget.gate("Echo", "on_c");
    assert_eq!((p1, p2), (2, 2), "the smaller of the handler's limits");
    let one = budget.delivery(&c1).now_or_never().flatten().expect("c1");
    let two = budget.delivery(&c2).now_or_never().flatten().expect("c2");
    assert!(
        budget.delivery(&c1).now_or_never().is_none(),
        "one handler, one limit across its subscriptions"
    );
    assert_eq!((c1.held(), c2.held()), (1, 1), "counted per subscription");
    drop((one, two));
    assert_eq!(budget.gate("Echo", "on_b").1, 8);
    assert_eq!(Budget::new(&spec(), 1).gate("Echo", "on_c").1, 1, "share 1");
}

#[test]
fn a_budget_of_one_says_so_in_the_singular() {
    let budget = Budget::new(&spec(), 1);
    let _held = budget.request(None).expect("the budget");
    let refused = budget.request(None).err().expect("over the budget");
    assert!(
        refused
            .message
            .ends_with("is at its concurrency limit (1 request or delivery in flight)"),
        "{}",
        refused.message
    );
}
