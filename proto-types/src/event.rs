//! The event vocabulary: every user action and every offboarding step, past tense.
//!
//! An [`Event`] is what a client (the CRM, the HR system, an identity provider, Handover itself)
//! asks the ledger to record. Its encoding — the *payload* of a log entry — is one format-version
//! byte followed by the postcard encoding of the `Event`. Postcard encodes enum variants by
//! position: **variants and fields are only ever appended, never reordered or removed**; a change
//! that cannot follow that rule gets a new [`PAYLOAD_FORMAT_VERSION`]. The golden fixture test
//! below fails when an encoding changes by accident.

use crate::ids::{CustomerId, DealId, EmployeeId, EventId, IdError, ReportId, RoleName, SystemId};
use crate::time::{Date, Timestamp};
use serde::{Deserialize, Serialize};

/// The first byte of every payload. Decoders refuse versions they do not know.
pub const PAYLOAD_FORMAT_VERSION: u8 = 1;

/// One recorded action.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The client's id for this event, if it gave one; the ledger appends each id at most once.
    pub id: Option<EventId>,
    /// Who did it.
    pub actor: Actor,
    /// When it happened, by the client's clock. The ledger's own clock is the entry's
    /// `recorded_at`.
    pub occurred_at: Timestamp,
    pub kind: EventKind,
}

/// Who performed an action.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Actor {
    /// An employee's CRM account (known to Handover or not: the event is recorded either way).
    Employee(EmployeeId),
    /// A system principal: the HR system, an identity provider, Handover itself.
    System(SystemId),
}

impl Actor {
    pub fn employee(&self) -> Option<&EmployeeId> {
        match self {
            Actor::Employee(e) => Some(e),
            Actor::System(_) => None,
        }
    }
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Actor::Employee(e) => write!(f, "employee:{e}"),
            Actor::System(s) => write!(f, "system:{s}"),
        }
    }
}

/// A CRM module, the unit permissions are granted on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Module {
    Customers,
    Deals,
    Reports,
    Export,
    Settings,
}

impl Module {
    /// The stable snake_case name, as the APIs use it.
    pub fn name(self) -> &'static str {
        match self {
            Module::Customers => "customers",
            Module::Deals => "deals",
            Module::Reports => "reports",
            Module::Export => "export",
            Module::Settings => "settings",
        }
    }
}

/// A permission level; levels are ordered `None < Read < Write < Admin`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Level {
    None,
    Read,
    Write,
    Admin,
}

impl Level {
    /// The stable snake_case name, as the APIs use it.
    pub fn name(self) -> &'static str {
        match self {
            Level::None => "none",
            Level::Read => "read",
            Level::Write => "write",
            Level::Admin => "admin",
        }
    }
}

/// An amount of money in minor units (cents) of an ISO 4217 currency.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub minor_units: i64,
    /// ISO 4217 code, e.g. `EUR`.
    pub currency: [u8; 3],
}

/// Something a leaver owns that a handover moves to a successor.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Resource {
    Customer(CustomerId),
    Deal(DealId),
}

/// One planned move in a handover.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoverAssignment {
    pub resource: Resource,
    pub successor: EmployeeId,
}

/// The offboarding checklist.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ChecklistItem {
    CustomersTransferred,
    DealsReassigned,
    ExportDelivered,
    AccessReviewed,
}

impl ChecklistItem {
    pub const ALL: [ChecklistItem; 4] = [
        ChecklistItem::CustomersTransferred,
        ChecklistItem::DealsReassigned,
        ChecklistItem::ExportDelivered,
        ChecklistItem::AccessReviewed,
    ];
}

/// How a deal ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DealOutcome {
    Won,
    Lost,
}

impl DealOutcome {
    /// `won` or `lost`, as the APIs name it.
    pub fn name(self) -> &'static str {
        match self {
            DealOutcome::Won => "won",
            DealOutcome::Lost => "lost",
        }
    }
}

