//! Legacy SSE sessions across replicas: a session → replica record in Redis (its TTL renewed
//! every keep-alive period), a pub/sub channel per replica, and the relay of a `POST /message`
//! that lands on a replica not holding its session to the one that does, which runs the owner
//! check and answers whether it took the message.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::store::Store;
use crate::access::Identity;
use crate::admin::metrics::Metrics;
use crate::telemetry::RequestInfo;

/// What became of a message for a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// On its way to the session's handler.
    Accepted,
    /// No such session (closed, expired, or never opened).
    UnknownSession,
    /// The session belongs to another identity.
    Forbidden,
    /// The replica holding the session could not be asked (Redis down, no answer in time).
    Unavailable,
    /// The session owes as many answers as it may; the client should read its stream and retry.
    Busy,
}

impl Delivery {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::UnknownSession => "unknown_session",
            Self::Forbidden => "forbidden",
            Self::Unavailable => "unavailable",
            Self::Busy => "busy",
        }
    }
}

/// A client message relayed from another replica, as the holder of the session receives it.
pub struct RelayedMessage {
    pub identity: Arc<Identity>,
    pub request: RequestInfo,
    pub body: String,
}

/// The sessions this replica holds, as the relay sees them (implemented by the legacy SSE
/// session table).
pub trait LocalSessions: Send + Sync {
    /// Hands a relayed message to a session held here, after the owner check.
    fn deliver_relayed(
        &self,
        session_id: String,
        message: RelayedMessage,
    ) -> BoxFuture<'_, Delivery>;
    /// The ids of every session held here.
    fn session_ids(&self) -> Vec<String>;
}

/// What travels on a replica's channel.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Envelope {
    Deliver {
        relay_id: String,
        reply_to: String,
        session_id: String,
        identity: Box<Identity>,
        request_id: String,
        cf_ray: Option<String>,
        body: String,
    },
    Answer {
        relay_id: String,
        delivery: Delivery,
    },
}

pub struct SessionRelay {
    store: Arc<Store>,
    replica: String,
    channel: String,
    record_ttl: Duration,
    refresh_every: Duration,
    relay_timeout: Duration,
    pending: Mutex<HashMap<String, oneshot::Sender<Delivery>>>,
    local: OnceLock<Weak<dyn LocalSessions>>,
    metrics: Arc<Metrics>,
    /// The runtime the relay was built on: a stream dropped on an HTTP worker thread may run
    /// its clean-up outside any runtime context.
    runtime: tokio::runtime::Handle,
}

fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buffer);
    crate::hex::lower_hex(&buffer)
}

/// Removes a relay's waiting slot however the wait ends.
struct PendingSlot<'a> {
    relay: &'a SessionRelay,
    relay_id: String,
}

impl Drop for PendingSlot<'_> {
    fn drop(&mut self) {
        self.relay.pending_table().remove(&self.relay_id);
    }
}

impl SessionRelay {
    /// `keep_alive` is the SSE keep-alive period: records are renewed that often and live
    /// three times as long, so one missed renewal loses nothing. `runtime` runs the clean-up of
    /// closed sessions.
    pub fn new(
        store: Arc<Store>,
        keep_alive: Duration,
        relay_timeout: Duration,
        metrics: Arc<Metrics>,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        let replica = random_hex(8);
        let channel = store.key(&format!("replica:{replica}"));
        Self {
            store,
            replica,
            channel,
            record_ttl: (keep_alive * 3).max(Duration::from_secs(5)),
            refresh_every: keep_alive,
            relay_timeout,
            pending: Mutex::new(HashMap::new()),
            local: OnceLock::new(),
            metrics,
            runtime,
        }
    }

    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// Connects the relay to this replica's session table (once, at start-up).
    pub fn attach(&self, local: Weak<dyn LocalSessions>) {
        if self.local.set(local).is_err() {
            tracing::warn!("the SSE relay was attached twice; keeping the first table");
        }
    }

