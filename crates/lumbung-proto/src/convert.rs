use lumbung_core::Citation;

use crate::v1;

impl From<&Citation> for v1::Citation {
    fn from(citation: &Citation) -> Self {
        v1::Citation {
            knowledge_base: citation.kb.to_string(),
            document_path: citation.document_path.to_string(),
            title: citation.title.clone(),
            heading_path: citation.heading_path.clone(),
            page: citation.page,
            char_start: citation.char_range.start,
            char_end: citation.char_range.end,
        }
    }
}

/// Milliseconds since the Unix epoch as a protobuf timestamp.
pub fn timestamp_from_unix_millis(millis: i64) -> crate::Timestamp {
    crate::Timestamp {
        seconds: millis.div_euclid(1000),
        nanos: (millis.rem_euclid(1000) * 1_000_000) as i32,
    }
}

pub fn unix_millis_from_timestamp(timestamp: &crate::Timestamp) -> i64 {
    timestamp.seconds * 1000 + i64::from(timestamp.nanos) / 1_000_000
}

#[cfg(test)]
mod tests {
    use lumbung_core::{DocumentPath, KbName};

    use super::*;

    #[test]
    fn citation_keeps_every_field() {
        let citation = Citation {
            kb: KbName::new("it-helpdesk").unwrap(),
            document_path: DocumentPath::new("vpn/access.md").unwrap(),
            title: "VPN access".to_string(),
            heading_path: vec!["VPN".to_string(), "Windows".to_string()],
            page: Some(2),
            char_range: 10..42,
        };
        let proto = v1::Citation::from(&citation);
        assert_eq!(proto.knowledge_base, "it-helpdesk");
        assert_eq!(proto.document_path, "vpn/access.md");
        assert_eq!(proto.heading_path, ["VPN", "Windows"]);
        assert_eq!(proto.page, Some(2));
        assert_eq!((proto.char_start, proto.char_end), (10, 42));
    }

    #[test]
    fn timestamps_before_the_epoch_are_normalised() {
        let t = timestamp_from_unix_millis(-1);
        assert_eq!((t.seconds, t.nanos), (-1, 999_000_000));
        assert_eq!(unix_millis_from_timestamp(&t), -1);
        let t = timestamp_from_unix_millis(1_500);
        assert_eq!((t.seconds, t.nanos), (1, 500_000_000));
    }
}
