//! `lumbung mcp`: the MCP server of `lumbung-server` on stdin/stdout, for an assistant that
//! starts its tools as local processes. It holds no index: every tool call is a gRPC call to a
//! running service, made with this process's token, so the token's scope applies as it does
//! over HTTP.

use std::sync::Arc;

use anyhow::Context;
use lumbung_proto::v1;
use lumbung_proto::v1::knowledge_service_client::KnowledgeServiceClient;
use lumbung_server::{Knowledge, McpServer};
use rmcp::ServiceExt;
use tonic::Status;
use tonic::metadata::MetadataMap;

use crate::McpArgs;
use crate::client::{Authorized, knowledge_client};

/// The knowledge service of a running lumbung, over gRPC. The caller's metadata is empty on
/// stdio; the client's interceptor adds the token.
struct RemoteKnowledge(KnowledgeServiceClient<Authorized>);

impl Knowledge for RemoteKnowledge {
    async fn search(
        &self,
        _metadata: MetadataMap,
        request: v1::SearchRequest,
    ) -> Result<v1::SearchResponse, Status> {
        let mut client = self.0.clone();
        Ok(client.search(request).await?.into_inner())
    }

    async fn ask(
        &self,
        _metadata: MetadataMap,
        request: v1::AskRequest,
    ) -> Result<v1::AskResponse, Status> {
        let mut client = self.0.clone();
        Ok(client.ask(request).await?.into_inner())
    }

    async fn list(
        &self,
        _metadata: MetadataMap,
        request: v1::ListKnowledgeBasesRequest,
    ) -> Result<v1::ListKnowledgeBasesResponse, Status> {
        let mut client = self.0.clone();
        Ok(client.list_knowledge_bases(request).await?.into_inner())
    }
}

pub async fn serve_stdio(args: McpArgs) -> anyhow::Result<()> {
    let client = knowledge_client(&args.client).await?;
    let server = McpServer::new(Arc::new(RemoteKnowledge(client)));
    let running = server
        .serve(rmcp::transport::stdio())
        .await
        .context("starting the MCP session on stdio")?;
    running.waiting().await.context("the MCP session")?;
    Ok(())
}
