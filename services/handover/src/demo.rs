//! A reproducible, realistic CRM history: the same parameters and seed give the same events.
//!
//! A sales organisation of managers and reps is hired and given roles and permissions; customers
//! and deals are created; on every weekday each employee logs in at their own usual hour, works on
//! (mostly their own) customers and deals, and logs out. A few reps resign, work out a notice
//! period and depart; their customers and open deals are handed over to their manager. Planted
//! cases (see [`DemoGenerator::planted`]): a leaver sweeps through the customer records and exports
//! the whole list late in the evening of the notice period; another moves colleagues' customers to themselves before
//! resigning; a third's account is used the day after it was disabled; a fourth's is disabled
//! hours late. One rep's normal work is heavy but steady.
//!
//! The generator has its own PRNG (SplitMix64) so that a seed means the same history in every
//! build, whatever a random-number crate does between versions.

use std::collections::VecDeque;

use proto_types::event::{
    ChecklistItem, DealOutcome, EventKind, HandoverAssignment, Level, Module, Money, Resource,
};
use proto_types::ids::{CustomerId, DealId, EmployeeId, EventId, ReportId, RoleName, SystemId};
use proto_types::{Actor, Date, Event, Timestamp};

/// What to generate.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    pub employees: u32,
    pub customers: u32,
    pub days: u32,
    pub seed: u64,
    /// Prefix of client event ids; `None` generates events without ids.
    pub id_prefix: Option<String>,
}

/// The first simulated day (a Monday), fixed so that a seed always means the same history.
pub fn start_date() -> Date {
    Date::from_chrono(chrono::NaiveDate::from_ymd_opt(2026, 9, 7).expect("valid date"))
}

/// SplitMix64: tiny, fast, and stable forever.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const FIRST: &[&str] = &[
    "Anna", "Ben", "Chloé", "David", "Elif", "Farid", "Grace", "Hiro", "Ines", "José", "Kai",
    "Lena", "Maja", "Noah", "Olga", "Pavel", "Qiu", "Rosa", "Sven", "Tomasz", "Uma", "Zoë", "伟",
    "娜", "静", "Ahmed", "Łukasz", "Søren",
];
const LAST: &[&str] = &[
    "Müller", "Smith", "García", "Rossi", "Kowalski", "Nakamura", "Dubois", "Jensen", "Silva",
    "O'Brien", "张", "李", "王", "Öztürk", "Novák", "Haddad", "Ivanova", "Björk",
];
const FIRMS: &[&str] = &[
    "Acme",
    "Nordwind",
    "Blue Harbor",
    "Kestrel",
    "Sunrise",
    "Atlas",
    "Vega",
    "Linden",
    "Orion",
    "Meridian",
    "长城",
    "华星",
    "Żuraw",
    "Café Olé",
    "Fjord",
    "Summit",
];
const SUFFIX: &[&str] = &[
    "GmbH",
    "Ltd",
    "AG",
    "S.A.",
    "Inc.",
    "有限公司",
    "s.r.o.",
    "Oy",
    "BV",
    "& Co.",
];
const FIELDS: &[&str] = &[
    "phone", "email", "address", "notes", "industry", "website", "contact",
];
const STAGES: &[&str] = &["qualified", "proposal", "negotiation", "commit"];
const AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Active,
    Departed,
}

struct Emp {
    id: EmployeeId,
    manager: Option<usize>,
    is_manager: bool,
    start_minute: i64,
    subnet: u8,
    status: Status,
    /// Between resignation and departure: no routine exports then.
    in_notice: bool,
    /// Reads several times as many customers as the others, every day (a negative control for
    /// the volume rule).
    heavy: bool,
}

struct Deal {
    id: DealId,
    owner: usize,
    open: bool,
    amount: i64,
}

struct Leaver {
    emp: usize,
    resign_day: u32,
    last_day: u32,
}

/// The event stream. Iterate it to get events in the order they are to be appended.
pub struct DemoGenerator {
    cfg: DemoConfig,
    rng: SplitMix64,
    emps: Vec<Emp>,
    cust_owner: Vec<usize>,
    cust_id: Vec<CustomerId>,
    deals: Vec<Deal>,
    leavers: Vec<Leaver>,
    day: u32,
    set_up: bool,
    buffer: VecDeque<Event>,
    /// Events dated a later day (a handover carried out the next morning), emitted with it.
    later: Vec<Event>,
    produced: u64,
    hr: Actor,
}

