//! Word, Excel, OpenDocument and CSV files, as content owners drop them into a folder.

use lumbung_extract::{ExtractedDocument, extract};

use crate::zipkit::package;
use crate::{doc_path, fixture};

fn outline(doc: &ExtractedDocument) -> Vec<(Vec<&str>, &str)> {
    doc.sections
        .iter()
        .map(|s| {
            let path = s.heading_path.iter().map(String::as_str).collect();
            (path, s.text.as_str())
        })
        .collect()
}

#[test]
fn docx_headings_paragraphs_lists_and_tables() {
    // Written by python-docx with Word's default template.
    let doc = extract(
        &doc_path("hse/welding-procedure.docx"),
        &fixture("welding-procedure.docx"),
    )
    .unwrap();
    assert_eq!(doc.title, "Welding Safety Procedure WS-04");
    assert_eq!(
        outline(&doc),
        vec![
            (
                vec!["Welding Safety"],
                "This procedure applies to all arc and gas welding in Hall B."
            ),
            (
                vec!["Welding Safety", "Before welding"],
                "Remove flammable material within 11 metres of the work.\n\
                 Check the extinguisher gauge.\n\
                 Obtain a hot work permit from the shift supervisor."
            ),
            (
                vec!["Welding Safety", "Before welding", "Shielding gas"],
                "Use the flow rates below for MIG welding of mild steel.\n\n\
                 Gas: Argon 82% / CO2 18%; Flow (l/min): 15; Wire: 0.8 mm\n\
                 Gas: CO2; Flow (l/min): 12; Wire: 1.0 mm\n\n\
                 Close the cylinder valve after the shift."
            ),
            (
                vec!["Welding Safety", "After welding"],
                "Keep a fire watch for 30 minutes after the last weld. 焊接后保持30分钟火灾监护。"
            ),
        ]
    );
}

const RELS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>"#;

/// Style ids as a Chinese Word writes them: numbers, with the English name inside.
const LOCALISED_STYLES: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<w:styles xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">
<w:style w:type="paragraph" w:default="1" w:styleId="a"><w:name w:val="Normal"/></w:style>
<w:style w:type="paragraph" w:styleId="1"><w:name w:val="heading 1"/><w:basedOn w:val="a"/><w:pPr><w:outlineLvl w:val="0"/></w:pPr></w:style>
<w:style w:type="paragraph" w:styleId="2"><w:name w:val="heading 2"/><w:basedOn w:val="a"/></w:style>
<w:style w:type="paragraph" w:styleId="a3"><w:name w:val="Title"/></w:style>
<w:style w:type="paragraph" w:styleId="Step"><w:name w:val="Procedure Step"/><w:basedOn w:val="2"/></w:style>
<w:style w:type="paragraph" w:styleId="a5"><w:name w:val="List Paragraph"/><w:pPr><w:numPr><w:numId w:val="1"/></w:numPr></w:pPr></w:style>
<w:style w:type="character" w:styleId="1Char"><w:name w:val="heading 1 char"/></w:style>
</w:styles>"#;

