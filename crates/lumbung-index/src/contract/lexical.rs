//! The cases of [`lexical_index_contract!`](crate::lexical_index_contract).

use std::sync::Arc;

use lumbung_core::ChunkId;

use super::{Doc, ids_of, kb, kb_generation, path, sorted, sorted_ids};
use crate::{Error, LexicalIndex};

pub fn replace_is_invisible_until_commit_then_round_trips_every_field(
    index: Arc<dyn LexicalIndex>,
) {
    let doc = Doc::new("it", "faq/vpn.md", "v1");
    let chunks = doc.chunks(&[
        "Reset the VPN token in the portal.",
        "Call the helpdesk for printer jams.",
    ]);

    index.replace_document(&doc.kb, &doc.path, &chunks).unwrap();
    assert_eq!(index.count_chunks(&doc.kb, None).unwrap(), 0);
    assert!(
        index
            .search("vpn", std::slice::from_ref(&doc.kb), 10)
            .unwrap()
            .is_empty()
    );

    index.commit().unwrap();
    assert_eq!(index.count_chunks(&doc.kb, Some(&doc.path)).unwrap(), 2);
    // "vpn" is also in the title ("vpn.md") of both chunks; the text match ranks first.
    let hits = index
        .search("VPN token", std::slice::from_ref(&doc.kb), 10)
        .unwrap();
    assert_eq!(ids_of(&hits), [doc.id(0), doc.id(1)]);
    assert!(hits[0].score > hits[1].score && hits[1].score > 0.0);
    assert_eq!(hits[0].chunk, chunks[0]);

    // Asked order is kept, unknown ids are skipped.
    let unknown = ChunkId::from_u128(7);
    let fetched = index.get_chunks(&[doc.id(1), unknown, doc.id(0)]).unwrap();
    assert_eq!(fetched, [chunks[1].clone(), chunks[0].clone()]);
    assert_eq!(fetched[0].citation.page, Some(2));
    assert_eq!(fetched[1].citation.page, None);
    assert!(index.get_chunks(&[]).unwrap().is_empty());
}

pub fn kb_filter_is_applied_inside_the_query(index: Arc<dyn LexicalIndex>) {
    let a = Doc::new("a", "one.md", "v1");
    let b = Doc::new("b", "many.md", "v1");
    // kb "b" matches far better and more often than kb "a": a filter applied after a top-1 cut
    // would return nothing for kbs=[a].
    let b_texts: Vec<String> = (0..20)
        .map(|i| format!("firewall firewall firewall rule {i}"))
        .collect();
    let b_texts: Vec<&str> = b_texts.iter().map(String::as_str).collect();
    index
        .replace_document(
            &a.kb,
            &a.path,
            &a.chunks(&["the office firewall blocks port 25 and many other things"]),
        )
        .unwrap();
    index
        .replace_document(&b.kb, &b.path, &b.chunks(&b_texts))
        .unwrap();
    index.commit().unwrap();

    let hits = index
        .search("firewall", std::slice::from_ref(&a.kb), 1)
        .unwrap();
    assert_eq!(ids_of(&hits), [a.id(0)]);
    let hits = index
        .search("firewall", std::slice::from_ref(&a.kb), 100)
        .unwrap();
    assert!(hits.iter().all(|hit| &hit.chunk.citation.kb == a.kb.kb()));

    let both = index
        .search("firewall", &[a.kb.clone(), b.kb.clone()], 100)
        .unwrap();
    assert_eq!(both.len(), 21);
    assert_eq!(
        &both[0].chunk.citation.kb,
        b.kb.kb(),
        "the stronger match ranks first once allowed"
    );

    assert!(index.search("firewall", &[], 10).unwrap().is_empty());
    assert!(
        index
            .search("firewall", &[kb("unknown")], 10)
            .unwrap()
            .is_empty()
    );
    assert!(
        index
            .search("firewall", std::slice::from_ref(&a.kb), 0)
            .unwrap()
            .is_empty()
    );
}