const MINUTE: i64 = 60 * Timestamp::MICROS_PER_SECOND;

impl DemoGenerator {
    pub fn new(cfg: DemoConfig) -> Self {
        let mut rng = SplitMix64::new(cfg.seed);
        let n = cfg.employees.max(1) as usize;
        let managers = n.div_ceil(8);
        let emps = (0..n)
            .map(|i| Emp {
                id: EmployeeId::parse(format!("E-{:04}", i + 1)).expect("valid id"),
                manager: match i {
                    0 => None,
                    i if i < managers => Some(0),
                    _ => Some(
                        1usize.min(managers - 1) + rng.below((managers - 1).max(1) as u64) as usize,
                    ),
                }
                .filter(|m| *m != i),
                is_manager: i < managers,
                start_minute: 7 * 60 + rng.below(180) as i64,
                subnet: rng.below(250) as u8,
                status: Status::Active,
                in_notice: false,
                heavy: false,
            })
            .collect::<Vec<_>>();
        let cust_owner = (0..cfg.customers as usize)
            .map(|_| rng.below(n as u64) as usize)
            .collect();
        let cust_id = (0..cfg.customers as usize)
            .map(|c| CustomerId::parse(format!("C-{:05}", c + 1)).expect("valid id"))
            .collect();
        // Leavers are reps (they have a manager to hand over to).
        let reps: Vec<usize> = (managers..n).collect();
        let mut leavers = Vec::new();
        if !reps.is_empty() && n >= 2 {
            let count = (n / 20).max(1).min(reps.len());
            let half = (cfg.days / 2).max(1);
            for k in 0..count {
                let emp = reps[(k * reps.len()) / count];
                let mut resign_day = rng.below(u64::from(half)) as u32;
                if k == 0 {
                    // The exporter has worked a fortnight first: their habits are on record.
                    resign_day = resign_day.max(14.min(cfg.days / 2));
                }
                let last_day = (resign_day + 14).min(cfg.days.saturating_sub(1));
                leavers.push(Leaver {
                    emp,
                    resign_day,
                    last_day,
                });
            }
        }
        let mut emps = emps;
        if let Some(h) = (managers..n)
            .rev()
            .find(|e| !leavers.iter().any(|l: &Leaver| l.emp == *e))
        {
            emps[h].heavy = true;
        }
        Self {
            cfg,
            rng,
            emps,
            cust_owner,
            cust_id,
            deals: Vec::new(),
            leavers,
            day: 0,
            set_up: false,
            buffer: VecDeque::new(),
            later: Vec::new(),
            produced: 0,
            hr: Actor::System(SystemId::parse("hr-system").expect("valid id")),
        }
    }

    /// The employee id of the planted leaver who exports in the notice period, if any.
    pub fn planted_exporter(&self) -> Option<&EmployeeId> {
        self.leavers.first().map(|l| &self.emps[l.emp].id)
    }