const DOCUMENT: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006" xmlns:wps="http://schemas.microsoft.com/office/word/2010/wordprocessingShape">
<w:body>
<w:p><w:pPr><w:pStyle w:val="a3"/></w:pPr><w:r><w:t>叉车操作规程</w:t></w:r></w:p>
<w:p><w:r><w:t xml:space="preserve">Scope: forklifts </w:t></w:r><w:r><w:t>&amp; reach trucks</w:t></w:r><w:r><w:tab/><w:t>(Hall B)</w:t></w:r></w:p>
<w:p><w:pPr><w:pStyle w:val="1"/></w:pPr><w:r><w:t>Before driving</w:t></w:r></w:p>
<w:p><w:pPr><w:pStyle w:val="a5"/></w:pPr><w:r><w:t>Check the horn.</w:t></w:r></w:p>
<w:p><w:pPr><w:pStyle w:val="a5"/></w:pPr><w:r><w:t>Check the forks.</w:t></w:r></w:p>
<w:p><w:r><w:t>Speed limit </w:t></w:r><w:del><w:r><w:delText>10</w:delText></w:r></w:del><w:ins><w:r><w:t>5</w:t></w:r></w:ins><w:r><w:t xml:space="preserve"> km/h.</w:t></w:r></w:p>
<w:p><w:r><w:t>See the sign.</w:t></w:r><w:r><mc:AlternateContent><mc:Choice Requires="wps"><w:drawing><wps:txbx><w:txbxContent><w:p><w:r><w:t>Pedestrians first</w:t></w:r></w:p></w:txbxContent></wps:txbx></w:drawing></mc:Choice><mc:Fallback><w:pict><w:txbxContent><w:p><w:r><w:t>Pedestrians first</w:t></w:r></w:p></w:txbxContent></w:pict></mc:Fallback></mc:AlternateContent></w:r></w:p>
<w:p><w:pPr><w:pStyle w:val="Step"/><w:pPrChange w:id="1" w:author="x"><w:pPr><w:pStyle w:val="1"/></w:pPr></w:pPrChange></w:pPr><w:r><w:t>Loading</w:t></w:r></w:p>
<w:tbl>
<w:tr><w:tc><w:p><w:r><w:t>Load</w:t></w:r></w:p></w:tc><w:tc><w:p><w:pPr><w:pStyle w:val="1"/></w:pPr><w:r><w:t>Max height</w:t></w:r></w:p></w:tc></w:tr>
<w:tr><w:tc><w:p><w:r><w:t>Pallet</w:t></w:r></w:p><w:p><w:r><w:t>(1.2 t)</w:t></w:r></w:p></w:tc><w:tc><w:tbl><w:tr><w:tc><w:p><w:r><w:t>Indoor</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>3 m</w:t></w:r></w:p></w:tc></w:tr><w:tr><w:tc><w:p><w:r><w:t>Yard</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>2 m</w:t></w:r></w:p></w:tc></w:tr></w:tbl></w:tc></w:tr>
<w:tr><w:tc><w:p/></w:tc><w:tc><w:p/></w:tc></w:tr>
</w:tbl>
<w:p><w:pPr><w:outlineLvl w:val="0"/></w:pPr><w:r><w:t>After</w:t></w:r><w:r><w:br/><w:t>driving</w:t></w:r></w:p>
<w:p><w:r><w:t>Park with the forks down.</w:t></w:r></w:p>
<w:sectPr/>
</w:body>
</w:document>"#;

#[test]
fn docx_localised_styles_text_boxes_tracked_changes_and_nested_tables() {
    let bytes = package(&[
        ("_rels/.rels", RELS.as_bytes()),
        ("word/styles.xml", LOCALISED_STYLES.as_bytes()),
        ("word/document.xml", DOCUMENT.as_bytes()),
    ]);
    let doc = extract(&doc_path("forklift.docx"), &bytes).unwrap();
    // No document properties: the first heading (the Title paragraph) names the document.
    assert_eq!(doc.title, "叉车操作规程");
    assert_eq!(
        outline(&doc),
        vec![
            (
                vec!["叉车操作规程"],
                "Scope: forklifts & reach trucks (Hall B)"
            ),
            (
                vec!["叉车操作规程", "Before driving"],
                // The deleted "10" is gone, the inserted "5" kept; the text box appears once.
                "Check the horn.\nCheck the forks.\n\nSpeed limit 5 km/h.\n\n\
                 See the sign.\nPedestrians first"
            ),
            (
                // "Step" is based on heading 2; the tracked change's old style is ignored.
                vec!["叉车操作规程", "Before driving", "Loading"],
                "Load: Pallet (1.2 t); Max height: Indoor | 3 m / Yard | 2 m"
            ),
            (
                vec!["叉车操作规程", "After driving"],
                "Park with the forks down."
            ),
        ]
    );
}

#[test]
fn docx_without_styles_or_properties_uses_builtin_heading_names() {
    let document = r#"<w:document xmlns:w="w"><w:body>
        <w:p><w:pPr><w:pStyle w:val="Heading2"/></w:pPr><w:r><w:t>Gas cylinders</w:t></w:r></w:p>
        <w:p><w:r><w:t>Chain them upright.</w:t></w:r></w:p>
        </w:body></w:document>"#;
    let bytes = package(&[("word/document.xml", document.as_bytes())]);
    let doc = extract(&doc_path("ops/cylinders.docx"), &bytes).unwrap();
    assert_eq!(doc.title, "Gas cylinders");
    assert_eq!(
        outline(&doc),
        vec![(vec!["Gas cylinders"], "Chain them upright.")]
    );
}