pub fn replacing_a_document_leaves_exactly_the_new_chunks(index: Arc<dyn LexicalIndex>) {
    let v1 = Doc::new("it", "printer.md", "v1");
    let v2 = Doc::new("it", "printer.md", "v2");
    let other = Doc::new("it", "wifi.md", "v1");
    index
        .replace_document(
            &v1.kb,
            &v1.path,
            &v1.chunks(&["toner alpha", "toner beta", "legacy gamma"]),
        )
        .unwrap();
    index
        .replace_document(&other.kb, &other.path, &other.chunks(&["wifi toner"]))
        .unwrap();
    index.commit().unwrap();
    assert_eq!(index.count_chunks(&v1.kb, Some(&v1.path)).unwrap(), 3);

    index
        .replace_document(
            &v2.kb,
            &v2.path,
            &v2.chunks(&["toner delta", "toner epsilon"]),
        )
        .unwrap();
    index.commit().unwrap();

    assert_eq!(index.count_chunks(&v2.kb, Some(&v2.path)).unwrap(), 2);
    assert_eq!(index.count_chunks(&v2.kb, None).unwrap(), 3);
    assert!(
        index
            .search("legacy", std::slice::from_ref(&v1.kb), 10)
            .unwrap()
            .is_empty()
    );
    assert!(
        index
            .get_chunks(&[v1.id(0), v1.id(1), v1.id(2)])
            .unwrap()
            .is_empty()
    );
    let mut found = ids_of(
        &index
            .search("toner", std::slice::from_ref(&v1.kb), 10)
            .unwrap(),
    );
    found.sort();
    let mut expected = vec![v2.id(0), v2.id(1), other.id(0)];
    expected.sort();
    assert_eq!(found, expected);

    // Replacing twice before one commit keeps only the last version.
    index
        .replace_document(&v1.kb, &v1.path, &v1.chunks(&["toner again"]))
        .unwrap();
    index
        .replace_document(&v2.kb, &v2.path, &v2.chunks(&["final toner"]))
        .unwrap();
    index.commit().unwrap();
    assert_eq!(
        ids_of(
            &index
                .search("toner", std::slice::from_ref(&v2.kb), 10)
                .unwrap()
        )
        .len(),
        2
    );
    assert_eq!(
        index.get_chunks(&[v2.id(0)]).unwrap()[0].text,
        "final toner"
    );
    // The same chunk ids again in a later commit (with other text, which real ids never
    // have): the deleted copies in the older segment are skipped, the live ones served.
    index
        .replace_document(&v2.kb, &v2.path, &v2.chunks(&["final toner, revised"]))
        .unwrap();
    index.commit().unwrap();
    let again = index.get_chunks(&[v2.id(0)]).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].text, "final toner, revised");
}

pub fn a_scope_of_every_knowledge_base_stays_a_filter_once_another_arrives(
    index: Arc<dyn LexicalIndex>,
) {
    let a = Doc::new("a", "one.md", "v1");
    let b = Doc::new("b", "two.md", "v1");
    let late = Doc::new("late", "three.md", "v1");
    index
        .replace_document(&a.kb, &a.path, &a.chunks(&["boiler pressure check"]))
        .unwrap();
    index
        .replace_document(&b.kb, &b.path, &b.chunks(&["boiler pressure valve"]))
        .unwrap();
    index.commit().unwrap();
    let scope = [a.kb.clone(), b.kb.clone()];
    assert_eq!(index.search("boiler", &scope, 10).unwrap().len(), 2);

    // A knowledge base outside the scope, with the best match, in a later commit.
    index
        .replace_document(
            &late.kb,
            &late.path,
            &late.chunks(&["boiler boiler boiler pressure"]),
        )
        .unwrap();
    index.commit().unwrap();
    let hits = index.search("boiler", &scope, 10).unwrap();
    assert_eq!(sorted_ids(&hits), sorted(vec![a.id(0), b.id(0)]));
    let everything = [a.kb.clone(), b.kb.clone(), late.kb.clone()];
    let hits = index.search("boiler", &everything, 10).unwrap();
    assert_eq!(ids_of(&hits)[0], late.id(0));
    assert_eq!(hits.len(), 3);

    // Once every chunk of a knowledge base is deleted its documents only linger as deleted
    // ones: a scope without it still filters them out.
    index.delete_document(&b.kb, &b.path).unwrap();
    index.commit().unwrap();
    let hits = index
        .search("boiler", &[a.kb.clone(), late.kb.clone()], 10)
        .unwrap();
    assert_eq!(sorted_ids(&hits), sorted(vec![a.id(0), late.id(0)]));
}