    fn pending_table(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<Delivery>>> {
        match self.pending.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn record_key(&self, session_id: &str) -> String {
        self.store.key(&format!("sse:{session_id}"))
    }

    fn ttl_ms(&self) -> u64 {
        u64::try_from(self.record_ttl.as_millis()).unwrap_or(u64::MAX)
    }

    /// Records that this replica holds `session_id`. Best effort: with Redis down the session
    /// still works through this replica, and the renewal task writes the record when Redis is
    /// back.
    pub async fn register(&self, session_id: &str) {
        let key = self.record_key(session_id);
        let replica = self.replica.clone();
        let ttl = self.ttl_ms();
        let written = self
            .store
            .run(|mut connection| async move {
                redis::cmd("SET")
                    .arg(&key)
                    .arg(&replica)
                    .arg("PX")
                    .arg(ttl)
                    .query_async::<()>(&mut connection)
                    .await
            })
            .await;
        if let Err(error) = written {
            tracing::debug!(error = %error, "legacy SSE session not recorded in Redis yet");
        }
    }

    /// Deletes the record of a closed session, so no replica relays to it any more.
    pub fn forget(self: &Arc<Self>, session_id: &str) {
        let relay = Arc::clone(self);
        let key = self.record_key(session_id);
        self.runtime.spawn(async move {
            let deleted = relay
                .store
                .run(|mut connection| async move {
                    redis::cmd("DEL")
                        .arg(&key)
                        .query_async::<()>(&mut connection)
                        .await
                })
                .await;
            if let Err(error) = deleted {
                tracing::debug!(error = %error, "closed legacy SSE session left to expire in Redis");
            }
        });
    }

    /// Relays one client message for a session this replica does not hold.
    pub async fn forward(
        &self,
        session_id: &str,
        identity: &Identity,
        request: Option<&RequestInfo>,
        body: &[u8],
    ) -> Delivery {
        let delivery = self.try_forward(session_id, identity, request, body).await;
        self.metrics.record_relay(delivery.as_str());
        delivery
    }

    async fn try_forward(
        &self,
        session_id: &str,
        identity: &Identity,
        request: Option<&RequestInfo>,
        body: &[u8],
    ) -> Delivery {
        let key = self.record_key(session_id);
        let owner = self
            .store
            .run(|mut connection| async move {
                redis::cmd("GET")
                    .arg(&key)
                    .query_async::<Option<String>>(&mut connection)
                    .await
            })
            .await;
        let owner = match owner {
            Ok(Some(owner)) if owner != self.replica => owner,
            Ok(_) => return Delivery::UnknownSession,
            Err(error) => {
                tracing::warn!(error = %error, "cannot look up the replica of a legacy SSE session");
                return Delivery::Unavailable;
            }
        };
        let Ok(body) = std::str::from_utf8(body) else {
            return Delivery::UnknownSession;
        };
        let relay_id = random_hex(12);
        let envelope = Envelope::Deliver {
            relay_id: relay_id.clone(),
            reply_to: self.channel.clone(),
            session_id: session_id.to_owned(),
            identity: Box::new(identity.clone()),
            request_id: request
                .map(|info| info.request_id.to_string())
                .unwrap_or_default(),
            cf_ray: request.and_then(|info| info.cf_ray.as_deref().map(str::to_owned)),
            body: body.to_owned(),
        };
        let Ok(payload) = serde_json::to_string(&envelope) else {
            return Delivery::Unavailable;
        };
        let (answer_tx, answer_rx) = oneshot::channel();
        self.pending_table().insert(relay_id.clone(), answer_tx);
        let _slot = PendingSlot {
            relay: self,
            relay_id,
        };
        let channel = self.store.key(&format!("replica:{owner}"));
        let receivers = self
            .store
            .run(|mut connection| async move {
                redis::cmd("PUBLISH")
                    .arg(&channel)
                    .arg(&payload)
                    .query_async::<i64>(&mut connection)
                    .await
            })
            .await;
        match receivers {
            // The record names a replica nobody listens for: it is resubscribing (Redis just
            // came back) or gone (its record expires within the TTL). Not a dead session yet.
            Ok(0) => return Delivery::Unavailable,
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(error = %error, "cannot relay a legacy SSE message");
                return Delivery::Unavailable;
            }
        }
        match tokio::time::timeout(self.relay_timeout, answer_rx).await {
            Ok(Ok(delivery)) => delivery,
            _ => {
                tracing::warn!(
                    replica = %owner,
                    timeout = ?self.relay_timeout,
                    "the replica holding a legacy SSE session did not answer a relayed message"
                );
                Delivery::Unavailable
            }
        }
    }

    /// Listens on this replica's channel for as long as the process runs, resubscribing with
    /// back-off after Redis goes away.
    pub async fn listen(self: Arc<Self>) {
        let mut delay = Duration::from_millis(100);
        loop {
            let connect = self.store.connect_timeout();
            let subscribed = async {
                let mut pubsub = self.store.client().get_async_pubsub().await?;
                pubsub.subscribe(&self.channel).await?;
                Ok::<_, redis::RedisError>(pubsub)
            };
            match tokio::time::timeout(connect, subscribed).await {
                Ok(Ok(pubsub)) => {
                    delay = Duration::from_millis(100);
                    tracing::debug!(replica = %self.replica, "listening for relayed legacy SSE messages");
                    let mut messages = pubsub.into_on_message();
                    let mut check = tokio::time::interval(self.refresh_every);
                    check.tick().await;
                    loop {
                        tokio::select! {
                            message = messages.next() => match message {
                                Some(message) => match message.get_payload::<String>() {
                                    Ok(payload) => self.receive(&payload),
                                    Err(error) => {
                                        tracing::warn!(error = %error, "unreadable relay message")
                                    }
                                },
                                None => break,
                            },
                            // A Redis that went away and came back may have dropped this
                            // subscription without the socket telling us.
                            () = self.store.recovered() => break,
                            _ = check.tick() => {
                                if !self.still_subscribed().await {
                                    tracing::warn!(replica = %self.replica, "the relay subscription is gone; resubscribing");
                                    break;
                                }
                            }
                        }
                    }
                    tracing::debug!("relay subscription lost; resubscribing");
                }
                Ok(Err(error)) => {
                    tracing::debug!(error = %error, "cannot subscribe to the relay channel yet")
                }
                Err(_) => tracing::debug!("subscribing to the relay channel timed out"),
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(self.store.reconnect_max_delay());
        }
    }

    /// Whether Redis still counts a subscriber on this replica's channel (a dead socket, say
    /// after a NAT dropped it, would otherwise keep the listener waiting forever). An
    /// unanswered check says yes: Redis being down is the store's to notice.
    async fn still_subscribed(&self) -> bool {
        let channel = self.channel.clone();
        let counted = self
            .store
            .run(|mut connection| async move {
                redis::cmd("PUBSUB")
                    .arg("NUMSUB")
                    .arg(&channel)
                    .query_async::<(String, i64)>(&mut connection)
                    .await
            })
            .await;
        !matches!(counted, Ok((_, 0)))
    }

    fn receive(self: &Arc<Self>, payload: &str) {
        match serde_json::from_str::<Envelope>(payload) {
            Ok(Envelope::Answer { relay_id, delivery }) => {
                if let Some(waiting) = self.pending_table().remove(&relay_id) {
                    let _ = waiting.send(delivery);
                }
            }
            Ok(Envelope::Deliver {
                relay_id,
                reply_to,
                session_id,
                identity,
                request_id,
                cf_ray,
                body,
            }) => {
                let relay = Arc::clone(self);
                tokio::spawn(async move {
                    let mut request = RequestInfo::new(cf_ray.as_deref());
                    if !request_id.is_empty() {
                        request.request_id = request_id.into();
                    }
                    let message = RelayedMessage {
                        identity: Arc::new(*identity),
                        request,
                        body,
                    };
                    let delivery = match relay.local.get().and_then(Weak::upgrade) {
                        Some(local) => local.deliver_relayed(session_id, message).await,
                        None => Delivery::UnknownSession,
                    };
                    relay.answer(reply_to, relay_id, delivery).await;
                });
            }
            Err(error) => tracing::warn!(error = %error, "malformed relay message ignored"),
        }
    }

    async fn answer(&self, reply_to: String, relay_id: String, delivery: Delivery) {
        let Ok(payload) = serde_json::to_string(&Envelope::Answer { relay_id, delivery }) else {
            return;
        };
        // Even while this replica counts Redis as down (one slow command does that): the
        // message was delivered, and an answer lost here makes the client send it again.
        let sent = self
            .store
            .attempt(|mut connection| async move {
                redis::cmd("PUBLISH")
                    .arg(&reply_to)
                    .arg(&payload)
                    .query_async::<i64>(&mut connection)
                    .await
            })
            .await;
        if let Err(error) = sent {
            tracing::warn!(error = %error, "cannot answer a relayed legacy SSE message");
        }
    }

    /// Renews the records of every session held here each keep-alive period, and at once
    /// when Redis answers again (it may have lost them).
    pub async fn renew(self: Arc<Self>) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(self.refresh_every) => {}
                () = self.store.recovered() => {}
            }
            let Some(local) = self.local.get().and_then(Weak::upgrade) else {
                continue;
            };
            let ids = local.session_ids();
            if ids.is_empty() || !self.store.is_up() {
                continue;
            }
            // A session closed while this runs may get its record back until the TTL: a
            // message relayed to it here is answered 404, as for any unknown session.
            let mut pipeline = redis::pipe();
            for id in &ids {
                pipeline
                    .cmd("SET")
                    .arg(self.record_key(id))
                    .arg(&self.replica)
                    .arg("PX")
                    .arg(self.ttl_ms())
                    .ignore();
            }
            let renewed =
                self.store
                    .run(|mut connection| async move {
                        pipeline.query_async::<()>(&mut connection).await
                    })
                    .await;
            if let Err(error) = renewed {
                tracing::debug!(error = %error, sessions = ids.len(), "legacy SSE records not renewed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::IdentityKind;

    #[test]
    fn a_relayed_message_carries_the_whole_identity() {
        let identity = Identity {
            kind: IdentityKind::User,
            email: Some("ada@example.com".into()),
            sub: "sub-ada".into(),
            country: None,
            common_name: None,
            identity_nonce: None,
            expires_at: 1_900_000_000,
            audience: "aud".into(),
            groups: vec!["finance".into()],
        };
        let envelope = Envelope::Deliver {
            relay_id: "r1".into(),
            reply_to: "tunnelgate:replica:a".into(),
            session_id: "s1".into(),
            identity: Box::new(identity.clone()),
            request_id: "req".into(),
            cf_ray: Some("ray".into()),
            body: r#"{"jsonrpc":"2.0","method":"ping","id":1}"#.into(),
        };

        let json = serde_json::to_string(&envelope).unwrap();
        let Envelope::Deliver {
            identity: received,
            body,
            ..
        } = serde_json::from_str(&json).unwrap()
        else {
            panic!("not a delivery: {json}");
        };

        assert_eq!(*received, identity);
        assert!(received.is_same_caller(&identity));
        assert_eq!(body, r#"{"jsonrpc":"2.0","method":"ping","id":1}"#);
    }

    #[test]
    fn an_answer_names_what_became_of_the_message() {
        let json = serde_json::to_string(&Envelope::Answer {
            relay_id: "r1".into(),
            delivery: Delivery::Forbidden,
        })
        .unwrap();

        assert_eq!(
            json,
            r#"{"kind":"answer","relay_id":"r1","delivery":"forbidden"}"#
        );
    }
}
