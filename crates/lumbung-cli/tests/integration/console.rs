//! The content owners' console end to end in a real headless browser: a token login, a failed
//! file's reason in plain words, a question answered with citations that open the document at
//! the cited passage, a hand-off with its contact, and the gap it leaves. A screenshot of each
//! page is kept in `target/screenshots/console/`.

use crate::harness::{
    ANSWERABLE, HELPDESK as KB, HIDDEN_KB, HIDDEN_WORD, UNANSWERABLE, artifacts, free_port,
    serve_helpdesk,
};
use crate::webdriver::ChromeDriver;

/// A PDF that is not one, beside the helpdesk's articles.
const BROKEN: &str = "broken-manual.pdf";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_content_owner_logs_in_sees_failures_and_tries_questions() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("ingest").join(KB);
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join(BROKEN), b"%PDF-1.7\nthis is no PDF body at all").unwrap();
    let (service, owner) = serve_helpdesk(dir.path(), 3).await;

    let driver = ChromeDriver::start(free_port()).await;
    let profile = tempfile::tempdir().unwrap();
    let browser = driver.session(profile.path()).await;
    let shots = artifacts("screenshots/console");
    let base = format!("http://127.0.0.1:{}", service.http);

    // Without a session every page leads to the login.
    browser.goto(&format!("{base}/console/kb/{KB}")).await;
    browser
        .wait_for_url(|url| url.ends_with("/console/login"))
        .await;
    browser.screenshot(&shots.join("01-login.png")).await;
    browser
        .find("#token")
        .await
        .type_text("lmb_not-a-token")
        .await;
    browser.find("#login").await.click().await;
    let refused = browser.find("#error").await.text().await;
    assert!(refused.contains("not valid"), "{refused}");
    browser
        .screenshot(&shots.join("02-login-refused.png"))
        .await;

    browser.find("#token").await.type_text(&owner).await;
    browser.find("#login").await.click().await;
    browser.wait_for_url(|url| url.ends_with("/console")).await;
    let listed = browser.find("#knowledge-bases").await.text().await;
    assert!(listed.contains(KB), "{listed}");
    assert!(
        !listed.contains(HIDDEN_KB),
        "the owner sees only their knowledge base: {listed}"
    );
    browser
        .screenshot(&shots.join("03-knowledge-bases.png"))
        .await;

    // The failed file comes first, with what to do about it in plain words.
    browser
        .find(&format!("a[href='/console/kb/{KB}']"))
        .await
        .click()
        .await;
    let first = browser.find("#documents tr.document").await.text().await;
    assert!(first.contains(BROKEN), "failed files first: {first}");
    let reason = browser
        .find("#documents tr.document .reason")
        .await
        .text()
        .await;
    assert!(reason.contains("damaged"), "{reason}");
    let documents = browser.find("#documents").await.text().await;
    assert!(documents.contains("vpn-access.md") && documents.contains("password-reset.md"));
    browser
        .screenshot(&shots.join("04-knowledge-base.png"))
        .await;

    // A question answered as an assistant would get it: sentences with citations.
    browser.find("#question").await.type_text(ANSWERABLE).await;
    browser.find("#ask").await.click().await;
    let answer = browser.find("#answer").await.text().await;
    assert!(answer.contains("Answered"), "{answer}");
    let sentences = browser.find_all("#answer .sentence").await;
    assert!(!sentences.is_empty());
    let citation = browser.find("#answer a.citation").await;
    assert_eq!(citation.text().await, "vpn-access.md");
    let href = citation.attribute("href").await.unwrap();
    assert!(href.contains("document?path=vpn-access.md"), "{href}");
    browser.screenshot(&shots.join("05-answer.png")).await;

    // The citation opens the document at the cited passage, the sentence marked.
    citation.click().await;
    browser
        .wait_for_url(|url| url.contains("/document?path=vpn-access.md"))
        .await;
    let cited = browser.find("#cited").await.text().await;
    let marked = browser.find("#cited mark").await.text().await;
    assert!(!marked.is_empty() && cited.contains(&marked), "{cited}");
    browser.screenshot(&shots.join("06-document.png")).await;

    // A question it cannot answer: the hand-off, with the knowledge base's contact.
    browser.goto(&format!("{base}/console/kb/{KB}")).await;
    browser
        .find("#question")
        .await
        .type_text(UNANSWERABLE)
        .await;
    browser.find("#ask").await.click().await;
    let handoff = browser.find("#answer").await.text().await;
    assert!(
        handoff.contains("Handed off") && handoff.contains("4357"),
        "{handoff}"
    );
    browser.screenshot(&shots.join("07-hand-off.png")).await;

    // The gap log is written after the answer: the question shows once it is.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        browser.goto(&format!("{base}/console/kb/{KB}")).await;
        let gaps = browser.find("#gaps").await.text().await;
        if gaps.contains(UNANSWERABLE) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no gap: {gaps}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    browser.find("#gaps").await.click().await;
    browser.screenshot(&shots.join("08-gaps.png")).await;

    // Another knowledge base's page is missing for this login, not merely refused.
    browser
        .goto(&format!("{base}/console/kb/{HIDDEN_KB}"))
        .await;
    let missing = browser.find("#error").await.text().await;
    assert!(!missing.contains(HIDDEN_WORD), "{missing}");
    browser.close().await;
}