pub fn delete_removes_only_that_document(index: Arc<dyn LexicalIndex>) {
    let gone = Doc::new("it", "old/gone.md", "v1");
    let kept = Doc::new("it", "kept.md", "v1");
    let same_path_other_kb = Doc::new("hr", "old/gone.md", "v1");
    index
        .replace_document(
            &gone.kb,
            &gone.path,
            &gone.chunks(&["badge office", "badge lost"]),
        )
        .unwrap();
    index
        .replace_document(&kept.kb, &kept.path, &kept.chunks(&["badge renewal"]))
        .unwrap();
    index
        .replace_document(
            &same_path_other_kb.kb,
            &same_path_other_kb.path,
            &same_path_other_kb.chunks(&["badge photo"]),
        )
        .unwrap();
    index.commit().unwrap();

    index.delete_document(&gone.kb, &gone.path).unwrap();
    assert_eq!(
        index.count_chunks(&gone.kb, Some(&gone.path)).unwrap(),
        2,
        "not before commit"
    );
    index.commit().unwrap();

    assert_eq!(index.count_chunks(&gone.kb, Some(&gone.path)).unwrap(), 0);
    assert_eq!(index.count_chunks(&gone.kb, None).unwrap(), 1);
    assert_eq!(
        index
            .count_chunks(&same_path_other_kb.kb, Some(&same_path_other_kb.path))
            .unwrap(),
        1
    );
    assert_eq!(
        ids_of(
            &index
                .search("badge", std::slice::from_ref(&gone.kb), 10)
                .unwrap()
        ),
        [kept.id(0)]
    );
}

pub fn chinese_indonesian_and_accented_queries_find_their_chunks(index: Arc<dyn LexicalIndex>) {
    let zh = Doc::new("it", "zh/vpn.md", "v1");
    let id = Doc::new("it", "id/vpn.md", "v1");
    let fr = Doc::new("it", "fr/menu.md", "v1");
    index
        .replace_document(
            &zh.kb,
            &zh.path,
            &zh.chunks(&[
                "VPN连接失败时，请先检查网络设置，然后重启客户端。",
                "打印机卡纸请联系行政部。",
            ]),
        )
        .unwrap();
    index
        .replace_document(
            &id.kb,
            &id.path,
            &id.chunks(&["Jika koneksi VPN gagal, periksa pengaturan jaringan."]),
        )
        .unwrap();
    index
        .replace_document(
            &fr.kb,
            &fr.path,
            &fr.chunks(&["Le café est au deuxième étage."]),
        )
        .unwrap();
    index.commit().unwrap();
    let kbs = [zh.kb.clone()];

    assert_eq!(
        ids_of(&index.search("连接失败怎么办", &kbs, 10).unwrap()),
        [zh.id(0)]
    );
    assert_eq!(
        ids_of(&index.search("打印机", &kbs, 10).unwrap()),
        [zh.id(1)]
    );
    assert_eq!(
        ids_of(&index.search("Koneksi GAGAL", &kbs, 10).unwrap()),
        [id.id(0)]
    );
    assert_eq!(
        ids_of(&index.search("cafe etage", &kbs, 10).unwrap()),
        [fr.id(0)]
    );
    assert!(index.search("飞机", &kbs, 10).unwrap().is_empty());
}

