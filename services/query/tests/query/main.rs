//! The query crate's integration tests: the applier over real ledger entries, the forensic API
//! through its real router, and the JetStream consumer against a real nats-server.

mod applier;
mod http;
mod nats;

use ledger::{Ledger, LogStore, NewEntry, WriterConfig, WriterHandle};
use proto_types::event::{
    ChecklistItem, EventKind, HandoverAssignment, Level, Module, Money, Resource,
};
use proto_types::ids::{CustomerId, DealId, EmployeeId, EventId, RoleName, SystemId};
use proto_types::{Actor, Date, Event, Timestamp};

pub fn emp(s: &str) -> EmployeeId {
    EmployeeId::parse(s).unwrap()
}
pub fn cust(s: &str) -> CustomerId {
    CustomerId::parse(s).unwrap()
}

/// 2026-09-01T00:00:00Z plus `minutes`.
pub fn at(minutes: i64) -> Timestamp {
    Timestamp(1_788_220_800_000_000 + minutes * 60_000_000)
}

pub fn ev(id: &str, actor: Actor, minutes: i64, kind: EventKind) -> NewEntry {
    NewEntry::new(Event {
        id: Some(EventId::parse(id).unwrap()),
        actor,
        occurred_at: at(minutes),
        kind,
    })
    .unwrap()
}

pub fn hr() -> Actor {
    Actor::System(SystemId::parse("hr-system").unwrap())
}
pub fn by(e: &str) -> Actor {
    Actor::Employee(emp(e))
}

/// A small offboarding story: E-1 manages E-2; E-2 owns C-1 (with deal D-1) and C-2, works,
/// resigns, exports in the notice period, departs; C-1 is handed over to E-1.
pub fn story() -> Vec<NewEntry> {
    let eur = Money {
        minor_units: 990_000,
        currency: *b"EUR",
    };
    vec![
        ev(
            "s0",
            hr(),
            0,
            EventKind::EmployeeHired {
                employee: emp("E-1"),
                name: "Maria Boss".into(),
                email: "m@example.com".into(),
                manager: None,
                department: "Sales".into(),
                title: "Head of Sales".into(),
            },
        ),
        ev(
            "s1",
            hr(),
            1,
            EventKind::EmployeeHired {
                employee: emp("E-2"),
                name: "Zhang Wei 张伟".into(),
                email: "z@example.com".into(),
                manager: Some(emp("E-1")),
                department: "Sales".into(),
                title: "AE".into(),
            },
        ),
        ev(
            "s2",
            hr(),
            2,
            EventKind::RoleGranted {
                employee: emp("E-2"),
                role: RoleName::parse("sales-rep").unwrap(),
            },
        ),
        ev(
            "s3",
            hr(),
            3,
            EventKind::PermissionGranted {
                employee: emp("E-2"),
                module: Module::Export,
                level: Level::Write,
            },
        ),
        ev(
            "s4",
            by("E-2"),
            10,
            EventKind::CustomerCreated {
                customer: cust("C-1"),
                name: "Acme".into(),
                owner: emp("E-2"),
            },
        ),
        ev(
            "s5",
            by("E-2"),
            11,
            EventKind::CustomerCreated {
                customer: cust("C-2"),
                name: "Globex".into(),
                owner: emp("E-2"),
            },
        ),
        ev(
            "s6",
            by("E-2"),
            12,
            EventKind::DealCreated {
                deal: DealId::parse("D-1").unwrap(),
                customer: cust("C-1"),
                owner: emp("E-2"),
                amount: eur.clone(),
                stage: "proposal".into(),
            },
        ),
        ev(
            "s7",
            by("E-2"),
            20,
            EventKind::CustomerViewed {
                customer: cust("C-1"),
            },
        ),
        ev(
            "s8",
            by("E-1"),
            21,
            EventKind::CustomerViewed {
                customer: cust("C-2"),
            },
        ),
        ev(
            "s9",
            by("E-2"),
            22,
            EventKind::DealUpdated {
                deal: DealId::parse("D-1").unwrap(),
                fields: vec!["stage".into()],
                stage: Some("negotiation".into()),
            },
        ),
        ev(
            "s10",
            hr(),
            1000,
            EventKind::ResignationSubmitted {
                employee: emp("E-2"),
                notice_date: Date::of(at(1000)),
                last_day: Date::of(at(20000)),
                reason: "new job".into(),
            },
        ),
        ev(
            "s11",
            by("E-2"),
            1100,
            EventKind::CustomersExported {
                count: 2,
                filter: "all".into(),
                format: "csv".into(),
            },
        ),
        ev(
            "s12",
            hr(),
            2000,
            EventKind::EmployeeDeparted {
                employee: emp("E-2"),
                effective_at: at(2000),
                reason: "resigned".into(),
            },
        ),
        ev(
            "s13",
            hr(),
            2000,
            EventKind::AccountDisabled {
                employee: emp("E-2"),
                reason: "departure".into(),
            },
        ),
        ev(
            "s14",
            hr(),
            2000,
            EventKind::RoleRevoked {
                employee: emp("E-2"),
                role: RoleName::parse("sales-rep").unwrap(),
                reason: "departure".into(),
            },
        ),
        ev(
            "s15",
            hr(),
            2000,
            EventKind::HandoverPlanned {
                leaver: emp("E-2"),
                assignments: vec![
                    HandoverAssignment {
                        resource: Resource::Customer(cust("C-1")),
                        successor: emp("E-1"),
                    },
                    HandoverAssignment {
                        resource: Resource::Customer(cust("C-2")),
                        successor: emp("E-1"),
                    },
                    HandoverAssignment {
                        resource: Resource::Deal(DealId::parse("D-1").unwrap()),
                        successor: emp("E-1"),
                    },
                ],
                checklist: ChecklistItem::ALL.to_vec(),
            },
        ),
        ev(
            "s16",
            hr(),
            2100,
            EventKind::OwnershipTransferred {
                resource: Resource::Customer(cust("C-1")),
                from: emp("E-2"),
                to: emp("E-1"),
                reason: "handover".into(),
            },
        ),
        ev(
            "s17",
            hr(),
            2101,
            EventKind::HandoverItemCompleted {
                leaver: emp("E-2"),
                item: ChecklistItem::AccessReviewed,
            },
        ),
        ev(
            "s18",
            by("E-2"),
            2200,
            EventKind::CustomerViewed {
                customer: cust("C-2"),
            },
        ),
    ]
}

/// A ledger in `dir` holding `entries`.
pub fn ledger_with(dir: &std::path::Path, entries: Vec<NewEntry>) -> (Ledger, WriterHandle) {
    let store = LogStore::open_or_create(&dir.join("ledger.redb")).unwrap();
    let (ledger, writer) = Ledger::start(store, WriterConfig::default()).unwrap();
    if !entries.is_empty() {
        ledger.append_blocking(entries).unwrap();
    }
    (ledger, writer)
}

/// Every entry of `ledger`, as stored.
pub fn stored(ledger: &Ledger) -> Vec<(u64, Vec<u8>)> {
    ledger.reader().entries(0, usize::MAX).unwrap()
}
