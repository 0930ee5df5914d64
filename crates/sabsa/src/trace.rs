//! Traceability over the pack: what each item depends on and what depends on it, whether the
//! operational layer covers every control, alert, KPI and playbook, and which items must be
//! re-reviewed because something they depend on changed (suspect links).
//!
//! Dependencies come from two places: the explicit `traces:` of every document, and the
//! references the model already carries (an alert's `controls`, a playbook's `alerts`, a health
//! check's `alert`, an alert's remediation runbook). Both are needed: the example pack links a
//! playbook to its alert only through `alerts:`.
//!
//! Suspect links live in a lock file (`gatehouse.lock`) in the pack folder, one line per
//! dependency: the dependent item, the item it depends on, and that item's content hash when
//! the dependent was last reviewed. It is plain text sorted by id, so it diffs and merges in Git
//! and needs no server.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use gatehouse_pack::Pack;
use gatehouse_pack::model::{Document, Kind, TraceRel};
use gatehouse_pack::trace::{TraceGraph, is_external_id};
use sha2::{Digest, Sha256};

/// How one item depends on another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LinkRel {
    /// An explicit `traces:` entry.
    Trace(TraceRelName),
    /// An alert's `controls:`.
    Monitors,
    /// A playbook's `alerts:`.
    RespondsTo,
    /// A health check's `alert:`.
    Raises,
    /// An alert's `auto_remediation.runbook`.
    RemediatedBy,
}

/// `TraceRel` with an order, so links sort deterministically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TraceRelName {
    DerivesFrom,
    Validates,
    Refines,
    Implements,
}

impl From<TraceRel> for TraceRelName {
    fn from(rel: TraceRel) -> Self {
        match rel {
            TraceRel::DerivesFrom => TraceRelName::DerivesFrom,
            TraceRel::Validates => TraceRelName::Validates,
            TraceRel::Refines => TraceRelName::Refines,
            TraceRel::Implements => TraceRelName::Implements,
        }
    }
}

impl LinkRel {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkRel::Trace(TraceRelName::DerivesFrom) => "derives_from",
            LinkRel::Trace(TraceRelName::Validates) => "validates",
            LinkRel::Trace(TraceRelName::Refines) => "refines",
            LinkRel::Trace(TraceRelName::Implements) => "implements",
            LinkRel::Monitors => "monitors",
            LinkRel::RespondsTo => "responds_to",
            LinkRel::Raises => "raises",
            LinkRel::RemediatedBy => "remediated_by",
        }
    }
}

/// `from` depends on `to` by `rel`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Link {
    pub from: String,
    pub to: String,
    pub rel: LinkRel,
}

/// Every dependency in the pack whose target exists (a pack document or an external policy
/// component), sorted and deduplicated.
pub fn links(pack: &Pack) -> Vec<Link> {
    let mut out = BTreeSet::new();
    let mut add = |from: &str, to: &str, rel: LinkRel| {
        if pack.get(to).is_some() || is_external_id(to) {
            out.insert(Link {
                from: from.to_owned(),
                to: to.to_owned(),
                rel,
            });
        }
    };
    for document in pack.documents() {
        let from = document.id().value.as_str();
        for trace in document.traces() {
            add(from, &trace.to.value, LinkRel::Trace(trace.rel.into()));
        }
        match document {
            Document::Alert(alert) => {
                for control in &alert.controls {
                    add(from, &control.value, LinkRel::Monitors);
                }
                if let Some(runbook) = &alert.auto_remediation.runbook {
                    add(from, &runbook.value, LinkRel::RemediatedBy);
                }
            }
            Document::Playbook(playbook) => {
                for alert in &playbook.alerts {
                    add(from, &alert.value, LinkRel::RespondsTo);
                }
            }
            Document::HealthCheck(check) => {
                if let Some(alert) = &check.alert {
                    add(from, &alert.value, LinkRel::Raises);
                }
            }
            _ => {}
        }
    }
    out.into_iter().collect()
}

/// Something wrong with the trace graph itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GraphProblem {
    /// A `traces:` entry whose target is neither a pack document nor an external component.
    UnknownTarget {
        from: String,
        to: String,
        line: u32,
        column: u32,
    },
    /// Documents that refine (or derive from) each other in a circle, in order.
    RefinesCycle(Vec<String>),
}

impl std::fmt::Display for GraphProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GraphProblem::UnknownTarget {
                from,
                to,
                line,
                column,
            } => write!(
                f,
                "{from} traces to unknown target `{to}` (line {line}, column {column}); \
                 it is neither a pack document nor POL-YYYY-NNN.component.N-N"
            ),
            GraphProblem::RefinesCycle(ids) => {
                let first = ids.first().map(String::as_str).unwrap_or_default();
                write!(
                    f,
                    "refines/derives_from cycle: {} -> {first}",
                    ids.join(" -> ")
                )
            }
        }
    }
}

