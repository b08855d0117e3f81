//! A client of the engine another pipedeck hosts, over the workspace's
//! socket. One connection carries calls (re-opened once when the engine
//! closed it under a read); each subscription has its own.

use std::path::PathBuf;

use tokio::sync::Mutex;

use super::{Backend, BoxFuture, Events};
use crate::api::{ApiError, Envelope, Reply, Request};
use crate::config::workspace::Workspace;
use crate::control::Client;

pub struct Remote {
    ws: Workspace,
    identity: String,
    user_agent: &'static str,
    pid: String,
    conn: Mutex<Option<Client>>,
}

impl Remote {
    pub fn new(ws: &Workspace, client: Client, user_agent: &'static str) -> Remote {
        let pid = std::fs::read_to_string(ws.lock_path())
            .unwrap_or_default()
            .trim()
            .to_owned();
        Remote {
            identity: ws.identity.clone(),
            ws: ws.clone(),
            user_agent,
            pid,
            conn: Mutex::new(Some(client)),
        }
    }

    fn socket(&self) -> PathBuf {
        self.ws.socket_path()
    }

    async fn connect(&self) -> Result<Client, ApiError> {
        Client::connect(&self.ws).await.ok_or_else(|| {
            ApiError::new(
                "EngineUnreachable",
                format!(
                    "the engine of workspace {} does not answer on {}",
                    self.ws.name,
                    self.socket().display()
                ),
            )
        })
    }
}

impl Backend for Remote {
    fn call(&self, request: Request) -> BoxFuture<'_, Result<Reply, ApiError>> {
        Box::pin(async move {
            super::refused_readonly(&request)?;
            let envelope = Envelope {
                identity: self.identity.clone(),
                user_agent: self.user_agent.into(),
                request,
            };
            let mut conn = self.conn.lock().await;
            let mut client = match conn.take() {
                Some(c) => c,
                None => self.connect().await?,
            };
            let mut r = client.call(envelope.clone()).await;
            // A read may be sent again on a fresh connection; a mutation
            // never is (it may have reached the engine).
            if matches!(&r, Err(e) if e.code == "EngineUnreachable")
                && !envelope.request.is_mutating()
            {
                client = self.connect().await?;
                r = client.call(envelope).await;
            }
            if !matches!(&r, Err(e) if e.code == "EngineUnreachable") {
                *conn = Some(client);
            }
            r
        })
    }

    fn subscribe(&self) -> BoxFuture<'_, Result<Events, ApiError>> {
        Box::pin(async move {
            let mut stream = self.connect().await?.subscribe().await?;
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            tokio::spawn(async move {
                while let Some(e) = stream.next().await {
                    if tx.send(e).is_err() {
                        return;
                    }
                }
            });
            Ok(Events::new(rx))
        })
    }

    fn describe(&self) -> String {
        format!("attached to engine pid {}", self.pid)
    }

    fn hosted(&self) -> bool {
        false
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.conn.lock().await.take();
        })
    }
}