    /// The planted cases, each with the anomaly rules that should find it: the first leaver reads
    /// through 150 customer records and exports the whole list late in the evening of their
    /// notice period; the second
    /// moves colleagues' customers to themselves three days before resigning; the third logs in
    /// the day after their account was disabled; the fourth's account is disabled four hours
    /// after the departure took effect.
    pub fn planted(&self) -> Vec<(EmployeeId, &'static [&'static str])> {
        const LABELS: [&[&str]; 4] = [
            &[
                "export_in_notice_period",
                "off_hours",
                "volume_spike",
                "foreign_customers",
            ],
            &["self_transfer"],
            &["activity_after_disable"],
            &["late_revocation"],
        ];
        self.leavers
            .iter()
            .zip(LABELS)
            .map(|(l, labels)| (self.emps[l.emp].id.clone(), labels))
            .collect()
    }

    /// The employee whose normal work is heavy but steady, if any: no rule should flag them.
    pub fn steady_heavy(&self) -> Option<&EmployeeId> {
        self.emps.iter().find(|e| e.heavy).map(|e| &e.id)
    }

    /// Every employee id.
    pub fn employees(&self) -> impl Iterator<Item = &EmployeeId> {
        self.emps.iter().map(|e| &e.id)
    }

    fn day_start(&self, day: u32) -> Timestamp {
        Date(start_date().0 + day as i32).start()
    }

    fn push(&mut self, actor: Actor, at: Timestamp, kind: EventKind) {
        self.buffer.push_back(Event {
            id: None,
            actor,
            occurred_at: at,
            kind,
        });
    }

    fn push_later(&mut self, actor: Actor, at: Timestamp, kind: EventKind) {
        self.later.push(Event {
            id: None,
            actor,
            occurred_at: at,
            kind,
        });
    }

    fn emp_actor(&self, e: usize) -> Actor {
        Actor::Employee(self.emps[e].id.clone())
    }

    fn set_up(&mut self) {
        // Hiring and customer records are set up on the Sunday before the first working day.
        let t0 = self.day_start(0).plus_micros(-18 * 60 * MINUTE);
        let mut defined: Vec<RoleName> = Vec::new();
        for i in 0..self.emps.len() {
            let at = t0.plus_micros(i as i64 * 1_000_000);
            let name = format!("{} {}", self.rng.pick(FIRST), self.rng.pick(LAST));
            let e = &self.emps[i];
            let kind = EventKind::EmployeeHired {
                employee: e.id.clone(),
                email: format!("{}@example.com", e.id.as_str().to_lowercase()),
                name,
                manager: e.manager.map(|m| self.emps[m].id.clone()),
                department: "Sales".into(),
                title: if e.is_manager {
                    "Sales Manager"
                } else {
                    "Account Executive"
                }
                .into(),
            };
            self.push(self.hr.clone(), at, kind);
            let (role, levels): (&str, &[(Module, Level)]) = if self.emps[i].is_manager {
                (
                    "sales-manager",
                    &[
                        (Module::Customers, Level::Admin),
                        (Module::Deals, Level::Admin),
                        (Module::Reports, Level::Write),
                        (Module::Export, Level::Write),
                    ],
                )
            } else {
                (
                    "sales-rep",
                    &[
                        (Module::Customers, Level::Write),
                        (Module::Deals, Level::Write),
                        (Module::Reports, Level::Read),
                        (Module::Export, Level::Read),
                    ],
                )
            };
            let employee = self.emps[i].id.clone();
            let role = RoleName::parse(role).expect("valid role");
            // Each role is defined once, before it is first granted.
            if !defined.contains(&role) {
                defined.push(role.clone());
                self.push(
                    self.hr.clone(),
                    at.plus_micros(1),
                    EventKind::RoleDefined {
                        role: role.clone(),
                        permissions: levels.to_vec(),
                    },
                );
            }
            self.push(
                self.hr.clone(),
                at.plus_micros(2),
                EventKind::RoleGranted {
                    employee: employee.clone(),
                    role,
                },
            );
            // Reps may also report on what they sell.
            if !self.emps[i].is_manager && i % 3 == 0 {
                self.push(
                    self.hr.clone(),
                    at.plus_micros(3),
                    EventKind::PermissionGranted {
                        employee: employee.clone(),
                        module: Module::Reports,
                        level: Level::Write,
                    },
                );
            }
        }
        let t1 = t0.plus_micros(30 * MINUTE);
        for c in 0..self.cust_id.len() {
            let owner = self.cust_owner[c];
            let name = format!("{} {}", self.rng.pick(FIRMS), self.rng.pick(SUFFIX));
            self.push(
                self.emp_actor(owner),
                t1.plus_micros(c as i64 * 1_000_000),
                EventKind::CustomerCreated {
                    customer: self.cust_id[c].clone(),
                    name,
                    owner: self.emps[owner].id.clone(),
                },
            );
            // The customer's contact person, as the CRM import holds it (derived from the index,
            // not drawn from the generator, so that the rest of the history stays as it was).
            let first = FIRST[(c * 7) % FIRST.len()];
            let last = LAST[(c * 13) % LAST.len()];
            let roles = ["Purchasing", "CFO", "Head of Sales", "Operations"];
            self.push(
                Actor::System(SystemId::parse("crm-import").expect("valid id")),
                t1.plus_micros(c as i64 * 1_000_000 + 500_000),
                EventKind::CustomerContactRecorded {
                    customer: self.cust_id[c].clone(),
                    name: format!("{first} {last}"),
                    role: roles[c % roles.len()].into(),
                    email: format!(
                        "{}.{}@{}.example",
                        first.to_lowercase().replace(' ', ""),
                        last.to_lowercase().replace(' ', ""),
                        self.cust_id[c].as_str().to_lowercase()
                    ),
                    phone: format!("+49 30 {:04} {:04}", c % 10_000, (c * 37) % 10_000),
                },
            );
        }
    }

    fn owned_by(&self, e: usize) -> Vec<usize> {
        (0..self.cust_owner.len())
            .filter(|&c| self.cust_owner[c] == e)
            .collect()
    }

    fn simulate_day(&mut self, day: u32) {
        let start = self.day_start(day);
        self.buffer.extend(self.later.drain(..));
        let weekday = (day % 7) < 5; // day 0 is a Monday
        if weekday {
            for e in 0..self.emps.len() {
                if self.emps[e].status == Status::Active {
                    self.work_session(e, start);
                }
            }
        }
        for k in 0..self.leavers.len() {
            let (emp, resign_day, last_day) = {
                let l = &self.leavers[k];
                (l.emp, l.resign_day, l.last_day)
            };
            if k == 1 && day + 3 == resign_day.max(3) && day < resign_day.max(3) {
                self.plant_self_transfer(emp, start);
            }
            if k == 2 && day == last_day + 1 {
                self.plant_use_after_disable(emp, start);
            }
            if day == resign_day {
                self.emps[emp].in_notice = true;
                let at = start.plus_micros(9 * 60 * MINUTE);
                let employee = self.emps[emp].id.clone();
                self.push(
                    self.hr.clone(),
                    at,
                    EventKind::ResignationSubmitted {
                        employee,
                        notice_date: Date(start_date().0 + day as i32),
                        last_day: Date(start_date().0 + last_day as i32),
                        reason: "new position elsewhere".into(),
                    },
                );
            }
            let export_day = (resign_day + 1).min(last_day);
            if k == 0 && day == export_day {
                // The planted case: the whole customer list, late in the evening.
                // 23:10, or 21:45 when it is also the last day (departure takes effect at 22:00).
                let minute = if export_day == last_day {
                    21 * 60 + 45
                } else {
                    23 * 60 + 10
                };
                let at = start.plus_micros(minute * MINUTE);
                // First a sweep through the customer records, most of them colleagues'.
                for (i, c) in (0..self.cust_id.len()).take(150).enumerate() {
                    self.push(
                        self.emp_actor(emp),
                        at.plus_micros(-10 * MINUTE + i as i64 * 2_000_000),
                        EventKind::CustomerViewed {
                            customer: self.cust_id[c].clone(),
                        },
                    );
                }
                let count = self.cust_id.len() as u64;
                self.push(
                    self.emp_actor(emp),
                    at,
                    EventKind::CustomersExported {
                        count,
                        filter: "all customers".into(),
                        format: "csv".into(),
                    },
                );
            }
            if day == last_day {
                // Effective at the end of the last working day, after the last session ends.
                self.depart(emp, start.plus_micros(22 * 60 * MINUTE));
            }
        }
        // Sessions interleave; a stable sort keeps each actor's own order for equal times.
        self.buffer.make_contiguous().sort_by_key(|e| e.occurred_at);
    }

    /// The planted self-transfer: three colleagues' customers moved to the leaver, by the leaver,
    /// in their usual working hours.
    fn plant_self_transfer(&mut self, e: usize, day_start: Timestamp) {
        let at = day_start.plus_micros((self.emps[e].start_minute + 90) * MINUTE);
        let theirs: Vec<usize> = (0..self.cust_id.len())
            .filter(|c| self.cust_owner[*c] != e && !self.emps[self.cust_owner[*c]].is_manager)
            .take(3)
            .collect();
        for (i, c) in theirs.into_iter().enumerate() {
            let from = self.emps[self.cust_owner[c]].id.clone();
            self.push(
                self.emp_actor(e),
                at.plus_micros(i as i64 * MINUTE),
                EventKind::OwnershipTransferred {
                    resource: Resource::Customer(self.cust_id[c].clone()),
                    from,
                    to: self.emps[e].id.clone(),
                    reason: "reassigned".into(),
                },
            );
            self.cust_owner[c] = e;
        }
    }

    /// The planted use after disable: the leaver's account logs in the day after departure, at
    /// their usual hour, and reads a few customers.
    fn plant_use_after_disable(&mut self, e: usize, day_start: Timestamp) {
        let at = day_start.plus_micros((self.emps[e].start_minute + 10) * MINUTE);
        let ip = format!("10.20.{}.77", self.emps[e].subnet);
        self.push(
            self.emp_actor(e),
            at,
            EventKind::LoggedIn {
                ip,
                user_agent: AGENTS[0].into(),
            },
        );
        for i in 0..3.min(self.cust_id.len()) {
            self.push(
                self.emp_actor(e),
                at.plus_micros((i as i64 + 1) * MINUTE),
                EventKind::CustomerViewed {
                    customer: self.cust_id[i].clone(),
                },
            );
        }
    }

    fn work_session(&mut self, e: usize, day_start: Timestamp) {
        let actor = self.emp_actor(e);
        let begin =
            day_start.plus_micros((self.emps[e].start_minute + self.rng.below(30) as i64) * MINUTE);
        let ip = format!("10.20.{}.{}", self.emps[e].subnet, 10 + self.rng.below(4));
        if self.rng.chance(0.03) {
            self.push(
                Actor::System(SystemId::parse("crm-auth").expect("valid id")),
                begin.plus_micros(-MINUTE),
                EventKind::LoginFailed {
                    username: self.emps[e].id.as_str().to_lowercase(),
                    ip: ip.clone(),
                    reason: "wrong password".into(),
                },
            );
        }
        let user_agent = AGENTS[self.emps[e].subnet as usize % AGENTS.len()].to_string();
        self.push(actor.clone(), begin, EventKind::LoggedIn { ip, user_agent });
        self.push(
            actor.clone(),
            begin.plus_micros(MINUTE),
            EventKind::ModuleAccessed {
                module: Module::Customers,
            },
        );
        let own = self.owned_by(e);
        let span = 8 * 60 * MINUTE;
        let at =
            |rng: &mut SplitMix64| begin.plus_micros(2 * MINUTE + rng.below(span as u64) as i64);
        let views = if self.emps[e].heavy {
            70 + self.rng.below(20)
        } else {
            5 + self.rng.below(20)
        };
        for _ in 0..views {
            let c = if !own.is_empty() && self.rng.chance(0.8) {
                *self.rng.pick(&own)
            } else if self.cust_id.is_empty() {
                continue;
            } else {
                self.rng.below(self.cust_id.len() as u64) as usize
            };
            let t = at(&mut self.rng);
            self.push(
                actor.clone(),
                t,
                EventKind::CustomerViewed {
                    customer: self.cust_id[c].clone(),
                },
            );
        }
        if !own.is_empty() {
            for _ in 0..self.rng.below(4) {
                let c = *self.rng.pick(&own);
                let n = 1 + self.rng.below(2) as usize;
                let fields = (0..n).map(|_| self.rng.pick(FIELDS).to_string()).collect();
                let t = at(&mut self.rng);
                self.push(
                    actor.clone(),
                    t,
                    EventKind::CustomerUpdated {
                        customer: self.cust_id[c].clone(),
                        fields,
                    },
                );
            }
            if self.rng.chance(0.25) {
                let c = *self.rng.pick(&own);
                // 1,000.00 to 200,000.00 EUR, in cents.
                let amount = 100_000 * (1 + self.rng.below(200) as i64);
                let id = DealId::parse(format!("D-{:06}", self.deals.len() + 1)).expect("valid id");
                let t = at(&mut self.rng);
                self.push(
                    actor.clone(),
                    t,
                    EventKind::DealCreated {
                        deal: id.clone(),
                        customer: self.cust_id[c].clone(),
                        owner: self.emps[e].id.clone(),
                        amount: Money {
                            minor_units: amount,
                            currency: *b"EUR",
                        },
                        stage: STAGES[0].into(),
                    },
                );
                self.deals.push(Deal {
                    id,
                    owner: e,
                    open: true,
                    amount,
                });
            }
        }
        let open: Vec<usize> = (0..self.deals.len())
            .filter(|&d| self.deals[d].open && self.deals[d].owner == e)
            .collect();
        if !open.is_empty() && self.rng.chance(0.4) {
            let d = *self.rng.pick(&open);
            let stage = self.rng.pick(STAGES).to_string();
            let t = at(&mut self.rng);
            self.push(
                actor.clone(),
                t,
                EventKind::DealUpdated {
                    deal: self.deals[d].id.clone(),
                    fields: vec!["stage".into()],
                    stage: Some(stage),
                },
            );
        }
        if !open.is_empty() && self.rng.chance(0.1) {
            let d = *self.rng.pick(&open);
            let outcome = if self.rng.chance(0.4) {
                DealOutcome::Won
            } else {
                DealOutcome::Lost
            };
            self.deals[d].open = false;
            let t = at(&mut self.rng);
            self.push(
                actor.clone(),
                t,
                EventKind::DealClosed {
                    deal: self.deals[d].id.clone(),
                    outcome,
                    amount: Money {
                        minor_units: self.deals[d].amount,
                        currency: *b"EUR",
                    },
                },
            );
        }
        if self.emps[e].is_manager && self.rng.chance(0.2) {
            let rows = 20 + self.rng.below(200);
            let t = at(&mut self.rng);
            self.push(
                actor.clone(),
                t,
                EventKind::ReportExported {
                    report: ReportId::parse("pipeline-weekly").expect("valid id"),
                    rows,
                    format: "xlsx".into(),
                },
            );
        }
        if !own.is_empty() && !self.emps[e].in_notice && self.rng.chance(0.04) {
            let count = (own.len() as u64).min(5 + self.rng.below(25));
            let t = at(&mut self.rng);
            self.push(
                actor.clone(),
                t,
                EventKind::CustomersExported {
                    count,
                    filter: "owner = me, updated this month".into(),
                    format: "csv".into(),
                },
            );
        }
        let end = begin.plus_micros(span + 10 * MINUTE + self.rng.below(60) as i64 * MINUTE);
        self.push(actor, end, EventKind::LoggedOut);
    }

    fn depart(&mut self, leaver: usize, at: Timestamp) {
        let manager = self.emps[leaver].manager.unwrap_or(0);
        let employee = self.emps[leaver].id.clone();
        let successor = self.emps[manager].id.clone();
        let hr = self.hr.clone();
        self.push(
            hr.clone(),
            at,
            EventKind::EmployeeDeparted {
                employee: employee.clone(),
                effective_at: at,
                reason: "resigned".into(),
            },
        );
        let disable = EventKind::AccountDisabled {
            employee: employee.clone(),
            reason: "departure".into(),
        };
        if self.leavers.iter().position(|l| l.emp == leaver) == Some(3) {
            // The planted late revocation: IT switches the account off four hours late.
            self.push_later(hr.clone(), at.plus_micros(4 * 60 * MINUTE), disable);
        } else {
            self.push(hr.clone(), at.plus_micros(1), disable);
        }
        self.push(
            hr.clone(),
            at.plus_micros(2),
            EventKind::RoleRevoked {
                employee: employee.clone(),
                role: RoleName::parse("sales-rep").expect("valid role"),
                reason: "departure".into(),
            },
        );
        let customers = self.owned_by(leaver);
        let deals: Vec<usize> = (0..self.deals.len())
            .filter(|&d| self.deals[d].open && self.deals[d].owner == leaver)
            .collect();
        let mut resources: Vec<Resource> = customers
            .iter()
            .map(|&c| Resource::Customer(self.cust_id[c].clone()))
            .collect();
        resources.extend(
            deals
                .iter()
                .map(|&d| Resource::Deal(self.deals[d].id.clone())),
        );
        self.push(
            hr.clone(),
            at.plus_micros(3),
            EventKind::HandoverPlanned {
                leaver: employee.clone(),
                assignments: resources
                    .iter()
                    .map(|r| HandoverAssignment {
                        resource: r.clone(),
                        successor: successor.clone(),
                    })
                    .collect(),
                checklist: ChecklistItem::ALL.to_vec(),
            },
        );
        // The manager carries out the handover the next morning, in their own working hours.
        let next_morning = Date(Date::of(at).0 + 1).start();
        let mut t = next_morning.plus_micros((self.emps[manager].start_minute + 30) * MINUTE);
        for r in resources {
            t = t.plus_micros(1_000_000);
            self.push_later(
                self.emp_actor(manager),
                t,
                EventKind::OwnershipTransferred {
                    resource: r,
                    from: employee.clone(),
                    to: successor.clone(),
                    reason: "handover".into(),
                },
            );
        }
        for c in customers {
            self.cust_owner[c] = manager;
        }
        for d in deals {
            self.deals[d].owner = manager;
        }
        for item in ChecklistItem::ALL {
            t = t.plus_micros(MINUTE);
            self.push_later(
                hr.clone(),
                t,
                EventKind::HandoverItemCompleted {
                    leaver: employee.clone(),
                    item,
                },
            );
        }
        self.push_later(
            hr,
            t.plus_micros(1),
            EventKind::HandoverCompleted { leaver: employee },
        );
        self.emps[leaver].status = Status::Departed;
        self.emps[leaver].in_notice = false;
    }
}