/// What happened. Variants are past tense; each names the fields an auditor needs.
///
/// **Append only**: new variants go at the end (postcard encodes the variant's position).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    EmployeeHired {
        employee: EmployeeId,
        name: String,
        email: String,
        manager: Option<EmployeeId>,
        department: String,
        title: String,
    },
    RoleGranted {
        employee: EmployeeId,
        role: RoleName,
    },
    RoleRevoked {
        employee: EmployeeId,
        role: RoleName,
        reason: String,
    },
    PermissionGranted {
        employee: EmployeeId,
        module: Module,
        level: Level,
    },
    PermissionRevoked {
        employee: EmployeeId,
        module: Module,
    },
    LoggedIn {
        ip: String,
        user_agent: String,
    },
    LoginFailed {
        /// The user name that was tried (it may name no known employee).
        username: String,
        ip: String,
        reason: String,
    },
    LoggedOut,
    ModuleAccessed {
        module: Module,
    },
    CustomerCreated {
        customer: CustomerId,
        name: String,
        owner: EmployeeId,
    },
    CustomerViewed {
        customer: CustomerId,
    },
    CustomerUpdated {
        customer: CustomerId,
        /// The names of the fields that changed (values are not recorded).
        fields: Vec<String>,
    },
    CustomersExported {
        /// How many customer records left the CRM.
        count: u64,
        /// The filter the export used, as the CRM describes it.
        filter: String,
        format: String,
    },
    CustomerDeleted {
        customer: CustomerId,
    },
    DealCreated {
        deal: DealId,
        customer: CustomerId,
        owner: EmployeeId,
        amount: Money,
        stage: String,
    },
    DealUpdated {
        deal: DealId,
        fields: Vec<String>,
        stage: Option<String>,
    },
    DealClosed {
        deal: DealId,
        outcome: DealOutcome,
        amount: Money,
    },
    ReportExported {
        report: ReportId,
        rows: u64,
        format: String,
    },
    ResignationSubmitted {
        employee: EmployeeId,
        notice_date: Date,
        last_day: Date,
        reason: String,
    },
    EmployeeDeparted {
        employee: EmployeeId,
        effective_at: Timestamp,
        reason: String,
    },
    AccountDisabled {
        employee: EmployeeId,
        reason: String,
    },
    AccountReenabled {
        employee: EmployeeId,
        reason: String,
    },
    AccountDeleted {
        employee: EmployeeId,
        reason: String,
    },
    HandoverPlanned {
        leaver: EmployeeId,
        assignments: Vec<HandoverAssignment>,
        checklist: Vec<ChecklistItem>,
    },
    OwnershipTransferred {
        resource: Resource,
        from: EmployeeId,
        to: EmployeeId,
        reason: String,
    },
    HandoverItemCompleted {
        leaver: EmployeeId,
        item: ChecklistItem,
    },
    HandoverCompleted {
        leaver: EmployeeId,
    },
    AuditLogQueried {
        /// The query as asked (path and parameters), never a credential.
        query: String,
        results: u64,
    },
    RetentionPolicySet {
        /// Which events the policy covers (an event kind name, or `*`).
        scope: String,
        /// Payloads older than this may be erased; the chain keeps their hashes.
        keep_days: u32,
    },
    /// Attributes of an employee changed (e.g. by SCIM provisioning). `None` leaves a field as
    /// it was; `manager: Some(None)` removes the manager.
    EmployeeUpdated {
        employee: EmployeeId,
        name: Option<String>,
        email: Option<String>,
        manager: Option<Option<EmployeeId>>,
        department: Option<String>,
        title: Option<String>,
    },
    /// What a role grants, from now on, to everyone who holds it (a later definition of the
    /// same role replaces this one). Modules it does not name get `Level::None`.
    RoleDefined {
        role: RoleName,
        permissions: Vec<(Module, Level)>,
    },
    /// A contact person at a customer, as the CRM holds it (added or changed; the latest for a
    /// name wins).
    CustomerContactRecorded {
        customer: CustomerId,
        name: String,
        role: String,
        email: String,
        phone: String,
    },
}