/// Unknown trace targets and refines/derives_from cycles, in a stable order.
pub fn problems(pack: &Pack) -> Vec<GraphProblem> {
    let (graph, dangling) = TraceGraph::build(pack);
    let mut out: Vec<GraphProblem> = dangling
        .iter()
        .map(|d| GraphProblem::UnknownTarget {
            from: d.from.to_owned(),
            to: d.trace.to.value.clone(),
            line: d.trace.to.line,
            column: d.trace.to.column,
        })
        .collect();
    let nodes = graph.nodes();
    let mut cycles: Vec<Vec<String>> = graph
        .derivation_cycles()
        .into_iter()
        .map(|cycle| {
            let mut ids: Vec<String> = cycle
                .iter()
                .filter_map(|&i| nodes.get(i).map(|n| n.id.clone()))
                .collect();
            // Start each cycle at its smallest id so the report does not depend on load order.
            if let Some(min) = ids
                .iter()
                .enumerate()
                .min_by(|a, b| a.1.cmp(b.1))
                .map(|m| m.0)
            {
                ids.rotate_left(min);
            }
            ids
        })
        .collect();
    cycles.sort();
    cycles.dedup();
    out.extend(cycles.into_iter().map(GraphProblem::RefinesCycle));
    out
}

/// The items `id` depends on (upstream) and that depend on it (downstream), transitively,
/// each with the relationship and its distance from `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbourhood {
    pub id: String,
    pub kind: Option<Kind>,
    pub upstream: Vec<Hop>,
    pub downstream: Vec<Hop>,
}

/// One link reached from the starting item: `from --rel--> to` at `depth` (1 = direct).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    pub depth: usize,
    pub link: Link,
}

/// Walks upstream and downstream from `id` breadth-first, visiting each item once, so cycles
/// terminate. `None` when `id` is neither a document nor a traced external component.
pub fn neighbourhood(pack: &Pack, id: &str) -> Option<Neighbourhood> {
    let all = links(pack);
    let index = LinkIndex::new(&all);
    let known = pack.get(id).is_some() || index.by_to.contains_key(id);
    if !known {
        return None;
    }
    let walk = |up: bool| {
        let mut hops = Vec::new();
        let mut seen = BTreeSet::from([id.to_owned()]);
        let mut frontier = vec![id.to_owned()];
        let mut depth = 0;
        while !frontier.is_empty() {
            depth += 1;
            let mut next = Vec::new();
            for item in &frontier {
                let step = if up {
                    out_of(&index, item)
                } else {
                    into(&index, item)
                };
                for link in step {
                    let there = if up { &link.to } else { &link.from };
                    hops.push(Hop {
                        depth,
                        link: link.clone(),
                    });
                    if seen.insert(there.clone()) {
                        next.push(there.clone());
                    }
                }
            }
            frontier = next;
        }
        hops
    };
    Some(Neighbourhood {
        id: id.to_owned(),
        kind: pack.kind_of(id),
        upstream: walk(true),
        downstream: walk(false),
    })
}

// ---------------------------------------------------------------------------------------------
// Coverage matrix

/// One row of the coverage matrix: an item and, per requirement, the items satisfying it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatrixRow {
    pub id: String,
    pub kind: Kind,
    /// (requirement, satisfied by) in a fixed order per kind; an empty list is a gap.
    pub requirements: Vec<(&'static str, Vec<String>)>,
}

impl MatrixRow {
    pub fn gaps(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.requirements
            .iter()
            .filter(|(_, by)| by.is_empty())
            .map(|(r, _)| *r)
    }
}

/// Which layer-5 components a control's own traces count as implementing or validating it.
fn layer5_section(id: &str) -> Option<&str> {
    is_external_id(id)
        .then(|| id.rsplit('.').next())
        .flatten()
        .filter(|s| s.starts_with("5-"))
}

/// Links by source and by target, so the matrix is linear in the size of the pack.
struct LinkIndex<'a> {
    by_from: HashMap<&'a str, Vec<&'a Link>>,
    by_to: HashMap<&'a str, Vec<&'a Link>>,
}

impl<'a> LinkIndex<'a> {
    fn new(all: &'a [Link]) -> Self {
        let mut index = LinkIndex {
            by_from: HashMap::new(),
            by_to: HashMap::new(),
        };
        for link in all {
            index
                .by_from
                .entry(link.from.as_str())
                .or_default()
                .push(link);
            index.by_to.entry(link.to.as_str()).or_default().push(link);
        }
        index
    }
}

fn into<'a>(index: &LinkIndex<'a>, id: &str) -> std::vec::IntoIter<&'a Link> {
    index.by_to.get(id).cloned().unwrap_or_default().into_iter()
}