pub fn headings_and_titles_are_searched_with_every_chunk(index: Arc<dyn LexicalIndex>) {
    let doc = Doc::new("it", "vpn-access.md", "v1");
    let mut chunks = doc.chunks(&[
        "The device certificate is older than one year.",
        "Try a phone hotspot.",
    ]);
    chunks[0].citation.heading_path = vec!["Error codes".into(), "ERR-VPN-809: expired".into()];
    chunks[1].citation.heading_path = vec!["Error codes".into(), "ERR-VPN-831: blocked".into()];
    index.replace_document(&doc.kb, &doc.path, &chunks).unwrap();
    index.commit().unwrap();

    // The code is only in the first chunk's heading: it is found by it, and returned as the
    // document's words alone.
    let hits = index
        .search(
            "what does ERR-VPN-809 mean",
            std::slice::from_ref(&doc.kb),
            10,
        )
        .unwrap();
    assert_eq!(ids_of(&hits)[0], doc.id(0), "{hits:?}");
    assert_eq!(hits[0].chunk.text, chunks[0].text);
    assert_eq!(
        hits[0].chunk.citation.heading_path,
        chunks[0].citation.heading_path
    );
    // The title ("vpn-access.md", not the file stem) is in every chunk.
    assert_eq!(
        index
            .search("access", std::slice::from_ref(&doc.kb), 10)
            .unwrap()
            .len(),
        2
    );
}

pub fn coverage_is_the_share_of_the_query_weight_a_chunk_holds(index: Arc<dyn LexicalIndex>) {
    let doc = Doc::new("plant", "notes.md", "v1");
    let chunks = doc.chunks(&[
        "hydraulic pump seal replaced",
        "hydraulic oil too warm",
        "pump noise on line two",
        "chiller overhaul finished",
    ]);
    index.replace_document(&doc.kb, &doc.path, &chunks).unwrap();
    index.commit().unwrap();
    let hits = index
        .search("hydraulic pump seal", std::slice::from_ref(&doc.kb), 10)
        .unwrap();
    let coverage = |id| {
        hits.iter()
            .find(|hit| hit.chunk.id == id)
            .map(|hit| hit.coverage)
            .unwrap()
    };
    assert!((coverage(doc.id(0)) - 1.0).abs() < 1e-6, "{hits:?}");
    let (oil, noise) = (coverage(doc.id(1)), coverage(doc.id(2)));
    assert!(oil > 0.0 && oil < 0.5, "{oil}");
    assert!(noise > 0.0 && noise < 0.5, "{noise}");
    assert!(
        hits.iter().all(|hit| hit.chunk.id != doc.id(3)),
        "no term, no hit"
    );

    // The weights behind it: the rarer term weighs more; function words are not terms.
    let weights = index
        .snapshot()
        .term_weights("the hydraulic seal of the pump")
        .unwrap();
    let terms: Vec<&str> = weights.iter().map(|(term, _)| term.as_str()).collect();
    assert_eq!(terms, ["hydraul", "seal", "pump"]);
    assert!(weights[1].1 > weights[0].1, "{weights:?}");
}

pub fn user_text_never_breaks_the_query(index: Arc<dyn LexicalIndex>) {
    let doc = Doc::new("it", "a.md", "v1");
    index
        .replace_document(&doc.kb, &doc.path, &doc.chunks(&["title and body text"]))
        .unwrap();
    index.commit().unwrap();
    let kbs = [doc.kb.clone()];

    for nothing in ["", "   ", "?!.,;:()[]{}", "，。！？", "***"] {
        assert!(
            index.search(nothing, &kbs, 10).unwrap().is_empty(),
            "{nothing:?}"
        );
    }
    for syntax in [
        "title:\"body AND (",
        "body^^ -+ ~2",
        "text:* OR NOT",
        "body\0\u{FFFF}",
    ] {
        assert_eq!(
            ids_of(&index.search(syntax, &kbs, 10).unwrap()),
            [doc.id(0)],
            "{syntax:?}"
        );
    }
}