impl Iterator for DemoGenerator {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(mut event) = self.buffer.pop_front() {
                if let Some(prefix) = &self.cfg.id_prefix {
                    event.id = Some(
                        EventId::parse(format!("{prefix}-{}", self.produced)).expect("valid id"),
                    );
                }
                self.produced += 1;
                return Some(event);
            }
            if !self.set_up {
                self.set_up = true;
                self.set_up();
                continue;
            }
            if self.day >= self.cfg.days {
                if self.later.is_empty() {
                    return None;
                }
                self.buffer.extend(self.later.drain(..));
                continue;
            }
            let day = self.day;
            self.day += 1;
            self.simulate_day(day);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(seed: u64) -> DemoConfig {
        DemoConfig {
            employees: 20,
            customers: 100,
            days: 30,
            seed,
            id_prefix: Some("demo".into()),
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_history_and_another_seed_another() {
        let a: Vec<Event> = DemoGenerator::new(cfg(7)).collect();
        let b: Vec<Event> = DemoGenerator::new(cfg(7)).collect();
        let c: Vec<Event> = DemoGenerator::new(cfg(8)).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.len() > 5_000, "{}", a.len());
    }

    #[test]
    fn the_history_holds_the_offboarding_story_and_the_planted_export() {
        let g = DemoGenerator::new(cfg(3));
        let leaver = g.planted_exporter().unwrap().clone();
        let events: Vec<Event> = g.collect();
        let pos = |pred: &dyn Fn(&Event) -> bool| events.iter().position(pred);
        let resigned = pos(&|e| matches!(&e.kind, EventKind::ResignationSubmitted { employee, .. } if *employee == leaver)).unwrap();
        let exported = pos(&|e| {
            e.actor.employee() == Some(&leaver)
                && matches!(&e.kind, EventKind::CustomersExported { count: 100, .. })
        })
        .unwrap();
        let departed = pos(&|e| matches!(&e.kind, EventKind::EmployeeDeparted { employee, .. } if *employee == leaver)).unwrap();
        assert!(resigned < exported && exported < departed);
        assert!(
            pos(&|e| matches!(&e.kind, EventKind::HandoverCompleted { leaver: l } if *l == leaver))
                .unwrap()
                > departed
        );
        // Nobody acts after their departure.
        assert!(
            !events[departed..]
                .iter()
                .any(|e| e.actor.employee() == Some(&leaver))
        );
        for kind in [
            "logged_in",
            "customer_viewed",
            "deal_created",
            "ownership_transferred",
            "login_failed",
        ] {
            assert!(events.iter().any(|e| e.kind.name() == kind), "{kind}");
        }
        // Time never goes backwards.
        assert!(
            events
                .windows(2)
                .all(|w| w[0].occurred_at <= w[1].occurred_at)
        );
    }
}