#[test]
fn xlsx_rows_answer_questions_about_a_cell() {
    // Written by openpyxl: a title row, a blank row, then the table; dates, percentages.
    let doc = extract(
        &doc_path("production/production-q3.xlsx"),
        &fixture("production-q3.xlsx"),
    )
    .unwrap();
    assert_eq!(doc.title, "Hall B Production Q3 2026");
    let sheets: Vec<&[String]> = doc.sections.iter().map(|s| &s.heading_path[..]).collect();
    // The empty third sheet gives no section.
    assert_eq!(sheets, [["Hall B Q3"], ["Downtime"]]);
    let rows: Vec<&str> = doc.sections[0].text.lines().collect();
    assert_eq!(
        rows,
        [
            "Hall B production, Q3 2026",
            "Date: 2026-07-01; Line: L1; Product: PPR-9087; Output (pcs): 97160; Scrap rate: 2.2%; OEE: 78.4%",
            "Date: 2026-07-01; Line: L2; Product: PPR-9090; Output (pcs): 81000; Scrap rate: 1.5%; OEE: 81.0%",
            "Date: 2026-07-02; Line: L1; Product: PPR-9087; Output (pcs): 95500.5; Scrap rate: 3.1%; OEE: 76.2%",
        ]
    );
    // "What was the scrap rate of PPR-9090?" is answered by one row.
    let row = rows
        .iter()
        .find(|r| r.contains("Product: PPR-9090"))
        .unwrap();
    assert!(row.contains("Scrap rate: 1.5%"), "{row}");
    assert_eq!(
        doc.sections[1].text,
        "Line: L2; Cause: Barrel heater band zone 3; Minutes: 145\n\
         Line: L1; Cause: Mould change; Minutes: 40"
    );
}

#[test]
fn xls_rows_name_their_columns() {
    // Written by xlwt (Excel 97-2003). calamine does not expose XLS number formats, so
    // percentages read as fractions.
    let doc = extract(
        &doc_path("production/production-q3.xls"),
        &fixture("production-q3.xls"),
    )
    .unwrap();
    assert_eq!(doc.title, "production-q3");
    assert_eq!(doc.sections.len(), 2);
    assert_eq!(doc.sections[0].heading_path, ["Hall B Q3"]);
    assert_eq!(
        doc.sections[0].text.lines().nth(1).unwrap(),
        "Date: 2026-07-01; Line: L2; Product: PPR-9090; Output (pcs): 81000; \
         Scrap rate: 0.015; OEE: 0.81"
    );
    assert_eq!(doc.sections[1].heading_path, ["停机"]);
    assert_eq!(doc.sections[1].text, "产线: L2; 原因: 加热圈故障");
}

#[test]
fn ods_rows_name_their_columns_and_repeated_blank_rows_vanish() {
    let doc = extract(&doc_path("gudang/stok.ods"), &fixture("stok-gudang.ods")).unwrap();
    assert_eq!(
        outline(&doc),
        vec![(
            vec!["Stok Gudang"],
            "Kode: BT-08; Nama barang: Baut M8; Jumlah: 1200\n\
             Kode: MR-08; Nama barang: Mur M8; Jumlah: 950"
        )]
    );
}

#[test]
fn csv_as_excel_saves_it() {
    // "CSV UTF-8" from Excel: a byte-order mark, CRLF, a quoted comma, an empty row.
    let doc = extract(&doc_path("line-output.csv"), &fixture("line-output.csv")).unwrap();
    assert_eq!(doc.title, "line-output");
    assert_eq!(
        outline(&doc),
        vec![(
            vec![],
            "Date: 2026-07-01; Line: L1; Product: PPR-9087; Output (pcs): 97160; Scrap rate: 2.2%\n\
             Date: 2026-07-01; Line: L2; Product: PPR-9090, blue; Output (pcs): 81000; Scrap rate: 1.5%\n\
             Date: 2026-07-02; Line: L1; Product: PPR-9087; Output (pcs): 95500; Scrap rate: 3.1%"
        )]
    );
}

#[test]
fn csv_from_a_chinese_excel_is_gbk_with_semicolons() {
    let text = "产线;产品;产量;备注\r\nL1;PPR-9087;97160;正常\r\nL2;PPR-9090;81000;加热圈故障停机两小时\r\n";
    let (gbk, _, unmappable) = encoding_rs::GBK.encode(text);
    assert!(!unmappable);
    let doc = extract(&doc_path("产量.csv"), &gbk).unwrap();
    assert_eq!(
        doc.sections[0].text,
        "产线: L1; 产品: PPR-9087; 产量: 97160; 备注: 正常\n\
         产线: L2; 产品: PPR-9090; 产量: 81000; 备注: 加热圈故障停机两小时"
    );
}
