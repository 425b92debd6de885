//! The knowledge bases mix Chinese, Indonesian and English, and a question in one language must
//! find the answer written in another.

use crate::support::{dot, embedder};

const ZH_WELDING: &str =
    "焊接作业时必须佩戴焊接面罩、阻燃手套和绝缘安全鞋，并确保作业区域通风良好。";
const ZH_CANTEEN: &str = "员工食堂每天中午十一点半开放，提供米饭、面条和时令蔬菜。";
const ID_WELDING: &str = "Saat mengelas, pekerja wajib memakai topeng las, sarung tangan tahan api dan sepatu keselamatan.";
const ID_CANTEEN: &str =
    "Kantin karyawan buka setiap hari pukul 11.30 dan menyediakan nasi serta mi.";

/// Asserts that `query` scores the relevant passage clearly above the unrelated one.
fn assert_prefers(query: &str, relevant: &str, unrelated: &str) {
    let embedder = embedder();
    let q = embedder.embed_query(query).unwrap();
    let p = embedder.embed_passages(&[relevant, unrelated]).unwrap();
    let (relevant, unrelated) = (dot(&q, &p[0]), dot(&q, &p[1]));
    assert!(
        relevant > unrelated + 0.03,
        "relevant {relevant} vs unrelated {unrelated}"
    );
}

#[test]
fn an_english_question_finds_the_chinese_answer() {
    assert_prefers(
        "What protective equipment is required when welding?",
        ZH_WELDING,
        ZH_CANTEEN,
    );
}

#[test]
fn an_english_question_finds_the_indonesian_answer() {
    assert_prefers(
        "What protective equipment is required when welding?",
        ID_WELDING,
        ID_CANTEEN,
    );
}

#[test]
fn an_indonesian_question_finds_the_chinese_answer() {
    assert_prefers(
        "Alat pelindung diri apa yang wajib dipakai saat mengelas?",
        ZH_WELDING,
        ZH_CANTEEN,
    );
}

#[test]
fn a_chinese_question_finds_the_indonesian_answer() {
    assert_prefers("焊接时需要佩戴哪些防护用品？", ID_WELDING, ID_CANTEEN);
}
