//! A real browser receives the CSP header and enforces it: headless Chromium opens a page
//! whose policy allows one loopback origin and not another, first enforced, then report-only
//! with a `report-uri`. The page is served directly here; the rig (`support::site`,
//! `support::browser`) takes any page URL, so the same visit works through a proxy that
//! adds the header (`PagePolicy::Absent`).

mod support;

use std::time::Duration;

use support::browser::Browser;
use support::site::collector::ReportFormat;
use support::site::{PagePolicy, Site};

/// How long the collector may take to receive the reports after the page is done.
const REPORT_DEADLINE: Duration = Duration::from_secs(15);

#[tokio::test]
async fn chromium_blocks_a_forbidden_origin_and_reports_it_under_a_report_only_policy() {
    let site = Site::start().await;
    let browser = Browser::find();
    let (allowed, forbidden) = (&site.allowed, &site.forbidden);
    let policy = format!(
        "default-src 'self'; script-src {0}; img-src {0}",
        allowed.origin()
    );

    // Enforced: the allowed origin's script runs and its image loads; the forbidden origin's
    // are blocked before they are fetched, each with one `enforce` violation on the page.
    let page = site.serve_page(PagePolicy::Enforce(policy.clone())).await;
    let visit = browser.visit(&page.url()).await;
    let seen = &visit.report;
    assert_eq!(seen.url, page.url());
    assert!(seen.script_ran(&allowed.script_url()), "{seen:#?}");
    assert!(seen.image_loaded(&allowed.image_url()), "{seen:#?}");
    assert!(!seen.script_ran(&forbidden.script_url()), "{seen:#?}");
    assert!(!seen.image_loaded(&forbidden.image_url()), "{seen:#?}");
    assert_eq!(
        forbidden.requests(),
        0,
        "a blocked load never leaves the browser"
    );
    // Chromium names the element directive (CSP3) even though the policy only has script-src.
    for (url, directive) in [
        (forbidden.script_url(), "script-src-elem"),
        (forbidden.image_url(), "img-src"),
    ] {
        let violations = seen.violations_of(&url);
        assert_eq!(violations.len(), 1, "{url}: {seen:#?}");
        assert_eq!(violations[0].effective_directive, directive, "{seen:#?}");
        assert_eq!(violations[0].disposition, "enforce", "{seen:#?}");
    }
    assert_eq!(
        seen.violations.len(),
        2,
        "only the forbidden loads: {seen:#?}"
    );
    drop(visit);

    // Report-only: nothing is blocked; the page sees the same violations as `report`, and
    // the collector receives one `report-uri` report for each.
    let report_uri = site.collector.report_uri();
    let page = site
        .serve_page(PagePolicy::ReportOnly(format!(
            "{policy}; report-uri {report_uri}"
        )))
        .await;
    let visit = browser.visit(&page.url()).await;
    let seen = &visit.report;
    for url in [allowed.script_url(), forbidden.script_url()] {
        assert!(seen.script_ran(&url), "{url}: {seen:#?}");
    }
    for url in [allowed.image_url(), forbidden.image_url()] {
        assert!(seen.image_loaded(&url), "{url}: {seen:#?}");
    }
    assert_eq!(seen.violations.len(), 2, "{seen:#?}");
    assert!(
        seen.violations.iter().all(|v| v.disposition == "report"),
        "{seen:#?}"
    );
    let expected = [
        (forbidden.script_url(), "script-src-elem"),
        (forbidden.image_url(), "img-src"),
    ];
    let reports = site
        .collector
        .wait_for(
            "a report-uri report of each forbidden load",
            REPORT_DEADLINE,
            |reports| {
                expected
                    .iter()
                    .all(|(url, _)| reports.iter().any(|r| &r.blocked_uri == url))
            },
        )
        .await;
    for (url, directive) in &expected {
        let report = reports
            .iter()
            .find(|r| &r.blocked_uri == url)
            .expect("waited for above");
        assert_eq!(report.format, ReportFormat::ReportUri, "{report:#?}");
        assert_eq!(report.document_uri, page.url(), "{report:#?}");
        assert_eq!(report.effective_directive, *directive, "{report:#?}");
        assert_eq!(report.disposition, "report", "{report:#?}");
    }
    assert_eq!(reports.len(), 2, "one report per violation: {reports:#?}");
}