/// Every kind's [`EventKind::name`], in declaration order.
pub const KIND_NAMES: [&str; 32] = [
    "employee_hired",
    "role_granted",
    "role_revoked",
    "permission_granted",
    "permission_revoked",
    "logged_in",
    "login_failed",
    "logged_out",
    "module_accessed",
    "customer_created",
    "customer_viewed",
    "customer_updated",
    "customers_exported",
    "customer_deleted",
    "deal_created",
    "deal_updated",
    "deal_closed",
    "report_exported",
    "resignation_submitted",
    "employee_departed",
    "account_disabled",
    "account_reenabled",
    "account_deleted",
    "handover_planned",
    "ownership_transferred",
    "handover_item_completed",
    "handover_completed",
    "audit_log_queried",
    "retention_policy_set",
    "employee_updated",
    "role_defined",
    "customer_contact_recorded",
];

impl EventKind {
    /// The stable snake_case name of the kind: used in NATS subjects, APIs and reports.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::EmployeeHired { .. } => "employee_hired",
            EventKind::RoleGranted { .. } => "role_granted",
            EventKind::RoleRevoked { .. } => "role_revoked",
            EventKind::PermissionGranted { .. } => "permission_granted",
            EventKind::PermissionRevoked { .. } => "permission_revoked",
            EventKind::LoggedIn { .. } => "logged_in",
            EventKind::LoginFailed { .. } => "login_failed",
            EventKind::LoggedOut => "logged_out",
            EventKind::ModuleAccessed { .. } => "module_accessed",
            EventKind::CustomerCreated { .. } => "customer_created",
            EventKind::CustomerViewed { .. } => "customer_viewed",
            EventKind::CustomerUpdated { .. } => "customer_updated",
            EventKind::CustomersExported { .. } => "customers_exported",
            EventKind::CustomerDeleted { .. } => "customer_deleted",
            EventKind::DealCreated { .. } => "deal_created",
            EventKind::DealUpdated { .. } => "deal_updated",
            EventKind::DealClosed { .. } => "deal_closed",
            EventKind::ReportExported { .. } => "report_exported",
            EventKind::ResignationSubmitted { .. } => "resignation_submitted",
            EventKind::EmployeeDeparted { .. } => "employee_departed",
            EventKind::AccountDisabled { .. } => "account_disabled",
            EventKind::AccountReenabled { .. } => "account_reenabled",
            EventKind::AccountDeleted { .. } => "account_deleted",
            EventKind::HandoverPlanned { .. } => "handover_planned",
            EventKind::OwnershipTransferred { .. } => "ownership_transferred",
            EventKind::HandoverItemCompleted { .. } => "handover_item_completed",
            EventKind::HandoverCompleted { .. } => "handover_completed",
            EventKind::AuditLogQueried { .. } => "audit_log_queried",
            EventKind::RetentionPolicySet { .. } => "retention_policy_set",
            EventKind::EmployeeUpdated { .. } => "employee_updated",
            EventKind::RoleDefined { .. } => "role_defined",
            EventKind::CustomerContactRecorded { .. } => "customer_contact_recorded",
        }
    }
}

/// Why bytes are not a payload this version understands.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("payload is empty")]
    Empty,
    #[error(
        "payload format version {found} is not supported (this build reads version {supported})"
    )]
    UnsupportedVersion { found: u8, supported: u8 },
    #[error("payload is malformed: {0}")]
    Malformed(#[from] postcard::Error),
    #[error("payload has {0} bytes after the event")]
    TrailingBytes(usize),
}

/// Why an event cannot be encoded.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("event cannot be encoded: {0}")]
    Postcard(#[from] postcard::Error),
}

