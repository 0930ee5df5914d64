#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The backlog rules of `003_*` over `tests/fixtures/backlog/rules.yaml`.

use gatehouse_sabsa::backlog::{Decision, Stage, prioritise};

#[test]
fn backlog_is_ordered_by_score_with_decisions_and_conflicts() {
    let loaded =
        gatehouse_pack::load_files([("rules.yaml", include_str!("fixtures/backlog/rules.yaml"))]);
    let items = prioritise(&loaded.pack);
    let summary: Vec<(&str, i64, Decision, Stage, bool)> = items
        .iter()
        .map(|i| {
            (
                i.id.as_str(),
                i.score,
                i.decision,
                i.status,
                i.conflict.is_some(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "IMP-HIGH-STUCK",
                9,
                Decision::AutoApproved,
                Stage::Backlog,
                true
            ),
            (
                "IMP-LEAD",
                4,
                Decision::NeedsSecurityLead,
                Stage::Approved,
                false
            ),
            (
                "IMP-DEFERRED-BUSY",
                2,
                Decision::Deferred,
                Stage::InProgress,
                true
            ),
            (
                "IMP-CLOSED-LOW",
                1,
                Decision::Deferred,
                Stage::Closed,
                false
            ),
            (
                "IMP-DRIVER",
                1,
                Decision::DeferredWithDriver,
                Stage::Approved,
                false
            ),
        ]
    );
    let stuck = items[0].conflict.as_deref().unwrap();
    assert!(stuck.contains("move it to Approved"), "{stuck}");
    let busy = items[2].conflict.as_deref().unwrap();
    assert!(busy.contains("In Progress"), "{busy}");
}