pub fn chunks_of_another_document_are_rejected(index: Arc<dyn LexicalIndex>) {
    let doc = Doc::new("it", "a.md", "v1");
    let other = Doc::new("it", "b.md", "v1");
    let err = index
        .replace_document(&doc.kb, &doc.path, &other.chunks(&["x"]))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    index.commit().unwrap();
    assert_eq!(index.count_chunks(&kb("it"), None).unwrap(), 0);
    assert_eq!(
        index.count_chunks(&kb("it"), Some(&path("b.md"))).unwrap(),
        0
    );
}

pub fn concurrent_writers_and_readers_share_one_index(index: Arc<dyn LexicalIndex>) {
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let index = Arc::clone(&index);
            std::thread::spawn(move || {
                for n in 0..10 {
                    let doc = Doc::new("it", &format!("t{t}/doc{n}.md"), "v1");
                    index
                        .replace_document(
                            &doc.kb,
                            &doc.path,
                            &doc.chunks(&["shared word", "other"]),
                        )
                        .unwrap();
                    if n % 3 == 0 {
                        index.commit().unwrap();
                    }
                    index
                        .search("shared", std::slice::from_ref(&doc.kb), 5)
                        .unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    index.commit().unwrap();
    assert_eq!(index.count_chunks(&kb("it"), None).unwrap(), 80);
    assert_eq!(index.search("shared", &[kb("it")], 100).unwrap().len(), 40);
}

pub fn generations_of_one_knowledge_base_are_apart(index: Arc<dyn LexicalIndex>) {
    let live = Doc::new("hr", "leave.md", "v1");
    let next = Doc::in_generation(kb_generation("hr", 2), "leave.md", "v1");
    index
        .replace_document(
            &live.kb,
            &live.path,
            &live.chunks(&["annual leave request form"]),
        )
        .unwrap();
    index
        .replace_document(
            &next.kb,
            &next.path,
            &next.chunks(&["annual leave request, rebuilt", "leave balance"]),
        )
        .unwrap();
    index.commit().unwrap();
    // The same document at two generations: different chunk ids, counted and searched apart.
    assert_ne!(live.id(0), next.id(0));
    assert_eq!(index.count_chunks(&live.kb, None).unwrap(), 1);
    assert_eq!(index.count_chunks(&next.kb, Some(&next.path)).unwrap(), 2);
    let found = index
        .search("leave", std::slice::from_ref(&live.kb), 10)
        .unwrap();
    assert_eq!(ids_of(&found), [live.id(0)]);
    assert_eq!(found[0].chunk.citation.kb.as_str(), "hr");
    let found = index
        .search("leave", std::slice::from_ref(&next.kb), 10)
        .unwrap();
    assert_eq!(sorted_ids(&found), sorted(vec![next.id(0), next.id(1)]));
    assert!(
        found
            .iter()
            .all(|hit| hit.chunk.citation.kb.as_str() == "hr")
    );

    // Deleting the document from one generation leaves the other whole.
    index.delete_document(&live.kb, &live.path).unwrap();
    index.commit().unwrap();
    assert_eq!(index.count_chunks(&live.kb, None).unwrap(), 0);
    assert_eq!(index.count_chunks(&next.kb, None).unwrap(), 2);
    assert_eq!(
        index.get_chunks(&[next.id(1)]).unwrap()[0].text,
        "leave balance"
    );

    // A whole generation goes at the commit; other knowledge bases stay.
    let other = Doc::new("hrx", "leave.md", "v1");
    index
        .replace_document(&other.kb, &other.path, &other.chunks(&["leave policy"]))
        .unwrap();
    index.delete_generation(&next.kb).unwrap();
    assert_eq!(index.count_chunks(&next.kb, None).unwrap(), 2);
    index.commit().unwrap();
    assert_eq!(index.count_chunks(&next.kb, None).unwrap(), 0);
    assert!(
        index
            .get_chunks(&[next.id(0), next.id(1)])
            .unwrap()
            .is_empty()
    );
    assert_eq!(index.count_chunks(&other.kb, None).unwrap(), 1);
}