/// The kind of an encoded event, read without decoding the rest (the outbox needs no more than
/// this for most entries: the kind names the subject). Checks the version, the id, actor and
/// time before it; not what follows.
///
/// # Errors
/// A payload [`Event::decode`] would refuse for its version or head.
pub fn kind_name_of(bytes: &[u8]) -> Result<&'static str, DecodeError> {
    #[derive(Deserialize)]
    enum ActorHead<'a> {
        #[allow(dead_code)]
        Employee(&'a str),
        #[allow(dead_code)]
        System(&'a str),
    }
    // `Event`'s fields, in order, up to the variant index of its kind.
    type Head<'a> = (Option<&'a str>, ActorHead<'a>, i64, u32);
    let (&version, body) = bytes.split_first().ok_or(DecodeError::Empty)?;
    if version != PAYLOAD_FORMAT_VERSION {
        return Err(DecodeError::UnsupportedVersion {
            found: version,
            supported: PAYLOAD_FORMAT_VERSION,
        });
    }
    let ((_, _, _, kind), _) = postcard::take_from_bytes::<Head<'_>>(body)?;
    KIND_NAMES
        .get(kind as usize)
        .copied()
        .ok_or(DecodeError::Malformed(
            postcard::Error::DeserializeBadEncoding,
        ))
}

impl Event {
    /// The payload bytes: the format version, then the postcard encoding.
    ///
    /// # Errors
    /// Only if postcard refuses the value, which the types here do not allow in practice.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(128);
        out.push(PAYLOAD_FORMAT_VERSION);
        Ok(postcard::to_extend(self, out)?)
    }

    /// Decodes a payload. Any byte string gives `Ok` or an error, never a panic.
    ///
    /// # Errors
    /// [`DecodeError`] naming the first problem.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let (&version, body) = bytes.split_first().ok_or(DecodeError::Empty)?;
        if version != PAYLOAD_FORMAT_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                found: version,
                supported: PAYLOAD_FORMAT_VERSION,
            });
        }
        let (event, rest) = postcard::take_from_bytes::<Event>(body)?;
        if !rest.is_empty() {
            return Err(DecodeError::TrailingBytes(rest.len()));
        }
        Ok(event)
    }
}

