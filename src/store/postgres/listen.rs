//! The server's wake-ups for appliers waiting for work: a connection of its own, outside
//! the pool, that `LISTEN`s on the queue's channel.
//!
//! Every queue write that lets a claim newly succeed (an enqueue, a release, a mark) runs
//! `pg_notify` in its transaction, and the server delivers it at commit to every listening
//! session, on every host. A pooled connection cannot listen: its messages are read by the
//! pool's own task, which drops notifications.

use core::future::poll_fn;
use core::time::Duration;

use tokio::sync::mpsc;
use tokio_postgres::AsyncMessage;

use crate::store::StoreError;
use crate::store::sql::WORK_CHANNEL;

use super::run::Core;
use super::sql_error;

/// How often a waiter looks again when its listening connection is gone (it then polls).
const POLL_WITHOUT_LISTENER: Duration = Duration::from_millis(50);

/// A listening connection and the notifications its task forwards.
pub(super) struct Listener {
    /// Kept for the connection's lifetime: dropping the client ends the session.
    _client: tokio_postgres::Client,
    heard: mpsc::UnboundedReceiver<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Listener {
    /// Opens the connection and listens (bounded by the store's connect timeout).
    pub(super) async fn start(core: &Core) -> Result<Self, StoreError> {
        let timeout = core.settings.timeout;
        let connected = tokio::time::timeout(timeout, core.config.connect(core.tls.clone())).await;
        let (client, mut connection) = match connected {
            Ok(result) => {
                result.map_err(|e| sql_error(e, "wait_for_work: connecting to listen"))?
            }
            Err(_) => {
                return Err(StoreError::Timeout {
                    operation: "wait_for_work",
                    waiting_for: "a connection to listen on",
                    after: timeout,
                    cause: None,
                });
            }
        };
        let (tell, heard) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            // Drives the connection; ends when it is closed or the waiter is gone.
            while let Some(Ok(message)) = poll_fn(|cx| connection.poll_message(cx)).await {
                if matches!(message, AsyncMessage::Notification(_)) && tell.send(()).is_err() {
                    break;
                }
            }
        });
        let listen = std::format!("LISTEN {WORK_CHANNEL}");
        match tokio::time::timeout(timeout, client.batch_execute(&listen)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                task.abort();
                return Err(sql_error(e, "wait_for_work: listening"));
            }
            Err(_) => {
                task.abort();
                return Err(StoreError::Timeout {
                    operation: "wait_for_work",
                    waiting_for: "the server to start listening",
                    after: timeout,
                    cause: None,
                });
            }
        }
        Ok(Self {
            _client: client,
            heard,
            task,
        })
    }

    /// Waits for a notification, at most `wait`; then takes every one already heard.
    pub(super) async fn next(&mut self, wait: Duration) {
        match tokio::time::timeout(wait, self.heard.recv()).await {
            Ok(Some(())) => while self.heard.try_recv().is_ok() {},
            // The connection is gone: look again now and then instead.
            Ok(None) => tokio::time::sleep(wait.min(POLL_WITHOUT_LISTENER)).await,
            Err(_) => {}
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}
