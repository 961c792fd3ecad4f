//! JUnit XML for CI systems: one test case per check and cell.

use std::path::Path;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::CheckReport;
use crate::error::InputError;

pub fn to_xml(report: &CheckReport) -> Result<String, String> {
    let mut suite = TestSuite::new(report.suite.as_str());
    for c in &report.cases {
        let status = if c.passed {
            TestCaseStatus::success()
        } else {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_message(c.message.as_str());
            s
        };
        let mut case = TestCase::new(c.name.as_str(), status);
        case.set_classname(c.subject.as_str());
        if c.passed {
            case.system_out = Some(c.message.as_str().into());
        }
        suite.add_test_case(case);
    }
    let mut r = Report::new("dropscope");
    r.add_test_suite(suite);
    r.to_string().map_err(|e| e.to_string())
}

pub fn write(report: &CheckReport, path: &Path) -> Result<(), InputError> {
    let xml = to_xml(report).map_err(|e| InputError::new(path, e))?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| InputError::io(parent, &e))?;
    }
    std::fs::write(path, xml).map_err(|e| InputError::io(path, &e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::CheckCase;

    #[test]
    fn failures_carry_their_message_and_cases_their_cell() {
        let r = CheckReport {
            suite: "s".into(),
            cases: vec![
                CheckCase {
                    name: "cause lr_change is named".into(),
                    subject: "step/seed-1".into(),
                    passed: true,
                    message: "named: lr_change".into(),
                },
                CheckCase {
                    name: "does not diverge".into(),
                    subject: "step/seed-2".into(),
                    passed: false,
                    message: "3 NaN & 0 infinite losses".into(),
                },
            ],
        };
        let xml = to_xml(&r).unwrap();
        assert!(
            xml.contains(r#"tests="2""#) && xml.contains(r#"failures="1""#),
            "{xml}"
        );
        assert!(xml.contains(r#"classname="step/seed-2""#), "{xml}");
        assert!(xml.contains("3 NaN &amp; 0 infinite losses"), "{xml}");
    }
}