/// Parses an ISO 4217 code such as `EUR`.
///
/// # Errors
/// When `code` is not three ASCII capital letters.
pub fn currency(code: &str) -> Result<[u8; 3], IdError> {
    match code.as_bytes() {
        [a, b, c] if [a, b, c].iter().all(|x| x.is_ascii_uppercase()) => Ok([*a, *b, *c]),
        _ => Err(IdError::Empty {
            what: "currency (three capital letters)",
        }),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn emp(s: &str) -> EmployeeId {
        EmployeeId::parse(s).unwrap()
    }

    /// One event of every kind, in declaration order.
    pub(crate) fn one_of_each() -> Vec<EventKind> {
        let cust = CustomerId::parse("C-1").unwrap();
        let deal = DealId::parse("D-1").unwrap();
        let eur = Money {
            minor_units: 125_000,
            currency: *b"EUR",
        };
        vec![
            EventKind::EmployeeHired {
                employee: emp("E-1"),
                name: "Zhang Wei 张伟".into(),
                email: "zw@example.com".into(),
                manager: Some(emp("E-0")),
                department: "Sales".into(),
                title: "Account Executive".into(),
            },
            EventKind::RoleGranted {
                employee: emp("E-1"),
                role: RoleName::parse("sales-rep").unwrap(),
            },
            EventKind::RoleRevoked {
                employee: emp("E-1"),
                role: RoleName::parse("sales-rep").unwrap(),
                reason: "departure".into(),
            },
            EventKind::PermissionGranted {
                employee: emp("E-1"),
                module: Module::Export,
                level: Level::Write,
            },
            EventKind::PermissionRevoked {
                employee: emp("E-1"),
                module: Module::Export,
            },
            EventKind::LoggedIn {
                ip: "10.0.0.7".into(),
                user_agent: "Mozilla/5.0".into(),
            },
            EventKind::LoginFailed {
                username: "zw".into(),
                ip: "10.0.0.7".into(),
                reason: "bad password".into(),
            },
            EventKind::LoggedOut,
            EventKind::ModuleAccessed {
                module: Module::Reports,
            },
            EventKind::CustomerCreated {
                customer: cust.clone(),
                name: "Acme GmbH".into(),
                owner: emp("E-1"),
            },
            EventKind::CustomerViewed {
                customer: cust.clone(),
            },
            EventKind::CustomerUpdated {
                customer: cust.clone(),
                fields: vec!["phone".into(), "email".into()],
            },
            EventKind::CustomersExported {
                count: 412,
                filter: "owner = me".into(),
                format: "csv".into(),
            },
            EventKind::CustomerDeleted {
                customer: cust.clone(),
            },
            EventKind::DealCreated {
                deal: deal.clone(),
                customer: cust.clone(),
                owner: emp("E-1"),
                amount: eur.clone(),
                stage: "qualified".into(),
            },
            EventKind::DealUpdated {
                deal: deal.clone(),
                fields: vec!["stage".into()],
                stage: Some("proposal".into()),
            },
            EventKind::DealClosed {
                deal: deal.clone(),
                outcome: DealOutcome::Won,
                amount: eur,
            },
            EventKind::ReportExported {
                report: ReportId::parse("pipeline-q4").unwrap(),
                rows: 90,
                format: "xlsx".into(),
            },
            EventKind::ResignationSubmitted {
                employee: emp("E-1"),
                notice_date: Date(20_000),
                last_day: Date(20_030),
                reason: "new job".into(),
            },
            EventKind::EmployeeDeparted {
                employee: emp("E-1"),
                effective_at: Timestamp(1_728_000_000_000_000),
                reason: "resigned".into(),
            },
            EventKind::AccountDisabled {
                employee: emp("E-1"),
                reason: "departure".into(),
            },
            EventKind::AccountReenabled {
                employee: emp("E-1"),
                reason: "rehired".into(),
            },
            EventKind::AccountDeleted {
                employee: emp("E-1"),
                reason: "retention".into(),
            },
            EventKind::HandoverPlanned {
                leaver: emp("E-1"),
                assignments: vec![HandoverAssignment {
                    resource: Resource::Customer(cust.clone()),
                    successor: emp("E-0"),
                }],
                checklist: ChecklistItem::ALL.to_vec(),
            },
            EventKind::OwnershipTransferred {
                resource: Resource::Deal(deal),
                from: emp("E-1"),
                to: emp("E-0"),
                reason: "handover".into(),
            },
            EventKind::HandoverItemCompleted {
                leaver: emp("E-1"),
                item: ChecklistItem::ExportDelivered,
            },
            EventKind::HandoverCompleted { leaver: emp("E-1") },
            EventKind::AuditLogQueried {
                query: "GET /v1/employees/E-1/timeline".into(),
                results: 17,
            },
            EventKind::RetentionPolicySet {
                scope: "customer_viewed".into(),
                keep_days: 730,
            },
            EventKind::EmployeeUpdated {
                employee: emp("E-1"),
                name: None,
                email: Some("zhang.wei@example.com".into()),
                manager: Some(None),
                department: None,
                title: Some("Senior Account Executive".into()),
            },
            EventKind::RoleDefined {
                role: RoleName::parse("sales-rep").unwrap(),
                permissions: vec![
                    (Module::Customers, Level::Write),
                    (Module::Export, Level::Read),
                ],
            },
            EventKind::CustomerContactRecorded {
                customer: CustomerId::parse("C-1").unwrap(),
                name: "Li Na 李娜".into(),
                role: "Head of Purchasing".into(),
                email: "li.na@acme.example".into(),
                phone: "+86 10 5555 0100".into(),
            },
        ]
    }

    fn wrap(kind: EventKind) -> Event {
        Event {
            id: Some(EventId::parse("evt-1").unwrap()),
            actor: Actor::Employee(emp("E-1")),
            occurred_at: Timestamp(1_700_000_000_000_000),
            kind,
        }
    }

    #[test]
    fn kind_names_lists_every_kind_in_declaration_order() {
        let names: Vec<&str> = one_of_each().iter().map(EventKind::name).collect();
        assert_eq!(names, KIND_NAMES);
    }

    #[test]
    fn the_kind_is_read_from_the_head_alone() {
        for kind in one_of_each() {
            let mut event = wrap(kind);
            let bytes = event.encode().unwrap();
            assert_eq!(kind_name_of(&bytes).unwrap(), event.kind.name());
            // A system actor and no id encode differently before the kind.
            event.id = None;
            event.actor = Actor::System(SystemId::parse("hr").unwrap());
            let bytes = event.encode().unwrap();
            assert_eq!(kind_name_of(&bytes).unwrap(), event.kind.name());
        }
        assert!(matches!(kind_name_of(&[]), Err(DecodeError::Empty)));
        assert!(matches!(
            kind_name_of(&[PAYLOAD_FORMAT_VERSION + 1, 0]),
            Err(DecodeError::UnsupportedVersion { .. })
        ));
        assert!(kind_name_of(&[PAYLOAD_FORMAT_VERSION, 1]).is_err());
    }

    #[test]
    fn every_kind_round_trips_and_has_a_unique_name() {
        let mut names = std::collections::BTreeSet::new();
        for kind in one_of_each() {
            let event = wrap(kind);
            let bytes = event.encode().unwrap();
            assert_eq!(bytes[0], PAYLOAD_FORMAT_VERSION);
            assert_eq!(Event::decode(&bytes).unwrap(), event);
            assert!(names.insert(event.kind.name()), "{}", event.kind.name());
        }
        assert_eq!(names.len(), KIND_NAMES.len());
    }

    /// Golden bytes: if this fails, an encoding changed and old logs would no longer decode.
    /// Append new variants instead of changing old ones.
    #[test]
    fn payload_encoding_matches_golden_fixture() {
        let got: Vec<String> = one_of_each()
            .into_iter()
            .map(|k| {
                format!(
                    "{:<24} {}",
                    k.name(),
                    hex::encode(wrap(k).encode().unwrap())
                )
            })
            .collect();
        let got = got.join("\n") + "\n";
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/payloads-v1.txt"
        );
        if std::env::var_os("UPDATE_FIXTURES").is_some() {
            std::fs::write(path, &got).unwrap();
        }
        let want = std::fs::read_to_string(path).expect("fixture (UPDATE_FIXTURES=1 writes it)");
        assert_eq!(got, want);
    }

    #[test]
    fn malformed_payloads_are_errors_not_panics() {
        assert!(matches!(Event::decode(&[]), Err(DecodeError::Empty)));
        assert!(matches!(
            Event::decode(&[9, 0, 0]),
            Err(DecodeError::UnsupportedVersion { found: 9, .. })
        ));
        let good = wrap(one_of_each().remove(0)).encode().unwrap();
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(matches!(
            Event::decode(&trailing),
            Err(DecodeError::TrailingBytes(1))
        ));
        // Every truncation, and every single-byte change, decodes or errors; none panics.
        for cut in 0..good.len() {
            assert!(Event::decode(&good[..cut]).is_err());
        }
        for kind in one_of_each() {
            let good = wrap(kind).encode().unwrap();
            for i in 1..good.len() {
                for v in [0u8, 1, 0x7f, 0x80, 0xff] {
                    let mut bad = good.clone();
                    bad[i] = v;
                    let _ = Event::decode(&bad);
                }
            }
        }
    }

    #[test]
    fn invalid_ids_inside_a_payload_fail_to_decode() {
        let mut event = wrap(EventKind::CustomerViewed {
            customer: CustomerId::parse("C-1").unwrap(),
        });
        event.id = None;
        let mut bytes = event.encode().unwrap();
        // The customer id "C-1" is the last 3 bytes; make it a control character.
        let n = bytes.len();
        bytes[n - 1] = b'\n';
        assert!(matches!(
            Event::decode(&bytes),
            Err(DecodeError::Malformed(_))
        ));
    }
}
