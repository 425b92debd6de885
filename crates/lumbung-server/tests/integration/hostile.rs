use std::future::Future;
use std::pin::Pin;

use lumbung_proto::v1;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::harness;

type Call = Pin<Box<dyn Future<Output = Result<(), Status>> + Send>>;

/// Sends raw bytes as a request message and reads the response as raw bytes: how a broken or
/// hostile client looks to the server.
#[derive(Default)]
struct RawBytesCodec;

impl Codec for RawBytesCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawBytesCodec;
    type Decoder = RawBytesCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawBytesCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawBytesCodec
    }
}

impl Encoder for RawBytesCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl Decoder for RawBytesCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let bytes = bytes::Buf::copy_to_bytes(src, bytes::Buf::remaining(src));
        Ok(Some(bytes.to_vec()))
    }
}

fn raw(channel: &Channel, path: &'static str, body: Vec<u8>) -> Call {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    Box::pin(async move {
        grpc.ready()
            .await
            .map_err(|err| Status::unknown(err.to_string()))?;
        grpc.unary(
            tonic::Request::new(body),
            path.parse().unwrap(),
            RawBytesCodec,
        )
        .await
        .map(drop)
    })
}

/// Malformed, oversized and expired requests to every RPC, each answered with its code and a
/// message naming what is wrong, and nothing else disturbed: afterwards the same search
/// returns the same passages and the counts of every knowledge base are unchanged. The table
/// is the one in docs/operations.md.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_their_code_and_disturb_nothing() {
    let channel = harness::channel().await;
    let knowledge = harness::knowledge().await;
    let admin = harness::admin().await;
    let probe = v1::SearchRequest {
        query: "How do I reset my password?".into(),
        knowledge_bases: vec!["it-helpdesk".into()],
        top_k: 5,
        ..Default::default()
    };
    let before = knowledge.clone().search(probe.clone()).await.unwrap();
    let status_before = admin
        .clone()
        .get_ingest_status(v1::GetIngestStatusRequest::default())
        .await
        .unwrap()
        .into_inner();

    let search = |request: v1::SearchRequest| -> Call {
        let mut client = knowledge.clone();
        Box::pin(async move { client.search(request).await.map(drop) })
    };
    let ask = |request: v1::AskRequest| -> Call {
        let mut client = knowledge.clone();
        Box::pin(async move { client.ask(request).await.map(drop) })
    };
    let list = |request: v1::ListKnowledgeBasesRequest| -> Call {
        let mut client = knowledge.clone();
        Box::pin(async move { client.list_knowledge_bases(request).await.map(drop) })
    };
    let status = |request: v1::GetIngestStatusRequest| -> Call {
        let mut client = admin.clone();
        Box::pin(async move { client.get_ingest_status(request).await.map(drop) })
    };
    let reindex = |request: v1::ReindexRequest| -> Call {
        let mut client = admin.clone();
        Box::pin(async move { client.reindex(request).await.map(drop) })
    };
    let gaps = |request: v1::ListGapsRequest| -> Call {
        let mut client = admin.clone();
        Box::pin(async move { client.list_gaps(request).await.map(drop) })
    };
    let explain = |request: v1::ExplainAnswerRequest| -> Call {
        let mut client = admin.clone();
        Box::pin(async move { client.explain_answer(request).await.map(drop) })
    };
    let decide = |request: v1::SetAnswerDecisionRequest| -> Call {
        let mut client = admin.clone();
        Box::pin(async move { client.set_answer_decision(request).await.map(drop) })
    };
    let query = |text: String| v1::SearchRequest {
        query: text,
        top_k: 5,
        ..Default::default()
    };

    let cases: Vec<(&str, Call, Code, &str)> = vec![
        (
            "empty query",
            search(query(String::new())),
            Code::InvalidArgument,
            "query",
        ),
        (
            "query over 2,000 characters",
            search(query("维修".repeat(1_001))),
            Code::InvalidArgument,
            "query",
        ),
        (
            "top_k over the maximum",
            search(v1::SearchRequest {
                top_k: u32::MAX,
                ..query("vpn".into())
            }),
            Code::InvalidArgument,
            "top_k",
        ),
        (
            "unknown retriever",
            search(v1::SearchRequest {
                retriever: 77,
                ..query("vpn".into())
            }),
            Code::InvalidArgument,
            "retriever",
        ),
        (
            "knowledge-base name with a path",
            search(v1::SearchRequest {
                knowledge_bases: vec!["../it-helpdesk".into()],
                ..query("vpn".into())
            }),
            Code::InvalidArgument,
            "knowledge_bases",
        ),
        (
            "message over server.max_request_bytes",
            search(query("a".repeat(100_000))),
            Code::OutOfRange,
            "too large",
        ),
        (
            "ten thousand knowledge bases",
            search(v1::SearchRequest {
                knowledge_bases: (0..10_000).map(|i| format!("kb-{i}")).collect(),
                ..query("vpn".into())
            }),
            Code::OutOfRange,
            "too large",
        ),
        (
            "bytes that are no protobuf message",
            raw(
                &channel,
                "/lumbung.v1.KnowledgeService/Search",
                vec![0xff; 64],
            ),
            Code::Internal,
            "decode",
        ),
        (
            "a string field that is not UTF-8",
            // Field 1 (query), length 2, then two bytes no UTF-8 text holds.
            raw(
                &channel,
                "/lumbung.v1.KnowledgeService/Search",
                vec![0x0a, 0x02, 0xc3, 0x28],
            ),
            Code::Internal,
            "decode",
        ),
        (
            "a method that does not exist",
            raw(&channel, "/lumbung.v1.KnowledgeService/DropAll", Vec::new()),
            Code::Unimplemented,
            "",
        ),
        (
            "a deadline shorter than any search",
            {
                let mut client = knowledge.clone();
                let mut request = tonic::Request::new(query("vpn".into()));
                request.set_timeout(std::time::Duration::from_millis(1));
                Box::pin(async move { client.search(request).await.map(drop) })
            },
            Code::Cancelled,
            "Timeout expired",
        ),
        (
            "empty question",
            ask(v1::AskRequest {
                question: " ".into(),
                ..Default::default()
            }),
            Code::InvalidArgument,
            "question",
        ),
        (
            "ask in a missing knowledge base",
            ask(v1::AskRequest {
                question: "Who approves hot work?".into(),
                knowledge_bases: vec!["no-such-kb".into()],
                max_sentences: 3,
            }),
            Code::NotFound,
            "no-such-kb",
        ),
        (
            "page size over the maximum",
            list(v1::ListKnowledgeBasesRequest {
                page_size: 1_000_000,
                page_token: String::new(),
            }),
            Code::InvalidArgument,
            "page_size",
        ),
        (
            "forged page token",
            list(v1::ListKnowledgeBasesRequest {
                page_size: 1,
                page_token: "\u{0}; DROP".into(),
            }),
            Code::InvalidArgument,
            "page_token",
        ),
        (
            "status of an invalid name",
            status(v1::GetIngestStatusRequest {
                knowledge_base: "IT Helpdesk".into(),
                include_documents: true,
            }),
            Code::InvalidArgument,
            "knowledge_base",
        ),
        (
            "status of a missing knowledge base",
            status(v1::GetIngestStatusRequest {
                knowledge_base: "no-such-kb".into(),
                include_documents: false,
            }),
            Code::NotFound,
            "no-such-kb",
        ),
        (
            "reindex without a name",
            reindex(v1::ReindexRequest::default()),
            Code::InvalidArgument,
            "knowledge_base",
        ),
        (
            "reindex of a missing knowledge base",
            reindex(v1::ReindexRequest {
                knowledge_base: "no-such-kb".into(),
            }),
            Code::NotFound,
            "no-such-kb",
        ),
        (
            "gaps without a name",
            gaps(v1::ListGapsRequest::default()),
            Code::InvalidArgument,
            "knowledge_base",
        ),
        (
            "explain an empty question",
            explain(v1::ExplainAnswerRequest::default()),
            Code::InvalidArgument,
            "question",
        ),
        (
            "decision that is not JSON",
            decide(v1::SetAnswerDecisionRequest {
                parameters: "{{{".into(),
            }),
            Code::InvalidArgument,
            "parameters",
        ),
        (
            "decision with the wrong features",
            decide(v1::SetAnswerDecisionRequest {
                parameters: r#"{"format":1,"fitted_on":"x","features":["a"],"weights":[1.0],"bias":0.0,"means":[0.0],"scales":[1.0]}"#.into(),
            }),
            Code::InvalidArgument,
            "parameters",
        ),
    ];
    for (what, call, code, names) in cases {
        let status = call.await.expect_err(what);
        assert_eq!(status.code(), code, "{what}: {status:?}");
        assert!(
            status.message().contains(names),
            "{what}: the message should name {names:?}: {}",
            status.message()
        );
    }

    let after = knowledge.clone().search(probe).await.unwrap();
    let ids = |response: &tonic::Response<v1::SearchResponse>| -> Vec<String> {
        response
            .get_ref()
            .passages
            .iter()
            .map(|p| p.chunk_id.clone())
            .collect()
    };
    assert_eq!(
        ids(&before),
        ids(&after),
        "the same search, the same passages"
    );
    let status_after = admin
        .clone()
        .get_ingest_status(v1::GetIngestStatusRequest::default())
        .await
        .unwrap()
        .into_inner();
    let counts = |response: &v1::GetIngestStatusResponse| -> Vec<(String, u32, u64)> {
        response
            .knowledge_bases
            .iter()
            .map(|kb| (kb.name.clone(), kb.documents_indexed, kb.chunks))
            .collect()
    };
    assert_eq!(counts(&status_before), counts(&status_after));
}
