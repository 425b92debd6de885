//! HTML pages saved from an intranet or exported from a wiki.

use lumbung_extract::extract;

use crate::{doc_path, fixture};

#[test]
fn html_page_content_without_navigation_scripts_or_styles() {
    let doc = extract(&doc_path("it/vpn.html"), &fixture("vpn-guide.html")).unwrap();
    assert_eq!(doc.title, "VPN access | IT Helpdesk");
    let outline: Vec<(Vec<&str>, &str)> = doc
        .sections
        .iter()
        .map(|s| {
            let path = s.heading_path.iter().map(String::as_str).collect();
            (path, s.text.as_str())
        })
        .collect();
    assert_eq!(
        outline,
        vec![
            (
                vec!["VPN access"],
                "GlobalProtect connects your laptop to the plant network from home. Request \
                 access on the self-service portal (https://portal.example.internal/vpn)."
            ),
            (
                vec!["VPN access", "Windows"],
                "Open the GlobalProtect tray icon.\nEnter vpn.example.com as the portal."
            ),
            (
                vec!["VPN access", "Windows", "Error codes"],
                "Code: ERR-VPN-809; Meaning: Service stopped; Fix: Restart the PanGPS service\n\
                 Code: ERR-VPN-812; Meaning: Certificate expired; Fix: Call the helpdesk on ext. 4357"
            ),
            (
                vec!["VPN access", "macOS"],
                "Use the menu bar icon.\nSign in with your badge number.\n\n\
                 sudo launchctl kickstart -k system/com.paloaltonetworks.gp.pangpsd\n\
                 (run in Terminal)\n\n\
                 Mail helpdesk@example.com for help."
            ),
        ]
    );
    let all: String = doc.sections.iter().map(|s| s.text.as_str()).collect();
    for dropped in [
        "Printers",
        "tracking code",
        "font-family",
        "Internal note",
        "JavaScript",
    ] {
        assert!(!all.contains(dropped), "{dropped:?} leaked into {all:?}");
    }
}

#[test]
fn html_declared_charset_and_missing_title() {
    let page = "<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=gb2312\">\
        </head><body><h1>高处作业</h1><p>两米以上作业必须系安全带。</p></body></html>";
    let (bytes, _, _) = encoding_rs::GBK.encode(page);
    let doc = extract(&doc_path("高处作业.htm"), &bytes).unwrap();
    assert_eq!(doc.title, "高处作业");
    assert_eq!(doc.sections[0].heading_path, ["高处作业"]);
    assert_eq!(doc.sections[0].text, "两米以上作业必须系安全带。");
}

#[test]
fn html_without_headings_or_title_is_one_section_named_by_the_file() {
    let doc = extract(
        &doc_path("notice.html"),
        b"<p>Canteen closed on Friday.</p><p>Bring lunch.</p>",
    )
    .unwrap();
    assert_eq!(doc.title, "notice");
    assert_eq!(doc.sections.len(), 1);
    assert!(doc.sections[0].heading_path.is_empty());
    assert_eq!(
        doc.sections[0].text,
        "Canteen closed on Friday.\n\nBring lunch."
    );
}