fn out_of<'a>(index: &LinkIndex<'a>, id: &str) -> std::vec::IntoIter<&'a Link> {
    index
        .by_from
        .get(id)
        .cloned()
        .unwrap_or_default()
        .into_iter()
}

/// The coverage matrix of `003_*`'s operational expectations:
/// every control implemented, monitored and validated; every alert linked to a playbook;
/// every KPI to a data source; every playbook to a control.
///
/// - implemented: a document `implements` the control, or the control derives from / is
///   implemented by a Layer 5 component (its tool configuration);
/// - monitored: an alert lists it in `controls` or an alert / health check traces to it;
/// - validated: a document `validates` it, or the control traces to 5-3 (validation tests);
/// - alert → playbook: a playbook lists the alert, or either traces to the other;
/// - KPI → data source: a non-blank `data_source`;
/// - playbook → control: it traces to a control, or one of its alerts monitors one.
pub fn matrix(pack: &Pack) -> Vec<MatrixRow> {
    let all = links(pack);
    let index = LinkIndex::new(&all);
    let kind = |id: &str| pack.kind_of(id);
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v.dedup();
        v
    };
    let mut rows = Vec::new();

    for control in pack.controls() {
        let id = control.id.value.as_str();
        let implemented = into(&index, id)
            .filter(|l| l.rel == LinkRel::Trace(TraceRelName::Implements))
            .map(|l| l.from.clone())
            .chain(
                out_of(&index, id)
                    .filter(|l| {
                        matches!(
                            l.rel,
                            LinkRel::Trace(TraceRelName::DerivesFrom | TraceRelName::Implements)
                        ) && layer5_section(&l.to).is_some()
                    })
                    .map(|l| l.to.clone()),
            )
            .collect();
        let monitored = into(&index, id)
            .filter(|l| {
                l.rel == LinkRel::Monitors
                    || matches!(kind(&l.from), Some(Kind::Alert | Kind::HealthCheck))
            })
            .map(|l| l.from.clone())
            .collect();
        let validated = into(&index, id)
            .filter(|l| l.rel == LinkRel::Trace(TraceRelName::Validates))
            .map(|l| l.from.clone())
            .chain(
                out_of(&index, id)
                    .filter(|l| layer5_section(&l.to) == Some("5-3"))
                    .map(|l| l.to.clone()),
            )
            .collect();
        rows.push(MatrixRow {
            id: id.to_owned(),
            kind: Kind::Control,
            requirements: vec![
                ("implemented", sorted(implemented)),
                ("monitored", sorted(monitored)),
                ("validated", sorted(validated)),
            ],
        });
    }

    for alert in pack.alerts() {
        let id = alert.id.value.as_str();
        let playbooks = into(&index, id)
            .filter(|l| kind(&l.from) == Some(Kind::Playbook))
            .map(|l| l.from.clone())
            .chain(
                out_of(&index, id)
                    .filter(|l| kind(&l.to) == Some(Kind::Playbook))
                    .map(|l| l.to.clone()),
            )
            .collect();
        rows.push(MatrixRow {
            id: id.to_owned(),
            kind: Kind::Alert,
            requirements: vec![("playbook", sorted(playbooks))],
        });
    }

    for kpi in pack.kpis() {
        let source = kpi.data_source.trim();
        rows.push(MatrixRow {
            id: kpi.id.value.clone(),
            kind: Kind::Kpi,
            requirements: vec![(
                "data source",
                if source.is_empty() {
                    Vec::new()
                } else {
                    vec![source.to_owned()]
                },
            )],
        });
    }

    for playbook in pack.playbooks() {
        let id = playbook.id.value.as_str();
        let mut controls: Vec<String> = out_of(&index, id)
            .filter(|l| kind(&l.to) == Some(Kind::Control))
            .map(|l| l.to.clone())
            .collect();
        for alert in out_of(&index, id).filter(|l| kind(&l.to) == Some(Kind::Alert)) {
            controls.extend(
                out_of(&index, &alert.to)
                    .filter(|l| kind(&l.to) == Some(Kind::Control))
                    .map(|l| format!("{} (via {})", l.to, alert.to)),
            );
        }
        rows.push(MatrixRow {
            id: id.to_owned(),
            kind: Kind::Playbook,
            requirements: vec![("control", sorted(controls))],
        });
    }
    rows.sort_by(|a, b| (a.kind, &a.id).cmp(&(b.kind, &b.id)));
    rows
}

// ---------------------------------------------------------------------------------------------
// Suspect links

/// File name of the lock file inside the pack folder.
pub const LOCK_FILE: &str = "gatehouse.lock";

const LOCK_HEADER: &str = "# gatehouse.lock: content hashes behind each traced dependency.\n\
# `<dependent> <depends-on> <sha256 of depends-on when dependent was last reviewed>`\n\
# Written by `gatehouse trace clear`; commit it with the pack.\n";

