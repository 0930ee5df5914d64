//! The traceability graph: which document derives from, validates, refines or implements which.
//!
//! Nodes are document ids plus the external policy components traces point at
//! (`POL-2026-001.component.5-1`); edges are the `traces:` entries. The lint pass uses it to
//! find dangling targets; the SABSA export and the UI walk it.

use std::collections::HashMap;

use crate::model::{Kind, Trace, TraceRel};
use crate::pack::Pack;

/// Whether `id` names a component of an external policy document rather than a pack document:
/// `<POLICY>.component.<section>`, where `<POLICY>` is upper-case letters, digits and dashes
/// starting with a letter (`POL-2026-001`), and `<section>` is letters, digits, `-` and `.`
/// (`5-1`, `4.5`). Such ids may be traced to without being defined in the pack.
pub fn is_external_id(id: &str) -> bool {
    let Some((policy, section)) = id.split_once(".component.") else {
        return false;
    };
    let mut chars = policy.chars();
    let policy_ok = chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-');
    let section_ok = !section.is_empty()
        && section
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && section
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    policy_ok && section_ok
}

/// A node: a pack document, or an external component that something traces to.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub id: String,
    /// `None` for external policy components.
    pub kind: Option<Kind>,
}

/// A directed edge `from --rel--> to` (indices into [`TraceGraph::nodes`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Edge {
    pub from: usize,
    pub to: usize,
    pub rel: TraceRel,
    pub why: Option<String>,
}

/// A trace whose target is neither a pack document nor an external component id.
#[derive(Debug, Clone, PartialEq)]
pub struct DanglingTrace<'a> {
    pub from: &'a str,
    pub trace: &'a Trace,
}

#[derive(Debug, Clone, Default)]
pub struct TraceGraph {
    nodes: Vec<Node>,
    edges: Vec<Edge>,
    index: HashMap<String, usize>,
    outgoing: Vec<Vec<usize>>,
    incoming: Vec<Vec<usize>>,
}

impl TraceGraph {
    /// Builds the graph of `pack`, also returning the traces that point nowhere.
    pub fn build(pack: &Pack) -> (TraceGraph, Vec<DanglingTrace<'_>>) {
        let mut graph = TraceGraph::default();
        for document in pack.documents() {
            graph.node(&document.id().value, Some(document.kind()));
        }
        let mut dangling = Vec::new();
        for document in pack.documents() {
            let from_id = document.id().value.as_str();
            let from = graph.index[from_id];
            for trace in document.traces() {
                let target = trace.to.value.as_str();
                let to = if let Some(&to) = graph.index.get(target) {
                    to
                } else if is_external_id(target) {
                    graph.node(target, None)
                } else {
                    dangling.push(DanglingTrace {
                        from: from_id,
                        trace,
                    });
                    continue;
                };
                let edge = graph.edges.len();
                graph.edges.push(Edge {
                    from,
                    to,
                    rel: trace.rel,
                    why: trace.why.clone(),
                });
                graph.outgoing[from].push(edge);
                graph.incoming[to].push(edge);
            }
        }
        (graph, dangling)
    }

