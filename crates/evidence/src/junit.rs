//! JUnit XML in its dialects (Surefire, pytest, Jest, PHPUnit, Catch2, nextest, Bazel, …):
//! tests, failures, errors, skipped.
//!
//! Dialects nest `<testsuite>` elements freely and their `tests`/`failures` attributes often
//! disagree with the test cases they contain (PHPUnit sums nested suites, some tools omit
//! attributes). The facts therefore count `<testcase>` elements, each exactly once wherever it
//! sits, with one status per test case: an `<error>` child makes it an error, else a
//! `<failure>` child a failure, else a `<skipped>` child skipped. `flakyFailure`/`rerunFailure`
//! and friends do not fail a test. The innermost suites' attribute sums are reported beside,
//! so a disagreement is visible rather than silently resolved.

use std::io::BufRead;

use quick_xml::events::BytesStart;
use serde::Serialize;

use crate::Limits;
use crate::error::EvidenceError;
use crate::kind::EvidenceKind;
use crate::xmlkit::{self, Path, XmlHandler};

/// Test counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct JunitTotals {
    pub tests: u64,
    pub failures: u64,
    pub errors: u64,
    pub skipped: u64,
}

/// A test case that failed or errored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FailedTestcase {
    pub classname: Option<String>,
    pub name: Option<String>,
    /// `failure` or `error`.
    pub status: &'static str,
    pub message: Option<String>,
}

/// Facts of a JUnit XML report.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct JunitFacts {
    /// Counted from `<testcase>` elements.
    pub tests: u64,
    pub failures: u64,
    pub errors: u64,
    pub skipped: u64,
    pub passed: u64,
    pub root_element: String,
    pub testsuites: u64,
    pub nested_testsuites: bool,
    /// Sums of the `tests`/`failures`/`errors`/`skipped` attributes of the innermost suites.
    pub suite_attribute_totals: JunitTotals,
    /// Whether those sums equal the test-case counts.
    pub attributes_agree: bool,
    /// No `<testcase>` at all while suite attributes claim tests ran: some consumers would
    /// report the attribute numbers; gatehouse reports 0 tests and raises this flag so a gate
    /// does not mistake "no test cases recorded" for "all passed".
    pub testcases_absent_but_attributes_count_tests: bool,
    pub failed_testcases: Vec<FailedTestcase>,
    pub failed_testcases_truncated: bool,
}

pub(crate) fn parse<R: BufRead>(
    reader: &mut R,
    limits: &Limits,
) -> Result<JunitFacts, EvidenceError> {
    let kind = EvidenceKind::Junit;
    let mut handler = Junit {
        facts: JunitFacts::default(),
        limits,
        suites: Vec::new(),
        case: None,
    };
    let root = xmlkit::walk(&kind, reader, limits, &mut handler)?;
    if root != "testsuites" && root != "testsuite" {
        return Err(EvidenceError::WrongKind {
            kind,
            found: format!("the root element is <{root}>, not <testsuites> or <testsuite>"),
        });
    }
    let mut facts = handler.facts;
    facts.root_element = root;
    let counted = JunitTotals {
        tests: facts.tests,
        failures: facts.failures,
        errors: facts.errors,
        skipped: facts.skipped,
    };
    facts.attributes_agree = counted == facts.suite_attribute_totals;
    facts.testcases_absent_but_attributes_count_tests =
        facts.tests == 0 && facts.suite_attribute_totals.tests > 0;
    Ok(facts)
}

struct Suite {
    totals: JunitTotals,
    has_child_suite: bool,
}

#[derive(Default)]
struct Case {
    classname: Option<String>,
    name: Option<String>,
    error: bool,
    failure: bool,
    skipped: bool,
    message: Option<String>,
    /// Depth of the `<testcase>` element, to recognise its direct children.
    depth: usize,
}

struct Junit<'a> {
    facts: JunitFacts,
    limits: &'a Limits,
    suites: Vec<Suite>,
    case: Option<Case>,
}

fn count_attribute(element: &BytesStart<'_>, name: &str) -> Result<u64, String> {
    match xmlkit::attribute(element, name)? {
        // Some producers write "3.0"; a non-number is treated as absent, as consumers do.
        Some(value) => Ok(value
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| *v >= 0.0)
            .map_or(0, |v| v as u64)),
        None => Ok(0),
    }
}

impl XmlHandler for Junit<'_> {
    fn start(&mut self, path: &Path, element: &BytesStart<'_>) -> Result<(), String> {
        let name = path.ancestor(0).unwrap_or_default();
        match name {
            "testsuite" => {
                self.facts.testsuites += 1;
                if let Some(parent) = self.suites.last_mut() {
                    parent.has_child_suite = true;
                    self.facts.nested_testsuites = true;
                }
                let totals = JunitTotals {
                    tests: count_attribute(element, "tests")?,
                    failures: count_attribute(element, "failures")?,
                    errors: count_attribute(element, "errors")?,
                    // `disabled` (Ant schema) counts tests that never ran and have no <testcase>;
                    // it is not added here, matching the reference conventions.
                    skipped: count_attribute(element, "skipped")?,
                };
                self.suites.push(Suite {
                    totals,
                    has_child_suite: false,
                });
            }
            "testcase" if self.case.is_none() => {
                self.case = Some(Case {
                    classname: xmlkit::attribute(element, "classname")?,
                    name: xmlkit::attribute(element, "name")?,
                    depth: path.depth(),
                    ..Case::default()
                });
            }
            "error" | "failure" | "skipped" => {
                if let Some(case) = self.case.as_mut()
                    && path.depth() == case.depth + 1
                {
                    match name {
                        "error" => case.error = true,
                        "failure" => case.failure = true,
                        _ => case.skipped = true,
                    }
                    if name != "skipped" && case.message.is_none() {
                        case.message = xmlkit::attribute(element, "message")?.map(|m| truncate(&m));
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn end(&mut self, path: &Path) -> Result<(), String> {
        match path.ancestor(0).unwrap_or_default() {
            "testsuite" => {
                if let Some(suite) = self.suites.pop()
                    && !suite.has_child_suite
                {
                    let sums = &mut self.facts.suite_attribute_totals;
                    sums.tests += suite.totals.tests;
                    sums.failures += suite.totals.failures;
                    sums.errors += suite.totals.errors;
                    sums.skipped += suite.totals.skipped;
                }
            }
            "testcase"
                if self
                    .case
                    .as_ref()
                    .is_some_and(|case| case.depth == path.depth()) =>
            {
                if let Some(case) = self.case.take() {
                    self.finish_case(case);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn wants_text(&self, _path: &Path) -> bool {
        false
    }

    fn text(&mut self, _path: &Path, _text: &str) -> Result<(), String> {
        Ok(())
    }
}

impl Junit<'_> {
    fn finish_case(&mut self, case: Case) {
        let facts = &mut self.facts;
        facts.tests += 1;
        let status = if case.error {
            facts.errors += 1;
            "error"
        } else if case.failure {
            facts.failures += 1;
            "failure"
        } else if case.skipped {
            facts.skipped += 1;
            return;
        } else {
            facts.passed += 1;
            return;
        };
        if facts.failed_testcases.len() < self.limits.max_listed {
            facts.failed_testcases.push(FailedTestcase {
                classname: case.classname,
                name: case.name,
                status,
                message: case.message,
            });
        } else {
            facts.failed_testcases_truncated = true;
        }
    }
}

fn truncate(message: &str) -> String {
    match message.char_indices().nth(200) {
        Some((index, _)) => format!("{}…", &message[..index]),
        None => message.to_string(),
    }
}