/// Hex SHA-256 of a document's content (its canonical JSON; positions are not content).
pub fn content_hash(document: &Document) -> String {
    // Serialising plain data cannot fail in practice; the Debug form is a stable fallback.
    let bytes =
        serde_json::to_vec(document).unwrap_or_else(|_| format!("{document:?}").into_bytes());
    let digest = Sha256::digest(&bytes);
    digest.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The reviewed hashes: (dependent, depends-on) → hash of depends-on at review.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lock {
    pub reviewed: BTreeMap<(String, String), String>,
}

/// A line of the lock file that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct LockError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl Lock {
    pub fn parse(text: &str, file: &str) -> Result<Lock, LockError> {
        let mut reviewed = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let line_text = line.trim();
            if line_text.is_empty() || line_text.starts_with('#') {
                continue;
            }
            let error = |message: &str| LockError {
                file: file.to_owned(),
                line: i + 1,
                message: message.to_owned(),
            };
            let fields: Vec<&str> = line_text.split_whitespace().collect();
            let [dependent, upstream, hash] = fields[..] else {
                return Err(error(
                    "expected `<dependent> <depends-on> <sha256>` (three fields)",
                ));
            };
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(error("the hash must be 64 hexadecimal digits (SHA-256)"));
            }
            reviewed.insert(
                (dependent.to_owned(), upstream.to_owned()),
                hash.to_ascii_lowercase(),
            );
        }
        Ok(Lock { reviewed })
    }

    pub fn render(&self) -> String {
        let mut out = LOCK_HEADER.to_owned();
        for ((dependent, upstream), hash) in &self.reviewed {
            let _ = writeln!(out, "{dependent} {upstream} {hash}");
        }
        out
    }
}

/// A dependency whose target changed since the dependent was last reviewed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suspect {
    pub dependent: String,
    pub upstream: String,
    pub rel: LinkRel,
    /// `None` when the link has never been reviewed (not in the lock).
    pub reviewed_hash: Option<String>,
    pub current_hash: String,
}

/// Hashes of every document, by id.
fn hashes(pack: &Pack) -> BTreeMap<String, String> {
    pack.documents()
        .map(|d| (d.id().value.clone(), content_hash(d)))
        .collect()
}

/// Links between pack documents (external components have no content to hash).
fn hashed_links(pack: &Pack) -> Vec<Link> {
    links(pack)
        .into_iter()
        .filter(|l| pack.get(&l.to).is_some())
        .collect()
}

/// Every dependency whose target's content differs from what the lock recorded. Links missing
/// from the lock are reported as unreviewed only when `lock` is non-empty, so a pack that never
/// used suspect links is not flooded on first run.
pub fn suspects(pack: &Pack, lock: &Lock) -> Vec<Suspect> {
    let current = hashes(pack);
    let mut out: Vec<Suspect> = Vec::new();
    for link in hashed_links(pack) {
        let Some(now) = current.get(&link.to) else {
            continue;
        };
        // Two relationships between the same pair are one review, reported once.
        if out
            .last()
            .is_some_and(|s| s.dependent == link.from && s.upstream == link.to)
        {
            continue;
        }
        let recorded = lock.reviewed.get(&(link.from.clone(), link.to.clone()));
        let suspect = match recorded {
            Some(hash) => hash != now,
            None => !lock.reviewed.is_empty(),
        };
        if suspect {
            out.push(Suspect {
                dependent: link.from,
                upstream: link.to,
                rel: link.rel,
                reviewed_hash: recorded.cloned(),
                current_hash: now.clone(),
            });
        }
    }
    out
}

/// Marks `id`'s dependencies as reviewed at the current content (all items when `id` is
/// `None`), dropping entries for links that no longer exist. Returns how many entries changed.
pub fn clear(pack: &Pack, lock: &mut Lock, id: Option<&str>) -> usize {
    let current = hashes(pack);
    let live: Vec<Link> = hashed_links(pack);
    let live_keys: BTreeSet<(String, String)> = live
        .iter()
        .map(|l| (l.from.clone(), l.to.clone()))
        .collect();
    let before = lock.reviewed.clone();
    lock.reviewed.retain(|key, _| live_keys.contains(key));
    for link in live {
        if id.is_some_and(|id| id != link.from) {
            continue;
        }
        if let Some(hash) = current.get(&link.to) {
            lock.reviewed
                .insert((link.from.clone(), link.to.clone()), hash.clone());
        }
    }
    before
        .iter()
        .filter(|(k, v)| lock.reviewed.get(*k) != Some(*v))
        .count()
        + lock
            .reviewed
            .keys()
            .filter(|k| !before.contains_key(*k))
            .count()
}
