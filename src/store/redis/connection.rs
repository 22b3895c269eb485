//! The connection to Redis: one node through a reconnecting manager, or a cluster. Made
//! lazily (the bridge starts while Redis is down) and replaceable (the keepalive drops a
//! connection that stopped working, and the next operation makes a new one).

use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

use crate::store::{RedisNodes, RedisSettings, StoreError};

pub(super) fn unavailable(e: redis::RedisError) -> StoreError {
    StoreError::Unavailable(format!("Redis: {e}"))
}

/// One connection to a single node (reconnecting manager) or to a cluster.
#[derive(Clone)]
pub(super) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

pub(super) enum Nodes {
    /// One node, through a reconnecting manager that is replaced when it stops working.
    Single(Box<SingleNode>),
    /// A cluster connection needs a reachable node to be made: it is made on first use (and
    /// again after a failure), then follows the cluster by itself.
    Cluster {
        client: Box<ClusterClient>,
        conn: ArcSwapOption<ClusterConnection>,
    },
}

pub(super) struct SingleNode {
    client: redis::Client,
    config: ConnectionManagerConfig,
    manager: ArcSwap<ConnectionManager>,
}

impl Nodes {
    /// The nodes of `settings`, not connected yet; fails only on a config that cannot work
    /// (bad URL or CA).
    pub(super) fn open(settings: &RedisSettings) -> Result<Self, StoreError> {
        let tls = settings.ca_pem.as_ref().map(|pem| redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(pem.clone()),
        });
        Ok(match &settings.nodes {
            RedisNodes::Single(url) => {
                let client = match tls {
                    Some(certs) => redis::Client::build_with_tls(url.as_str(), certs),
                    None => redis::Client::open(url.as_str()),
                }
                .map_err(unavailable)?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(settings.timeout))
                    .set_response_timeout(Some(settings.timeout))
                    // One attempt per reconnect: a waiting request is bounded by the timeout
                    // anyway, and the next request (or the keepalive) tries again.
                    .set_number_of_retries(0);
                let manager =
                    ConnectionManager::new_lazy_with_config(client.clone(), config.clone()).map_err(unavailable)?;
                Nodes::Single(Box::new(SingleNode {
                    client,
                    config,
                    manager: ArcSwap::from_pointee(manager),
                }))
            }
            RedisNodes::Cluster(urls) => {
                let mut builder = ClusterClient::builder(urls.iter().map(String::as_str))
                    .connection_timeout(settings.timeout)
                    .response_timeout(settings.timeout)
                    .retries(1);
                if let Some(certs) = tls {
                    builder = builder.certs(certs);
                }
                Nodes::Cluster {
                    client: Box::new(builder.build().map_err(unavailable)?),
                    conn: ArcSwapOption::empty(),
                }
            }
        })
    }

    /// Drops the current connection; the next operation makes a new one.
    pub(super) fn replace_connection(&self) {
        match self {
            Nodes::Single(node) => {
                match ConnectionManager::new_lazy_with_config(node.client.clone(), node.config.clone()) {
                    Ok(fresh) => node.manager.store(Arc::new(fresh)),
                    Err(e) => tracing::warn!("cannot make a new Redis connection: {e}"),
                }
            }
            Nodes::Cluster { conn, .. } => conn.store(None),
        }
    }

    /// A connection to use now (a cluster's is made on first use and after a failure).
    pub(super) async fn conn(&self) -> Result<Conn, StoreError> {
        match self {
            Nodes::Single(node) => Ok(Conn::Single(ConnectionManager::clone(&node.manager.load()))),
            Nodes::Cluster { client, conn } => {
                if let Some(c) = conn.load_full() {
                    return Ok(Conn::Cluster(ClusterConnection::clone(&c)));
                }
                // Several requests may connect at once after a failure; the last one stays.
                let fresh = client.get_async_connection().await.map_err(unavailable)?;
                conn.store(Some(Arc::new(fresh.clone())));
                Ok(Conn::Cluster(fresh))
            }
        }
    }
}