    fn node(&mut self, id: &str, kind: Option<Kind>) -> usize {
        if let Some(&i) = self.index.get(id) {
            return i;
        }
        let i = self.nodes.len();
        self.nodes.push(Node {
            id: id.to_owned(),
            kind,
        });
        self.index.insert(id.to_owned(), i);
        self.outgoing.push(Vec::new());
        self.incoming.push(Vec::new());
        i
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    pub fn edges(&self) -> &[Edge] {
        &self.edges
    }

    pub fn node_index(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// Edges leaving `id` (what it traces to).
    pub fn outgoing(&self, id: &str) -> impl Iterator<Item = &Edge> {
        let edges = self.node_index(id).map(|i| self.outgoing[i].as_slice());
        edges.unwrap_or(&[]).iter().map(|&e| &self.edges[e])
    }

    /// Edges arriving at `id` (what traces to it).
    pub fn incoming(&self, id: &str) -> impl Iterator<Item = &Edge> {
        let edges = self.node_index(id).map(|i| self.incoming[i].as_slice());
        edges.unwrap_or(&[]).iter().map(|&e| &self.edges[e])
    }

    /// Ids of nodes on a `derives_from`/`refines` cycle (a document cannot derive from
    /// itself, directly or indirectly). Iterative, so deep chains cannot overflow the stack.
    pub fn derivation_cycles(&self) -> Vec<Vec<usize>> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Active,
            Done,
        }
        let derives = |e: &Edge| matches!(e.rel, TraceRel::DerivesFrom | TraceRel::Refines);
        let mut mark = vec![Mark::New; self.nodes.len()];
        let mut cycles = Vec::new();
        for root in 0..self.nodes.len() {
            if mark[root] != Mark::New {
                continue;
            }
            // Stack of (node, next outgoing edge position).
            let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
            mark[root] = Mark::Active;
            while let Some(&mut (node, ref mut pos)) = stack.last_mut() {
                let out = &self.outgoing[node];
                if *pos < out.len() {
                    let edge = &self.edges[out[*pos]];
                    *pos += 1;
                    if !derives(edge) {
                        continue;
                    }
                    match mark[edge.to] {
                        Mark::New => {
                            mark[edge.to] = Mark::Active;
                            stack.push((edge.to, 0));
                        }
                        Mark::Active => {
                            let start = stack.iter().position(|(n, _)| *n == edge.to).unwrap_or(0);
                            cycles.push(stack[start..].iter().map(|(n, _)| *n).collect());
                        }
                        Mark::Done => {}
                    }
                } else {
                    mark[node] = Mark::Done;
                    stack.pop();
                }
            }
        }
        cycles
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_ids_follow_the_documented_pattern() {
        assert!(is_external_id("POL-2026-001.component.5-1"));
        assert!(is_external_id("POL-2026-001.component.4.5"));
        assert!(!is_external_id("pol-2026-001.component.5-1"));
        assert!(!is_external_id("POL-2026-001.component."));
        assert!(!is_external_id("POL-2026-001.section.5-1"));
        assert!(!is_external_id("KMS-CRIT-001"));
    }
}

#[cfg(test)]
mod graph_tests {
    use super::*;
    use crate::pack::Pack;

    fn pack(yaml: &str) -> Pack {
        crate::load_files([("t.yaml", yaml)]).pack
    }

    #[test]
    fn edges_link_documents_and_external_components() {
        let pack = pack(
            "kind: Role\nid: a\ntraces:\n  - { to: b, rel: refines, why: narrower }\n  - { to: POL-2026-001.component.5-1, rel: implements }\n---\nkind: Role\nid: b\n",
        );
        let (graph, dangling) = TraceGraph::build(&pack);
        assert!(dangling.is_empty());
        assert_eq!(graph.nodes().len(), 3);
        let out: Vec<&str> = graph
            .outgoing("a")
            .map(|e| graph.nodes()[e.to].id.as_str())
            .collect();
        assert_eq!(out, vec!["b", "POL-2026-001.component.5-1"]);
        let into_b: Vec<_> = graph.incoming("b").collect();
        assert_eq!(into_b.len(), 1);
        assert_eq!(into_b[0].rel, TraceRel::Refines);
        assert_eq!(into_b[0].why.as_deref(), Some("narrower"));
        assert_eq!(graph.outgoing("nope").count(), 0);
    }

    #[test]
    fn only_derivation_edges_make_cycles() {
        let cyclic = pack(
            "kind: Role\nid: a\ntraces: [{ to: b, rel: derives_from }]\n---\nkind: Role\nid: b\ntraces: [{ to: a, rel: refines }]\n",
        );
        let (graph, _) = TraceGraph::build(&cyclic);
        assert_eq!(graph.derivation_cycles().len(), 1);
        let validating = pack(
            "kind: Role\nid: a\ntraces: [{ to: b, rel: validates }]\n---\nkind: Role\nid: b\ntraces: [{ to: a, rel: validates }]\n",
        );
        let (graph, _) = TraceGraph::build(&validating);
        assert!(graph.derivation_cycles().is_empty());
    }

    #[test]
    fn long_chains_do_not_recurse() {
        let mut yaml = String::new();
        for i in 0..20_000 {
            yaml.push_str(&format!(
                "---\nkind: Role\nid: r{i}\ntraces: [{{ to: r{}, rel: derives_from }}]\n",
                i + 1
            ));
        }
        yaml.push_str("---\nkind: Role\nid: r20000\n");
        let chain = pack(&yaml);
        let (graph, dangling) = TraceGraph::build(&chain);
        assert!(dangling.is_empty());
        assert!(graph.derivation_cycles().is_empty());
    }
}
